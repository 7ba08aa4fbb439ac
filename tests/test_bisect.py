"""`gpuhil bisect` on toy git repositories made here: a planted regression in a tiny test is found at
the commit that planted it, commits where the test does not exist are skipped, an interrupted bisect
resumes from its state file, bad input is refused in one line, and a planted slowdown in a perf case
(timed on the CPU clock) is found at the commit that slowed it."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fakes import NAMED_PROVIDER, make_checkout
from gpuhil.bisect import step as step_mod
from gpuhil.bisect.target import BadCase, PerfSeries, PytestCase, parse
from gpuhil.cli import main

REPO = Path(__file__).resolve().parents[1]
CASE = "tests/test_toy.py::test_answer"
TOY_TEST = "from toy import answer\n\n\ndef test_answer():\n    assert answer() == 42\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def toy_repo(path: Path, commits: list[tuple[str, dict[str, str | None]]]) -> dict[str, str]:
    """A git repository at `path` with one commit per (subject, {file: content, or None to delete});
    returns subject -> sha."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    git(path, "config", "user.email", "toy@example.com")
    git(path, "config", "user.name", "toy")
    shas = {}
    for subject, files in commits:
        for name, text in files.items():
            f = path / name
            if text is None:
                f.unlink()
            else:
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_text(text)
        git(path, "add", "-A")
        git(path, "commit", "-q", "--allow-empty", "-m", subject)
        shas[subject] = git(path, "rev-parse", "HEAD")
    return shas


def answer(value: int) -> dict[str, str]:
    return {"src/toy.py": f"def answer():\n    return {value}\n"}


def noise(i: int) -> dict[str, str]:
    return {"src/other.py": f"N = {i}\n"}


# c0 has the test and passes; the test is gone at c4 and c5 (renamed away and back); c7 plants the
# regression (answer() returns 41); c10 is where the nightly saw it fail.
def story(test: str = TOY_TEST) -> list[tuple[str, dict[str, str | None]]]:
    return [("c0 toy", {**answer(42), "tests/test_toy.py": test}), ("c1", noise(1)), ("c2", noise(2)),
            ("c3", noise(3)), ("c4 test moved away", {"tests/test_toy.py": None}), ("c5", noise(5)),
            ("c6 test back", {"tests/test_toy.py": test}), ("c7 regression", answer(41)), ("c8", noise(8)),
            ("c9", noise(9)), ("c10", noise(10))]


STORY = story()


