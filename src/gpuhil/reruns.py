"""Reruns of a run's failed tests: consistent failures, flaky tests and order-dependent ones told apart.

After a pytest session of `gpuhil run` (gpuhil.run_phases) each test that failed or errored in it is
run again ALONE, each time in a fresh pytest session with a fresh worker, up to `limit` more times
(`gpuhil run --reruns N`, default 2), until it passes:

- it fails every time: FAILED, a consistent failure; its junit case keeps its failure;
- it passes alone, and there is no test that ran before it in its worker process: FLAKY;
- it passes alone: it runs once more, in one fresh worker, right after the test that preceded it in
  its worker process (gpuhil.run_order). Fails again: ORDER-DEPENDENT, naming that test (something it
  left behind breaks this one: module state, a cache, memory a kernel reads uninitialised). Passes:
  FLAKY.

A FLAKY case's <failure>/<error> becomes <flakyFailure>/<flakyError> (the surefire convention: a
junit reader counts the case as passed and can still show what happened); a FLAKY test does not fail
the run unless `--flaky-fails`. An ORDER-DEPENDENT test keeps its failure and fails the run: it is
reproducible, and on a GPU what one test leaves behind is often a real bug. Every rerun case gets
junit properties (`gpuhil_nodeid`, `gpuhil_attempts`, and `gpuhil_flaky` or `gpuhil_order_dependent`),
which the report, the run record and the history read.

Not rerun: planted faults (`--plant-faults`: they fail on purpose), strict XPASSes (a known issue that
no longer reproduces is news, not noise), cases without a node id in the order log (a collection
error), and past MAX_TESTS failures in one session (that many failing is not noise, and each rerun
costs a pytest start).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import atomic, run_order
from .run_record import (ATTEMPTS_PROPERTY as ATTEMPTS, FLAKY_PROPERTY, NODEID_PROPERTY as NODEID,
                         ORDER_PROPERTY)

DEFAULT = 2
MAX_TESTS = 20
FAILED, FLAKY, ORDER_DEPENDENT = "FAILED", "FLAKY", "ORDER-DEPENDENT"
FLAKY_TAGS = {"failure": "flakyFailure", "error": "flakyError"}


@dataclass(frozen=True)
class Attempt:
    where: str  # "session", "alone", "after <node id>"
    outcome: str  # "passed", "failed", "error", "skipped", "xfailed", "missing"

    def __str__(self) -> str:
        return f"{self.outcome} ({self.where})"


@dataclass
class Rerun:
    nodeid: str
    attempts: list[Attempt]
    verdict: str  # FAILED, FLAKY, ORDER-DEPENDENT
    after: str | None = None  # ORDER-DEPENDENT: the test it fails after

    def to_dict(self) -> dict:
        return {"test": self.nodeid, "verdict": self.verdict, "after": self.after,
                "attempts": [str(a) for a in self.attempts]}


@dataclass
class Outcome:
    """What the reruns of one session found, and why some failures were not rerun."""

    reruns: list[Rerun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # for the report's header
    stopped: int | None = None  # the signal that stopped them


# Runs these node ids, in this order, in one fresh pytest session: (its junit.xml or None, the
# signal that stopped it or None, pytest's exit status).
Launch = Callable[[list[str]], tuple[Path | None, int | None, int]]


def junit_key(nodeid: str) -> tuple[str, str]:
    """(classname, name) of a node id as pytest's junitxml writes them: the file path dotted without
    .py, then the classes; the function with its parameters."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = names[0].replace("/", ".").removesuffix(".py")
    return ".".join(names[:-1]), names[-1] + bracket + params


def case_outcome(case: ET.Element | None) -> str:
    if case is None:
        return "missing"
    if case.find("failure") is not None:
        return "xpassed" if "XPASS(strict)" in (case.find("failure").get("message") or "") else "failed"
    if case.find("error") is not None:
        return "error"
    skipped = case.find("skipped")
    if skipped is not None:
        return "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
    return "passed"


def _cases(junit: Path) -> dict[tuple[str, str], ET.Element]:
    root = ET.parse(junit).getroot()
    return {(c.get("classname") or "", c.get("name") or ""): c for c in root.iter("testcase") if c.get("name")}


