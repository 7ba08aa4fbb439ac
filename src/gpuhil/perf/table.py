"""The bench table, rendered from a run's perf rows and nothing else: each provider beside the peer
on the same problem, the roofline of the ceilings measured in the same run, the same-work reference
and the host time (with its ratio to the peer's, timed interleaved) where the case recorded them, then
the goal verdicts.
"""

from __future__ import annotations

import re
from typing import Any

from .goals import GoalVerdict, params_of, same_problem, test_of
from .work import measured, unit


def case_label(row: dict[str, Any], *, with_test: bool) -> str:
    """A case's parameters (the problem's name alone when it is the only one), after its test's short
    name when the run holds several tests."""
    params = params_of(row)
    if params:
        only = next(iter(params.values()))
        named = len(params) > 1 or only.isdigit()  # a bare number needs its name; a problem's name does not
        text = " ".join(f"{k}={v}" for k, v in params.items()) if named else only
    else:  # a row written before the fixture recorded params: the node id's parameter part
        text = row["case_id"].partition("[")[2].rstrip("]") or row["case_id"]
    test = test_of(row).removeprefix("test_").removesuffix("_perf")
    return f"{test} {text}" if with_test else text


def _natural(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _f(x: float | None, fmt: str) -> str:
    return "" if x is None else format(x, fmt)


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def _status(row: dict[str, Any]) -> str:
    if row["status"] == "error":
        return f"ERROR: {row.get('error') or 'the case did not finish'}"
    if row.get("throttled"):
        return f"throttled ({row.get('throttle_reasons') or row['status']})"
    return row["status"]


def _rate(row: dict[str, Any]) -> str:
    if row.get("median_us") is None:
        return ""
    if unit(row.get("ceiling") or "") == "TFLOP/s" and row.get("tflops"):
        return f"{row['tflops']:.0f} TFLOP/s"
    return f"{row['gbps']:.0f} GB/s" if row.get("gbps") else ""


def host_cell(row: dict[str, Any]) -> str:
    """Host us per call, and its ratio to the peer's where the peer's was timed beside it."""
    if row.get("host_us") is None:
        return ""
    peer = row.get("host_peer_us")
    return f"{row['host_us']:.1f}" + (f" ({row['host_us'] / peer:.2f}x peer)" if peer else "")


def ordered(rows: list[dict[str, Any]], peer: str) -> list[dict[str, Any]]:
    """By test, then problem (numbers in order), the peer first within a problem."""
    many = len({test_of(r) for r in rows}) > 1
    return sorted(rows, key=lambda r: (test_of(r), _natural(case_label(r, with_test=many)), r["provider"] != peer,
                                       r["provider"]))


def header(rows: list[dict[str, Any]]) -> list[str]:
    r = rows[0]
    sku = r["sku"] + (f" within {r['emulated_sku']}'s limits" if r.get("emulated_sku") else "")
    ceilings = sorted({(x["ceiling"], x["ceiling_value"]) for x in rows if x.get("ceiling") and x.get("ceiling_value")})
    out = [f"device: {r.get('gpu_name') or '?'} (SKU {sku}, fingerprint {r['fingerprint_id']}), run {r['run_id']}"]
    if ceilings:
        out.append("ceilings: " + ", ".join(f"{n} {v:.{2 if unit(n) == 'us' else 0}f} {unit(n)}"
                                            f"{'' if measured(n) else ' (published)'}" for n, v in ceilings)
                   + " (measured in this run unless published)")
    return out


def render(rows: list[dict[str, Any]], *, peer: str = "torch") -> str:
    many = len({test_of(r) for r in rows}) > 1
    lines = [f"| case | provider | config | median us | vs {peer} | rate | roofline us (ceiling) | % of roofline "
             "| same-work us (% of roofline) | host us/call | status |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in ordered(rows, peer):
        med = r.get("median_us")
        peer_row = next((p for p in rows if p["provider"] == peer and same_problem(r, p)), None)
        vs = (peer_row["median_us"] / med if peer_row is not None and med and peer_row.get("median_us")
              and r["provider"] != peer else None)
        pct = r.get("pct_of_ceiling") if med else None
        roof = f"{med * pct / 100:.2f} ({r['ceiling']})" if med and pct is not None else ""
        same = ""
        if r.get("same_work_us") and med and pct is not None:
            same = f"{r['same_work_us']:.2f} ({100 * med * pct / 100 / r['same_work_us']:.1f} %, {r.get('same_work')})"
        lines.append(f"| {_cell(case_label(r, with_test=many))} | {_cell(r['provider'])} | {_cell(r.get('config') or '-')} "
                     f"| {_f(med, '.2f')} | {_f(vs, '.2f')}{'x' if vs is not None else ''} | {_rate(r)} | {roof} "
                     f"| {_f(pct, '.1f')} | {same} | {host_cell(r)} | {_cell(_status(r))} |")
    return "\n".join(lines)


def render_goals(verdicts: list[GoalVerdict], rows: list[dict[str, Any]]) -> list[str]:
    """One line per verdict (VERDICT goal provider case: value (bound); note), then each goal's reason."""
    if not verdicts:
        return []
    by_series = {f"{r['suite']}|{r['case_id']}|{r['provider']}": r for r in rows}
    many = len({test_of(r) for r in rows}) > 1
    out = []
    for v in verdicts:
        g = v.goal
        if v.series is None:
            out.append(f"{v.verdict:<7} {g.id}: {v.note}")
            continue
        r = by_series[v.series]
        value = "" if v.value is None else f"{g.metric} {v.value:.2f} "
        note = f"; {v.note}" if v.note else ""
        out.append(f"{v.verdict:<7} {g.id} {r['provider']} {case_label(r, with_test=many)}: {value}(goal {g.bound}){note}")
    out.append("")
    goals = {v.goal.id: v.goal for v in verdicts}
    out.extend(f"goal {g.id}: {g.reason}" for g in goals.values())
    return out
