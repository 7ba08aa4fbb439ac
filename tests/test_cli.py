"""The gpuhil command line on a CPU machine: gates tables and the main job."""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from fakes import make_checkout
from gpuhil.catalog import matrix

REPO = Path(__file__).resolve().parents[1]


def gpuhil(*args, cwd=REPO, timeout=600):
    return subprocess.run([sys.executable, "-m", "gpuhil", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def test_gates_all_has_every_catalog_sku():
    r = gpuhil("gates", "--all", "--json")
    assert r.returncode == 0, r.stderr
    table = json.loads(r.stdout)
    assert set(table) == set(matrix.load(REPO / "hardware_matrix.yaml").skus)
    refused = 0
    for sku_id, block in table.items():
        assert block["configs"], sku_id
        for row in block["configs"]:
            for reason in row["reasons"]:  # each names the feature, what it needs and the probed value
                assert re.fullmatch(r"[^:]+: needs .+, probed .+", reason), (sku_id, row["config"], reason)
            refused += bool(row["reasons"])
    assert refused, "no SKU refuses any config: the catalog spans parts without clusters, wgmma, or 228 KiB"


def test_gates_h20_refuses_clusters_with_the_probed_attribute():
    table = json.loads(gpuhil("gates", "--target-sku", "h20", "--json").stdout)["h20"]["configs"]
    refused = [r for r in table if r["kernel"] == "cluster_reduce" and not r["supported"]]
    assert {r["cluster_n"] for r in refused} == {2, 4, 8, 16}
    assert all("CLUSTER_LAUNCH" in " ".join(r["reasons"]) for r in refused)


def test_gates_human_table_explains():
    r = gpuhil("gates", "--target-sku", "gb10")
    assert r.returncode == 0 and "cluster_n=16" in r.stdout and "max cluster size" in r.stdout


def test_gates_unknown_sku_is_exit_2():
    r = gpuhil("gates", "--target-sku", "x9000")
    assert r.returncode == 2 and "unknown SKU 'x9000'" in r.stderr


def _checkout(tmp_path: Path, body: str) -> Path:
    make_checkout(tmp_path)
    (tmp_path / "suites" / "gates" / "test_mini.py").write_text(textwrap.dedent(body))
    return tmp_path


def test_run_on_a_cpu_machine_passes_and_writes_a_report(tmp_path):
    root = _checkout(tmp_path, """
        import pytest
        from gpuhil.gating import Requirements

        def test_cpu_side():
            assert 1 + 1 == 2

        @pytest.mark.requires(Requirements())
        def test_needs_gpu():
            raise AssertionError("must be skipped on a CPU machine")
    """)
    r = gpuhil("run", "--results-dir", str(root / "out"), cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS: 1 passed, 0 failed, 0 errors, 1 skipped, 0 xfailed, 0 xpassed" in r.stdout
    report = (root / "out" / "report.md").read_text()
    assert "**PASS: 1 passed" in report and "| gates | 1 | 0 | 0 | 1 | 0 | 0 |" in report
    assert "| 1 | requires GPU: GPU: needs a CUDA device, probed none attached [probe] |" in report  # skips by reason
    assert json.loads((root / "out" / "probe.json").read_text())["gpu_present"] is False
    assert (root / "out" / "junit.xml").exists()


def test_run_exits_non_zero_on_a_real_failure(tmp_path):
    root = _checkout(tmp_path, """
        def test_broken():
            assert False
    """)
    r = gpuhil("run", "--results-dir", str(root / "out"), cwd=root)
    assert r.returncode == 1 and "FAIL: 0 passed, 1 failed" in r.stdout
    report = (root / "out" / "report.md").read_text()
    assert "| `suites.gates.test_mini::test_broken` | failed | assert False |" in report
