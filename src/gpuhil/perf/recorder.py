"""Turns perf-marked cases into result rows: times them, sets them against the roofline of the
ceilings measured in the same run (work.py) and the catalog's datasheet peaks, times what else the
case asks for (host time per call beside the peer's, a same-work reference), and writes each row as
soon as the case is done. A case timed above its roofline is written as `error` with the reason
(work.above_roofline): no row shows more than 100 % of a ceiling as if it were a result.

Write-ahead: `start` writes a case's row with status `error` ("started, never finished") before it
runs; `record` replaces it with the timed row; `fail` turns a case's rows to `error` with the
exception's first line. A case that crashes its process leaves `error`, never `ok` and never nothing.
The pytest plugin constructs this while configuring a session, so refusals are pytest.UsageError.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import ids
from . import ceilings, store
from .ceilings import SameWork
from .timer import Timer
from .work import READ, Datasheet, Roofline, Work, above_roofline, roofline

RUN_ID_ENV = "GPUHIL_RUN_ID"
NEVER_FINISHED = "started, never finished (the process died or the case hung: see the test's report)"


def _usage_error(message: str) -> Exception:
    import pytest

    return pytest.UsageError(f"gpuhil: {message}")


class PerfRecorder:
    def __init__(self, results_dir: Path, ctx, worker: str, run_id: str) -> None:
        self.results_dir, self.ctx, self.worker, self.run_id = Path(results_dir), ctx, worker, run_id
        self._timer: Timer | None = None
        self.rows: dict[str, dict[str, Any]] = {}  # series -> the last row this process wrote for it
        self._same_work_us: dict[tuple, float] = {}  # SameWork.key -> its timing in this process
        if worker == "main":  # the controller (or a run without xdist) claims the run's folder once
            try:
                store.claim_run(self.results_dir, run_id)
            except (store.RunIdTaken, ids.InvalidValue) as exc:
                raise _usage_error(str(exc)) from None

    @property
    def timer(self) -> Timer:
        if self._timer is None:
            self._timer = Timer(l2_bytes=self.ctx.caps.l2_bytes, uuid=self.ctx.fingerprint.uuid)
        return self._timer

    def measure_ceilings(self) -> dict[str, float]:
        """All ceilings of this run, measured once and kept beside the rows (ceilings-<worker>.json)."""
        if not hasattr(self, "_ceilings"):
            import json

            self._ceilings = {"read_gbps": ceilings.read_gbps(self.timer), "copy_gbps": ceilings.copy_gbps(self.timer),
                              "launch_us": ceilings.launch_us(self.timer),
                              "bf16_gemm_tflops": ceilings.gemm_tflops(self.timer, "bf16"),
                              "fp8_gemm_tflops": ceilings.gemm_tflops(self.timer, "fp8")}
            self.results_dir.mkdir(parents=True, exist_ok=True)
            (self.results_dir / f"ceilings-{self.worker}.json").write_text(json.dumps(
                {**self._ceilings, "fingerprint_id": self.ctx.fingerprint.fingerprint_id, "run_id": self.run_id}, indent=1))
            self.timer.clocks.settle()  # the GEMM ceilings can leave the power cap engaged for a moment
        return self._ceilings

    def _base(self) -> dict[str, Any]:
        fp, sku = self.ctx.fingerprint, self.ctx.sku
        return {
            "run_id": self.run_id, "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "git_sha": fp.git_sha, "sku": sku.id if sku else "unknown", "fingerprint_id": fp.fingerprint_id,
            "gpu_name": fp.name, "cc": fp.cc, "sm_count": fp.sm_count, "driver": fp.driver_version,
            "cuda": fp.cuda_runtime, "torch": fp.torch, "cutlass_dsl": fp.cutlass_dsl, "dsl_cuda": fp.dsl_cuda,
            "emulated_sku": self.ctx.caps.emulated_sku,
        }

    def _write(self, row: dict[str, Any]) -> dict[str, Any]:
        store.write_row(self.results_dir, row)
        self.rows[store.series_key(row["suite"], row["case_id"], row["provider"])] = row
        return row

    def start(self, *, suite: str, case_id: str, provider: str, params: str | None = None,
              origin: str | None = None) -> str:
        """Write the case's provisional `error` row before it runs; returns its series."""
        row = {**self._base(), "suite": suite, "case_id": case_id, "provider": provider, "provider_origin": origin,
               "params": params,
               "status": "error", "error": NEVER_FINISHED}
        self._write(row)
        return store.series_key(suite, case_id, provider)

    def fail(self, series: list[str], message: str) -> None:
        """The case raised: its rows (provisional or already timed) become `error` with `message`."""
        for key in series:
            if key in self.rows:
                self._write({**self.rows[key], "status": "error", "error": message})

    def discard(self, series: list[str]) -> None:
        """The case was skipped after it started: it leaves no row."""
        for key in series:
            row = self.rows.pop(key, None)
            if row is not None:
                store.remove_row(self.results_dir, row)

    def record(self, *, suite: str, case_id: str, provider: str, fns: Sequence[Callable[[], object]],
               work: Work | None = None, params: str | None = None, config: str | None = None,
               origin: str | None = None, host: bool = False,
               host_peer: Callable[[], object] | None = None, same_work: SameWork | None = None) -> dict[str, Any]:
        """Time `fns` (rotating input sets, graph mode) and write the row. With `work`, the row is set
        against its roofline: the ceiling that allows the longest time (the read stream for bytes, a
        torch GEMM for FLOPs, the launch floor) is its `ceiling`, and `same_work` is timed where it
        shares that ceiling; a case above its roofline is an `error` row saying so. `host`: also time
        the host's share of one call without graphs (fns[0]), interleaved sample by sample with
        `host_peer` (the peer's call of the same op on the same inputs) where one is given."""
        if host_peer is not None and not host:
            raise ValueError("record: host_peer is timed beside the case's host time; pass host=True")
        ceil = self.measure_ceilings()  # before the case: the first call allocates and warms the GPU
        t = self.timer.graph(fns)
        row = {**self._base(), "suite": suite, "case_id": case_id, "provider": provider, "provider_origin": origin,
               "params": params, "config": config, "median_us": t.median_us, "p25_us": t.p25_us, "p75_us": t.p75_us, "min_us": t.min_us,
               "n_samples": t.n_samples, "stdrel": t.stdrel, "timer_mode": t.mode,
               "sm_clock_mhz": t.sm_clock_mhz, "throttled": t.throttled,
               "throttle_reasons": ",".join(t.throttle_reasons), "status": "throttled" if t.throttled else "ok",
               "error": None}
        if host:
            timed = self.timer.host([fns[0], host_peer] if host_peer else [fns[0]])
            row.update(host_us=timed[0], host_peer_us=timed[1] if host_peer else None)
        if work is not None:
            roof = roofline(work, ceil, self._datasheet())
            row.update(self._against_roofline(work, t.median_us, roof))
            above = above_roofline(row["pct_of_ceiling"], roof)
            if above is not None:
                row.update(status="error", error=above)
            if same_work is not None and same_work.ceiling == row["ceiling"]:
                row.update(same_work=same_work.what, same_work_us=self._time_same_work(same_work))
        return self._write(row)

    def _datasheet(self) -> Datasheet | None:
        """The real device's catalog peaks (under emulation too: the emulated SKU's would not bound this
        device's memory), None for a device the catalog does not know."""
        sku = self.ctx.sku
        if sku is None:
            return None
        peaks = {m: v for m in ("fp8", "bf16") if (v := getattr(sku.peak_tflops, m, None))}
        return Datasheet(mem_bw_gbs=sku.mem_bw_gbs, tflops=peaks)

    def _against_roofline(self, work: Work, median_us: float, roof: Roofline) -> dict[str, Any]:
        seconds, sku = median_us * 1e-6, self.ctx.sku
        out: dict[str, Any] = {"bytes": work.bytes, "flops": work.flops or None, "gbps": work.bytes / seconds / 1e9,
                               "ceiling": roof.ceiling, "ceiling_value": roof.value,
                               "pct_of_ceiling": 100 * roof.us / median_us}
        if work.flops:
            out["tflops"] = work.flops / seconds / 1e12
        if roof.throughput == READ:
            peak = sku.mem_bw_gbs if sku else None
            out["pct_of_datasheet"] = 100 * out["gbps"] / peak if peak else None
        else:
            peak = getattr(sku.peak_tflops, work.math, None) if sku else None
            out["pct_of_datasheet"] = 100 * out["tflops"] / peak if peak else None
        return out

    def _time_same_work(self, ref: SameWork) -> float:
        if ref.key not in self._same_work_us:
            self._same_work_us[ref.key] = self.timer.graph(ref.calls(), calls_per_replay=ref.calls_per_replay).median_us
        return self._same_work_us[ref.key]


def new_run_id(environ: dict[str, str] | None = None) -> str:
    """This session's run id: $GPUHIL_RUN_ID when set (a safe identifier: it names rows/<run_id>/), else a
    fresh one (time, pid and a random suffix, so two sessions started in one second differ), put into
    the environment so the xdist workers started later share it."""
    env = os.environ if environ is None else environ
    try:
        given = ids.env_id(RUN_ID_ENV, env)
    except ids.InvalidValue as exc:
        raise _usage_error(str(exc)) from None
    if given is not None:
        return given
    run_id = f"{dt.datetime.now():%Y%m%dT%H%M%S}-{os.getpid()}-{secrets.token_hex(3)}"
    env[RUN_ID_ENV] = run_id
    return run_id
