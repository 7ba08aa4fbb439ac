"""Surviving a crashing or hanging test on an unattended runner.

Tests run in pytest-xdist workers (`gpuhil run` always starts at least one), so the controller
outlives a worker that dies, xdist starts a replacement, and the dead worker's test is reported as
failed with its cause:

- a fatal signal (segfault...): faulthandler writes the signal and the stack to the worker's note;
- a hang: pytest-timeout decides the limit (ini, `--timeout`, `@pytest.mark.timeout`, or the tier
  default set by the gpuhil plugin) and, in a worker, the timer is faulthandler's C-level watchdog,
  which needs no GIL, so it fires even while the main thread waits on a spinning CUDA kernel: it
  dumps every thread's stack to the worker's note and ends the worker;
- a sticky CUDA error (illegal address, launch failure, device-side assert: the context is dead):
  after each test body the worker checks the context; if it is dead, the worker notes the error and
  exits before reporting, so the test fails with the CUDA error and no later test runs in that
  context.

The controller turns each crash into that test's one failure report, whose first line says what
happened ("gpuhil: TIMEOUT ...", "gpuhil: CRASHED ...", "gpuhil: CUDA CONTEXT LOST ..."), and writes
crashes.json into the results folder for the run report. `gpuhil run --perf` runs two pytest
sessions into one results folder (its tests, then its perf cases): each keeps its workers' notes in a
folder of its own (xdist numbers workers from gw0 again, and a note must outlive its session for
the report to point at it), and crashes.json collects the crashes of both.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import pytest

from . import atomic, run_order
from .device.gpu_pinning import WORKERINPUT_KEY as GPU_KEY, GpuAllocator, pin_worker, visible_gpus

NOTES_KEY = "gpuhil_notes"
EXIT_CONTEXT_LOST = 70
CRASHES_FILE = "crashes.json"
PREFIX = {"timeout": "TIMEOUT", "signal": "CRASHED", "cuda-context-lost": "CUDA CONTEXT LOST", "exit": "CRASHED"}


@dataclasses.dataclass(frozen=True)
class Crash:
    nodeid: str
    kind: str  # "timeout", "signal", "cuda-context-lost", "exit"
    detail: str
    worker: str
    seconds: float | None  # from the test's start to the worker's end: the time to cut a hang

    def message(self) -> str:
        took = f" after {self.seconds:.1f} s" if self.seconds is not None else ""
        return (f"gpuhil: {PREFIX[self.kind]}{took}: {self.detail} "
                f"(worker {self.worker} ended and was replaced; the rest of the run went on)")


def cuda_context_lost() -> str | None:
    """The CUDA error that makes this process's context unusable, or None. An error that a second
    attempt no longer raises was not sticky (the context survived it)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    first = None
    for _ in range(2):
        try:
            torch.cuda.synchronize()
            torch.ones(1, device="cuda").add_(1).cpu()
            return None
        except RuntimeError as exc:
            first = first or _first_line(exc)
    return first


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


class _Notes:
    """The files one worker leaves for the controller: what runs now, fatal signals, timeouts,
    a lost CUDA context."""

    def __init__(self, root: Path, worker: str) -> None:
        self.root, self.worker = Path(root), worker

    def path(self, what: str) -> Path:
        return self.root / f"{self.worker}.{what}"

    def name(self, what: str) -> str:
        """The note as the report names it: within the results folder."""
        return f"{self.root.name}/{self.worker}.{what}"

    def write_json(self, what: str, data: dict) -> None:
        tmp = self.path(what + ".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path(what))

    def read_json(self, what: str) -> dict | None:
        try:
            return json.loads(self.path(what).read_text())
        except (OSError, ValueError):
            return None

    def read_text(self, what: str) -> str:
        try:
            return self.path(what).read_text(errors="replace")
        except OSError:
            return ""


class WorkerGuard:
    """Registered in each xdist worker."""

    def __init__(self, notes: _Notes) -> None:
        self.notes = notes
        self._files: list = []

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session) -> None:
        # After pytest's own faulthandler setup, so fatal signals land in the note.
        fault = open(self.notes.path("fault.log"), "w")  # noqa: SIM115 - open for the process' life
        self.timeout_log = open(self.notes.path("timeout.log"), "w")  # noqa: SIM115
        self._files += [fault, self.timeout_log]
        faulthandler.enable(file=fault, all_threads=True)

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item):
        self.notes.write_json("running", {"nodeid": item.nodeid, "start": time.time()})
        yield
        self.notes.path("running").unlink(missing_ok=True)

    @pytest.hookimpl(tryfirst=True)
    def pytest_timeout_set_timer(self, item, settings):
        """pytest-timeout's limit, enforced by a watchdog that needs no GIL (see module doc)."""
        running = self.notes.read_json("running") or {"nodeid": item.nodeid, "start": time.time()}
        self.notes.write_json("running", {**running, "timeout": settings.timeout})
        faulthandler.dump_traceback_later(settings.timeout, exit=True, file=self.timeout_log)
        return True

    @pytest.hookimpl(tryfirst=True)
    def pytest_timeout_cancel_timer(self, item):
        faulthandler.cancel_dump_traceback_later()
        return True

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        outcome = yield
        lost = cuda_context_lost()
        if lost:
            raised = outcome.excinfo[1] if outcome.excinfo else None
            error = _first_line(raised) if raised is not None and "CUDA" in str(raised) else lost
            self.notes.write_json("context", {"nodeid": item.nodeid, "error": error})
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_CONTEXT_LOST)  # before reporting: the controller reports this test once


