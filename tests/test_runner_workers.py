"""`gpuhil run`'s workers (CPU, fake suites): --workers sets how many and xdist's own options are
refused after `--`; with --perf the perf cases run after every other test, one worker per GPU, so no
other test shares a GPU with a timed case; a crash in either session fails alone and is reported."""

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fakes import gpuhil, make_checkout
from gpuhil import run_phases, runner
from gpuhil.workers import WorkerCount

# Every test appends what it saw: which worker, which GPU it was pinned to, when it ran.
LOGGING_SUITE = textwrap.dedent("""
    import json, os, time
    import pytest

    def _log(name, seconds):
        began = time.time()
        time.sleep(seconds)
        line = json.dumps({{"test": name, "worker": os.environ.get("PYTEST_XDIST_WORKER"),
                           "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"), "start": began, "end": time.time()}})
        with open({log!r}, "a") as f:
            f.write(line + "\\n")

    @pytest.mark.parametrize("i", range(8))
    def test_numerics(i):
        _log(f"numerics{{i}}", 0.4)

    @pytest.mark.perf
    @pytest.mark.parametrize("i", range(4))
    def test_timed(i):
        _log(f"timed{{i}}", 0.3)
""")


@pytest.fixture
def checkout(tmp_path) -> Path:
    make_checkout(tmp_path)
    return tmp_path


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("option, refused", [
    ("-n", "-n"), ("-n2", "-n"), ("-nauto", "-n"), ("--numprocesses=2", "--numprocesses"), ("--dist=loadfile", "--dist"),
    ("-d", "-d"), ("--maxprocesses=2", "--maxprocesses"), ("--tx=2*popen", "--tx"),
    ("--max-worker-restart=0", "--max-worker-restart"), ("--perf-only", "--perf-only"),
])
def test_xdist_options_after_the_separator_are_refused_with_what_to_use(checkout, option, refused):
    r = gpuhil("run", "--results-dir", "out", "--", "-k", "x", option, *(["2"] if option == "-n" else []), cwd=checkout)
    assert r.returncode == 2 and r.stderr.splitlines() == [
        f"gpuhil run: pytest option {refused} after --: the runner sets it itself ({runner.RUNNER_OPTIONS[refused]})"]
    assert not (checkout / "out").exists()
    assert "--workers N" in runner.RUNNER_OPTIONS["-n"] and "--workers N" in runner.RUNNER_OPTIONS["--dist"]


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_worker_count_that_is_not_a_positive_whole_number_is_a_usage_error(checkout, value):
    r = gpuhil("run", "--results-dir", "out", "--workers", value, cwd=checkout)
    assert r.returncode == 2 and f"--workers: {value!r}: a whole number of workers, at least 1" in r.stderr
    assert not (checkout / "out").exists()


def test_workers_sets_how_many_and_they_share_the_gpus_round_robin(checkout):
    log = checkout / "log.jsonl"
    (checkout / "suites/gates/test_logging.py").write_text(LOGGING_SUITE.format(log=str(log)))
    r = gpuhil("run", "--workers", "4", "--results-dir", "out", env={"CUDA_VISIBLE_DEVICES": "5,7"}, cwd=checkout)
    assert r.returncode == 0, r.stdout + r.stderr
    report = (checkout / "out/report.md").read_text()
    assert "- workers for tests: 4 workers (--workers 4)\n" in report
    assert " -n 4 " in next(line for line in report.splitlines() if line.startswith("- pytest: "))
    ran = read_log(log)
    assert sorted(t["test"] for t in ran) == [f"numerics{i}" for i in range(8)]  # without --perf: no perf case
    pins = {t["worker"]: t["gpu"] for t in ran}
    assert len(pins) > 1 and all(gpu == ["5", "7"][int(w.removeprefix("gw")) % 2] for w, gpu in pins.items()), pins


def test_without_a_gpu_the_count_comes_from_the_cores_and_memory(checkout):
    (checkout / "suites/gates/test_one.py").write_text("def test_one():\n    pass\n")
    r = gpuhil("run", "--results-dir", "out", env={"CUDA_VISIBLE_DEVICES": ""}, cwd=checkout)
    assert r.returncode == 0, r.stdout + r.stderr
    line = next(x for x in (checkout / "out/report.md").read_text().splitlines() if x.startswith("- workers for tests: "))
    assert "cores / 2 per worker = " in line and "GiB host memory available / 3 GiB per worker" in line
    assert "GPU" not in line