def rerun_session(junit: Path, notes: Path, limit: int, launch: Launch) -> Outcome:
    """Rerun the failed tests of the session that wrote `junit` (its workers' notes: `notes`) and mark
    the verdicts in `junit`. `launch` starts each fresh session (the runner knows the command)."""
    out = Outcome()
    if limit < 1 or not junit.exists():
        return out
    cases = _cases(junit)
    failed = [key for key, case in cases.items() if case_outcome(case) in ("failed", "error")]
    if not failed:
        return out
    ran = {junit_key(line["nodeid"]): line for run in run_order.read(notes) for line in run}
    before = run_order.predecessors(notes)
    todo = []
    for key in failed:
        line = ran.get(key)
        if line is None:
            out.notes.append(f"not rerun: {key[0]}::{key[1]} (not in the workers' order log: a collection error?)")
        elif line.get("planted"):
            continue  # a planted fault fails on purpose
        else:
            todo.append(line["nodeid"])
    if len(todo) > MAX_TESTS:
        out.notes.append(f"{len(todo)} tests failed: only the first {MAX_TESTS} were rerun (that many failures "
                         "is not noise)")
        todo = todo[:MAX_TESTS]
    for nodeid in todo:
        rerun = _judge(nodeid, case_outcome(cases[junit_key(nodeid)]), before.get(nodeid), limit, launch, out)
        if rerun is None:
            break
        out.reruns.append(rerun)
    mark(junit, out.reruns)
    return out


def _judge(nodeid: str, first: str, after: str | None, limit: int, launch: Launch, out: Outcome) -> Rerun | None:
    attempts = [Attempt("session", first)]
    for _ in range(limit):
        outcome = _attempt([nodeid], nodeid, launch, out)
        if outcome is None:
            return None
        attempts.append(Attempt("alone", outcome))
        if outcome == "passed":
            break
    else:
        return Rerun(nodeid, attempts, FAILED)
    if after is None:
        return Rerun(nodeid, attempts, FLAKY)
    outcome = _attempt([after, nodeid], nodeid, launch, out)
    if outcome is None:
        return None
    attempts.append(Attempt(f"after {after}", outcome))
    return Rerun(nodeid, attempts, FLAKY if outcome == "passed" else ORDER_DEPENDENT, None if outcome == "passed" else after)


def _attempt(nodeids: list[str], nodeid: str, launch: Launch, out: Outcome) -> str | None:
    """The outcome of `nodeid` in a fresh session running `nodeids`; None when the reruns must stop
    (a stop signal, or pytest could not run the session: the next would not either)."""
    junit, signum, rc = launch(nodeids)
    if signum is not None:
        out.stopped = signum
        return None
    if rc not in (0, 1, 5) or junit is None or not junit.exists():
        out.notes.append(f"reruns stopped: pytest exit {rc} on the rerun of {nodeid}")
        return None
    try:
        return case_outcome(_cases(junit).get(junit_key(nodeid)))
    except ET.ParseError as exc:
        out.notes.append(f"reruns stopped: the rerun of {nodeid} left an unreadable junit file ({exc})")
        return None


def mark(junit: Path, reruns: list[Rerun]) -> None:
    """Write the verdicts into the session's junit file (see the module doc)."""
    if not reruns:
        return
    tree = ET.parse(junit)
    suites = [tree.getroot()] if tree.getroot().tag == "testsuite" else tree.getroot().iter("testsuite")
    cases = {(c.get("classname") or "", c.get("name") or ""): (c, suite) for suite in suites for c in suite.iter("testcase")}
    for rerun in reruns:
        case, suite = cases.get(junit_key(rerun.nodeid), (None, None))
        if case is None:
            continue
        props = case.find("properties")
        if props is None:
            props = ET.Element("properties")
            case.insert(0, props)
        said = [(NODEID, rerun.nodeid), (ATTEMPTS, ", ".join(map(str, rerun.attempts)))]
        if rerun.verdict == FLAKY:
            said.append((FLAKY_PROPERTY, "true"))
            for el in case:
                if el.tag in FLAKY_TAGS:  # the suite's counts follow: the case now reads as passed
                    count = {"failure": "failures", "error": "errors"}[el.tag]
                    suite.set(count, str(max(0, int(suite.get(count) or 0) - 1)))
                    el.tag = FLAKY_TAGS[el.tag]
        elif rerun.verdict == ORDER_DEPENDENT:
            said.append((ORDER_PROPERTY, rerun.after))
        for name, value in said:
            ET.SubElement(props, "property", name=name, value=value)
    atomic.write_text(junit, '<?xml version="1.0" encoding="utf-8"?>\n'
                      + ET.tostring(tree.getroot(), encoding="unicode") + "\n")


def count_attempts(attempts: str) -> int:
    """How many attempts a `gpuhil_attempts` property lists."""
    return len(re.findall(r"(?:^|, )(?:passed|failed|error|skipped|xfailed|xpassed|missing) \((?:session|alone|after )",
                          attempts))


def verdict_of(properties: dict[str, str]) -> str | None:
    """A junit case's rerun verdict from its properties (None: it was not rerun)."""
    if ATTEMPTS not in properties:
        return None
    return FLAKY if FLAKY_PROPERTY in properties else ORDER_DEPENDENT if ORDER_PROPERTY in properties else FAILED
