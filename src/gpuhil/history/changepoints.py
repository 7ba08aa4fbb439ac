"""Change points in a perf series, found by the `ruptures` library, labelled for a GPU fleet.

Segmentation is ruptures' binary segmentation (`Binseg`, the family E-divisive belongs to) with the L1
cost (segment medians: one wild run cannot make a segment of its own the way it does under a squared
cost). The series is taken in log space (a step is a ratio, whatever the case's scale) and divided by
its own noise, estimated from successive differences (1.4826 x MAD / sqrt 2, which a step moves by one
difference only), so the penalty means the same for a 5 us argmax and a 2 ms GEMM:

    penalty = PENALTY x ln(n),  segments of at least MIN_SIZE runs,  the last WINDOW valid runs.

A change smaller than MIN_EFFECT (the verdict rule's 5 % floor) is dropped: it may be real, but nobody
acts on it. What is left is labelled:
  - epoch:       the fingerprint (driver, CUDA, torch, CuTe DSL, payload, device) changed within one run
                 of the change: a new baseline epoch, not a regression;
  - regression:  median after / median before > 1 (slower);
  - improvement: < 1.
Calibration (60-run series, fixed seeds, tests/test_changepoints.py): noise alone gave no change point
in 600 series each of Gaussian 1, 2, 5 % and Student-t(3) 3, 5 % noise, and 1 in 3000 at Gaussian 5 %
(a 5.1 % "step", just over the floor); a +15 % step at run 30 was found exactly at run 30 in 100 % of
seeds at 2 % noise and 97.5 % under heavy-tailed 3 % noise; at 5 % noise (the step is 3 sigma) 81 % at
run 30, 95 % within one run, 1 of 200 missed. A change needs MIN_SIZE runs after it, so the latest run
alone is judged by the verdict rule (gpuhil.perf.baseline.judge), not here.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from ..perf.baseline import FLOOR
from .series import Point

PENALTY = 3.0
MIN_SIZE = 2
MIN_EFFECT = FLOOR
WINDOW = 200  # binary segmentation is near-linear, but a year of nightlies is more than a trend needs
NOISE_FLOOR = 1e-3  # 0.1 %: a series steadier than that is treated as that steady
EPOCH_SLACK = 1  # a step found one run off a fingerprint change is that change


@dataclass(frozen=True)
class ChangePoint:
    index: int  # position in the valid points of the first run after the change
    kind: str  # "regression" | "improvement" | "epoch"
    ratio: float  # median of the segment after / median of the segment before
    before: Point  # last run before the change
    after: Point  # first run after it
    fingerprint_change: tuple[tuple[str, str | None, str | None], ...] = ()  # (field, old, new)

    @property
    def run_range(self) -> str:
        return f"{self.before.run_id} -> {self.after.run_id}"

    @property
    def commit_range(self) -> str:
        return f"{self.before.git_sha[:12] or '?'}..{self.after.git_sha[:12] or '?'}"

    def describe(self) -> str:
        pct = f"{(self.ratio - 1) * 100:+.1f} %"
        if self.kind == "epoch":
            return f"epoch change ({fingerprint_text(self.fingerprint_change)}), {pct}"
        return f"{self.kind} {pct}"


def noise(log_values: Sequence[float]) -> float:
    """Run-to-run noise of a log series from successive differences, robust to steps and outliers."""
    d = [b - a for a, b in pairwise(log_values)]
    if len(d) < 2:
        return NOISE_FLOOR
    c = statistics.median(d)
    return max(1.4826 * statistics.median(abs(x - c) for x in d) / math.sqrt(2), NOISE_FLOOR)


def _ratios(values: Sequence[float], breaks: list[int]) -> list[float]:
    edges = [0, *breaks, len(values)]
    med = [statistics.median(values[a:b]) for a, b in pairwise(edges)]
    return [float(after / before) for before, after in pairwise(med)]


def segment(values: Sequence[float], *, min_effect: float = MIN_EFFECT, penalty: float = PENALTY,
            min_size: int = MIN_SIZE) -> list[int]:
    """Indices where a new level starts (ruptures Binseg, L1 cost), changes under min_effect dropped."""
    import numpy as np
    import ruptures

    n = len(values)
    if n < 2 * min_size or any(not (v > 0) for v in values):
        return []
    z = np.log(np.asarray(values, dtype=float))
    z = (z - np.median(z)) / noise(z)
    algo = ruptures.Binseg(model="l1", min_size=min_size, jump=1).fit(z.reshape(-1, 1))
    breaks = [int(b) for b in algo.predict(pen=penalty * math.log(n))[:-1]]
    while breaks:  # drop the weakest change until every one left is worth acting on
        effects = [abs(r - 1) for r in _ratios(values, breaks)]
        weakest = min(range(len(breaks)), key=effects.__getitem__)
        if effects[weakest] >= min_effect:
            break
        del breaks[weakest]
    return breaks


def fingerprint_diff(a: Point, b: Point) -> tuple[tuple[str, str | None, str | None], ...]:
    """What changed between two runs' fingerprints; the device part when no software field did."""
    if a.fingerprint_id == b.fingerprint_id:
        return ()
    old, new = dict(a.software), dict(b.software)
    changed = tuple((f, old.get(f), new.get(f)) for f in old if old.get(f) != new.get(f))
    return changed or (("device", a.fingerprint_id, b.fingerprint_id),)


def fingerprint_text(change: tuple[tuple[str, str | None, str | None], ...]) -> str:
    return ", ".join(f"{f} {o} -> {n}" for f, o, n in change)


def epoch_boundaries(points: Sequence[Point]) -> list[int]:
    """Indices of the first valid run under a new fingerprint."""
    return [i for i in range(1, len(points)) if points[i].fingerprint_id != points[i - 1].fingerprint_id]


def detect(points: Sequence[Point], *, min_effect: float = MIN_EFFECT, penalty: float = PENALTY,
           min_size: int = MIN_SIZE, window: int = WINDOW) -> list[ChangePoint]:
    """Change points of a series' valid points (in run order), each labelled regression/improvement/epoch."""
    offset = max(0, len(points) - window)
    pts = list(points[offset:])
    if not pts:  # every run of the series was invalid (throttled, errored): nothing to compare
        return []
    values = [float(p.median_us) for p in pts]
    breaks = segment(values, min_effect=min_effect, penalty=penalty, min_size=min_size)
    epochs = epoch_boundaries(pts)
    snapped: dict[int, bool] = {}
    for b in breaks:
        near = [e for e in epochs if abs(e - b) <= EPOCH_SLACK]
        at = min(near, key=lambda e: abs(e - b)) if near else b
        snapped[at] = snapped.get(at, False) or bool(near)
    breaks = sorted(snapped)
    out = []
    for b, ratio in zip(breaks, _ratios(values, breaks)):
        change = fingerprint_diff(pts[b - 1], pts[b]) if snapped[b] else ()
        kind = "epoch" if change else "regression" if ratio > 1 else "improvement"
        out.append(ChangePoint(b + offset, kind, ratio, pts[b - 1], pts[b], change))
    return out
