"""Perf rows as the perf fixture writes them, for the bench's table and goal tests (CPU)."""

import datetime as dt
import json

from fake_runs import SOFTWARE, perf_row, probe_doc

STARTED = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.timezone.utc)
PROBE = probe_doc("h100", SOFTWARE, "0" * 40)
CEILINGS = {"read stream": 3200.0, "launch floor": 1.8, "fp8 GEMM via torch": 1400.0, "bf16 GEMM via torch": 700.0}


def row(suite: str, test: str, provider: str, median: float | None, *, params: dict, pct: float | None = None,
        ceiling: str = "read stream", config: str | None = None, host: float | None = None,
        host_peer: float | None = None, same_work_us: float | None = None, status: str = "ok",
        error: str | None = None) -> dict:
    """One row; `pct` is its % of roofline (the ceiling that sets its roofline is `ceiling`)."""
    label = "-".join([provider, *map(str, params.values())])
    r = perf_row("20261122T030000-4242", STARTED, "h100", PROBE, None, suite,
                 f"suites/{suite}/test_{suite}_perf.py::{test}[{label}]", provider, median or 1.0,
                 throttled=status == "throttled")
    r.update(params=json.dumps({k: str(v) for k, v in params.items()}, sort_keys=True), config=config, host_us=host,
             host_peer_us=host_peer,
             ceiling=ceiling, ceiling_value=CEILINGS[ceiling], pct_of_ceiling=pct,
             same_work=None if same_work_us is None else
             ("copy of the same bytes" if ceiling == "read stream" else "dense fp8 GEMM of the same FLOPs"),
             same_work_us=same_work_us)
    if pct is not None and ceiling != "launch floor":  # the rate that % of the ceiling means
        r["gbps" if ceiling == "read stream" else "tflops"] = CEILINGS[ceiling] * pct / 100
    if status == "error":
        r.update(status="error", error=error, median_us=None, p25_us=None, p75_us=None, min_us=None, pct_of_ceiling=None)
    return r


def argmax(provider: str, m: int, n: int, median: float | None, pct: float | None = None, **kw) -> dict:
    return row("argmax", "test_argmax_perf", provider, median, params={"m": m, "n": n}, pct=pct, **kw)


def gemm(provider: str, problem: str, median: float, pct: float, **kw) -> dict:
    return row("fp8_grouped_gemm", "test_grouped_gemm_perf", provider, median, params={"problem": problem}, pct=pct, **kw)
