"""Trend page: one figure per series (machine, suite, case, provider) with the median and its p25-p75
band, the baseline's SAME band, change points and epoch boundaries; invalid (throttled or failed)
runs drawn as crosses off the line; emulated series drawn dotted with open markers. Filters by SKU
(machine), suite and provider run in the browser."""

from __future__ import annotations

import math
from typing import Any

from .analysis import Fleet, SeriesView, midpoint
from .page import esc, frame, json_for_script, short_case

COLORS = {"regression": "#cf222e", "improvement": "#1a7f37", "epoch": "#6b7280"}
LINE = "#2563eb"


DISPLAY_RUNS = 120  # points drawn per series: about four months of nightlies; detection looks further back


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(f"{v:.5g}")


def _t(ts: str) -> str:
    """'2026-10-01T03:00:00+00:00' -> '2026-10-01 03:00' (UTC; shorter in every point of the JSON)."""
    return ts[:16].replace("T", " ")


def _custom(p, *, invalid: bool = False) -> list[str]:
    extra = f"{p.status}: {p.why_invalid}" if invalid else f"p25 {_fmt(p.p25_us)}, p75 {_fmt(p.p75_us)}"
    return [esc(p.run_id), esc(p.git_sha[:12]), esc(extra)]


HOVER = "<b>%{customdata[0]}</b><br>commit %{customdata[1]}<br>median %{y:.4g} us (%{customdata[2]})<extra></extra>"
HOVER_INVALID = ("<b>%{customdata[0]}</b><br>commit %{customdata[1]}<br>INVALID (%{customdata[2]})"
                 "<br>median %{y:.4g} us<extra></extra>")


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.4g}"


def _vline(x: str, color: str, dash: str) -> dict[str, Any]:
    return {"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
            "line": {"color": color, "width": 2, "dash": dash}}


def _label(x: str, text: str, color: str, row: int) -> dict[str, Any]:
    return {"x": x, "xref": "x", "yref": "paper", "y": 0.98 - 0.12 * row, "yanchor": "top", "xanchor": "left",
            "text": text, "showarrow": False, "font": {"size": 10, "color": color}, "bgcolor": "rgba(255,255,255,0.8)"}


def figure(view: SeriesView) -> dict[str, Any]:
    """A plotly figure (plain JSON) of one series."""
    s = view.series
    pts = s.points[-DISPLAY_RUNS:]
    shown = len(s.points) - len(pts)  # index offset of the first drawn point
    bad = [p for p in s.invalid if not pts or p.timestamp >= pts[0].timestamp]
    x = [_t(p.timestamp) for p in pts]
    emulated = s.emulated_sku is not None
    data: list[dict[str, Any]] = [
        {"type": "scatter", "x": x, "y": [_num(p.p25_us) for p in pts], "mode": "lines", "name": "p25",
         "line": {"width": 0, "color": LINE}, "hoverinfo": "skip", "showlegend": False},
        {"type": "scatter", "x": x, "y": [_num(p.p75_us) for p in pts], "mode": "lines", "name": "p25-p75",
         "line": {"width": 0, "color": LINE}, "fill": "tonexty", "fillcolor": "rgba(37,99,235,0.18)",
         "hoverinfo": "skip"},
        {"type": "scatter", "x": x, "y": [_num(p.median_us) for p in pts], "mode": "lines+markers",
         "name": "median (emulated)" if emulated else "median", "customdata": [_custom(p) for p in pts],
         "hovertemplate": HOVER, "line": {"color": LINE, "width": 1.5, "dash": "dot" if emulated else "solid"},
         "marker": {"size": 6, "symbol": "diamond-open" if emulated else "circle"}},
    ]
    if bad:
        data.append({"type": "scatter", "x": [_t(p.timestamp) for p in bad], "y": [_num(p.median_us) for p in bad],
                     "mode": "markers", "name": "invalid (throttled or failed)", "hovertemplate": HOVER_INVALID,
                     "customdata": [_custom(p, invalid=True) for p in bad],
                     "marker": {"symbol": "x", "size": 9, "color": "#9ca3af"}})
    if view.band and (x or bad):
        span = sorted(x + [_t(p.timestamp) for p in bad])
        lo, hi = view.band.center_us * (1 - view.band.threshold), view.band.center_us * (1 + view.band.threshold)
        name = f"baseline ±{view.band.threshold:.0%} ({view.band.runs} runs)"
        data += [{"type": "scatter", "x": [span[0], span[-1]], "y": [_num(lo)] * 2, "mode": "lines",
                  "name": "baseline low", "line": {"width": 0.5, "color": "#9ca3af", "dash": "dash"},
                  "hoverinfo": "skip", "showlegend": False},
                 {"type": "scatter", "x": [span[0], span[-1]], "y": [_num(hi)] * 2, "mode": "lines", "name": name,
                  "line": {"width": 0.5, "color": "#9ca3af", "dash": "dash"}, "fill": "tonexty",
                  "fillcolor": "rgba(156,163,175,0.15)", "hoverinfo": "name"}]
    shapes, notes = [], []
    marked = {c.index for c in view.changes}
    for c in view.changes:
        if c.index <= shown:
            continue  # before the drawn window
        at = _t(midpoint(c.before.timestamp, c.after.timestamp))
        shapes.append(_vline(at, COLORS[c.kind], "dash" if c.kind == "epoch" else "solid"))
        notes.append(_label(at, esc(f"{(c.ratio - 1) * 100:+.1f} % {c.kind}"), COLORS[c.kind], len(notes) % 3))
    for i in view.epochs:
        if i not in marked and i > shown:  # a fingerprint change with no step in the timings
            at = _t(midpoint(s.points[i - 1].timestamp, s.points[i].timestamp))
            shapes.append(_vline(at, COLORS["epoch"], "dot"))
            notes.append(_label(at, "epoch", COLORS["epoch"], len(notes) % 3))
    layout = {"margin": {"l": 56, "r": 12, "t": 8, "b": 36}, "showlegend": False, "hovermode": "closest",
              "xaxis": {"type": "date"}, "yaxis": {"title": {"text": "us per call"}, "rangemode": "normal"},
              "shapes": shapes, "annotations": notes}
    return {"data": data, "layout": layout}


