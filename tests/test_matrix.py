"""hardware_matrix.yaml validation: the repo's file is valid, broken copies fail with FILE:LINE: messages."""

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from fakes import make_checkout
from gpuhil.catalog import matrix

REPO = Path(__file__).resolve().parents[1]
TEXT = (REPO / "hardware_matrix.yaml").read_text()


def line_of(text: str, needle: str) -> int:
    """Line of the last occurrence (a duplicate is reported where it repeats)."""
    return [i + 1 for i, line in enumerate(text.splitlines()) if needle in line][-1]


def test_repo_matrix_is_valid_and_complete():
    mx = matrix.load(REPO / "hardware_matrix.yaml", strict_expiry=True)
    required = {"h100", "h200", "h20", "b200", "gb200", "b300", "rtx5090", "rtxpro6000", "gb10", "l40s", "a100"}
    assert required <= set(mx.skus)
    assert set(mx.selections) == set(mx.skus)
    gb10 = mx.sku("gb10")
    assert (gb10.cc, gb10.smem_optin_bytes, gb10.cluster_launch, gb10.arch) == ("12.1", 101376, True, "sm121")
    assert mx.sku("h20").cluster_launch is False


def test_every_catalog_number_has_a_source():
    for sku in matrix.load(REPO / "hardware_matrix.yaml").skus.values():
        for field in matrix.SOURCED_FIELDS:
            if getattr(sku, field) is not None:
                assert sku.sources.get(field), f"{sku.id}.{field} has no source"


@pytest.mark.parametrize("name, old, new, needle, message", [
    ("unknown key", "    cluster_launch: false\n", "    cluster_launch: false\n    cluster_lanch: false\n",
     "cluster_lanch", "Extra inputs are not permitted"),
    ("wrong type", "  sm_count: 78\n", "  sm_count: seventy-eight\n", "seventy-eight", "valid integer"),
    ("bad predicate", "when: {arch_family: 12}", "when: {arch_family: twelve}", "twelve", "cannot read condition"),
    ("unknown fact", "when: {arch_family: 12}", "when: {gpu_name: GB10}", "gpu_name", "unknown fact 'gpu_name'"),
    ("known issue for a suite that does not exist", "applies_to: {suite: fp8_grouped_gemm,",
     "applies_to: {suite: fp8_grouped_gem,", "fp8_grouped_gem,", "would never apply"),
    ("duplicate id", "- id: h200\n", "- id: h100\n", "- id: h100", "duplicate SKU id 'h100'"),
    ("unknown SKU in selection", "  a100: {suites:", "  a101: {suites:", "a101: {suites", "unknown SKU 'a101'"),
    ("unknown suite in selection", "  h100: {suites: [device,", "  h100: {suites: [devise,", "[devise,",
     "unknown suite 'devise'"),
    ("expired entry", "expires: 2027-05-31", "expires: 2020-01-31", "expires: 2020", "expired on 2020-01-31"),
    ("bad mode", "mode: xfail", "mode: ignore", "mode: ignore", "'xfail' or 'skip'"),
    ("bad link", "link: https://github.com/NVIDIA/cutlass", "link: github.com/NVIDIA/cutlass", "link: github",
     "should match pattern"),
    ("duplicate YAML key", "    sm_count: 132\n", "    sm_count: 132\n    sm_count: 133\n", "sm_count: 133",
     "duplicate key 'sm_count'"),
    ("missing source", "      mem_bw_gbs: https://www.nvidia.com/en-us/data-center/h200/", "      mem_bandwidth_note: x",
     "mem_bandwidth_note", "no source for mem_bw_gbs"),
    ("cluster size without cluster launch", "    cluster_launch: false\n    max_cluster_size: 1",
     "    cluster_launch: false\n    max_cluster_size: 4", "max_cluster_size: 4", "max_cluster_size must be 1"),
])
def test_broken_matrix_reports_file_line_message(tmp_path, name, old, new, needle, message):
    assert old in TEXT, f"fixture drifted from hardware_matrix.yaml: {old!r}"
    broken = TEXT.replace(old, new, 1)
    make_checkout(tmp_path, broken)
    path = tmp_path / "hardware_matrix.yaml"
    with pytest.raises(matrix.MatrixError) as err:
        matrix.load(path, strict_expiry=True)
    text = str(err.value)
    assert message in text, text
    line = line_of(broken, needle)
    assert any(p.line in range(line - 25, line + 1) for p in err.value.problems if message in p.message), (line, text)
    assert text.startswith(f"{path}:")


def test_not_yaml_names_the_line(tmp_path):
    path = tmp_path / "hardware_matrix.yaml"
    path.write_text("version: 1\nskus: [\n  - id: x\n")
    with pytest.raises(matrix.MatrixError, match=r"hardware_matrix.yaml:\d+: not valid YAML"):
        matrix.load(path)


def test_expired_entry_is_only_fatal_for_matrix_check(tmp_path):
    path = tmp_path / "hardware_matrix.yaml"
    path.write_text(TEXT.replace("expires: 2027-05-31", "expires: 2020-01-31"))
    mx = matrix.load(path, suites_dir=REPO / "suites")  # sessions still load: the affected tests error instead
    assert mx.known_issues[0].expired(dt.date(2026, 1, 1))


def _check(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "gpuhil", "matrix", "check", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def test_cli_matrix_check_exit_codes(tmp_path):
    ok = _check()
    assert ok.returncode == 0 and "ok: 11 SKUs" in ok.stdout
    broken = tmp_path / "hardware_matrix.yaml"
    broken.write_text(TEXT.replace("  sm_count: 78\n", "  sm_count: many\n", 1))
    bad = _check(str(broken))
    assert bad.returncode == 2
    assert f"{broken}:{line_of(broken.read_text(), 'sm_count: many')}: " in bad.stderr


def test_catalog_match_prefers_pci_id_and_longest_name():
    mx = matrix.load(REPO / "hardware_matrix.yaml")
    assert mx.match("NVIDIA H200", None, "9.0").id == "h200"  # "NVIDIA H20" is a prefix of it
    assert mx.match("NVIDIA H20", None, "9.0").id == "h20"
    assert mx.match("Some renamed board", "0x2e12", "12.1").id == "gb10"
    assert mx.match("NVIDIA H100 80GB HBM3", None, "8.0") is None  # cc must agree
    assert mx.match("NVIDIA Future GPU", "0xffff", "13.0") is None
