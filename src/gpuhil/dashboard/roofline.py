"""Roofline view: each case's % of the ceiling measured in the same run (read stream, a torch GEMM or
the launch floor: the row's own), per machine, from each machine's latest valid row. One heatmap per suite."""

from __future__ import annotations

import math
from typing import Any

from .analysis import Fleet
from .page import esc, frame, short_case


def table(fleet: Fleet) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """{suite: {"case | provider": {machine: latest valid row}}} for rows that carry pct_of_ceiling."""
    out: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for v in fleet.views:
        s = v.series
        last = s.points[-1] if s.points else None
        if last is None or last.pct_of_ceiling is None or not math.isfinite(last.pct_of_ceiling):
            continue
        label = f"{short_case(s.case_id)} | {s.provider}"
        out.setdefault(s.suite, {}).setdefault(label, {})[s.machine] = {
            "pct": float(last.pct_of_ceiling), "run_id": last.run_id, "case_id": s.case_id, "ceiling": s.last_row.get("ceiling"),
            "ceiling_value": s.last_row.get("ceiling_value")}
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def figure(cases: dict[str, dict[str, dict[str, Any]]], machines: list[str]) -> dict[str, Any]:
    labels = list(cases)
    z, text, hover = [], [], []
    for label in labels:
        row = cases[label]
        z.append([round(row[m]["pct"], 2) if m in row else None for m in machines])
        text.append([f"{row[m]['pct']:.0f}%" if m in row else "" for m in machines])
        hover.append([(f"{esc(label)}<br>{esc(m)}: {row[m]['pct']:.1f} % of {esc(row[m]['ceiling'])} "
                       f"({row[m]['ceiling_value'] or 0:.4g})<br>run {esc(row[m]['run_id'])}") if m in row
                      else f"{esc(label)}<br>{esc(m)}: not timed" for m in machines])
    data = [{"type": "heatmap", "x": machines, "y": [esc(label) for label in labels], "z": z, "text": text,
             "texttemplate": "%{text}", "hovertext": hover, "hoverinfo": "text", "zmin": 0, "zmax": 100,
             "colorscale": "Viridis", "colorbar": {"title": {"text": "% of ceiling"}}}]
    layout = {"margin": {"l": 360, "r": 20, "t": 10, "b": 40}, "height": 90 + 26 * len(labels),
              "yaxis": {"automargin": True, "autorange": "reversed"}, "xaxis": {"side": "bottom"}}
    return {"data": data, "layout": layout}


def page(fleet: Fleet, footer: str) -> str:
    suites = table(fleet)
    figures, parts = {}, []
    for i, (suite, cases) in enumerate(suites.items()):
        machines = sorted({m for row in cases.values() for m in row})
        figures[f"r{i}"] = figure(cases, machines)
        parts.append(f'<section data-suite="{esc(suite)}"><h2>{esc(suite)}</h2>'
                     f'<div class="plot tall" style="height:{figures[f"r{i}"]["layout"]["height"]}px" '
                     f'data-fig="r{i}"></div></section>')
    body = ("<p class=muted>Percent of the ceiling measured in the same run: read-stream bandwidth for "
            "bytes-bound cases, a torch GEMM of the same kind for FLOP-bound ones, an empty kernel's launch for "
            "small ones. Latest valid run per machine.</p>"
            + ("".join(parts) or "<p>No perf rows carry a ceiling yet.</p>"))
    return frame("roofline.html", "Roofline: % of measured ceiling", body, footer=footer,
                 data={"figures": figures}, plotly=bool(figures))
