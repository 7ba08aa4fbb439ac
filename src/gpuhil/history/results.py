"""One finished `gpuhil run` results folder, read and checked before it may enter the history.

The run's record is run.json, which `gpuhil run` writes beside report.md when it has judged the run: its
run id, SKU, emulated SKU, start and verdict (PASS, FAIL, HARNESS ERROR, RUNNER ERROR, INTERRUPTED) are
what the history stores; a folder without it is not a finished run. Required beside it: probe.json (on
what), report.md and, when run.json says pytest wrote one, junit.xml (what ran). Perf rows are optional
(a run without --perf adds test outcomes but no timings); they must be this run's: perf-<run_id>.parquet
or, for a session that never merged, rows/<run_id>/. A file of another run id (a reused folder) refuses
the folder, so a new run's tests are never filed under an old run's id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import run_record
from ..run_record import VERDICTS
from . import junit
from .ids import HistoryError, check_id, machine_label

RUN_RECORD = run_record.NAME
REQUIRED = (RUN_RECORD, "probe.json", "report.md")
# probe.json fields a run keeps as its fingerprint (device, driver, the software that moves timings).
FINGERPRINT = {"fingerprint_id": "fingerprint_id", "gpu_name": "name", "driver": "driver_version",
               "cuda": "cuda_runtime", "torch": "torch", "cutlass_dsl": "cutlass_dsl", "dsl_cuda": "dsl_cuda"}


@dataclass
class Run:
    """A results folder's contents: `meta` becomes the run's row; `perf` and `tests` its datasets."""

    source: Path
    meta: dict[str, Any]
    perf: Any  # pandas DataFrame in gpuhil.perf.store.SCHEMA, possibly empty
    tests: list[dict] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)  # raw files kept beside the datasets

    @property
    def key(self) -> tuple[str, str]:
        return self.meta["sku"], self.meta["run_id"]


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HistoryError(f"{path}: not valid JSON ({exc})".splitlines()[0]) from None
    except RecursionError:
        raise HistoryError(f"{path}: not valid JSON (nested too deeply)") from None


def _utc(stamp: str, where: str) -> str:
    """An ISO 8601 time as UTC seconds; one without an offset is taken as UTC."""
    try:
        t = dt.datetime.fromisoformat(stamp)
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.timezone.utc)
        return t.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved out of range by its offset
        raise HistoryError(f"{where} {stamp!r} is not an ISO 8601 time") from None


def _record(path: Path) -> dict[str, Any]:
    """run.json, checked field by field: the run's identity and verdict."""
    doc = _json(path)
    if not isinstance(doc, dict):
        raise HistoryError(f"{path}: expected a JSON object")
    for name, kinds in {**run_record.FIELDS, **run_record.OPTIONAL}.items():
        if name not in doc:
            if name in run_record.OPTIONAL:
                continue
            raise HistoryError(f"{path}: field {name} is missing")
        v = doc[name]
        ok = (v is None and None in kinds) or any(
            isinstance(v, k) and not (k is int and isinstance(v, bool)) for k in kinds if k is not None)
        if not ok:
            raise HistoryError(f"{path}: field {name} is {v!r}: expected "
                               + " or ".join("null" if k is None else k.__name__ for k in kinds))
    if doc["schema"] != run_record.SCHEMA:
        raise HistoryError(f"{path}: field schema is {doc['schema']!r}: this gpuhil reads schema {run_record.SCHEMA}")
    if doc["verdict"] not in VERDICTS:
        raise HistoryError(f"{path}: field verdict is {doc['verdict']!r}: expected one of {', '.join(VERDICTS)}")
    check_id(doc["run_id"], "run_id", str(path))
    for name in ("sku", "emulated_sku"):
        if doc[name] is not None:
            check_id(doc[name], name, str(path))
    started = _utc(doc["started"], f"{path}: field started")
    finished = _utc(doc["finished"], f"{path}: field finished")
    if finished < started:
        raise HistoryError(f"{path}: field finished {doc['finished']!r} is before started {doc['started']!r}")
    return {**doc, "started": started}


def _perf_requested(path: Path) -> bool:
    """Whether report.md's command asked for timings (a --perf run that timed nothing still is one)."""
    command = re.search(r"^- command: `(.*)`", path.read_text(encoding="utf-8", errors="replace"), re.M)
    try:
        argv = shlex.split(command.group(1)) if command else []
    except ValueError:  # unbalanced quotes in a hand-edited report: words are enough to find the flag
        argv = command.group(1).split()
    return "--perf" in argv


def _probe(path: Path) -> dict[str, Any]:
    doc = _json(path)
    if not isinstance(doc, dict) or not doc.get("fingerprint_id"):
        raise HistoryError(f"{path}: field fingerprint_id is missing")
    return doc