@pytest.fixture
def toy(tmp_path, monkeypatch):
    shas = toy_repo(tmp_path / "toy", STORY)
    monkeypatch.chdir(tmp_path / "toy")
    monkeypatch.setenv("GPUHIL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "toy", shas


def bisect(*args: str) -> int:
    return main(["bisect", *args])


def load_state(folder: Path) -> dict:
    return json.loads((folder / "state.json").read_text())


def test_the_commit_that_planted_the_regression_is_named_and_missing_tests_are_skipped(toy, tmp_path, capsys):
    repo, shas = toy
    folder = tmp_path / "bisect"
    code = bisect("--good", shas["c0 toy"], "--bad", shas["c10"], "--results-dir", str(folder), "--", CASE)
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[-1] == f"gpuhil bisect: first bad commit: {shas['c7 regression']} c7 regression"
    state = load_state(folder)
    steps = {s["subject"]: s for s in state["steps"]}
    assert [s["role"] for s in state["steps"][:2]] == ["good", "bad"]
    assert steps["c0 toy"]["verdict"] == "good" and steps["c10"]["verdict"] == "bad"
    # Each commit's own code ran: c10's answer() is 41 in the user's tree, yet c0 to c6 pass.
    for s in state["steps"]:
        index = next(i for i, (subject, _) in enumerate(STORY) if subject == s["subject"])
        missing = s["subject"] in ("c4 test moved away", "c5")
        assert s["verdict"] == ("skip" if missing else "bad" if index >= 7 else "good"), s
        if missing:
            assert "not found" in s["reason"]
    assert any(s["verdict"] == "skip" for s in state["steps"]), "git never proposed a commit without the test"
    assert {"c6 test back", "c7 regression"} <= set(steps)  # the answer rests on both sides of it
    log = (folder / steps["c7 regression"]["log"]).read_text()
    assert f"commit   {shas['c7 regression']} c7 regression" in log and "verdict  bad: 1 failed or errored: " \
        "test_answer: assert 41 == 42" in log
    assert f"pytest {CASE} --rootdir={folder / 'worktree'}" in log and "E       assert 41 == 42" in log
    assert f"GPUHIL_CACHE_DIR={tmp_path / 'cache'}" in log and f"PYTHONPATH={folder / 'worktree' / 'src'}" in log
    # The user's tree and branch are as they were; the bisect's worktree and git state are gone.
    assert git(repo, "rev-parse", "HEAD") == shas["c10"] and git(repo, "status", "--porcelain") == ""
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1 and not (folder / "worktree").exists()
    assert git(repo, "for-each-ref", "refs/bisect") == ""


def test_only_skipped_commits_left_lists_them_and_fails(tmp_path, monkeypatch, capsys):
    story = [("c0 toy", {**answer(42), "tests/test_toy.py": TOY_TEST}), ("c1 test moved away", {"tests/test_toy.py": None}),
             ("c2 regression", answer(41)), ("c3 test back", {"tests/test_toy.py": TOY_TEST})]
    shas = toy_repo(tmp_path / "toy", story)
    monkeypatch.chdir(tmp_path / "toy")
    code = bisect("--good", shas["c0 toy"], "--bad", shas["c3 test back"], "--results-dir", str(tmp_path / "b"), CASE)
    out = capsys.readouterr().out
    assert code == 1
    assert "only skipped commits are left: the first bad commit is one of" in out
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("  ")}
    assert listed == {shas["c1 test moved away"], shas["c2 regression"], shas["c3 test back"]}


def test_an_endpoint_that_is_not_what_it_was_said_to_be_stops_the_bisect(toy, tmp_path, capsys):
    _, shas = toy
    folder = tmp_path / "b"
    code = bisect("--good", shas["c7 regression"], "--bad", shas["c10"], "--results-dir", str(folder), CASE)
    assert code == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith(
        f"gpuhil bisect: no answer: the case is bad at --good {shas['c7 regression'][:12]} (1 failed or errored")
    assert [s["role"] for s in load_state(folder)["steps"]] == ["good"]  # nothing more was run