def change_text(view: SeriesView) -> list[tuple[str, str]]:
    """(kind, line) per change point, for the card and for tests."""
    return [(c.kind, f"{c.describe()} · runs {c.run_range} · commits {c.commit_range}") for c in view.changes]


def _card(i: int, view: SeriesView) -> str:
    s = view.series
    last = s.points[-1] if s.points else None
    latest = f"latest {_fmt(last.median_us)} us" if last else "no valid run"
    if view.latest is not None:
        latest += f" · verdict {view.latest.verdict}"
    band = (f"baseline {_fmt(view.band.center_us)} us ±{view.band.threshold:.0%}" if view.band else view.band_note)
    changes = "".join(f'<li class="{esc(k)}">{esc(t)}</li>' for k, t in change_text(view))
    emu = f" · {esc(s.sku)} within {esc(s.emulated_sku)} limits" if s.emulated_sku else ""
    return (f'<div class="card{" emulated" if s.emulated_sku else ""}" data-series="{esc(s.uid)}" '
            f'data-sku="{esc(s.machine)}" data-suite="{esc(s.suite)}" data-provider="{esc(s.provider)}">'
            f'<h3 title="{esc(s.case_id)}">{esc(short_case(s.case_id))}</h3>'
            f'<div class="meta">{esc(s.machine)} · {esc(s.suite)} · {esc(s.provider)}{emu} · {len(s.points)} valid, '
            f'{len(s.invalid)} invalid runs · {esc(latest)}{" · " + esc(band) if band else ""}</div>'
            f'<div class="plot" data-fig="f{i}" data-src="{esc(data_path(s.machine))}"></div>'
            f'{"<ul class=changes>" + changes + "</ul>" if changes else ""}</div>')


def _select(name: str, label: str, values: list[str]) -> str:
    opts = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
    return f'<label>{esc(label)} <select data-filter="{esc(name)}" id="filter-{esc(name)}"><option value="">all</option>{opts}</select></label>'


LEGEND = ("<p class=muted>Blue line: median per run, shaded: p25-p75 of the run's samples; dotted with open "
          "diamonds: emulated series; grey crosses: invalid runs (throttled or failed, never compared); grey "
          "dashed band: the baseline's SAME band; vertical lines: change points (red regression, green "
          "improvement, grey dashed epoch change), grey dotted: fingerprint change without a step.</p>")


def data_path(machine: str) -> str:
    """Where a machine's figures live, relative to the site (machine names are safe identifiers)."""
    return f"data/trends-{machine}.js"


def data_file(figures: dict[str, Any]) -> str:
    """A script that hands its figures to site.js: a <script src> loads from file:// where fetch() may not."""
    return "/* gpuhil trend figures */\ngpuhilFigures(" + json_for_script(figures) + ");\n"


def page(fleet: Fleet, footer: str) -> tuple[str, dict[str, str]]:
    """The page, and {relative path: text} of the per-machine figure files it loads as cards scroll in."""
    views = fleet.views
    filters = (_select("sku", "SKU", sorted({v.series.machine for v in views}))
               + _select("suite", "suite", sorted({v.series.suite for v in views}))
               + _select("provider", "provider", sorted({v.series.provider for v in views}))
               + f'<span id="shown" class="muted">{len(views)} series</span>')
    body = (f'<div class="filters">{filters}</div>{LEGEND}'
            f'<div class="grid">{"".join(_card(i, v) for i, v in enumerate(views))}</div>'
            if views else "<p>No perf rows in the history yet (runs made without --perf add coverage only).</p>")
    per_machine: dict[str, dict[str, Any]] = {}
    for i, v in enumerate(views):
        per_machine.setdefault(data_path(v.series.machine), {})[f"f{i}"] = figure(v)
    html = frame("trends.html", "Trends per series", body, footer=footer, plotly=True)
    return html, {path: data_file(figs) for path, figs in per_machine.items()}
