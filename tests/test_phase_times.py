"""Where a run's time goes: compiles counted apart (gpuhil.compile_clock), each test's phases as junit
properties (gpuhil.phase_times, carried by xdist), and report.md's table of suites and slowest tests."""

import os
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET

import pytest

from fakes import make_checkout
from gpuhil import compile_clock
from gpuhil.report import durations


def test_compiles_count_only_inside_counting_and_nested_ones_once():
    with compile_clock.compiling():  # nobody counting: nothing kept anywhere
        time.sleep(0.01)
    with compile_clock.counting() as clock:
        with compile_clock.compiling():
            with compile_clock.compiling():  # compile_kernel calling compile_for_target
                time.sleep(0.1)
        first = clock.take()
        time.sleep(0.05)  # not compiling
        with compile_clock.compiling():
            time.sleep(0.05)
        second = clock.take()
    assert 0.1 <= first < 0.15 and 0.05 <= second < 0.09, (first, second)
    assert clock.take() == 0.0 and clock.seconds == pytest.approx(first + second)
    with compile_clock.compiling():  # the block is closed: that clock no longer counts
        time.sleep(0.01)
    assert clock.seconds == pytest.approx(first + second)


def test_a_compile_that_raises_still_counts():
    with compile_clock.counting() as clock:
        with pytest.raises(RuntimeError), compile_clock.compiling():
            time.sleep(0.02)
            raise RuntimeError("ptxas rejected it")
    assert clock.seconds >= 0.02


# setup 0.3 s of which 0.2 compiling; call 0.5 s of which 0.4 compiling; teardown 0.2 s.
PHASED = textwrap.dedent("""
    import time
    import pytest
    from gpuhil import compile_clock

    @pytest.fixture
    def built():
        with compile_clock.compiling():
            time.sleep(0.2)
        time.sleep(0.1)
        yield
        time.sleep(0.2)

    def test_phased(built):
        with compile_clock.compiling():
            time.sleep(0.4)
        time.sleep(0.1)

    def test_quick():
        pass
""")


def properties(junit) -> dict[str, dict[str, float]]:
    return {case.get("name"): {p.get("name"): float(p.get("value")) for p in case.iter("property")}
            for case in ET.parse(junit).getroot().iter("testcase")}


@pytest.mark.parametrize("workers", [[], ["-n", "1", "-p", "xdist"]], ids=["in-process", "xdist"])
def test_each_test_carries_its_phase_times_into_junit(pytester, monkeypatch, workers):
    make_checkout(pytester.path)
    pytester.makepyfile(test_phased=PHASED)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    result = pytester.runpytest_subprocess(*workers, f"--junitxml={pytester.path / 'junit.xml'}")
    result.assert_outcomes(passed=2)
    props = properties(pytester.path / "junit.xml")
    phased = props["test_phased"]
    assert set(phased) == {"compile_s", "setup_s", "run_s", "teardown_s"}
    assert 0.6 <= phased["compile_s"] < 0.8
    assert 0.1 <= phased["setup_s"] < 0.2 and 0.1 <= phased["run_s"] < 0.2 and 0.2 <= phased["teardown_s"] < 0.3
    total = float(next(c for c in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
                       if c.get("name") == "test_phased").get("time"))
    assert sum(phased.values()) == pytest.approx(total, abs=0.01)  # the phases are the test's time, split
    assert props["test_quick"]["compile_s"] == 0.0


def ct(suite, test, total, compile=0.0, setup=0.0, run=None, teardown=0.0, phases=True):
    run = total - compile - setup - teardown if run is None else run
    return durations.CaseTime(suite, test, total, dict(compile=compile, setup=setup, run=run, teardown=teardown)
                              if phases else None)


def test_the_table_orders_suites_by_time_and_lists_the_ten_slowest_tests():
    times = [ct("argmax", f"suites.argmax.t::test_{i}", 1.0 + i, compile=0.5) for i in range(12)]
    times += [ct("nvfp4_moe", "suites.nvfp4_moe.t::test_big", 100.0, compile=60.0, setup=10.0, teardown=1.0),
              ct("nvfp4_moe", "suites.nvfp4_moe.t::test_crashed", 5.0, phases=False)]
    lines = durations.render(times, ["tests: 300.0 s in 8 workers", "perf: 20.0 s in 1 worker"])
    text = "\n".join(lines)
    assert "- tests: 300.0 s in 8 workers\n- perf: 20.0 s in 1 worker" in text
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| suite") and "---" not in line]
    assert rows[:3] == ["| nvfp4_moe | 2 | 105.0 | 60.0 | 10.0 | 29.0 | 1.0 |",
                        "| argmax | 12 | 78.0 | 6.0 | 0.0 | 72.0 | 0.0 |",
                        "| **all** | **14** | **183.0** | **66.0** | **10.0** | **101.0** | **1.0** |"]
    assert "1 test(s) have no phase times" in text and durations.MEANING in text
    slowest = lines[lines.index("### Slowest tests") + 4:]
    assert len(slowest) == 10
    assert slowest[0] == "| `suites.nvfp4_moe.t::test_big` | 100.0 | 60.0 | 10.0 | 29.0 | 1.0 |"
    assert slowest[1] == "| `suites.argmax.t::test_11` | 12.0 | 0.5 | 0.0 | 11.5 | 0.0 |"
    assert "| `suites.nvfp4_moe.t::test_crashed` | 5.0 |  |  |  |  |" in slowest


def test_nothing_timed_renders_nothing():
    assert durations.render([], []) == []


@pytest.mark.parametrize("value", [None, "", "fast", "nan", "-1"])
def test_a_malformed_phase_time_counts_as_absent(value):
    props = {f"{p}_s": "1.0" for p in durations.PHASES} | {"run_s": value}
    assert durations.case_time("argmax", "t", "4.0", props).phases is None
    assert durations.case_time("argmax", "t", value, {}).total == 0.0


def test_gpuhil_run_reports_where_the_time_went(tmp_path):
    make_checkout(tmp_path)
    (tmp_path / "suites/gates/test_phased.py").write_text(PHASED)
    r = subprocess.run([sys.executable, "-m", "gpuhil", "run", "--results-dir", "out"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600, env=os.environ)
    assert r.returncode == 0, r.stdout + r.stderr
    report = (tmp_path / "out/report.md").read_text()
    section = report.split("## Where the time went", 1)[1]
    assert section.splitlines()[4].startswith("- tests: ") and " s in 1 worker" in section.splitlines()[4]
    row = next(line for line in section.splitlines() if line.startswith("| gates | 2 | "))
    total, compile_s, setup, run, teardown = (float(c) for c in row.strip("|").split("|")[2:])
    assert 0.6 <= compile_s < 0.8 and 0.1 <= setup < 0.3 and 0.1 <= run < 0.3 and 0.2 <= teardown < 0.4, row
    assert "| `suites.gates.test_phased::test_phased` | 1." in section
