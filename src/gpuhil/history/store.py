"""The history folder: finished runs of every SKU as hive-partitioned parquet datasets (docs/HISTORY.md).

    runs/sku=<sku>/run_id=<run>/run.parquet      one row per run: machine, fingerprint, sha, counts
    perf/sku=<sku>/run_id=<run>/perf.parquet     the run's perf rows (docs/PERF_SCHEMA.md)
    tests/sku=<sku>/run_id=<run>/tests.parquet   one row per test case: outcome and skip/xfail reason
    raw/sku=<sku>/run_id=<run>/                  run.json, probe.json, report.md, junit.xml as the run left them

A run's runs/ partition is written last: it is the commit record, and readers take only the runs it
lists, so an interrupted `add` leaves nothing half-visible and a retry replaces the leftovers.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import junit
from . import results as results_mod
from .ids import HistoryError, check_id

PARTITION = ("sku", "run_id")
RUN_COLUMNS: dict[str, str] = {
    "run_id": "string", "sku": "string", "emulated_sku": "string", "machine": "string", "timestamp": "string",
    "git_sha": "string", "fingerprint_id": "string", "gpu_name": "string", "driver": "string", "cuda": "string",
    "torch": "string", "cutlass_dsl": "string", "dsl_cuda": "string", "perf_requested": "boolean",
    "perf_rows": "Int64", "passed": "Int64", "failed": "Int64", "error": "Int64", "skipped": "Int64",
    "xfailed": "Int64", "result": "string", "detail": "string", "exit_code": "Int64", "source_sha256": "string",
}
TEST_COLUMNS: dict[str, str] = {
    "run_id": "string", "sku": "string", "suite": "string", "test_id": "string", "classname": "string",
    "name": "string", "outcome": "string", "reason": "string", "duration_s": "float64",
}


def _perf_columns() -> dict[str, str]:
    from ..perf.store import SCHEMA

    return SCHEMA


DATASETS = {"runs": ("run.parquet", lambda: RUN_COLUMNS), "perf": ("perf.parquet", _perf_columns),
            "tests": ("tests.parquet", lambda: TEST_COLUMNS)}


@dataclass
class AddReport:
    added: list[tuple[str, str]] = field(default_factory=list)      # (sku, run_id)
    unchanged: list[tuple[str, str]] = field(default_factory=list)  # already there, same files
    refused: list[str] = field(default_factory=list)                # one line per refused folder


def partition(history: Path, dataset: str, sku: str, run_id: str) -> Path:
    return Path(history) / dataset / f"sku={sku}" / f"run_id={run_id}"


def _arrow_schema(columns: dict[str, str], *, with_partition: bool):
    import pyarrow as pa

    to_arrow = {"string": pa.string(), "boolean": pa.bool_(), "Int64": pa.int64(), "float64": pa.float64()}
    return pa.schema([(c, to_arrow[t]) for c, t in columns.items() if with_partition or c not in PARTITION])


def _write(path: Path, rows, columns: dict[str, str]) -> None:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=list(columns))
    df = df.reindex(columns=list(columns)).astype(columns).drop(columns=list(PARTITION))
    table = pa.Table.from_pandas(df, schema=_arrow_schema(columns, with_partition=False), preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Without pandas' schema metadata (most of a one-row file's bytes): readers apply the typed schema.
    pq.write_table(table.replace_schema_metadata(None), path, compression="zstd")


def _stored_digest(history: Path, sku: str, run_id: str) -> str | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = partition(history, "runs", sku, run_id) / "run.parquet"
    if not p.exists():
        return None
    try:
        return pq.read_table(p, columns=["source_sha256"]).column(0)[0].as_py()
    except (pa.ArrowException, OSError, IndexError) as exc:
        raise HistoryError(f"{p}: unreadable commit record ({type(exc).__name__}); remove its run's partitions "
                           "to add the run again") from None


def _commit(history: Path, run: results_mod.Run) -> None:
    sku, run_id = run.key
    staging = Path(history) / ".staging" / f"{sku}.{run_id}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _write(staging / "perf" / "perf.parquet", run.perf, _perf_columns())
        _write(staging / "tests" / "tests.parquet", [{**c, "sku": sku, "run_id": run_id} for c in run.tests],
               TEST_COLUMNS)
        _write(staging / "runs" / "run.parquet", [run.meta], RUN_COLUMNS)
        (staging / "raw").mkdir(parents=True)
        for name, src in run.files.items():
            shutil.copyfile(src, staging / "raw" / name)
        for dataset in ("raw", "perf", "tests", "runs"):  # runs/ last: the commit record
            dest = partition(history, dataset, sku, run_id)
            shutil.rmtree(dest, ignore_errors=True)  # leftovers of an interrupted add of this run
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / dataset, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def add(results_dirs: Iterable[Path], history_dir: Path, *, skip_incomplete: bool = False) -> AddReport:
    """Append finished runs to the history; adding a run that is already there with the same files is a no-op.

    Every folder is checked before anything is written: by default one refused folder refuses the batch
    (HistoryError); with skip_incomplete the others go in and the refusals are listed in the report.
    The same run id with different files is always refused: history is never silently rewritten.
    """
    history = Path(history_dir)
    if history.exists() and not history.is_dir():
        raise HistoryError(f"{history}: is a file, not a history folder")
    report = AddReport()
    runs: list[results_mod.Run] = []
    for d in results_dirs:
        try:
            run = results_mod.load(Path(d))
            stored = _stored_digest(history, *run.key)
            if stored is not None and stored != run.meta["source_sha256"]:
                raise HistoryError(f"{d}: history already holds run {run.key[1]} of {run.key[0]} with other files; "
                                   f"remove {partition(history, 'runs', *run.key)} to replace it")
            if any(r.key == run.key for r in runs):
                raise HistoryError(f"{d}: run {run.key[1]} of {run.key[0]} is given twice")
        except HistoryError as exc:
            if not skip_incomplete:
                raise
            report.refused.append(str(exc))
            continue
        (report.unchanged if stored is not None else report.added).append(run.key)
        if stored is None:
            runs.append(run)
    for run in runs:
        _commit(history, run)
    try:
        (history / ".staging").rmdir()
    except OSError:
        pass  # absent, or another add is staging right now
    return report


def _read(history: Path, dataset: str):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as ds

    name, columns = DATASETS[dataset][0], DATASETS[dataset][1]()
    root = Path(history) / dataset
    empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
    if not root.is_dir():
        return empty
    files = sorted(str(p) for p in root.glob(f"sku=*/run_id=*/{name}"))
    if not files:
        return empty
    # Partition values are read as strings (a run id of digits must not become an integer); columns a
    # newer schema added are null in older files.
    part = ds.partitioning(_arrow_schema({k: "string" for k in PARTITION}, with_partition=True), flavor="hive")
    try:
        dataset_ = ds.dataset(files, format="parquet", partitioning=part, partition_base_dir=str(root),
                              schema=_arrow_schema(columns, with_partition=True))
        df = dataset_.to_table().to_pandas()
    except (pa.ArrowException, OSError) as exc:  # a damaged or foreign file inside the history
        raise HistoryError(f"{root}: unreadable dataset ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    return df.reindex(columns=list(columns)).astype(columns)


def _damaged(history: Path, dataset: str, df, i: int, what: str) -> HistoryError:
    """A value no reader may use, in row i of df: one line naming the partition file it came from."""
    sku, run_id = df["sku"].iloc[i], df["run_id"].iloc[i]
    n = int(((df["sku"].iloc[:i] == sku).to_numpy() & (df["run_id"].iloc[:i] == run_id).to_numpy()).sum()) + 1
    path = partition(history, dataset, sku, run_id) / DATASETS[dataset][0]
    return HistoryError(f"{path}: row {n}: {what} (a damaged history: remove run {run_id}'s partitions of "
                        f"sku={sku} to read the rest)")


def _check_runs(history: Path, df) -> None:
    from ..perf.validate import machine_key

    for i, row in enumerate(df.astype(object).where(df.notna(), None).to_dict("records")):
        check_id(row["sku"], "sku", str(history))
        check_id(row["run_id"], "run_id", str(history))
        if row["result"] not in results_mod.VERDICTS:
            raise _damaged(history, "runs", df, i, f"result {row['result']!r} is not one of "
                                                   f"{', '.join(results_mod.VERDICTS)}")
        if row["machine"] != machine_key(row["sku"], row["emulated_sku"]):
            raise _damaged(history, "runs", df, i, f"machine {row['machine']!r} is not its SKU's "
                                                   f"{machine_key(row['sku'], row['emulated_sku'])!r}")
        if not isinstance(row["timestamp"], str) or not _utc_time(row["timestamp"]):
            raise _damaged(history, "runs", df, i, f"timestamp {row['timestamp']!r} is not an ISO 8601 time in UTC "
                                                   "(runs are ordered by it)")
        for col in ("perf_rows", *junit.OUTCOMES):
            if row[col] is None or row[col] < 0:
                raise _damaged(history, "runs", df, i, f"{col} is {row[col]!r}: a count")


def _utc_time(stamp: str) -> bool:
    """Whether `stamp` is written as add writes it: ISO 8601 with a zero UTC offset, so that the text
    order is the time order and two runs' times can be subtracted."""
    try:
        return dt.datetime.fromisoformat(stamp).utcoffset() == dt.timedelta(0)
    except ValueError:
        return False


