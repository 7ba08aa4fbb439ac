"""The perf result store: one row per timed series, as parquet.

Rows live under rows/<run_id>/, one small file per series (suite, case_id, provider), written at once
with an atomic rename: a case writes an `error` row when it starts and its finished row replaces it, so
a worker that dies loses nothing it finished and leaves `error` (never `ok`) for the case it died in.
The session's end merges them into one file per run (perf-<run_id>.parquet). A run id's folder is
claimed by the session that made it, so a reused id never merges an earlier run's rows. Columns:
docs/PERF_SCHEMA.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

from .. import ids
from .validate import PerfInputError, check_rows, read_parquet

# name -> pandas dtype. Order is the file's column order.
SCHEMA: dict[str, str] = {
    "run_id": "string", "timestamp": "string", "git_sha": "string", "sku": "string",
    "fingerprint_id": "string", "gpu_name": "string", "cc": "string", "sm_count": "Int64",
    "driver": "string", "cuda": "string", "torch": "string", "cutlass_dsl": "string", "dsl_cuda": "string",
    "emulated_sku": "string", "suite": "string", "case_id": "string", "provider": "string", "provider_origin": "string",
    "params": "string", "config": "string",
    "median_us": "float64", "p25_us": "float64", "p75_us": "float64", "min_us": "float64",
    "n_samples": "Int64", "stdrel": "float64", "timer_mode": "string",
    "bytes": "Int64", "flops": "Int64", "gbps": "float64", "tflops": "float64",
    "ceiling": "string", "ceiling_value": "float64", "pct_of_ceiling": "float64", "pct_of_datasheet": "float64",
    "host_us": "float64", "host_peer_us": "float64", "same_work": "string", "same_work_us": "float64",
    "sm_clock_mhz": "Int64", "throttled": "boolean", "throttle_reasons": "string", "status": "string",
    "error": "string",
}
CLAIM = "claim.json"  # rows/<run_id>/claim.json: which process started the run


class RunIdTaken(ValueError):
    """The run id's rows folder (or merged file) already exists: an earlier run used this id."""


def series_key(suite: str, case_id: str, provider: str) -> str:
    return f"{suite}|{case_id}|{provider}"


def rows_dir(results_dir: Path, run_id: str) -> Path:
    return Path(results_dir) / "rows" / ids.check_id(run_id, "run id")


def row_path(results_dir: Path, row: dict[str, Any]) -> Path:
    """One file per series: a later write of the same series replaces the earlier one."""
    digest = hashlib.sha256(series_key(row["suite"], row["case_id"], row["provider"]).encode()).hexdigest()[:24]
    return rows_dir(results_dir, row["run_id"]) / f"{digest}.parquet"


def claim_run(results_dir: Path, run_id: str) -> Path:
    """Create rows/<run_id>/ for this session, or RunIdTaken when a run with this id already wrote
    there (its rows would otherwise be merged into this run's file)."""
    d = rows_dir(results_dir, run_id)
    merged = Path(results_dir) / f"perf-{run_id}.parquet"
    d.parent.mkdir(parents=True, exist_ok=True)
    try:
        if merged.exists():
            raise FileExistsError
        d.mkdir()
    except FileExistsError:
        raise RunIdTaken(f"run id '{run_id}' was already used in {results_dir} ({d if d.exists() else merged} exists): "
                         "unset GPUHIL_RUN_ID for a fresh id, or give another --results-dir") from None
    (d / CLAIM).write_text(json.dumps({"run_id": run_id, "pid": os.getpid(), "host": platform.node(),
                                       "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}))
    return d


def _frame(rows: list[dict[str, Any]]):
    import pandas as pd

    unknown = set().union(*(r.keys() for r in rows)) - set(SCHEMA) if rows else set()
    if unknown:
        raise ValueError(f"perf rows have columns outside the schema: {sorted(unknown)}")
    df = pd.DataFrame([{k: r.get(k) for k in SCHEMA} for r in rows], columns=list(SCHEMA))
    return df.astype(SCHEMA)


def write_row(results_dir: Path, row: dict[str, Any]) -> Path:
    """Write (or replace) one series' row now, atomically, before the next case starts."""
    path = row_path(results_dir, row)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
    _frame([row]).to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def remove_row(results_dir: Path, row: dict[str, Any]) -> None:
    row_path(results_dir, row).unlink(missing_ok=True)


def merge(results_dir: Path, run_id: str) -> Path | None:
    """One parquet per run from every worker's rows; returns its path (None when nothing was timed)."""
    import pandas as pd

    parts = sorted(rows_dir(results_dir, run_id).glob("*.parquet"))  # this run's rows only
    if not parts:
        return None
    df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True).astype(SCHEMA)
    out = Path(results_dir) / f"perf-{run_id}.parquet"
    df.to_parquet(out, index=False)
    return out


def read(path: Path) -> list[dict[str, Any]]:
    """A run's rows, checked (validate.check_rows): a perf-*.parquet file, or a results dir holding one
    (or one run's unmerged rows). Anything malformed is a one-line PerfInputError."""
    path = Path(path)
    if not path.exists():
        raise PerfInputError(f"{path}: no such file or directory")
    if not path.is_dir():
        return check_rows(read_parquet(path), path, SCHEMA)
    merged = sorted(path.glob("perf-*.parquet"))
    if len(merged) > 1:
        raise PerfInputError(f"{path}: {len(merged)} runs ({', '.join(p.name for p in merged)}); name one file")
    if merged:
        return check_rows(read_parquet(merged[0]), merged[0], SCHEMA)
    if any(path.glob("*.parquet")):  # a run's rows folder itself: rows/<run_id>/
        runs = [path]
    else:
        runs = [d for d in sorted(path.glob("rows/*")) if d.is_dir() and any(d.glob("*.parquet"))]
    if not runs:
        raise PerfInputError(f"{path}: no perf-*.parquet and no unmerged rows under rows/ (was the run made with --perf?)")
    if len(runs) > 1:
        raise PerfInputError(f"{path}: no perf-*.parquet and {len(runs)} unmerged runs under rows/ "
                             f"({', '.join(d.name for d in runs)}); name one of them")
    import pandas as pd

    parts = sorted(runs[0].glob("*.parquet"))
    return check_rows(pd.concat([read_parquet(p) for p in parts], ignore_index=True), runs[0], SCHEMA)
