"""Per-SKU baselines and noise-aware verdicts.

A series is (suite, case_id, provider) on one SKU. Its baseline is a bounded history of run medians,
each tagged with the fingerprint it was measured under; only entries of the current fingerprint are
compared (a new driver, torch, DSL or payload starts a new epoch and is reported as EPOCH, never as a
regression). The rule (docs/PERF_SCHEMA.md):

    center    = median of the history's medians
    noise     = max(1.4826 * MAD(history) / center, current run's IQR / 1.349 / median,
                    2.5 % while the epoch has fewer than 3 runs)
    threshold = max(floor, k * noise)                        (defaults: floor 5 %, k 4)
    ratio     = current median / center
    ERROR     the case crashed or raised: its row has status `error` and no valid timing
    INVALID   current case throttled or clock-dropped: never SLOW
    AMBG      the history is bimodal and this run sits on its upper mode: not a new regression
    SLOW      ratio > 1 + threshold;  FAST  ratio < 1 - threshold;  SAME  otherwise
    MISSING   (compare) in the baseline, no row in the run

baselines/acknowledged.yaml adds two, through acknowledged.verdict around `judge` (same rule): ACK, a
SLOW an acknowledgement covers until its date; EXPECTED, a run after an expected change while the
baseline holds no entry after it (with such entries, the run is judged against them alone).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

from .. import atomic, ids
from .store import series_key
from .validate import STATUSES, PerfInputError, check_baseline, read_baseline, timing_problem

FLOOR = 0.05
K = 4.0
YOUNG = 3  # runs in an epoch below which the series' own spread is not yet known
YOUNG_NOISE = 0.025  # assumed run-to-run noise until then (threshold 10 %): an A/A pair on an H100 differed by 7.8 %
HISTORY = 20  # runs kept per series and epoch
# ACK and EXPECTED come from baselines/acknowledged.yaml (perf/acknowledged.py): a SLOW a current
# acknowledgement covers, and a run after an expected change before any baseline entry after it.
VERDICTS = ("SAME", "FAST", "SLOW", "ACK", "EXPECTED", "AMBG", "INVALID", "ERROR", "EPOCH", "NEW", "MISSING")


@dataclass(frozen=True)
class Entry:
    run_id: str
    timestamp: str
    fingerprint_id: str
    git_sha: str
    median_us: float
    p25_us: float
    p75_us: float


@dataclass(frozen=True)
class Verdict:
    series: str
    verdict: str
    baseline_us: float | None
    current_us: float | None
    ratio: float | None
    threshold: float | None
    note: str


def _mad_rel(xs: list[float]) -> float:
    if len(xs) < 2:
        return 0.0
    c = statistics.median(xs)
    return 1.4826 * statistics.median(abs(x - c) for x in xs) / c


def _bimodal(xs: list[float], threshold: float) -> tuple[float, float] | None:
    """Two clusters, each at least two runs, split by a gap wider than the threshold: their centers."""
    s = sorted(xs)
    for i in range(2, len(s) - 1):
        lo, hi = s[:i], s[i:]
        if len(hi) >= 2 and (hi[0] - lo[-1]) / statistics.median(s) > threshold:
            return statistics.median(lo), statistics.median(hi)
    return None


def unusable(current: dict[str, Any]) -> Verdict | None:
    """ERROR or INVALID for a row without a timing any verdict may use (baselines and goals alike).
    Any value is judged: a row that is not a measurement (unknown status, a timing that is not
    positive and finite, quantiles out of order) is ERROR."""
    key = series_key(current.get("suite"), current.get("case_id"), current.get("provider"))
    status = current.get("status")
    if status == "error":
        return Verdict(key, "ERROR", None, None, None, None, current.get("error") or "the case did not finish")
    if status not in STATUSES:
        return Verdict(key, "ERROR", None, None, None, None, f"not a measurement: status {status!r}")
    problem = timing_problem(current.get("median_us"), current.get("p25_us"), current.get("p75_us"))
    if problem:
        return Verdict(key, "ERROR", None, None, None, None, f"not a measurement: {problem}")
    if status != "ok" or current.get("throttled"):
        reason = current.get("throttle_reasons") or status
        return Verdict(key, "INVALID", None, current.get("median_us"), None, None, f"not comparable: {reason}")
    return None


def judge(history: list[Entry], current: dict[str, Any], *, floor: float = FLOOR, k: float = K) -> Verdict:
    """The verdict of one row against its series' history; history entries that are not
    measurements are left out, never divided by."""
    key = series_key(current.get("suite"), current.get("case_id"), current.get("provider"))
    cur = current.get("median_us")
    refused = unusable(current)
    if refused is not None:
        return refused
    history = [e for e in history if timing_problem(e.median_us, e.p25_us, e.p75_us) is None]
    if not history:
        return Verdict(key, "NEW", None, cur, None, None, "no baseline for this series")
    same_epoch = [e for e in history if e.fingerprint_id == current.get("fingerprint_id")]
    if not same_epoch:
        return Verdict(key, "EPOCH", history[-1].median_us, cur, None, None,
                       f"fingerprint {history[-1].fingerprint_id} -> {current.get('fingerprint_id')}: new baseline epoch")
    medians = [e.median_us for e in same_epoch]
    center = statistics.median(medians)
    own = (current["p75_us"] - current["p25_us"]) / 1.349 / cur
    prior = YOUNG_NOISE if len(medians) < YOUNG else 0.0
    threshold = max(floor, k * max(_mad_rel(medians), own, prior))
    ratio = cur / center
    modes = _bimodal(medians, threshold)
    if modes and ratio > 1 + threshold and abs(cur / modes[1] - 1) <= threshold:
        return Verdict(key, "AMBG", center, cur, ratio, threshold,
                       f"history is bimodal ({modes[0]:.2f} / {modes[1]:.2f} us) and this run sits on the upper mode")
    verdict = "SLOW" if ratio > 1 + threshold else "FAST" if ratio < 1 - threshold else "SAME"
    return Verdict(key, verdict, center, cur, ratio, threshold, f"{len(medians)} run(s) in this epoch")


class Baseline:
    """One SKU's folder, baselines/<sku>/<suite>.json: series -> bounded history of entries. Files are
    checked as they load (validate.read_baseline): a malformed one is a PerfInputError."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.series: dict[str, list[Entry]] = {}
        self.files: dict[str, Path] = {}  # series -> the file it came from
        self.dropped = 0  # entries before an expected change, left out by add_run
        for f in sorted(self.dir.glob("*.json")) if self.dir.is_dir() else []:
            for key, entries in read_baseline(f).items():
                self.series[key] = [Entry(**e) for e in entries]
                self.files[key] = f

    def history(self, row: dict[str, Any]) -> list[Entry]:
        return self.series.get(series_key(row["suite"], row["case_id"], row["provider"]), [])

    def missing(self, rows: list[dict[str, Any]]) -> list[Verdict]:
        """MISSING for every baseline series the run has no row for (a crash, a deselection, a rename)."""
        present = {series_key(r["suite"], r["case_id"], r["provider"]) for r in rows}
        out = []
        for key in sorted(set(self.series) - present):
            hist = self.series[key]
            epoch = [e.median_us for e in hist if e.fingerprint_id == hist[-1].fingerprint_id]
            out.append(Verdict(key, "MISSING", statistics.median(epoch), None, None, None,
                               f"in {self.files[key]}, no row in this run"))
        return out

    def add_run(self, rows: list[dict[str, Any]], *,
                keep_after: Callable[[str, Entry], Callable[[Entry], bool] | None] | None = None) -> tuple[int, int]:
        """Promote a run's valid rows; returns (promoted, already there). Promotion is idempotent per run
        id: a row whose run is already an entry of its series is not added again (a CI retry would
        otherwise count one run several times and shrink the noise estimate); the same run id with
        another timing is refused. A new fingerprint keeps only its own epoch going forward, and so does
        an expected change: `keep_after(series, new entry)` says which entries to keep when one covers
        the new entry (acknowledged.resetter); `self.dropped` counts the entries left behind that way."""
        added = already = 0
        for r in rows:
            if r.get("status") != "ok" or r.get("throttled"):
                continue
            key = series_key(r["suite"], r["case_id"], r["provider"])
            new = Entry(r["run_id"], r["timestamp"], r["fingerprint_id"], r["git_sha"] or "",
                        float(r["median_us"]), float(r["p25_us"]), float(r["p75_us"]))
            hist = self.series.setdefault(key, [])
            old = next((e for e in hist if e.run_id == new.run_id), None)
            if old == new:
                already += 1
                continue
            if old is not None:
                raise PerfInputError(f"{self.files.get(key, self.dir)}: series {key!r} already holds run {new.run_id!r} "
                                     f"with median {old.median_us} us, this row has {new.median_us} us: a run id is "
                                     "promoted once")
            if hist and hist[-1].fingerprint_id != new.fingerprint_id:
                hist[:] = [e for e in hist if e.fingerprint_id == new.fingerprint_id]
            keep = keep_after(key, new) if keep_after else None
            if keep is not None:
                before = len(hist)
                hist[:] = [e for e in hist if keep(e)]
                self.dropped += before - len(hist)
            hist.append(new)
            del hist[:-HISTORY]
            added += 1
        return added, already

    def save(self) -> list[Path]:
        """Write each suite's file atomically (temp + rename), after checking that it reads back: a
        killed process leaves the old file or the new one, and no file is written that compare refuses."""
        by_suite: dict[str, dict[str, list[dict]]] = {}
        for key, entries in sorted(self.series.items()):
            by_suite.setdefault(key.split("|", 1)[0], {})[key] = [asdict(e) for e in entries]
        docs = {}
        for suite, series in by_suite.items():
            p = self.dir / f"{ids.check_id(suite, 'suite')}.json"  # rows were checked; this is the last guard
            docs[p] = json.dumps({"schema": 1, "rule": "see docs/PERF_SCHEMA.md", "series": series}, indent=1) + "\n"
            check_baseline(p, docs[p])
        self.dir.mkdir(parents=True, exist_ok=True)
        for p, text in docs.items():
            atomic.write_text(p, text)
        return list(docs)
