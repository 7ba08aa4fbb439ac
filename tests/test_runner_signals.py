"""SIGINT (Ctrl-C) and SIGTERM (a CI job cancelled) on `gpuhil run`: forwarded to pytest and its
workers, a bounded wait, an INTERRUPTED report and junit.xml, exit 130/143, and no process left."""

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fakes import make_checkout

SLEEPING_SUITE = textwrap.dedent("""
    import subprocess
    import time
    from pathlib import Path

    import pytest

    def test_finishes():
        pass

    @pytest.mark.perf
    def test_timed():  # with --perf: only after every other test, so never in a run stopped before
        Path("{started}").with_name("perf_started").write_text("ran")

    def test_sleeps_with_a_child():
        child = subprocess.Popen(["sleep", "300"])  # what a test may leave running: it must not survive
        Path("{started}").write_text(str(child.pid))
        time.sleep(300)
""")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has ended; only its parent has not reaped it yet


def processes_naming(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes() and alive(int(cmdline.parent.name)):
                found.append(int(cmdline.parent.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return found


@pytest.mark.parametrize("signum, perf", [(signal.SIGINT, []), (signal.SIGTERM, []), (signal.SIGTERM, ["--perf"])],
                         ids=["SIGINT", "SIGTERM", "SIGTERM-perf"])
def test_a_stopped_run_is_recorded_and_leaves_no_process(tmp_path, signum, perf):
    make_checkout(tmp_path)
    started = tmp_path / "sleeper-started"
    (tmp_path / "suites/gates/test_sleeper.py").write_text(SLEEPING_SUITE.format(started=started))
    results = tmp_path / "out"
    run = subprocess.Popen([sys.executable, "-m", "gpuhil", "run", *perf, "--results-dir", str(results)], cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while not started.exists() or not started.read_text():
        assert run.poll() is None and time.monotonic() < deadline, "the sleeping test never started"
        time.sleep(0.2)
    grandchild = int(started.read_text())
    run.send_signal(signum)
    out, _ = run.communicate(timeout=120)

    assert run.returncode == 128 + signum, out
    name = signal.Signals(signum).name
    assert "Traceback" not in out
    report = (results / "report.md").read_text()
    assert report.splitlines()[2].startswith(f"**INTERRUPTED: {name} stopped the run; what finished: 1 passed")
    record = json.loads((results / "run.json").read_text())
    assert (record["verdict"], record["exit_code"], record["junit"]) == ("INTERRUPTED", 128 + signum, True)
    assert "<testsuite" in (results / "junit.xml").read_text()
    assert not alive(grandchild), "a process the test started outlived the run"
    if perf:  # stopped in the first session: the perf cases' session never started, its junit part was merged
        assert not (results / "notes-perf").exists() and not (tmp_path / "perf_started").exists()
        assert sorted(p.name for p in results.glob("junit*.xml")) == ["junit.xml"]
    assert processes_naming(str(results)) == [], "pytest or a worker outlived the run"
