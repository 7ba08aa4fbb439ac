"""Test outcomes per case from a pytest junit.xml, for the coverage matrix."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from .. import run_record
from .ids import HistoryError

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed")
# When one test id appears twice (a teardown error beside a failure, a rerun), the worse outcome stays.
_SEVERITY = {"failed": 4, "error": 3, "xfailed": 2, "skipped": 1, "passed": 0}
REASON_CHARS = 400  # a failure message can carry a whole traceback; the matrix shows its first lines
# The reason of a passed case that failed first and passed when `gpuhil run` ran it again (gpuhil.reruns).
FLAKY_REASON = "flaky: "


def suite_of(classname: str) -> str:
    """'suites.argmax.test_argmax' -> 'argmax' (the suite folder); anything else -> its first component."""
    parts = classname.split(".")
    return parts[1] if parts[0] == "suites" and len(parts) > 2 else parts[0]


def _outcome(case: ET.Element) -> tuple[str, str]:
    # Same precedence as the runner's summary: a failure beats an error beats a skip.
    for tag, outcome in (("failure", "failed"), ("error", "error")):
        el = case.find(tag)
        if el is not None:
            return outcome, (el.get("message") or el.text or "").strip()
    el = case.find("skipped")
    if el is not None:
        outcome = "xfailed" if el.get("type") == "pytest.xfail" else "skipped"
        return outcome, (el.get("message") or el.text or "").strip()
    return "passed", ""


def parse(path: Path) -> list[dict]:
    """One dict per test case (the run's start comes from run.json, not from here)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise HistoryError(f"{path}: not well-formed XML ({exc})") from None
    if root.tag not in ("testsuite", "testsuites"):
        raise HistoryError(f"{path}: root element <{root.tag}> is not <testsuites> or <testsuite>")
    cases: dict[str, dict] = {}
    for case in root.iter("testcase"):
        classname, name = case.get("classname") or "", case.get("name")
        if not name:
            raise HistoryError(f"{path}: a <testcase> has no name attribute")
        outcome, reason = _outcome(case)
        properties = {p.get("name"): p.get("value") or "" for p in case.iter("property")}
        if run_record.FLAKY_PROPERTY in properties:
            reason = FLAKY_REASON + properties.get(run_record.ATTEMPTS_PROPERTY, "")
        elif run_record.ORDER_PROPERTY in properties:
            reason = f"order-dependent: fails after {properties[run_record.ORDER_PROPERTY]}; {reason}"
        try:
            duration = float(case.get("time") or 0.0)
        except ValueError:
            duration = math.nan
        if not math.isfinite(duration) or duration < 0:
            raise HistoryError(f"{path}: <testcase name={name!r}> has time {case.get('time')!r}: "
                               "expected seconds, a number >= 0")
        test_id = f"{classname}::{name}" if classname else name
        row = {"suite": suite_of(classname) if classname else "", "test_id": test_id, "classname": classname,
               "name": name, "outcome": outcome, "reason": reason[:REASON_CHARS],
               "duration_s": duration}
        old = cases.get(test_id)
        if old is None or _SEVERITY[outcome] > _SEVERITY[old["outcome"]]:
            cases[test_id] = row
    return list(cases.values())


def counts(cases: list[dict]) -> dict[str, int]:
    return {o: sum(1 for c in cases if c["outcome"] == o) for o in OUTCOMES}
