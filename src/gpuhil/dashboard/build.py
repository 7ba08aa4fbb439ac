"""`build(history_dir, out_dir)`: the static site, from a history folder (and baselines, when given)."""

from __future__ import annotations

import shutil
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
    """Write index.html (overview), trends.html, coverage.html, roofline.html, data/ and assets/ into out_dir.

    HistoryError (one line) when the history or a baseline file cannot be read.
    """
    fleet = analyze(Path(history_dir), Path(baselines_dir) if baselines_dir else None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sizes = {f"assets/{k}": v for k, v in assets.write(out).items()}
    footer = (f"{len(fleet.runs)} runs of {len(fleet.machines)} machines, latest {esc(fleet.latest_timestamp)} · "
              f"{len(fleet.views)} series · plotly.js {esc(assets.plotly_version())} · works offline")
    trends_html, data_files = trends.page(fleet, footer)
    shutil.rmtree(out / "data", ignore_errors=True)  # figure files of machines no longer in the history
    files = {"index.html": overview.page(fleet, footer), "trends.html": trends_html,
             "coverage.html": coverage.page(fleet, footer), "roofline.html": roofline.page(fleet, footer), **data_files}
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text, encoding="utf-8")
        sizes[name] = (out / name).stat().st_size
    return Site(out, fleet, sizes)