def _check_counts(history: Path, dataset: str, df, runs, expected) -> None:
    """Each run's partition holds as many rows as its commit record says (a partition emptied or
    replaced by hand would silently drop a run's rows from every figure)."""
    have = df.groupby(["sku", "run_id"]).size().to_dict() if len(df) else {}
    for row in runs.astype(object).where(runs.notna(), None).to_dict("records"):
        want, got = expected(row), have.get((row["sku"], row["run_id"]), 0)
        if want is not None and want != got:
            path = partition(history, dataset, row["sku"], row["run_id"]) / DATASETS[dataset][0]
            raise HistoryError(f"{path}: holds {got} rows but the run's record says {want} (a damaged history: "
                               f"remove run {row['run_id']}'s partitions of sku={row['sku']} to read the rest)")


def read_runs(history_dir: Path):
    """Every committed run, ordered by (machine, timestamp, run_id); HistoryError naming the file when a
    run's record holds a value no reader may use."""
    df = _read(history_dir, "runs")
    _check_runs(Path(history_dir), df)
    return df.sort_values(["machine", "timestamp", "run_id"], kind="stable").reset_index(drop=True)


def _committed(df, runs):
    keys = set(zip(runs["sku"], runs["run_id"]))
    keep = [k in keys for k in zip(df["sku"], df["run_id"])]
    return df.loc[keep].reset_index(drop=True) if keep else df.iloc[:0]  # df[[]] would select no columns


