"""What the dashboard says, computed once from the history (no HTML here): per series its change
points, epoch boundaries, baseline band and latest verdict; per machine its last run, new regressions
and improvements, epoch changes and missing series."""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..history import read_perf, read_runs, read_tests
from ..history.changepoints import ChangePoint, detect, epoch_boundaries
from ..history.ids import HistoryError
from ..history.series import Series, build

NEW_WINDOW = 5  # a change whose first run is among a machine's last 5 perf runs is new


@dataclass(frozen=True)
class Band:
    center_us: float
    threshold: float  # relative: SAME within center x (1 +- threshold)
    runs: int


@dataclass
class Finding:
    """One line of the overview: a change, where it happened and how sure we are of it."""

    machine: str
    series: Series
    kind: str  # regression | improvement | epoch
    ratio: float
    before_run: str
    after_run: str
    before_sha: str
    after_sha: str
    evidence: str
    note: str = ""

    @property
    def commit_range(self) -> str:
        return f"{self.before_sha[:12] or '?'}..{self.after_sha[:12] or '?'}"


@dataclass
class SeriesView:
    series: Series
    changes: list[ChangePoint]
    epochs: list[int]  # indices into series.points of a new fingerprint
    band: Band | None = None
    band_note: str = ""
    latest: Any = None  # gpuhil.perf.baseline.Verdict of the latest run, when it is the machine's last


@dataclass
class Machine:
    name: str
    last_run: dict[str, Any]
    last_perf_run: dict[str, Any] | None
    perf_runs: list[str] = field(default_factory=list)  # run ids in order
    findings: list[Finding] = field(default_factory=list)  # regressions and improvements, newest first
    epochs: list[Finding] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # series keys
    invalid: list[tuple[Series, Any]] = field(default_factory=list)  # (series, point) in the last perf run


@dataclass
class Fleet:
    runs: Any
    tests: Any
    views: list[SeriesView]
    machines: dict[str, Machine]

    @property
    def latest_timestamp(self) -> str:
        return str(self.runs["timestamp"].max()) if len(self.runs) else ""


def _records(df) -> list[dict[str, Any]]:
    import pandas as pd

    return df.astype(object).where(pd.notna(df), None).to_dict("records")


def _baselines(root: Path | None, machines: list[str]) -> dict[str, Any]:
    if root is None:
        return {}
    import json

    from ..perf.baseline import Baseline
    from ..perf.validate import PerfInputError

    if not Path(root).is_dir():
        raise HistoryError(f"{root}: baselines folder does not exist" if not Path(root).exists()
                           else f"{root}: not a folder (--baselines takes the baselines root)")
    out = {}
    for m in machines:
        try:  # Baseline checks each file as it loads and names the bad file and field
            out[m] = Baseline(Path(root) / m)
        except PerfInputError as exc:
            raise HistoryError(str(exc)) from None
    return out


def _band(view: SeriesView, baseline) -> None:
    """The verdict rule's SAME band of the baseline, for the series' current fingerprint."""
    from ..perf.baseline import judge

    s = view.series
    if baseline is None or not s.points:
        return
    last = s.points[-1]
    entries = baseline.series.get(s.key, [])
    same = [e.median_us for e in entries if e.fingerprint_id == last.fingerprint_id]
    if not same:
        view.band_note = "no baseline for this series" if not entries else "baseline is of another fingerprint (epoch)"
        return
    # The rule's threshold from the history alone: judge a run that sits on the center with no spread
    # of its own, and read back the center and threshold the rule used.
    center = statistics.median(same)
    v = judge(entries, {"suite": s.suite, "case_id": s.case_id, "provider": s.provider, "status": "ok",
                        "median_us": center, "p25_us": center, "p75_us": center, "fingerprint_id": last.fingerprint_id})
    view.band = Band(v.baseline_us, v.threshold, len(same))


def _latest_verdict(view: SeriesView):
    """The verdict rule for the latest run against the runs of its segment (since the last change)."""
    from ..perf.baseline import HISTORY, Entry, judge

    pts = view.series.points
    start = view.changes[-1].index if view.changes else 0
    last = pts[-1]
    history = [Entry(p.run_id, p.timestamp, p.fingerprint_id, p.git_sha, p.median_us, p.p25_us, p.p75_us)
               for p in pts[start:-1]][-HISTORY:]
    return judge(history, {"suite": view.series.suite, "case_id": view.series.case_id,
                           "provider": view.series.provider, "status": "ok", "median_us": last.median_us,
                           "p25_us": last.p25_us, "p75_us": last.p75_us, "fingerprint_id": last.fingerprint_id})


