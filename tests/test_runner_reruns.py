"""`gpuhil run` reruns its failed tests (CPU, real pytest sessions): each alone in a fresh worker, then,
when it passes alone, after the test that ran before it in its worker. A test that fails every time is
FAILED, one that passes is FLAKY (reported, the run stays green unless --flaky-fails), one that fails
again after its predecessor is ORDER-DEPENDENT; planted faults are never rerun, natural crashes are."""

import json
import shutil
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fakes import gpuhil, make_checkout
from gpuhil.history import junit as history_junit

REPO = Path(__file__).resolve().parents[1]

# Fails the first time it runs in this checkout, passes after: a counter file beside the suite.
FLAKY = textwrap.dedent("""
    from pathlib import Path

    import pytest

    def _first_time(name):
        counter = Path(__file__).with_name(name + ".count")
        n = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(n + 1))
        return n == 0
""")

MIXED_SUITE = FLAKY + textwrap.dedent("""
    STATE = {}

    def test_ok():
        pass

    @pytest.mark.parametrize("x", [1])
    def test_flaky(x):
        assert not _first_time("flaky"), "fails the first time"

    def test_always():
        assert False, "fails every time"

    def test_a_leaves_state():
        STATE["dirty"] = True

    def test_b_needs_clean_state():
        assert not STATE.get("dirty"), "left dirty by test_a_leaves_state"
""")

ONLY_FLAKY_SUITE = FLAKY + textwrap.dedent("""
    def test_flaky():
        assert not _first_time("flaky"), "fails the first time"

    def test_ok():
        pass
""")

NODE = "suites/gates/test_reruns.py::"


@pytest.fixture
def checkout(tmp_path) -> Path:
    make_checkout(tmp_path)
    return tmp_path


def cases(junit: Path) -> dict[str, ET.Element]:
    return {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}


def props(case: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in case.iter("property")}


def test_consistent_flaky_and_order_dependent_failures_are_told_apart(checkout):
    (checkout / "suites/gates/test_reruns.py").write_text(MIXED_SUITE)
    r = gpuhil("run", "--workers", "1", "--results-dir", "out", cwd=checkout)  # one worker: a known order
    assert r.returncode == 1, r.stdout + r.stderr
    out = checkout / "out"
    assert f"gpuhil run: rerun FLAKY: {NODE}test_flaky[1]: failed (session), passed (alone), " \
           f"passed (after {NODE}test_ok)" in r.stdout
    assert f"gpuhil run: rerun FAILED: {NODE}test_always: failed (session), failed (alone), failed (alone)" in r.stdout
    assert (f"gpuhil run: rerun ORDER-DEPENDENT: {NODE}test_b_needs_clean_state: failed (session), passed (alone), "
            f"failed (after {NODE}test_a_leaves_state)") in r.stdout
    assert "FAIL: 3 passed, 2 failed, 0 errors, 0 skipped, 0 xfailed, 0 xpassed; 1 order-dependent; " \
           "1 flaky (passed when run again)" in r.stdout

    report = (out / "report.md").read_text()
    assert "## Flaky tests" in report and "## Order-dependent tests" in report and "## Failed on every rerun" in report
    assert f"| `{NODE}test_flaky[1]` | 3 | failed (session), passed (alone), passed (after {NODE}test_ok) |" in report
    assert f"| `{NODE}test_b_needs_clean_state` | `{NODE}test_a_leaves_state` |" in report
    assert f"| `{NODE}test_always` | failed (session), failed (alone), failed (alone) |" in report
    assert "| gates | 3 | 2 | 0 | 0 | 0 | 0 |" in report  # the flaky test counts as passed

    junit = cases(out / "junit.xml")
    flaky = junit["test_flaky[1]"]
    assert flaky.find("failure") is None and "fails the first time" in flaky.find("flakyFailure").get("message")
    assert props(flaky)["gpuhil_flaky"] == "true" and props(flaky)["gpuhil_nodeid"] == f"{NODE}test_flaky[1]"
    ordered = junit["test_b_needs_clean_state"]
    assert ordered.find("failure") is not None and props(ordered)["gpuhil_order_dependent"] == f"{NODE}test_a_leaves_state"
    always = junit["test_always"]
    assert always.find("failure") is not None and "gpuhil_flaky" not in props(always)
    assert ET.parse(out / "junit.xml").getroot().find("testsuite").get("failures") == "2"
    assert not any("gpuhil_attempts" in props(c) for name, c in junit.items() if name in ("test_ok", "test_a_leaves_state"))

    record = json.loads((out / "run.json").read_text())
    assert record["reruns"]["limit"] == 2 and not record["reruns"]["flaky_fails"]
    verdicts = {t["test"].rsplit("::", 1)[1]: (t["verdict"], t["after"]) for t in record["reruns"]["tests"]}
    assert verdicts == {"test_flaky[1]": ("FLAKY", None), "test_always": ("FAILED", None),
                        "test_b_needs_clean_state": ("ORDER-DEPENDENT", f"{NODE}test_a_leaves_state")}
    # The history (and the dashboard's coverage matrix) sees the flaky pass as one.
    history = {c["name"]: c for c in history_junit.parse(out / "junit.xml")}
    assert history["test_flaky[1]"]["outcome"] == "passed"
    assert history["test_flaky[1]"]["reason"].startswith(history_junit.FLAKY_REASON + "failed (session)")
    assert history["test_b_needs_clean_state"]["reason"].startswith(f"order-dependent: fails after {NODE}test_a")
    # Each rerun keeps its files apart: nothing of it counts in the run's own.
    assert len(list((out / "reruns").iterdir())) == 6
    assert (out / "reruns/tests-001/nodeids.txt").read_text() == f"{NODE}test_flaky[1]\n"