def read_perf(history_dir: Path, runs=None):
    """Perf rows of committed runs (docs/PERF_SCHEMA.md columns), checked by the perf values' one rule
    (gpuhil.perf.validate): HistoryError naming the file of the first row that breaks it."""
    from ..perf.validate import value_problem

    runs = read_runs(history_dir) if runs is None else runs
    df = _committed(_read(history_dir, "perf"), runs)
    _check_counts(Path(history_dir), "perf", df, runs, lambda r: r["perf_rows"])
    problem = value_problem(df, lambda i: f"series {df['suite'].iloc[i]}|{df['case_id'].iloc[i]}|{df['provider'].iloc[i]}")
    if problem:
        raise _damaged(Path(history_dir), "perf", df, *problem)
    return df


def read_tests(history_dir: Path, runs=None):
    """Test outcomes of committed runs; HistoryError naming the file of an unknown outcome."""
    runs = read_runs(history_dir) if runs is None else runs
    df = _committed(_read(history_dir, "tests"), runs)
    _check_counts(Path(history_dir), "tests", df, runs, lambda r: sum(r[k] for k in junit.OUTCOMES))
    bad = ~df["outcome"].isin(junit.OUTCOMES).to_numpy(dtype=bool)
    if bad.any():
        i = int(bad.argmax())
        raise _damaged(Path(history_dir), "tests", df, i, f"outcome {df['outcome'].iloc[i]!r} is not one of "
                                                          f"{', '.join(junit.OUTCOMES)}")
    return df