def _finding(s: Series, c: ChangePoint, evidence: str) -> Finding:
    note = ", ".join(f"{f} {o} -> {n}" for f, o, n in c.fingerprint_change)
    return Finding(s.machine, s, c.kind, c.ratio, c.before.run_id, c.after.run_id, c.before.git_sha,
                   c.after.git_sha, evidence, note)


def analyze(history_dir: Path, baselines_dir: Path | None = None, *, new_window: int = NEW_WINDOW) -> Fleet:
    history_dir = Path(history_dir)
    if not (history_dir / "runs").is_dir():
        raise HistoryError(f"{history_dir}: no runs/ dataset (not a history folder; fill one with `gpuhil history add`)")
    runs = read_runs(history_dir)
    if runs.empty:
        raise HistoryError(f"{history_dir}: the history holds no runs")
    perf, tests = read_perf(history_dir, runs), read_tests(history_dir, runs)
    series = build(perf, runs)
    run_rows = _records(runs)
    machines: dict[str, Machine] = {}
    for m in sorted({r["machine"] for r in run_rows}):
        mine = [r for r in run_rows if r["machine"] == m]
        perf_runs = [r for r in mine if r["perf_requested"] or r["perf_rows"]]
        machines[m] = Machine(m, mine[-1], perf_runs[-1] if perf_runs else None, [r["run_id"] for r in perf_runs])
    baselines = _baselines(baselines_dir, list(machines))

    views = []
    for s in series:
        view = SeriesView(s, detect(s.points), epoch_boundaries(s.points))
        _band(view, baselines.get(s.machine))
        mach = machines[s.machine]
        recent = set(mach.perf_runs[-new_window:])
        cps_new = [c for c in view.changes if c.after.run_id in recent]
        for c in cps_new:
            after = len(s.points) - c.index
            f = _finding(s, c, f"change point, {after} run{'s' if after != 1 else ''} since")
            (mach.epochs if c.kind == "epoch" else mach.findings).append(f)
        if s.points and mach.last_perf_run and s.points[-1].run_id == mach.last_perf_run["run_id"]:
            view.latest = _latest_verdict(view)
            if view.latest.verdict in ("SLOW", "FAST") and not any(c.kind != "epoch" for c in cps_new):
                prev = s.points[-2]
                mach.findings.append(Finding(
                    s.machine, s, "regression" if view.latest.verdict == "SLOW" else "improvement",
                    view.latest.ratio, prev.run_id, s.points[-1].run_id, prev.git_sha, s.points[-1].git_sha,
                    "latest run only (verdict rule; a change point needs 2 runs)",
                    f"threshold {view.latest.threshold:.1%}"))
        if mach.last_perf_run and any(p.run_id == mach.last_perf_run["run_id"] for p in s.invalid):
            mach.invalid.append((s, next(p for p in s.invalid if p.run_id == mach.last_perf_run["run_id"])))
        views.append(view)

    for m, mach in machines.items():
        if not mach.last_perf_run:
            continue
        last_id = mach.last_perf_run["run_id"]
        prev_id = mach.perf_runs[-2] if len(mach.perf_runs) > 1 else None
        in_last, in_prev = set(), set()
        for s in series:
            if s.machine == m:
                ids = {p.run_id for p in s.points} | {p.run_id for p in s.invalid}
                if last_id in ids:
                    in_last.add(s.key)
                if prev_id in ids:
                    in_prev.add(s.key)
        expected = in_prev | set(baselines[m].series if m in baselines else ())
        mach.missing = sorted(expected - in_last)
        order = {r: i for i, r in enumerate(mach.perf_runs)}
        mach.findings.sort(key=lambda f: (-order.get(f.after_run, -1), -abs(f.ratio - 1)))
        mach.epochs.sort(key=lambda f: -order.get(f.after_run, -1))
    return Fleet(runs, tests, views, machines)


def midpoint(a: str, b: str) -> str:
    """The instant halfway between two ISO timestamps (where a change is drawn on a time axis)."""
    ta, tb = dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b)
    return (ta + (tb - ta) / 2).isoformat()


__all__ = ["Band", "Finding", "Fleet", "Machine", "SeriesView", "analyze", "midpoint"]
