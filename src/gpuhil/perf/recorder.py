"""Turns perf-marked cases into result rows: times them, sets them against ceilings measured in the
same run and the catalog's datasheet peaks, and writes each row as soon as the case is done."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import ceilings, store
from .timer import Timer


class PerfRecorder:
    def __init__(self, results_dir: Path, ctx, worker: str, run_id: str) -> None:
        self.results_dir, self.ctx, self.worker, self.run_id = Path(results_dir), ctx, worker, run_id
        self._timer: Timer | None = None
        self.seq = 0

    @property
    def timer(self) -> Timer:
        if self._timer is None:
            self._timer = Timer(l2_bytes=self.ctx.caps.l2_bytes, uuid=self.ctx.fingerprint.uuid)
        return self._timer

    def measure_ceilings(self) -> dict[str, float]:
        """All ceilings of this run, measured once and kept beside the rows (ceilings-<worker>.json)."""
        if not hasattr(self, "_ceilings"):
            import json

            self._ceilings = {"copy_gbps": ceilings.copy_gbps(self.timer),
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

    def record(self, *, suite: str, case_id: str, provider: str, fns: Sequence[Callable[[], object]],
               bytes: int | None = None, flops: int | None = None, flops_kind: str = "fp8") -> dict[str, Any]:
        """Time `fns` (rotating input sets, graph mode) and write the row. Bytes-bound cases are set
        against the copy ceiling and the datasheet bandwidth, FLOP-bound ones against a torch GEMM."""
        ceil = self.measure_ceilings()  # before the case: the first call allocates and warms the GPU
        t = self.timer.graph(fns)
        sku = self.ctx.sku
        row = {**self._base(), "suite": suite, "case_id": case_id, "provider": provider,
               "median_us": t.median_us, "p25_us": t.p25_us, "p75_us": t.p75_us, "min_us": t.min_us,
               "n_samples": t.n_samples, "stdrel": t.stdrel, "timer_mode": t.mode, "bytes": bytes, "flops": flops,
               "sm_clock_mhz": t.sm_clock_mhz, "throttled": t.throttled,
               "throttle_reasons": ",".join(t.throttle_reasons), "status": "throttled" if t.throttled else "ok"}
        seconds = t.median_us * 1e-6
        if bytes:
            row["gbps"] = bytes / seconds / 1e9
        if flops:
            row["tflops"] = flops / seconds / 1e12
            value = ceil[f"{flops_kind}_gemm_tflops"]
            peak = getattr(sku.peak_tflops, flops_kind, None) if sku else None
            row.update(ceiling=f"{flops_kind} GEMM via torch", ceiling_value=value,
                       pct_of_ceiling=100 * row["tflops"] / value,
                       pct_of_datasheet=100 * row["tflops"] / peak if peak else None)
        elif bytes:
            value = ceil["copy_gbps"]
            row.update(ceiling="device copy", ceiling_value=value, pct_of_ceiling=100 * row["gbps"] / value,
                       pct_of_datasheet=100 * row["gbps"] / sku.mem_bw_gbs if sku else None)
        self.seq += 1
        store.write_row(self.results_dir, self.worker, self.seq, row)
        return row


def new_run_id() -> str:
    """Shared by every xdist worker of a session through the environment."""
    return os.environ.setdefault("GPUHIL_RUN_ID", dt.datetime.now().strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}")
