"""What the dashboard says, computed once from the history (no HTML here): per series its change
points, epoch boundaries, baseline band and latest verdict; per machine its last run, new regressions
and improvements, epoch changes and missing series. Acknowledged regressions and expected changes
(baselines/acknowledged.yaml beside the baselines) are applied as `gpuhil perf compare` applies them,
as of `today`: the date the build is given, else the day of the history's latest run."""

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
    ack_state: str = ""  # acknowledged | expected | expired: an entry of acknowledged.yaml covers its first run after
    ack: str = ""  # that entry's label, or why it no longer holds

    @property
    def open(self) -> bool:
        """A regression nobody has accepted (or whose acceptance ran out)."""
        return self.kind == "regression" and self.ack_state not in ("acknowledged", "expected")

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
    acks: list = field(default_factory=list)  # entries of acknowledged.yaml for this series on its machine


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


def _acknowledgements(root: Path | None, today: dt.date) -> list:
    if root is None:
        return []
    from ..perf import acknowledged
    from ..perf.validate import PerfInputError

    try:
        return acknowledged.load(Path(root) / acknowledged.FILE, today)
    except PerfInputError as exc:
        raise HistoryError(str(exc)) from None


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


def _row(s: Series, p) -> dict[str, Any]:
    """A history point as the verdict rule reads a run's row."""
    return {"suite": s.suite, "case_id": s.case_id, "provider": s.provider, "status": "ok", "median_us": p.median_us,
            "p25_us": p.p25_us, "p75_us": p.p75_us, "fingerprint_id": p.fingerprint_id, "git_sha": p.git_sha,
            "timestamp": p.timestamp}


def _band(view: SeriesView, baseline, today: dt.date) -> None:
    """The verdict rule's SAME band of the baseline, for the series' current fingerprint (and, after an
    expected change that covers the latest run, of the entries after it)."""
    from ..perf import acknowledged
    from ..perf.baseline import judge

    s = view.series
    if baseline is None or not s.points:
        return
    last = s.points[-1]
    entries = baseline.series.get(s.key, [])
    change = acknowledged.reset(view.acks, _row(s, last), today)
    if change is not None:
        entries = acknowledged.after_change(change, entries)
        if not entries:
            view.band_note = f"{change.label}: no baseline entry after it yet"
            return
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


def _latest_verdict(view: SeriesView, today: dt.date):
    """The verdict rule for the latest run against the runs of its segment (since the last change), with
    the series' acknowledgements applied as the gate applies them."""
    from ..perf import acknowledged
    from ..perf.baseline import HISTORY, Entry

    pts = view.series.points
    start = view.changes[-1].index if view.changes else 0
    history = [Entry(p.run_id, p.timestamp, p.fingerprint_id, p.git_sha, p.median_us, p.p25_us, p.p75_us)
               for p in pts[start:-1]][-HISTORY:]
    return acknowledged.verdict(history, _row(view.series, pts[-1]), view.acks, today)


def _acknowledge(f: Finding, view: SeriesView, after, today: dt.date) -> Finding:
    """Mark a finding an entry of acknowledged.yaml covers: a regression an acknowledgement or an expected
    change covers, an improvement an expected change covers; an expired entry says it expired."""
    kinds = ("acknowledged", "expected") if f.kind == "regression" else ("expected",)
    covering = [a for a in view.acks if a.kind in kinds and a.covers(after.fingerprint_id, after.git_sha, after.timestamp)]
    live = next((a for a in covering if a.active(today)), None)
    if live is not None:
        f.ack_state, f.ack = live.kind, live.label
    elif covering:
        gone = covering[0]
        f.ack_state, f.ack = "expired", f"{gone.kind} entry expired on {gone.until} ({gone.reason}, {gone.who})"
    return f


def _finding(s: Series, c: ChangePoint, evidence: str) -> Finding:
    note = ", ".join(f"{f} {o} -> {n}" for f, o, n in c.fingerprint_change)
    return Finding(s.machine, s, c.kind, c.ratio, c.before.run_id, c.after.run_id, c.before.git_sha,
                   c.after.git_sha, evidence, note)


def analyze(history_dir: Path, baselines_dir: Path | None = None, *, new_window: int = NEW_WINDOW,
            today: dt.date | None = None) -> Fleet:
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
    today = today or dt.datetime.fromisoformat(str(runs["timestamp"].max())).date()
    acks = _acknowledgements(baselines_dir, today)

    views = []
    for s in series:
        view = SeriesView(s, detect(s.points), epoch_boundaries(s.points),
                          acks=[a for a in acks if a.sku == s.machine and a.series == s.key])
        _band(view, baselines.get(s.machine), today)
        mach = machines[s.machine]
        recent = set(mach.perf_runs[-new_window:])
        cps_new = [c for c in view.changes if c.after.run_id in recent]
        for c in cps_new:
            after = len(s.points) - c.index
            f = _finding(s, c, f"change point, {after} run{'s' if after != 1 else ''} since")
            (mach.epochs if c.kind == "epoch" else mach.findings).append(_acknowledge(f, view, c.after, today))
        if s.points and mach.last_perf_run and s.points[-1].run_id == mach.last_perf_run["run_id"]:
            view.latest = _latest_verdict(view, today)
            if view.latest.verdict in ("SLOW", "ACK", "FAST") and not any(c.kind != "epoch" for c in cps_new):
                prev = s.points[-2]
                mach.findings.append(_acknowledge(Finding(
                    s.machine, s, "improvement" if view.latest.verdict == "FAST" else "regression",
                    view.latest.ratio, prev.run_id, s.points[-1].run_id, prev.git_sha, s.points[-1].git_sha,
                    "latest run only (verdict rule; a change point needs 2 runs)",
                    f"threshold {view.latest.threshold:.1%}"), view, s.points[-1], today))
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
