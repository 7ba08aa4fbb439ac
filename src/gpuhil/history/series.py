"""Perf history as series: one per (machine, suite, case, provider), its points in run order.

A machine is a native SKU or a SKU emulated on another (`h100-as-h20`): emulated timings form their own
series. Rows that are throttled or not ok are kept apart as invalid points: they are drawn, never
compared, never fed to change-point detection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# Software fields a fingerprint change is explained by, in the order a reader looks for them.
SOFTWARE = ("driver", "cuda", "torch", "cutlass_dsl", "dsl_cuda")


@dataclass(frozen=True)
class Point:
    run_id: str
    timestamp: str  # the run's start (UTC ISO), which orders the series
    git_sha: str
    fingerprint_id: str
    software: tuple[tuple[str, str | None], ...]  # (field, value) for SOFTWARE
    median_us: float
    p25_us: float
    p75_us: float
    valid: bool = True
    status: str = "ok"
    why_invalid: str = ""
    pct_of_ceiling: float | None = None


@dataclass
class Series:
    machine: str
    sku: str
    emulated_sku: str | None
    suite: str
    case_id: str
    provider: str
    points: list[Point] = field(default_factory=list)   # valid, in run order
    invalid: list[Point] = field(default_factory=list)  # throttled or failed, in run order
    last_row: dict[str, Any] = field(default_factory=dict)  # the latest row, valid or not

    @property
    def key(self) -> str:
        """The baseline's series key (suite|case_id|provider), unique within a machine."""
        return f"{self.suite}|{self.case_id}|{self.provider}"

    @property
    def uid(self) -> str:
        return f"{self.machine}|{self.key}"


def _num(v: Any) -> float:
    return float(v) if v is not None and not (isinstance(v, float) and math.isnan(v)) else math.nan


def _none(v: Any) -> Any:
    """None for None, NaN and pandas' NA (frames come with either for a missing value)."""
    import pandas as pd

    return None if v is None or pd.isna(v) else v


def is_valid(row: dict[str, Any]) -> bool:
    return row.get("status") == "ok" and not row.get("throttled") and math.isfinite(_num(row.get("median_us")))


def build(perf, runs) -> list[Series]:
    """Series of every machine from history frames (gpuhil.history.read_perf / read_runs)."""
    import pandas as pd

    if perf.empty:
        return []
    meta = runs[["sku", "run_id", "machine", "timestamp"]].rename(columns={"timestamp": "run_timestamp"})
    df = perf.merge(meta, on=["sku", "run_id"], how="inner")
    df = df.sort_values(["run_timestamp", "run_id", "timestamp"], kind="stable")
    out: dict[tuple, Series] = {}
    for row in df.astype(object).where(pd.notna(df), None).to_dict("records"):
        key = (row["machine"], row["suite"], row["case_id"], row["provider"])
        s = out.get(key)
        if s is None:
            s = out[key] = Series(row["machine"], row["sku"], _none(row["emulated_sku"]), *key[1:])
        valid = is_valid(row)
        reason = "" if valid else (row.get("throttle_reasons") or row.get("status") or "no median")
        p = Point(row["run_id"], row["run_timestamp"], row.get("git_sha") or "", row.get("fingerprint_id") or "",
                  tuple((f, _none(row.get(f))) for f in SOFTWARE), _num(row["median_us"]), _num(row.get("p25_us")),
                  _num(row.get("p75_us")), valid, row.get("status") or "", str(reason),
                  _none(row.get("pct_of_ceiling")))
        target = s.points if valid else s.invalid
        if target and target[-1].run_id == p.run_id:  # a case timed twice in one run: the later row stands
            target[-1] = p
        else:
            target.append(p)
        s.last_row = row
    return sorted(out.values(), key=lambda s: (s.machine, s.suite, s.case_id, s.provider))