def _perf(results: Path, run_id: str):
    """(this run's perf rows as a frame, the file or folder they came from), checked by the perf
    validator; HistoryError when the folder holds another run's rows."""
    import pandas as pd

    from ..perf.store import SCHEMA, rows_dir
    from ..perf.validate import PerfInputError, check_rows, read_parquet

    mine = results / f"perf-{run_id}.parquet"
    stale = [p for p in sorted(results.glob("perf-*.parquet")) if p != mine]
    stale += [d for d in sorted(results.glob("rows/*")) if d.name != run_id and any(d.glob("*.parquet"))]
    if stale:
        raise HistoryError(f"{stale[0]}: not this run's (run.json names run {run_id}): the folder holds an earlier "
                           "run's perf rows; give each run its own results folder")
    try:
        if mine.is_file():
            source, frame = mine, read_parquet(mine)
        elif any(rows_dir(results, run_id).glob("*.parquet")):  # a session that ended before merging
            source = rows_dir(results, run_id)
            frame = pd.concat([read_parquet(p) for p in sorted(source.glob("*.parquet"))], ignore_index=True)
        else:
            return pd.DataFrame({k: pd.Series(dtype=v) for k, v in SCHEMA.items()}), None
        rows = check_rows(frame, source, SCHEMA)
    except PerfInputError as exc:
        raise HistoryError(str(exc)) from None
    if rows[0]["run_id"] != run_id:
        raise HistoryError(f"{source}: column 'run_id' is {rows[0]['run_id']!r} but run.json names run {run_id!r}")
    return pd.DataFrame([{k: r.get(k) for k in SCHEMA} for r in rows], columns=list(SCHEMA)).astype(SCHEMA), source


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        for f in sorted(p.glob("*.parquet")) if p.is_dir() else [p]:
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def load(results: Path) -> Run:
    """Read and check one results folder; HistoryError (one line) when it may not enter the history."""
    results = Path(results)
    if not results.is_dir():
        raise HistoryError(f"{results}: not a results folder")
    if not (results / RUN_RECORD).is_file():
        raise HistoryError(f"{results}: {RUN_RECORD} is missing (not a finished `gpuhil run`, or one made before "
                           "runs recorded their verdict)")
    record = _record(results / RUN_RECORD)
    required = REQUIRED + (("junit.xml",) if record["junit"] else ())
    for name in required:
        if not (results / name).is_file():
            raise HistoryError(f"{results}: {name} is missing ({RUN_RECORD} names a finished run, which writes "
                               f"{', '.join(required)})")
    if not record["junit"] and (results / "junit.xml").exists():
        raise HistoryError(f"{results / 'junit.xml'}: {RUN_RECORD} says this run wrote no junit.xml: "
                           "the file is an earlier run's")
    probe = _probe(results / "probe.json")
    cases = junit.parse(results / "junit.xml") if record["junit"] else []
    run_id = record["run_id"]
    perf, perf_source = _perf(results, run_id)

    sku, emulated = record["sku"] or "unknown", record["emulated_sku"]
    if perf_source is not None:
        row = perf.iloc[0]
        if row["sku"] != sku or (row["emulated_sku"] if not _na(row["emulated_sku"]) else None) != emulated:
            raise HistoryError(f"{perf_source}: rows are of SKU {row['sku']!r}"
                               f"{' as ' + repr(row['emulated_sku']) if not _na(row['emulated_sku']) else ''} "
                               f"but {RUN_RECORD} names SKU {sku!r}{' as ' + repr(emulated) if emulated else ''}")

    sources = [results / n for n in required] + ([perf_source] if perf_source else [])
    meta = {"run_id": run_id, "sku": sku, "emulated_sku": emulated, "machine": machine_label(sku, emulated),
            "timestamp": record["started"], "git_sha": probe.get("git_sha") or _first(perf, "git_sha") or "",
            **{k: _str(probe.get(v)) for k, v in FINGERPRINT.items()},
            "perf_requested": _perf_requested(results / "report.md") or perf_source is not None,
            "perf_rows": len(perf), **junit.counts(cases), "result": record["verdict"],
            "detail": record["detail"], "exit_code": record["exit_code"], "source_sha256": _digest(sources)}
    files = {p.name: p for p in sources[:len(required)]}
    return Run(results, meta, perf, cases, files)


def _na(v: Any) -> bool:
    import pandas as pd

    return v is None or bool(pd.isna(v))


def _first(df, col: str) -> str | None:
    values = df[col].dropna() if col in df else []
    return str(values.iloc[0]) if len(values) else None


def _str(v: Any) -> str | None:
    return None if v is None else str(v)
