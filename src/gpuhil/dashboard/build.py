"""`build(history_dir, out_dir)`: the static site, from a history folder (and baselines, when given).

The site folder is ours only when it carries MARKER, written by the first build into a new or empty
folder; a folder that is not empty and has no marker is refused, never written into. The marker lists
every file a build wrote, and a rebuild removes only files listed there that it no longer writes (the
figure file of a machine gone from the history): nothing else in the folder is touched. Each file is
written to a temporary name and renamed, so a killed build leaves the old file or the new one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .. import atomic
from ..history.ids import HistoryError
from . import assets, compare, coverage, overview, roofline, trends
from .analysis import Fleet, analyze
from .page import esc

MARKER = ".gpuhil-site"
# What a build may write, so a damaged or hand-made marker cannot name a file outside the site to remove.
SITE_FILE = re.compile(r"(index|trends|compare|coverage|roofline)\.html"
                       r"|assets/(plotly\.min\.js|site\.css|site\.js|compare\.js)"
                       r"|data/(trends|runs)-[A-Za-z0-9][A-Za-z0-9._-]*\.js")


@dataclass
class Site:
    root: Path
    fleet: Fleet
    bytes: dict[str, int]  # relative path -> size

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())


def _owned(out: Path) -> set[str]:
    """The files earlier builds wrote into `out` (empty for a new or empty folder), or HistoryError when
    `out` is not ours to write into."""
    if out.exists() and not out.is_dir():
        raise HistoryError(f"{out}: is a file, not a site folder")
    marker = out / MARKER
    if not marker.is_file():
        if out.is_dir() and any(out.iterdir()):
            raise HistoryError(f"{out}: not empty and not a site `gpuhil dashboard build` made (no {MARKER}): "
                               "refusing to write into it; give a new or empty folder")
        return set()
    try:
        doc = json.loads(marker.read_bytes().decode("utf-8"))
        files = doc["files"]
        if not isinstance(files, list) or not all(isinstance(f, str) and SITE_FILE.fullmatch(f) for f in files):
            raise ValueError
    except (ValueError, KeyError, TypeError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise HistoryError(f"{marker}: not a marker `gpuhil dashboard build` wrote (a JSON object whose 'files' "
                           "lists the site's own files)") from None
    return set(files)


def _write(path: Path, data: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, data)
    return path.stat().st_size


def _mark(out: Path, files: set[str]) -> None:
    _write(out / MARKER, json.dumps({"schema": 1, "written_by": "gpuhil dashboard build", "files": sorted(files)},
                                    indent=1) + "\n")


def build(history_dir: Path, out_dir: Path, baselines_dir: Path | None = None, *, today: dt.date | None = None) -> Site:
    """Write index.html (overview), trends.html, compare.html, coverage.html, roofline.html, data/ and assets/
    into out_dir. Acknowledgements (baselines_dir/acknowledged.yaml) hold as of `today` (default: the day of
    the history's latest run).

    HistoryError (one line) when the history or a baseline file cannot be read, or out_dir is not a new,
    empty or earlier site folder. Nothing is written before the history has been read and checked.
    """
    out = Path(out_dir)
    before = _owned(out)
    fleet = analyze(Path(history_dir), Path(baselines_dir) if baselines_dir else None, today=today)
    footer = (f"{len(fleet.runs)} runs of {len(fleet.machines)} machines, latest {esc(fleet.latest_timestamp)} · "
              f"{len(fleet.views)} series · plotly.js {esc(assets.plotly_version())} · works offline")
    trends_html, data_files = trends.page(fleet, footer)
    compare_html, runs_files = compare.page(fleet, footer)
    files = {**{f"assets/{k}": v for k, v in assets.files().items()}, "assets/compare.js": compare.SCRIPT.lstrip(),
             "index.html": overview.page(fleet, footer), "trends.html": trends_html, "compare.html": compare_html,
             "coverage.html": coverage.page(fleet, footer), "roofline.html": roofline.page(fleet, footer), **data_files,
             **runs_files}
    taken = next((name for name in files if (out / name).is_dir()), None)
    if taken:
        raise HistoryError(f"{out / taken}: a folder where the site's file goes: refusing to replace it")
    out.mkdir(parents=True, exist_ok=True)
    _mark(out, before | set(files))  # first: a build killed midway still owns what it wrote
    sizes = {name: _write(out / name, text) for name, text in files.items()}
    for name in sorted(before - set(files)):  # figure files of machines no longer in the history
        (out / name).unlink(missing_ok=True)
    _mark(out, set(files))
    return Site(out, fleet, sizes)
