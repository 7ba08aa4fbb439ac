"""Where a run's time went: per suite and per phase, and the slowest tests (report.md's time section).

From junit.xml: each test's `time` (its setup, call and teardown as pytest timed them in its worker)
and the phase properties gpuhil.phase_times adds (compile, setup, run, teardown). Times are worker
time: summed over tests that ran side by side in several workers, so they add up to more than the
run's wall time; the runner's lines say how long each pytest session took from start to end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .markdown import cell, code

PHASES = ("compile", "setup", "run", "teardown")
SLOWEST = 10
# What each phase column holds, said under the table.
MEANING = ("compile: inside gpuhil's kernel compiles (compile_kernel, compile_for_target), in any phase; "
           "setup: fixtures (inputs, references; a worker's first test also its session fixtures), less compiles; "
           "run: the test body less compiles (launches, checks, kernel libraries' own JIT compiles); "
           "teardown: fixture finalisers, less compiles")


@dataclass(frozen=True)
class CaseTime:
    suite: str
    test: str
    total: float  # seconds, junit's `time`
    phases: dict[str, float] | None  # PHASES -> seconds; None without the properties (its worker died)


def case_time(suite: str, test: str, time_attr: str | None, properties: dict[str, str]) -> CaseTime:
    """One junit <testcase>'s times; a value that is not a finite number >= 0 counts as absent."""
    total = _seconds(time_attr) or 0.0
    phases = {p: _seconds(properties.get(f"{p}_s")) for p in PHASES}
    return CaseTime(suite, test, total, None if None in phases.values() else phases)


def _seconds(text: str | None) -> float | None:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def render(times: list[CaseTime], sessions: list[str]) -> list[str]:
    """The section's markdown lines."""
    if not times and not sessions:
        return []
    out = ["", "## Where the time went", "",
           "Worker time in seconds: tests that ran side by side in several workers add up to more than the "
           "run took. The pytest sessions, from start to end:", ""]
    out += [f"- {line}" for line in sessions] or ["- (none ran)"]
    if not times:
        return out
    out += ["", "| suite | tests | total | " + " | ".join(PHASES) + " |", "|---|---:|---:|" + "---:|" * len(PHASES)]
    per_suite: dict[str, list[CaseTime]] = {}
    for t in times:
        per_suite.setdefault(t.suite, []).append(t)
    for suite, cases in sorted(per_suite.items(), key=lambda kv: (-sum(c.total for c in kv[1]), kv[0])):
        out.append(f"| {cell(suite)} | {len(cases)} | " + " | ".join(_sums(cases)) + " |")
    out.append(f"| **all** | **{len(times)}** | " + " | ".join(f"**{v}**" for v in _sums(times)) + " |")
    out += ["", MEANING + "."]
    missing = sum(1 for t in times if t.phases is None)
    if missing:
        out.append(f"{missing} test(s) have no phase times (their worker died, or the junit came from elsewhere): "
                   "they count in total only.")
    out += ["", "### Slowest tests", "", "| test | total | " + " | ".join(PHASES) + " |",
            "|---|---:|" + "---:|" * len(PHASES)]
    for t in sorted(times, key=lambda t: (-t.total, t.test))[:SLOWEST]:
        phases = [f"{t.phases[p]:.1f}" if t.phases else "" for p in PHASES]
        out.append(f"| {cell(code(t.test[:250]))} | {t.total:.1f} | " + " | ".join(phases) + " |")
    return out


def _sums(cases: list[CaseTime]) -> list[str]:
    timed = [c.phases for c in cases if c.phases is not None]
    return [f"{sum(c.total for c in cases):.1f}"] + [f"{sum(p[name] for p in timed):.1f}" for name in PHASES]