@pytest.mark.parametrize("args, code, verdict", [
    ([], 0, "PASS: 2 passed, 0 failed, 0 errors, 0 skipped, 0 xfailed, 0 xpassed; 1 flaky (passed when run again)"),
    (["--flaky-fails"], 1, "FAIL: 2 passed, 0 failed, 0 errors, 0 skipped, 0 xfailed, 0 xpassed; 1 flaky "
                           "(passed when run again, --flaky-fails)"),
    (["--reruns", "0"], 1, "FAIL: 1 passed, 1 failed, 0 errors"),
])
def test_a_flaky_test_fails_the_run_only_with_flaky_fails(checkout, args, code, verdict):
    (checkout / "suites/gates/test_reruns.py").write_text(ONLY_FLAKY_SUITE)
    r = gpuhil("run", *args, "--workers", "1", "--results-dir", "out", cwd=checkout)
    assert r.returncode == code, r.stdout + r.stderr
    assert f"gpuhil run: {verdict}" in r.stdout
    assert json.loads((checkout / "out/run.json").read_text())["exit_code"] == code
    assert (checkout / "out/reruns").exists() == ("0" not in args)


@pytest.mark.parametrize("value", ["-1", "two", "1.5", ""])
def test_a_rerun_count_that_is_not_a_whole_number_is_one_line_and_exit_2(checkout, value):
    r = gpuhil("run", "--reruns", value, "--results-dir", "out", cwd=checkout)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [f"gpuhil run: --reruns {value!r}: a whole number of reruns, 0 or more"]
    assert not (checkout / "out").exists()


def test_a_natural_crash_is_rerun_and_a_planted_fault_is_not(checkout):
    (checkout / "fixtures").mkdir()
    (checkout / "fixtures/__init__.py").write_text("")
    shutil.copy(REPO / "fixtures/faults.py", checkout / "fixtures/faults.py")
    (checkout / "conftest.py").write_text('pytest_plugins = ("gpuhil.pytest_plugin", "fixtures.faults")\n')
    shutil.copy(REPO / "tests/planted/test_planted_faults.py", checkout / "suites/gates")
    (checkout / "suites/gates/test_reruns.py").write_text(FLAKY + textwrap.dedent("""
        import ctypes

        def test_crashes_once():
            if _first_time("crash"):
                ctypes.string_at(0)
    """))
    r = gpuhil("run", "--workers", "1", "--results-dir", "out", "--", "--plant-faults", "segfault", cwd=checkout)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL: 1 test(s) crashed or timed out" in r.stdout  # the planted one; the natural one passed again
    crashes = {c["nodeid"].rsplit("::", 1)[1] for c in json.loads((checkout / "out/crashes.json").read_text())}
    assert crashes == {"test_planted_segfault", "test_crashes_once"}
    report = (checkout / "out/report.md").read_text()
    assert "(FLAKY: passed when run again)" in report.split("test_crashes_once", 1)[1].splitlines()[0]
    verdicts = {t["test"].rsplit("::", 1)[1]: t["verdict"] for t in json.loads((checkout / "out/run.json").read_text())["reruns"]["tests"]}
    assert verdicts == {"test_crashes_once": "FLAKY"}  # the planted segfault was not run again
