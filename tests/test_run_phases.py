"""The pytest sessions of one run: their plan, one outcome for them, and one junit.xml from their parts."""

import xml.etree.ElementTree as ET

import pytest

from gpuhil import run_phases
from gpuhil.supervise import Ended
from gpuhil.workers import WorkerCount

EIGHT = WorkerCount(8, "least of: ...")


def test_without_perf_one_session_writes_junit_xml_itself(tmp_path):
    [phase] = run_phases.plan(tmp_path, EIGHT, gpus=2, perf=False)
    assert (phase.name, phase.workers, phase.junit) == ("tests", 8, tmp_path / "junit.xml")
    assert phase.pytest_options() == [f"--junitxml={tmp_path / 'junit.xml'}", "-n", "8", "--max-worker-restart=1000"]


@pytest.mark.parametrize("gpus, alone", [(0, 1), (1, 1), (4, 4)])
def test_with_perf_the_perf_cases_get_one_worker_per_gpu_after_the_tests(tmp_path, gpus, alone):
    tests, perf = run_phases.plan(tmp_path, EIGHT, gpus=gpus, perf=True)
    assert (tests.name, tests.workers, tests.options) == ("tests", 8, ())
    assert (perf.name, perf.workers, perf.options) == ("perf", alone, ("--perf-only",))
    assert tests.junit != perf.junit and tmp_path / "junit.xml" not in (tests.junit, perf.junit)


@pytest.mark.parametrize("codes, signals, rc, signum", [
    ([0, 0], [None, None], 0, None),
    ([0, 1], [None, None], 1, None),
    ([1, 5], [None, None], 1, None),
    ([5, 0], [None, None], 0, None),  # only perf cases selected: the first session collected none
    ([5, 5], [None, None], 5, None),
    ([0, 4], [None, None], 4, None),  # a harness failure wins, with its own stderr
    ([1], [2], 1, 2),  # stopped in the first session: there is no second
])
def test_one_outcome_for_the_sessions(codes, signals, rc, signum):
    ended = [Ended(c, s, (f"stderr of {i}",)) for i, (c, s) in enumerate(zip(codes, signals))]
    got = run_phases.combine(ended)
    assert (got.returncode, got.signum) == (rc, signum)
    if rc == 4:
        assert got.stderr_tail == ("stderr of 1",)


def junit(path, *names):
    cases = "".join(f'<testcase classname="suites.gates.test_x" name="{n}" time="1.5"/>' for n in names)
    path.write_text(f'<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" '
                    f'tests="{len(names)}" time="2.0">{cases}</testsuite></testsuites>')


def test_the_parts_become_one_junit_xml_and_go(tmp_path):
    phases = run_phases.plan(tmp_path, EIGHT, gpus=1, perf=True)
    junit(phases[0].junit, "test_a", "test_b")
    junit(phases[1].junit, "test_timed")
    run_phases.merge_junit(phases, tmp_path / "junit.xml")
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert root.tag == "testsuites" and [s.get("tests") for s in root.findall("testsuite")] == ["2", "1"]
    assert [c.get("name") for c in root.iter("testcase")] == ["test_a", "test_b", "test_timed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml"]


def test_a_session_that_wrote_nothing_is_left_out(tmp_path):
    phases = run_phases.plan(tmp_path, EIGHT, gpus=1, perf=True)
    junit(phases[0].junit, "test_a")  # stopped before the perf session started
    run_phases.merge_junit(phases, tmp_path / "junit.xml")
    assert [c.get("name") for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")] == ["test_a"]
    run_phases.merge_junit(run_phases.plan(tmp_path / "none", EIGHT, gpus=1, perf=True), tmp_path / "none.xml")
    assert not (tmp_path / "none.xml").exists()


def test_an_unreadable_part_raises_and_stays_for_the_report(tmp_path):
    phases = run_phases.plan(tmp_path, EIGHT, gpus=1, perf=True)
    junit(phases[0].junit, "test_a")
    phases[1].junit.write_text("<testsuites><testsuite")
    with pytest.raises(ET.ParseError):
        run_phases.merge_junit(phases, tmp_path / "junit.xml")
    assert phases[0].junit.exists() and phases[1].junit.exists() and not (tmp_path / "junit.xml").exists()
