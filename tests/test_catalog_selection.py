"""Selection by default: a new suite folder runs on every SKU's runner without a catalog edit, and
`matrix check` refuses a suite no runner reaches or a selection naming a suite that is not there."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from fakes import make_checkout
from gpuhil.catalog import matrix

REPO = Path(__file__).resolve().parents[1]
DOC = yaml.safe_load((REPO / "hardware_matrix.yaml").read_text())
NEW_SUITE = textwrap.dedent("""
    import pytest

    def test_default_case():
        pass

    @pytest.mark.slow
    def test_full_tier_case():
        pass
""")


def _checkout(root: Path, doc: dict) -> Path:
    """A checkout with the repo's suite folders (empty), `doc` as its matrix and a new suite, rmsnorm."""
    make_checkout(root, yaml.safe_dump(doc, sort_keys=False))
    (root / "suites" / "rmsnorm").mkdir()
    (root / "suites" / "rmsnorm" / "test_rmsnorm_demo.py").write_text(NEW_SUITE)
    return root / "hardware_matrix.yaml"


def _matrix_check(path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    return subprocess.run([sys.executable, "-m", "gpuhil", "matrix", "check", str(path)], capture_output=True,
                          text=True, env=env, timeout=120)


def _with(selections: dict, **defaults) -> dict:
    return {**DOC, "selection_defaults": {**DOC["selection_defaults"], **defaults}, "selections": selections,
            "known_issues": []}


def test_the_repo_selections_are_the_defaults_and_five_deltas():
    mx = matrix.load(REPO / "hardware_matrix.yaml")
    assert list(mx.selections) == list(mx.skus)
    full = {s for s, sel in mx.selections.items() if sel.tier == "full"}
    assert full == {"h20", "h20_3e", "gb10"}
    assert {s: set(sel.skipped) for s, sel in mx.selections.items() if sel.skipped} == {
        "l40s": {"nvfp4_moe"}, "a100": {"fp8_grouped_gemm", "nvfp4_moe"}}
    assert all(sel.providers == ("*",) for sel in mx.selections.values())


def test_a_new_suite_folder_is_selected_for_every_sku_marker_without_a_catalog_edit(pytester):
    _checkout(pytester.path, DOC)
    every = sorted({m for sku in DOC["skus"] for m in (sku["id"], sku["arch"], *sku.get("markers", []))})
    out = pytester.runpytest("--collect-only", "-q", "-m", " and ".join(every))  # one item carrying every marker
    out.stdout.fnmatch_lines(["suites/rmsnorm/test_rmsnorm_demo.py::test_default_case", "1/2 tests collected*"])
    full = [s["id"] for s in DOC["skus"] if DOC["selections"].get(s["id"], {}).get("tier") == "full"]
    out = pytester.runpytest("--collect-only", "-q", "-m", " and ".join(full))  # the full-tier runners take its slow case
    out.stdout.fnmatch_lines(["*::test_default_case", "*::test_full_tier_case", "2 tests collected*"])
    assert _matrix_check(pytester.path / "hardware_matrix.yaml").returncode == 0


def test_an_opt_in_suite_runs_only_where_a_sku_lists_it(pytester):
    _checkout(pytester.path, _with({"gb10": {"extras": ["rmsnorm"]}}, opt_in=["rmsnorm"]))
    out = pytester.runpytest("--collect-only", "-q", "-m", "gb10")
    out.stdout.fnmatch_lines(["*::test_default_case", "1/2 tests collected*"])
    out = pytester.runpytest("--collect-only", "-q", "-m", "h100 or sm120")
    out.stdout.fnmatch_lines(["no tests collected (2 deselected)*"])


def test_an_excluded_suite_leaves_that_runner_only(pytester):
    _checkout(pytester.path, _with({"a100": {"exclude": ["rmsnorm"]}}))
    assert "no tests collected (2 deselected)" in pytester.runpytest("--collect-only", "-q", "-m", "a100").stdout.str()
    pytester.runpytest("--collect-only", "-q", "-m", "l40s").stdout.fnmatch_lines(["1/2 tests collected*"])


@pytest.mark.parametrize("doc, needle, below, message", [  # the problem's line: `below` the first holding `needle`
    (_with({s["id"]: {"exclude": ["rmsnorm"]} for s in DOC["skus"]}), "exclude:", 1,
     "suite 'rmsnorm' ({suites}/rmsnorm) runs on no runner: every SKU's selection excludes it"),
    (_with({}, opt_in=["rmsnorm"]), "opt_in:", 1,
     "suite 'rmsnorm' ({suites}/rmsnorm) runs on no runner: it is opt-in and no SKU lists it in its selection's extras"),
    (_with({"h100": {"exclude": ["rmsnrom"]}}), "exclude:", 1,
     "selections.h100.exclude.0: unknown suite 'rmsnrom': no such folder in {suites} "
     "(have: argmax, device, fp8_grouped_gemm, gates, nvfp4_moe, rmsnorm)"),
    (_with({"h100": {"extras": ["rmsnorm"], "exclude": ["rmsnorm"]}, "gb10": {"extras": ["rmsnorm"]}},
           opt_in=["rmsnorm"]), "exclude:", 1,
     "selections.h100.exclude.0: suite 'rmsnorm' is both excluded and an extra"),
], ids=["excluded-everywhere", "opt-in-nowhere", "missing-suite", "excluded-and-extra"])
def test_matrix_check_refuses_an_unreachable_or_missing_suite(tmp_path, doc, needle, below, message):
    path = _checkout(tmp_path, doc)
    line = next(i + 1 for i, ln in enumerate(path.read_text().splitlines()) if needle in ln) + below
    r = _matrix_check(path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [f"{path}:{line}: " + message.format(suites=tmp_path / "suites")], r.stderr
