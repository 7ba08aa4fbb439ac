"""`build(history_dir, out_dir)`: the static site, from a history folder (and baselines, when given)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import assets, coverage, overview, roofline, trends
from .analysis import Fleet, analyze
from .page import esc


@dataclass
class Site:
    root: Path
    fleet: Fleet
    bytes: dict[str, int]  # relative path -> size

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())


def build(history_dir: Path, out_dir: Path, baselines_dir: Path | None = None) -> Site:
    """Write index.html (overview), trends.html, coverage.html, roofline.html and assets/ into out_dir.

    HistoryError (one line) when the history or a baseline file cannot be read.
    """
    fleet = analyze(Path(history_dir), Path(baselines_dir) if baselines_dir else None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sizes = {f"assets/{k}": v for k, v in assets.write(out).items()}
    footer = (f"{len(fleet.runs)} runs of {len(fleet.machines)} machines, latest {esc(fleet.latest_timestamp)} · "
              f"{len(fleet.views)} series · plotly.js {esc(assets.plotly_version())} · works offline")
    for name, make in (("index.html", overview.page), ("trends.html", trends.page),
                       ("coverage.html", coverage.page), ("roofline.html", roofline.page)):
        (out / name).write_text(make(fleet, footer), encoding="utf-8")
        sizes[name] = (out / name).stat().st_size
    return Site(out, fleet, sizes)