def _orphans_of(folder: Path) -> list[int]:
    """Processes still running a step in `folder` (a SIGKILLed bisect leaves its pytest to finish)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(folder).encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            pass
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the killed bisect's pytest through /proc")
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_an_interrupted_bisect_resumes_from_its_recorded_steps(tmp_path, monkeypatch, capsys, how):
    """SIGKILL (the machine went away) or SIGTERM (a cancelled job: the step's pytest is stopped and
    the bisect exits 143) after two steps; the same command then runs only what was not recorded."""
    # The toy story with a test that takes a while, so the signal lands while steps are still to come.
    slow_test = TOY_TEST.replace("def test_answer():\n", "def test_answer():\n    import time\n    time.sleep(0.4)\n")
    repo = tmp_path / "toy"
    shas = toy_repo(repo, story(slow_test))
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GPUHIL_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "bisect"
    args = ["--good", shas["c0 toy"], "--bad", shas["c10"], "--results-dir", str(folder), "--", CASE]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    first = subprocess.Popen([sys.executable, "-m", "gpuhil", "bisect", *args], env=env, process_group=0,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        if (folder / "state.json").exists() and len(load_state(folder)["steps"]) >= 2:
            break
        time.sleep(0.02)
    if how == "SIGKILL":
        os.killpg(first.pid, signal.SIGKILL)
        assert first.wait() == -signal.SIGKILL
        while _orphans_of(folder):  # the step it was running finishes on its own; let it
            time.sleep(0.05)
    else:
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
        assert first.returncode == 128 + signal.SIGTERM, err
        assert out.splitlines()[-1] == ("gpuhil bisect: stopped by a signal; 2 step(s) recorded, the one in progress "
                                        f"was not. Resume with the same command and --results-dir {folder}")
        assert not _orphans_of(folder)
    before = load_state(folder)["steps"]
    assert len(before) == 2 and load_state(folder)["result"] is None
    assert (folder / "worktree").is_dir()  # left behind: the rerun takes it over

    code = bisect(*args)
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[-1] == f"gpuhil bisect: first bad commit: {shas['c7 regression']} c7 regression"
    after = load_state(folder)["steps"]
    assert after[:2] == before and len(after) > 2
    assert f"{len(after)} step(s), {len(after) - 2} run by this command" in out
    assert "(resuming: 2 step(s) recorded)" in out
    # Once more: nothing left to run, the same answer.
    assert bisect(*args) == 0
    out = capsys.readouterr().out
    assert "0 run by this command" in out and out.splitlines()[-1].endswith("c7 regression")
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_a_folder_holding_another_bisect_is_refused(toy, tmp_path, capsys):
    _, shas = toy
    folder = tmp_path / "bisect"
    assert bisect("--good", shas["c0 toy"], "--bad", shas["c10"], "--results-dir", str(folder), CASE) == 0
    capsys.readouterr()
    assert bisect("--good", shas["c1"], "--bad", shas["c10"], "--results-dir", str(folder), CASE) == 2
    err = capsys.readouterr().err
    assert err == (f"gpuhil bisect: {folder / 'state.json'} holds a bisect with good {shas['c0 toy']!r}, this command "
                   f"asks {shas['c1']!r}: rerun the same command to resume it, or give another --results-dir\n")


def test_a_dirty_tree_is_refused_and_nothing_is_written(toy, tmp_path, capsys):
    repo, shas = toy
    (repo / "src" / "toy.py").write_text("def answer():\n    return 7\n")
    folder = tmp_path / "bisect"
    assert bisect("--good", shas["c0 toy"], "--bad", shas["c10"], "--results-dir", str(folder), CASE) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "uncommitted changes (1 file(s), e.g. src/toy.py)" in err
    assert not folder.exists() and git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


@pytest.mark.parametrize("given, names", [
    (["--good", "0123abcd", "--bad", "c10", CASE], "--good '0123abcd': not a commit of this repository"),
    (["--good", "c0", "--bad", "no-such-branch", CASE], "--bad 'no-such-branch': not a commit of this repository"),
    (["--good", "c10", "--bad", "c0", CASE], "--good c10 ("),
    (["--good", "c0", "--bad", "c0", CASE], "--good and --bad are the same commit"),
    (["--bad", "c10", CASE], "--good: missing"),
    (["--good", "c0", "--bad", "c10"], "CASE: give one pytest node id or perf series after -- (got 0)"),
    (["--good", "c0", "--bad", "c10", "tests/test_toy.py"], "CASE 'tests/test_toy.py': not a pytest node id"),
    (["--good", "c0", "--bad", "c10", "../toy/tests/test_toy.py::test_answer"], "must be a .py file inside"),
    (["--good", "c0", "--bad", "c10", "tests/test_gone.py::test_x"], "tests/test_gone.py does not exist at --bad"),
    (["--good", "c0", "--bad", "c10", "argmax|tests/test_toy.py::test_answer"], "(3 parts), this has 2"),
    (["--good", "c0", "--bad", "c10", "../x|tests/test_toy.py::test_answer|toy"], "suite '../x': not a safe identifier"),
    (["--good", "c0", "--bad", "c10", "--repeats", "3", CASE], "--repeats: only a perf series is repeated"),
    (["--good", "c0", "--bad", "c10", "--repeats", "2", f"argmax|{CASE}|toy"], "--repeats 2: at least 3"),
    (["--good", "c0", "--bad", "c10", "--repeats", "x", f"argmax|{CASE}|toy"], "--repeats 'x': not an integer"),
])
def test_bad_input_is_one_line_naming_the_parameter_and_writes_nothing(toy, tmp_path, capsys, given, names):
    repo, shas = toy
    for subject in ("c0", "c10"):
        git(repo, "tag", subject, shas["c0 toy" if subject == "c0" else subject])
    folder = tmp_path / "bisect"
    assert bisect("--results-dir", str(folder), *given) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpuhil bisect: ") and err.count("\n") == 1 and names in err, err
    assert not folder.exists()


def test_case_parsing():
    assert parse(CASE) == PytestCase(CASE)
    series = parse("argmax|suites/argmax/test_argmax_perf.py::test_argmax_perf[gpuhil-cute-canary-M1-N151936-bf16]"
                   "|gpuhil-cute-canary")
    assert isinstance(series, PerfSeries) and series.path == "suites/argmax/test_argmax_perf.py"
    assert series.key == str(series) and series.provider == "gpuhil-cute-canary"
    for bad in ("", "-k x", "/abs/test_x.py::t", "tests/test_x.py::", "tests/x.txt::t", "a|b|c|d", "argmax||torch"):
        with pytest.raises(BadCase):
            parse(bad)


def test_each_step_gets_the_worktree_code_and_the_shared_compile_cache(tmp_path):
    home = {"XDG_CACHE_HOME": str(tmp_path / "xdg"), "PYTHONPATH": "/elsewhere", "GPUHIL_MATRIX": "/fleet.yaml",
            "GPUHIL_PLANT_SLOWDOWN": "1"}
    wt = tmp_path / "wt"
    env = step_mod.StepEnv("python", home, (tmp_path / "xdg" / "gpuhil")).env(wt, "abc123", run_id="r1")
    assert env["PYTHONPATH"].split(os.pathsep) == [str(wt / "src"), str(wt), "/elsewhere"]
    assert env["GPUHIL_CACHE_DIR"] == str(tmp_path / "xdg" / "gpuhil") and env["GPUHIL_GIT_SHA"] == "abc123"
    assert env["GPUHIL_RUN_ID"] == "r1" and "GPUHIL_MATRIX" not in env  # the commit's own catalog
    assert env["GPUHIL_PLANT_SLOWDOWN"] == "1"  # the rest of the caller's environment passes on


@pytest.mark.parametrize("verdicts, repeats, decided", [
    (["SLOW", "SLOW"], 3, "bad"), (["SLOW"], 3, None), (["SAME", "FAST"], 3, "good"), (["SLOW", "SAME"], 3, None),
    (["ERROR", "ERROR"], 3, "skip"), (["SLOW", "INVALID", "SAME"], 3, "skip"), (["SLOW", "SAME", "SLOW"], 5, None),
    (["SLOW", "SAME", "SLOW", "SLOW"], 5, "bad"),
])
def test_a_perf_step_is_decided_by_a_majority_of_its_repeats(verdicts, repeats, decided):
    assert step_mod.majority(verdicts, repeats) == decided


# The perf toy: a checkout with the gpuhil plugin and perf fixture whose timer is the host clock (the
# GPU timer needs a GPU; the fixture, the rows and the verdicts around it do not), timing a function
# that sleeps. The planted slowdown triples the sleep.
CPU_TIMER_CONFTEST = textwrap.dedent("""
    import statistics
    import time

    from gpuhil.perf.recorder import PerfRecorder
    from gpuhil.perf.timer import Timing

    pytest_plugins = ("gpuhil.pytest_plugin", "fixtures.perf")


    class HostClockTimer:
        def graph(self, fns, calls_per_replay=None):
            samples = []
            for _ in range(5):
                for fn in fns:
                    start = time.perf_counter()
                    fn()
                    samples.append((time.perf_counter() - start) * 1e6)
            p25, median, p75 = statistics.quantiles(samples, n=4, method="inclusive")
            return Timing(median_us=median, p25_us=p25, p75_us=p75, min_us=min(samples), n_samples=len(samples),
                          stdrel=statistics.pstdev(samples) / median, mode="host", sm_clock_mhz=None, throttled=False,
                          throttle_reasons=())


    PerfRecorder.timer = property(lambda self: HostClockTimer())
    PerfRecorder.measure_ceilings = lambda self: {}
