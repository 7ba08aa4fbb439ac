"""Coverage matrix: every test (grouped by suite) against every machine, from each machine's latest run:
passed / failed / error / skipped / xfailed, the skip, xfail or failure reason on hover; a pass that
came only when `gpuhil run` ran a failed test again is marked flaky."""

from __future__ import annotations

from ..history.junit import FLAKY_REASON
from .analysis import Fleet
from .page import esc, frame

LABEL = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "skipped": "skip", "xfailed": "xfail"}


def matrix(fleet: Fleet) -> tuple[list[str], dict[str, dict[str, dict[str, dict]]]]:
    """(machines, {suite: {test_id: {machine: test row}}}) from each machine's latest run."""
    machines = sorted(fleet.machines)
    latest = {(m.last_run["sku"], m.last_run["run_id"]): name for name, m in fleet.machines.items()}
    grid: dict[str, dict[str, dict[str, dict]]] = {}
    tests = fleet.tests
    for row in tests.astype(object).where(tests.notna(), None).to_dict("records"):
        machine = latest.get((row["sku"], row["run_id"]))
        if machine is not None:
            grid.setdefault(row["suite"] or "(none)", {}).setdefault(row["test_id"], {})[machine] = row
    return machines, {s: dict(sorted(t.items())) for s, t in sorted(grid.items())}


def _cell(machine: str, test_id: str, row: dict | None) -> str:
    if row is None:
        return (f'<td class="cell none" data-machine="{esc(machine)}" data-test="{esc(test_id)}" '
                f'title="not in this machine\'s latest run">·</td>')
    outcome = row["outcome"]
    title = f' title="{esc(row["reason"])}"' if row["reason"] else ""
    flaky = outcome == "passed" and (row["reason"] or "").startswith(FLAKY_REASON)
    return (f'<td class="cell {esc(outcome)}{" flaky" if flaky else ""}" data-machine="{esc(machine)}" '
            f'data-test="{esc(test_id)}" data-outcome="{esc(outcome)}"{" data-flaky" if flaky else ""}{title}>'
            f'{esc(LABEL.get(outcome, outcome))}{"*" if flaky else ""}</td>')


def page(fleet: Fleet, footer: str) -> str:
    machines, grid = matrix(fleet)
    head = "".join(
        f'<th data-machine="{esc(m)}">{esc(m)}<br><span class="muted">{esc(fleet.machines[m].last_run["timestamp"][:10])} '
        f'{esc((fleet.machines[m].last_run["git_sha"] or "")[:8])}</span></th>' for m in machines)
    rows = []
    for suite, tests in grid.items():
        rows.append(f'<tr class="suite"><th colspan="{len(machines) + 1}">{esc(suite)}</th></tr>')
        for test_id, cells in tests.items():
            name = test_id.split("::", 1)[-1]
            rows.append(f'<tr data-test="{esc(test_id)}"><th class="test" title="{esc(test_id)}">{esc(name)}</th>'
                        + "".join(_cell(m, test_id, cells.get(m)) for m in machines) + "</tr>")
    totals = "".join(
        f'<td class="num">{esc(_totals(fleet, m))}</td>' for m in machines)
    body = ("<p class=muted>Each machine's latest run. Hover a cell for the skip, xfail or failure reason. "
            "skip = not applicable to this device (the probed feature is named); xfail = a known issue; "
            "pass* = flaky: failed, then passed when run again.</p>"
            f'<table class="coverage"><thead><tr><th>test</th>{head}</tr></thead><tbody>{"".join(rows)}'
            f'<tr><th>totals</th>{totals}</tr></tbody></table>')
    return frame("coverage.html", "Coverage matrix", body, footer=footer)


def _totals(fleet: Fleet, machine: str) -> str:
    r = fleet.machines[machine].last_run
    return ", ".join(f"{r[k]} {LABEL[k]}" for k in ("passed", "failed", "error", "skipped", "xfailed") if r[k])
