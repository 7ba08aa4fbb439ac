"""The pytest sessions of one `gpuhil run`, and the one junit.xml they leave.

Without --perf a run is one session: every selected test, in the parallel workers gpuhil.workers
counts. With --perf it is two, one after the other (the runner's docstring argues why): the tests
that are not perf cases in those workers, then the perf cases (`--perf-only`) in one worker per GPU,
so that while a case is timed nothing else of the run is on its GPU. Each session writes its own
junit file; `merge_junit` puts their <testsuite> elements into junit.xml, which the report, the
history and CI read, and removes the parts.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from . import atomic
from .supervise import Ended
from .workers import WorkerCount

JUNIT = "junit.xml"
MAX_WORKER_RESTARTS = 1000  # every crash costs one test; never give up the rest of the run
PYTEST_USAGE_OK = (0, 1, 5)  # passed, some failed, none collected: the session itself worked


@dataclass(frozen=True)
class Phase:
    name: str  # "tests" or "perf"
    workers: int
    why: str  # how many workers and why, for the report
    junit: Path
    options: tuple[str, ...] = ()  # pytest options of this phase
    notes: str = "notes"  # its workers' notes in the results folder (the plugin names them the same way)

    def pytest_options(self) -> list[str]:
        # Always xdist, one worker even without a GPU: the controller must outlive a test that kills its process.
        return [f"--junitxml={self.junit}", *self.options, "-n", str(self.workers),
                f"--max-worker-restart={MAX_WORKER_RESTARTS}"]


def plan(results: Path, tests: WorkerCount, gpus: int, perf: bool) -> list[Phase]:
    """The sessions of a run: `tests` workers for its tests; with `perf`, then one worker per GPU
    (of `gpus` visible; one without) for its perf cases."""
    if not perf:
        return [Phase("tests", tests.n, str(tests), results / JUNIT)]
    alone = max(1, gpus)
    why = (f"{alone} worker{'s' if alone != 1 else ''}, one per GPU ({gpus} visible), after the other tests: "
           "each perf case has its GPU to itself")
    return [Phase("tests", tests.n, str(tests), results / "junit-tests.xml"),
            Phase("perf", alone, why, results / "junit-perf.xml", ("--perf-only",), "notes-perf")]


def combine(ended: list[Ended]) -> Ended:
    """One outcome for the run's sessions: the first stop signal; the first harness failure (an exit
    status other than 0, 1, 5, with its stderr); else 1 when a session had failures, 0 when one ran
    tests, 5 when none collected any."""
    signum = next((e.signum for e in ended if e.signum is not None), None)
    broken = next((e for e in ended if e.returncode not in PYTEST_USAGE_OK), None)
    if broken is not None:
        return Ended(broken.returncode, signum, broken.stderr_tail)
    codes = {e.returncode for e in ended}
    rc = 1 if 1 in codes else 0 if 0 in codes else 5
    return Ended(rc, signum, ended[-1].stderr_tail if ended else ())


def merge_junit(phases: list[Phase], into: Path) -> None:
    """The phases' junit files as one junit.xml (a <testsuite> per session, as pytest wrote it); the
    parts are removed once it is written. A part a session never wrote (it was stopped first) is left
    out; an unreadable one raises ET.ParseError and stays, for the harness error that names it."""
    parts = [p.junit for p in phases if p.junit != into]
    if not parts:
        return  # one session: it wrote junit.xml itself
    written = [part for part in parts if part.exists()]
    if not written:
        return
    root = ET.Element("testsuites", name="pytest tests")
    for part in written:
        doc = ET.parse(part).getroot()
        root.extend([doc] if doc.tag == "testsuite" else doc.findall("testsuite"))
    atomic.write_text(into, '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n")
    for part in written:
        part.unlink()