class InProcessGuard:
    """Without xdist a dead CUDA context cannot be left behind: fail the test that killed it and stop
    the session, naming it, rather than fail every later GPU test."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        outcome = yield
        lost = cuda_context_lost()
        if lost:
            item.session.shouldstop = (f"gpuhil: CUDA CONTEXT LOST in {item.nodeid}: {lost}; no later GPU test can "
                                       "run in this process (gpuhil run isolates tests in xdist workers)")
            if outcome.excinfo is None:
                outcome.force_exception(RuntimeError(f"CUDA context lost after this test: {lost}"))


class ControllerGuard:
    """Registered in the xdist controller: hands out notes folders and GPUs, explains crashes."""

    def __init__(self, notes_root: Path, results_dir: Path | None) -> None:
        self.notes_root, self.results_dir = notes_root, results_dir
        self.gpus = GpuAllocator(visible_gpus(os.environ))
        self.crashes: list[Crash] = []

    def pytest_configure_node(self, node) -> None:
        node.workerinput[NOTES_KEY] = str(self.notes_root)
        node.workerinput[GPU_KEY] = self.gpus.take(node.gateway.id)

    def pytest_testnodedown(self, node, error) -> None:
        self.gpus.release(node.gateway.id)

    def pytest_handlecrashitem(self, crashitem, report, sched) -> None:
        worker = report.node.gateway.id
        crash = diagnose(_Notes(self.notes_root, worker), crashitem)
        self.crashes.append(crash)
        report.when = "call"  # one failure for the test, in the phase that was running
        report.longrepr = crash.message()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session) -> None:
        if self.results_dir is not None:
            self.results_dir.mkdir(parents=True, exist_ok=True)
            path = self.results_dir / CRASHES_FILE
            earlier = _read_crashes(path)  # an earlier session of this run (its tests, before its perf cases)
            atomic.write_text(path, json.dumps(earlier + [dataclasses.asdict(c) for c in self.crashes], indent=1))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.crashes:
            terminalreporter.section("gpuhil: crashed or timed-out tests")
            for c in self.crashes:
                terminalreporter.write_line(f"{c.nodeid}: {c.message()}")


def _read_crashes(path: Path) -> list[dict]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return found if isinstance(found, list) else []


def diagnose(notes: _Notes, nodeid: str) -> Crash:
    running = notes.read_json("running") or {}
    seconds = time.time() - running["start"] if running.get("nodeid") == nodeid and "start" in running else None
    context = notes.read_json("context")
    if context and context.get("nodeid") == nodeid:
        return Crash(nodeid, "cuda-context-lost", context["error"], notes.worker, seconds)
    dump = notes.read_text("timeout.log")
    if dump.strip():
        limit = running.get("timeout")
        where = _stuck_at(dump, nodeid)
        return Crash(nodeid, "timeout", f"exceeded the {limit:g} s limit (pytest-timeout), stuck at {where}; "
                     f"every thread's stack: {notes.name('timeout.log')}", notes.worker, seconds)
    fault = notes.read_text("fault.log")
    signal = re.search(r"Fatal Python error: (.+)", fault)
    if signal:
        return Crash(nodeid, "signal", f"{signal.group(1).strip()} at {_stuck_at(fault, nodeid)}; "
                     f"every thread's stack: {notes.name('fault.log')}", notes.worker, seconds)
    return Crash(nodeid, "exit", "the worker process exited during the test without a signal or a note",
                 notes.worker, seconds)


def _stuck_at(dump: str, nodeid: str) -> str:
    """The innermost frame of the thread running the test (faulthandler lists each thread's stack,
    most recent call first): the one whose stack holds the test function, else the current thread."""
    blocks = re.split(r"\n(?=(?:Current thread|Thread) 0x)", dump)
    test = nodeid.rsplit("::", 1)[-1].split("[", 1)[0]
    block = (next((b for b in blocks if f" in {test}\n" in b + "\n"), None)
             or next((b for b in blocks if b.startswith("Current thread")), dump))
    frame = re.search(r'File "([^"]+)", line (\d+) in (\S+)', block)
    return f"{Path(frame.group(1)).name}:{frame.group(2)} in {frame.group(3)}" if frame else "no Python frame"


def register(config: pytest.Config, results_dir: Path | None, notes_name: str = "notes") -> None:
    """Install the guard that fits this process: xdist controller, xdist worker, or a plain run.
    `notes_name`: the folder in `results_dir` for this session's worker notes."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        pin_worker(os.environ, workerinput.get(GPU_KEY))  # before anything initialises CUDA here
        if workerinput.get(NOTES_KEY):
            notes = _Notes(Path(workerinput[NOTES_KEY]), workerinput["workerid"])
            config.pluginmanager.register(WorkerGuard(notes), "gpuhil-worker-guard")
            # What ran before what in this process: a test that fails only after another (gpuhil.reruns).
            config.pluginmanager.register(run_order.OrderLog(notes.path(run_order.ORDER)), "gpuhil-order-log")
        return
    if getattr(config.option, "numprocesses", None) or getattr(config.option, "dist", "no") != "no":
        root = results_dir / notes_name if results_dir else Path(tempfile.mkdtemp(prefix="gpuhil-notes-"))
        root.mkdir(parents=True, exist_ok=True)
        config.pluginmanager.register(ControllerGuard(root, results_dir), "gpuhil-controller-guard")
    else:
        config.pluginmanager.register(InProcessGuard(), "gpuhil-in-process-guard")