def test_perf_cases_run_after_every_other_test_one_worker_per_gpu(checkout):
    log = checkout / "log.jsonl"
    (checkout / "suites/gates/test_logging.py").write_text(LOGGING_SUITE.format(log=str(log)))
    r = gpuhil("run", "--perf", "--workers", "4", "--results-dir", "out", env={"CUDA_VISIBLE_DEVICES": "5,7"},
               cwd=checkout)
    assert r.returncode == 0, r.stdout + r.stderr
    ran = read_log(log)
    numerics = [t for t in ran if t["test"].startswith("numerics")]
    timed = [t for t in ran if t["test"].startswith("timed")]
    assert len(numerics) == 8 and len(timed) == 4
    assert {t["gpu"] for t in numerics} == {"5", "7"}  # the parallel workers used both GPUs
    assert max(t["end"] for t in numerics) <= min(t["start"] for t in timed)  # timed after all the others
    perf_pins = {t["worker"]: t["gpu"] for t in timed}
    assert len(perf_pins) == len(set(perf_pins.values())) and set(perf_pins.values()) <= {"5", "7"}  # a GPU each
    for a in timed:  # no two timed cases on one GPU at once
        for b in timed:
            if a is not b and a["gpu"] == b["gpu"]:
                assert a["end"] <= b["start"] or b["end"] <= a["start"], (a, b)

    out = checkout / "out"
    root = ET.parse(out / "junit.xml").getroot()
    assert len(root.findall("testsuite")) == 2 and len(list(root.iter("testcase"))) == 12
    assert not (out / "junit-tests.xml").exists() and not (out / "junit-perf.xml").exists()
    report = (out / "report.md").read_text()
    assert "| gates | 12 | 0 | 0 | 0 | 0 | 0 |" in report
    assert "- workers for perf: 2 workers, one per GPU (2 visible), after the other tests" in report
    assert "--perf-only -n 2 " in next(x for x in report.splitlines() if x.startswith("- pytest (then its perf cases): "))
    sessions = [x for x in report.splitlines() if x.startswith(("- tests: ", "- perf: "))]
    assert [x.split(":")[0] for x in sessions] == ["- tests", "- perf"]
    assert sessions[0].endswith(" s in 4 workers") and sessions[1].endswith(" s in 2 workers")
    assert json.loads((out / "run.json").read_text())["verdict"] == "PASS"


CRASHING_SUITE = textwrap.dedent("""
    import ctypes
    import pytest

    def test_fine():
        pass

    def test_segfaults():
        ctypes.string_at(0)

    @pytest.mark.perf
    def test_timed_fine():
        pass

    @pytest.mark.perf
    def test_timed_segfaults():
        ctypes.string_at(0)
""")


def test_a_crash_in_either_session_fails_alone_and_both_are_reported(checkout):
    (checkout / "suites/gates/test_crashing.py").write_text(CRASHING_SUITE)
    r = gpuhil("run", "--perf", "--workers", "1", "--results-dir", "out", cwd=checkout)
    assert r.returncode == 1, r.stdout + r.stderr
    out = checkout / "out"
    crashes = {c["nodeid"].rsplit("::", 1)[1]: c for c in json.loads((out / "crashes.json").read_text())}
    assert set(crashes) == {"test_segfaults", "test_timed_segfaults"}
    # Each session's notes stay, in a folder of its own, where the report says they are.
    assert "every thread's stack: notes/gw0.fault.log" in crashes["test_segfaults"]["detail"]
    assert "every thread's stack: notes-perf/gw0.fault.log" in crashes["test_timed_segfaults"]["detail"]
    assert "Segmentation fault" in (out / "notes/gw0.fault.log").read_text()
    assert "Segmentation fault" in (out / "notes-perf/gw0.fault.log").read_text()
    report = (out / "report.md").read_text()
    assert "**FAIL: 2 test(s) crashed or timed out" in report
    assert "| gates | 2 | 2 | 0 | 0 | 0 | 0 |" in report  # the fine tests of both sessions ran


def test_a_perf_run_stops_before_its_perf_session_when_the_first_cannot_run(checkout):
    (checkout / "suites/gates/test_one.py").write_text("import pytest\n\n@pytest.mark.perf\ndef test_timed():\n    pass\n")
    r = gpuhil("run", "--perf", "--results-dir", "out", "--", "--no-such-option", cwd=checkout)
    assert r.returncode == 4, r.stdout + r.stderr  # pytest's usage error, once: the perf session never started
    assert "HARNESS ERROR: pytest exit 4: " in (checkout / "out/report.md").read_text()
    assert not (checkout / "out/notes-perf").exists()


def test_torch_threads_are_split_between_the_workers_unless_the_environment_says():
    [eight] = run_phases.plan(Path("r"), WorkerCount(8, "x"), gpus=1, perf=False)
    assert runner.worker_env({}, 16, eight) == {"OMP_NUM_THREADS": "2"}
    assert runner.worker_env({"OMP_NUM_THREADS": "4"}, 16, eight) == {}