""")
PERF_CASE = NAMED_PROVIDER + textwrap.dedent("""
    import pytest

    from toykernel import kernel


    @pytest.mark.perf
    @pytest.mark.parametrize("provider", [case(Named("toy"), None, "toy", id="toy")])
    def test_toy_perf(provider, perf):
        perf.record([kernel], provider="toy")
""")
SERIES = "argmax|suites/argmax/test_toy_perf.py::test_toy_perf[toy]|toy"


def kernel(seconds: float) -> dict[str, str]:
    return {"src/toykernel.py": f"import time\n\n\ndef kernel():\n    time.sleep({seconds})\n"}


def test_a_planted_slowdown_of_a_perf_series_is_found_at_the_commit_that_slowed_it(tmp_path, monkeypatch, capsys):
    base = tmp_path / "base"
    base.mkdir()
    make_checkout(base)
    files = {str(p.relative_to(base)): p.read_text() for p in base.rglob("*") if p.is_file()}
    files.update({"conftest.py": CPU_TIMER_CONFTEST, "suites/argmax/test_toy_perf.py": PERF_CASE,
                  **{f"suites/{d.name}/.keep": "" for d in (base / "suites").iterdir()}})
    shas = toy_repo(tmp_path / "toy", [("p0 toy kernel", {**files, **kernel(0.02)}), ("p1", noise(1)), ("p2", noise(2)),
                                       ("p3 slower kernel", kernel(0.06)), ("p4", noise(4)), ("p5", noise(5))])
    monkeypatch.chdir(tmp_path / "toy")
    monkeypatch.setenv("GPUHIL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "src"), str(REPO)]))  # gpuhil and its fixtures
    monkeypatch.delenv("GPUHIL_RUN_ID", raising=False)
    folder = tmp_path / "bisect"
    code = bisect("--good", shas["p0 toy kernel"], "--bad", shas["p5"], "--repeats", "3", "--results-dir", str(folder),
                  "--", SERIES)
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[-1] == f"gpuhil bisect: first bad commit: {shas['p3 slower kernel']} p3 slower kernel"
    steps = load_state(folder)["steps"]
    good = steps[0]
    assert good["role"] == "good" and [r["verdict"] for r in good["runs"]] == ["REFERENCE"] * 3
    rows = [r["row"] for r in good["runs"]]
    assert all(r["git_sha"] == shas["p0 toy kernel"] and r["status"] == "ok" and r["median_us"] > 15_000 for r in rows)
    assert len({r["run_id"] for r in rows}) == 3  # three runs, three processes
    for s in steps[1:]:
        slowed = s["subject"] in ("p3 slower kernel", "p4", "p5")
        assert s["verdict"] == ("bad" if slowed else "good"), s
        assert len(s["runs"]) == 2  # a clear verdict stops at the majority of 3
        assert {r["verdict"] for r in s["runs"]} == {"SLOW" if slowed else "SAME"}
        assert all(r["row"]["git_sha"] == s["sha"] for r in s["runs"])
    assert "p2" in {s["subject"] for s in steps}  # the answer rests on both sides of it
    log = (folder / next(s for s in steps if s["subject"] == "p3 slower kernel")["log"]).read_text()
    assert "verdict  bad: 2 SLOW of 2 run(s) against the good commit" in log and "--perf --results-dir=" in log


def test_the_documented_canary_bisect_plants_the_slowdown_and_names_a_real_series():
    """docs/BISECT.md's GPU recipe: its sed turns the canary planted by default (exactly one line of
    fixtures/canary.py), and its series is a perf case this checkout collects."""
    import re

    doc = (REPO / "docs" / "BISECT.md").read_text()
    old, new = re.search(r"sed -i 's/(.+?)/(.+?)/' fixtures/canary\.py", doc).groups()
    canary = (REPO / "fixtures" / "canary.py").read_text()
    assert canary.count(old) == 1 and new not in canary
    assert 'os.environ.get(PLANT_ENV) == "0"' in new  # planted unless someone unplants it
    series = parse(re.search(r"'(argmax\|[^']+\|gpuhil-cute-canary)'", doc).group(1))
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "--perf", "-p", "no:cacheprovider",
                                series.node_id], cwd=REPO, capture_output=True, text=True)
    assert collected.stdout.splitlines()[0] == series.node_id, collected.stdout + collected.stderr
