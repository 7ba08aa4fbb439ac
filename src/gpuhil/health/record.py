"""What one `gpuhil run` says about runner health: the check before its tests (unhealthy: the tests do
not run, RUNNER UNHEALTHY, exit 2) and after them (unhealthy: the results are suspect), in report.md,
run.json (`health`, `suspect`) and health.json (every finding)."""

from __future__ import annotations

from dataclasses import dataclass

from .checks import HealthReport, markdown_table

NAME = "health.json"
VERDICT = "RUNNER UNHEALTHY"


@dataclass
class RunHealth:
    before: HealthReport | None = None  # None: not asked (the session was refused first)
    after: HealthReport | None = None  # None: not asked (the run stopped before, or was interrupted)

    @property
    def suspect(self) -> bool:
        """Healthy (or unchecked) before, unhealthy after: the results were made on a runner going bad."""
        return self.after is not None and not self.after.healthy and (self.before is None or self.before.healthy)

    def record(self) -> dict:
        """run.json's `health`: each check's state (healthy, unhealthy, not checked; null: not asked)."""
        return {"before": self.before.state if self.before else None, "after": self.after.state if self.after else None}

    def document(self) -> dict:
        return {when: report.to_dict() if report else None for when, report in (("before", self.before),
                                                                                 ("after", self.after))}

    def notices(self) -> list[str]:
        """Bold lines under the report's verdict."""
        if self.suspect:
            return [f"RESULTS SUSPECT: the runner was unhealthy after the tests: {self.after.summary()}"]
        return []

    def report_lines(self) -> list[str]:
        """report.md's runner health section (nothing when no check was asked)."""
        out = []
        for when, report in (("before the tests", self.before), ("after the tests", self.after)):
            if report is None:
                continue
            out += [f"- {when}: {report.summary()}"]
            table = markdown_table(report)
            out += ["", *table, ""] if table else []
        while out and out[-1] == "":
            out.pop()  # the report adds its own blank line
        return ["", "## Runner health", "", *out] if out else []
