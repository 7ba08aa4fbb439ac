"""The perf result store: one row per timed case, as parquet.

Each worker writes every finished case to its own small file at once (rows/<worker>/<seq>.parquet),
so a worker that dies loses nothing it finished; the session's end merges them into one file per run
(perf-<run_id>.parquet). The columns are documented in docs/PERF_SCHEMA.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# name -> pandas dtype. Order is the file's column order.
SCHEMA: dict[str, str] = {
    "run_id": "string", "timestamp": "string", "git_sha": "string", "sku": "string",
    "fingerprint_id": "string", "gpu_name": "string", "cc": "string", "sm_count": "Int64",
    "driver": "string", "cuda": "string", "torch": "string", "cutlass_dsl": "string", "dsl_cuda": "string",
    "emulated_sku": "string", "suite": "string", "case_id": "string", "provider": "string",
    "median_us": "float64", "p25_us": "float64", "p75_us": "float64", "min_us": "float64",
    "n_samples": "Int64", "stdrel": "float64", "timer_mode": "string",
    "bytes": "Int64", "flops": "Int64", "gbps": "float64", "tflops": "float64",
    "ceiling": "string", "ceiling_value": "float64", "pct_of_ceiling": "float64", "pct_of_datasheet": "float64",
    "sm_clock_mhz": "Int64", "throttled": "boolean", "throttle_reasons": "string", "status": "string",
}


def _frame(rows: list[dict[str, Any]]):
    import pandas as pd

    unknown = set().union(*(r.keys() for r in rows)) - set(SCHEMA) if rows else set()
    if unknown:
        raise ValueError(f"perf rows have columns outside the schema: {sorted(unknown)}")
    df = pd.DataFrame([{k: r.get(k) for k in SCHEMA} for r in rows], columns=list(SCHEMA))
    return df.astype(SCHEMA)


def write_row(results_dir: Path, worker: str, seq: int, row: dict[str, Any]) -> Path:
    """Write one finished case now (atomic rename), before the next one starts."""
    d = Path(results_dir) / "rows" / str(row["run_id"]) / worker
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{seq:06d}.parquet"
    tmp = path.with_suffix(".tmp")
    _frame([row]).to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def merge(results_dir: Path, run_id: str) -> Path | None:
    """One parquet per run from every worker's rows; returns its path (None when nothing was timed)."""
    import pandas as pd

    parts = sorted((Path(results_dir) / "rows" / run_id).glob("*/*.parquet"))  # this run's rows only
    if not parts:
        return None
    df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True).astype(SCHEMA)
    out = Path(results_dir) / f"perf-{run_id}.parquet"
    df.to_parquet(out, index=False)
    return out


def read(path: Path):
    """A run's rows: a perf-*.parquet file, or a results dir holding one (or unmerged rows)."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        merged = sorted(path.glob("perf-*.parquet"))
        if len(merged) > 1:
            raise FileNotFoundError(f"{path}: {len(merged)} runs ({', '.join(p.name for p in merged)}); name one file")
        if merged:
            return pd.read_parquet(merged[0])
        runs = sorted(d for d in path.glob("rows/*") if d.is_dir())
        if len(runs) != 1:
            raise FileNotFoundError(f"{path}: no perf-*.parquet and {'no' if not runs else len(runs)} unmerged runs "
                                    "under rows/ (was the run made with --perf?)")
        return pd.concat([pd.read_parquet(p) for p in sorted(runs[0].glob("*/*.parquet"))], ignore_index=True)
    return pd.read_parquet(path)
