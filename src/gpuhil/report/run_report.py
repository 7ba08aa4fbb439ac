"""The run report: what a person reads after an unattended run (report.md, and the GitHub job summary).

Built from the run's junit.xml (every test's outcome, written by the pytest controller, which
survives crashing workers; each test's time per phase, rendered by report.durations; the verdicts of
reruns of failed tests, gpuhil.reruns), crashes.json (the isolation layer's causes) and the catalog
(known issues' links and expiry dates).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .. import reruns as reruns_mod
from . import durations
from .markdown import cell as _cell, code

OUTCOMES = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed")


@dataclass
class Failure:
    test: str
    kind: str  # "failed", "error", "xpassed"
    first_line: str


@dataclass
class Rerun:
    nodeid: str
    verdict: str  # FAILED, FLAKY, ORDER-DEPENDENT (gpuhil.reruns)
    attempts: str  # "failed (session), passed (alone)"
    after: str | None  # ORDER-DEPENDENT: the test it fails after


@dataclass
class RunSummary:
    per_suite: dict[str, Counter] = field(default_factory=dict)
    per_provider: dict[tuple[str, str], Counter] = field(default_factory=dict)  # (suite, provider) -> outcomes
    failures: list[Failure] = field(default_factory=list)
    skips: Counter = field(default_factory=Counter)  # reason -> count
    known_issues: Counter = field(default_factory=Counter)  # id -> cases it applied to
    crashes: list[dict] = field(default_factory=list)
    times: list[durations.CaseTime] = field(default_factory=list)
    reruns: list[Rerun] = field(default_factory=list)

    def rerun(self, verdict: str) -> list[Rerun]:
        return [r for r in self.reruns if r.verdict == verdict]

    @property
    def counted_crashes(self) -> list[dict]:
        """The crashes that fail the run: not those of a test that passed when run again (FLAKY)."""
        flaky = {r.nodeid for r in self.rerun(reruns_mod.FLAKY)}
        return [c for c in self.crashes if c.get("nodeid") not in flaky]

    @property
    def totals(self) -> Counter:
        total: Counter = Counter({k: 0 for k in OUTCOMES})
        for counts in self.per_suite.values():
            total.update(counts)
        return total

    @property
    def ran(self) -> int:
        t = self.totals
        return t["passed"] + t["failed"] + t["errors"] + t["xfailed"] + t["xpassed"]


def _suite_of(classname: str) -> str:
    parts = classname.split(".")
    return parts[1] if parts[0] == "suites" and len(parts) > 2 else "harness"


def _first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""


def summarize(results: Path) -> RunSummary:
    """Read junit.xml (missing: nothing ran) and crashes.json of a results folder."""
    s = RunSummary()
    junit = results / "junit.xml"
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            if not case.get("name"):  # what an interrupted xdist session leaves for its unfinished test
                continue
            suite = _suite_of(case.get("classname", ""))
            test = f"{case.get('classname', '')}::{case.get('name', '')}"
            outcome = _outcome(case, s, test)
            s.per_suite.setdefault(suite, Counter({k: 0 for k in OUTCOMES}))[outcome] += 1
            properties = {p.get("name"): p.get("value") for p in case.iter("property")}
            s.times.append(durations.case_time(suite, test, case.get("time"), properties))
            verdict = reruns_mod.verdict_of(properties)
            if verdict is not None:
                s.reruns.append(Rerun(properties[reruns_mod.NODEID], verdict, properties[reruns_mod.ATTEMPTS],
                                      properties.get(reruns_mod.ORDER_PROPERTY)))
            provider = properties.get("provider")
            if provider is not None:
                s.per_provider.setdefault((suite, provider), Counter({k: 0 for k in OUTCOMES}))[outcome] += 1
    crashes = results / "crashes.json"
    if crashes.exists():
        s.crashes = json.loads(crashes.read_text())
    return s


def _outcome(case: ET.Element, s: RunSummary, test: str) -> str:
    failure, error, skipped = case.find("failure"), case.find("error"), case.find("skipped")
    if failure is not None:
        message = failure.get("message") or failure.text
        if "XPASS(strict)" in (message or ""):
            s.failures.append(Failure(test, "xpassed", _first_line(message)))
            return "xpassed"
        s.failures.append(Failure(test, "failed", _first_line(message)))
        return "failed"
    if error is not None:
        s.failures.append(Failure(test, "error", _first_line(error.get("message") or error.text)))
        return "errors"
    if skipped is not None:
        reason = skipped.get("message") or ""
        known = reason.split("known issue ", 1)[1].split(":", 1)[0] if "known issue " in reason else None
        if known:
            s.known_issues[known] += 1
        if skipped.get("type") == "pytest.xfail":
            return "xfailed"
        s.skips[reason] += 1
        return "skipped"
    return "passed"


def _reruns(s: RunSummary) -> list[str]:
    """The reruns' verdicts: flaky tests (did not fail the run unless --flaky-fails), order-dependent
    ones (failed again right after the test that preceded them), consistent failures."""
    out = []
    flaky = s.rerun(reruns_mod.FLAKY)
    if flaky:
        out += ["", "## Flaky tests", "", "Failed, then passed when run again alone in a fresh worker.", "",
                "| test | attempts | outcomes |", "|---|---:|---|"]
        out += [f"| {_cell(code(r.nodeid[:250]))} | {reruns_mod.count_attempts(r.attempts)} | {_cell(r.attempts)} |" for r in flaky]
    ordered = s.rerun(reruns_mod.ORDER_DEPENDENT)
    if ordered:
        out += ["", "## Order-dependent tests", "",
                "Passed alone, failed again right after the test that ran before it in its worker.", "",
                "| test | fails after | outcomes |", "|---|---|---|"]
        out += [f"| {_cell(code(r.nodeid[:250]))} | {_cell(code((r.after or '')[:250]))} | {_cell(r.attempts)} |"
                for r in ordered]
    failed = s.rerun(reruns_mod.FAILED)
    if failed:
        out += ["", "## Failed on every rerun", "", "| test | outcomes |", "|---|---|"]
        out += [f"| {_cell(code(r.nodeid[:250]))} | {_cell(r.attempts)} |" for r in failed]
    return out


def render(s: RunSummary, *, title: str, lines: list[str], verdict: str, matrix=None,
           perf_lines: list[str] = (), sessions: list[str] = (), notices: list[str] = (),
           health_lines: list[str] = ()) -> str:
    """report.md: `lines` (markdown, one list item each: the session's own header, then the run's)
    under the title, the verdict and `notices` (bold, one line each), then `health_lines` (the runner
    health section) and the tables; `sessions`: how long each pytest session took."""
    out = [f"# {title}", "", f"**{verdict}**", ""] + [f"**{n}**\n" for n in notices]
    out += [f"- {line}" for line in lines] + list(health_lines) + [""]
    out += ["## Outcomes per suite", "", "| suite | " + " | ".join(OUTCOMES) + " |",
            "|---|" + "---:|" * len(OUTCOMES)]
    for suite in sorted(s.per_suite):
        out.append(f"| {_cell(suite)} | " + " | ".join(str(s.per_suite[suite][k]) for k in OUTCOMES) + " |")
    t = s.totals
    out.append("| **all** | " + " | ".join(f"**{t[k]}**" for k in OUTCOMES) + " |")
    if s.per_provider:
        # Which kernel a suite's outcomes came from: gpuhil's own, torch's, or a kernel library's.
        out += ["", "## Outcomes per provider", "", "| suite | provider | " + " | ".join(OUTCOMES) + " |",
                "|---|---|" + "---:|" * len(OUTCOMES)]
        for (suite, provider), counts in sorted(s.per_provider.items()):
            out.append(f"| {_cell(suite)} | {_cell(provider)} | " + " | ".join(str(counts[k]) for k in OUTCOMES) + " |")
    if s.crashes:
        flaky = {r.nodeid for r in s.rerun(reruns_mod.FLAKY)}
        out += ["", "## Crashed or timed-out tests", "", "| test | what happened | time to cut |", "|---|---|---:|"]
        for c in s.crashes:
            took = f"{c['seconds']:.1f} s" if c.get("seconds") is not None else ""
            what = c["kind"] + ": " + c["detail"] + (" (FLAKY: passed when run again)" if c["nodeid"] in flaky else "")
            out.append(f"| {_cell(code(c['nodeid'][:250]))} | {_cell(what)} | {took} |")
    if s.failures:
        out += ["", "## Failures", "", "| test | outcome | first line |", "|---|---|---|"]
        out += [f"| {_cell(code(f.test[:250]))} | {f.kind} | {_cell(f.first_line)} |" for f in s.failures]
    out += _reruns(s)
    if s.skips:
        out += ["", "## Skips by reason", "", "| count | reason |", "|---:|---|"]
        out += [f"| {n} | {_cell(reason)} |" for reason, n in s.skips.most_common()]
    if s.known_issues:
        out += ["", "## Known issues that applied", "", "| id | cases | link | expires |", "|---|---:|---|---|"]
        issues = {ki.id: ki for ki in matrix.known_issues} if matrix is not None else {}
        for ki_id, n in sorted(s.known_issues.items()):
            ki = issues.get(ki_id)
            out.append(f"| {_cell(ki_id)} | {n} | {_cell(ki.link) if ki else ''} | {ki.expires if ki else ''} |")
    out += durations.render(s.times, list(sessions))
    if perf_lines:
        out += ["", "## Performance", ""] + list(perf_lines)
    return "\n".join(out) + "\n"
