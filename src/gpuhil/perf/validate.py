"""Checks on what the perf commands read: a run's rows (parquet) and a SKU's baseline files (JSON).

Every problem is one PerfInputError whose message is one line naming the file and the column or field
at fault, so `gpuhil perf` prints it and exits 2: a malformed input never reaches a verdict (a zero or
NaN median would otherwise read as FAST, a row of SKU `../../x` would write outside baselines/).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .. import ids

STATUSES = ("ok", "throttled", "error")
TIMINGS = ("median_us", "p25_us", "p75_us")
# Columns compare and baseline update read; the rest of the schema is carried along when present.
REQUIRED = ("run_id", "timestamp", "git_sha", "sku", "fingerprint_id", "emulated_sku", "suite", "case_id", "provider",
            *TIMINGS, "throttled", "throttle_reasons", "status")
NOT_NULL = ("run_id", "timestamp", "sku", "fingerprint_id", "suite", "case_id", "provider", "status")
# Values that become path components: baselines/<sku>[-as-<emulated_sku>]/<suite>.json, rows/<run_id>/.
PATH_IDS = ("run_id", "sku", "emulated_sku", "suite")
ENTRY_FIELDS = {"run_id": str, "timestamp": str, "fingerprint_id": str, "git_sha": str,
                "median_us": float, "p25_us": float, "p75_us": float}


class PerfInputError(ValueError):
    """A malformed perf input; the message is one line: FILE: what is wrong, naming the column or field."""


def read_parquet(path: Path):
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise PerfInputError(f"{path}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a damaged file; all mean the same
        what = "an empty file" if path.stat().st_size == 0 else f"not a readable parquet file ({type(exc).__name__})"
        raise PerfInputError(f"{path}: {what}") from exc


def _kind_ok(series, want: str) -> bool:
    """Whether a column's values can be read as the schema's type (all-null columns fit any type)."""
    from pandas.api import types as t

    if series.isna().all():
        return True
    if want == "string":
        return t.is_string_dtype(series.dtype) or series.dropna().map(lambda v: isinstance(v, str)).all()
    if want == "float64":
        return t.is_numeric_dtype(series.dtype) and not t.is_bool_dtype(series.dtype)
    if want == "Int64":
        return t.is_integer_dtype(series.dtype) and not t.is_bool_dtype(series.dtype)
    if want == "boolean":
        return t.is_bool_dtype(series.dtype) or series.dropna().map(lambda v: isinstance(v, bool)).all()
    return True


def machine_key(sku: str, emulated_sku: str | None) -> str:
    """The machine timings belong to: the SKU, or `<sku>-as-<emulated>` for a run within another
    SKU's limits (another machine as far as timings go)."""
    return f"{sku}-as-{emulated_sku}" if emulated_sku else sku


def sku_key(row: dict[str, Any]) -> str:
    """The baseline folder a row belongs to (see machine_key)."""
    return machine_key(row["sku"], row.get("emulated_sku"))


def _series(row: dict[str, Any]) -> str:
    return f"{row.get('suite')}|{row.get('case_id')}|{row.get('provider')}"


def check_rows(df, source: Path | str, schema: dict[str, str]) -> list[dict[str, Any]]:
    """One run's rows (typed by `schema`, nulls as None), or PerfInputError naming `source`."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise PerfInputError(f"{source}: missing column{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(repr(c) for c in missing)}")
    for col, want in schema.items():
        if col in df.columns and not _kind_ok(df[col], want):
            raise PerfInputError(f"{source}: column '{col}' has type {df[col].dtype}, expected {want}")
    if df.empty:
        raise PerfInputError(f"{source}: no rows")
    for col in schema:
        if col not in df.columns:
            df[col] = None  # an optional column a writer left out: null
    df = df[list(schema) + [c for c in df.columns if c not in schema]].astype(schema)
    timings = df[list(TIMINGS)].astype("float64").to_numpy()  # NaN kept apart from null for the message
    rows = df.astype(object).where(df.notna(), None).to_dict("records")
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        where = f"row {n} ({_series(row)})"
        for col in NOT_NULL:
            if row[col] is None or (isinstance(row[col], str) and not row[col].strip()):
                raise PerfInputError(f"{source}: column '{col}' is empty in {where}")
        for col in PATH_IDS:
            if row[col] is not None and (problem := ids.id_problem(row[col])):
                raise PerfInputError(f"{source}: column '{col}' is {row[col]!r} in {where}: {problem}")
        if row["status"] not in STATUSES:
            raise PerfInputError(f"{source}: column 'status' is {row['status']!r} in {where}: "
                                 f"expected one of {', '.join(STATUSES)}")
        if row["status"] != "error":  # an errored case may have no timing at all
            for col, v in zip(TIMINGS, timings[n - 1]):
                if not math.isfinite(v) or v <= 0:
                    shown = "null or NaN" if math.isnan(v) else repr(float(v))
                    raise PerfInputError(f"{source}: column '{col}' is {shown} in {where}: "
                                         "a timing must be a positive number")
        key = _series(row)
        if key in seen:
            raise PerfInputError(f"{source}: rows {seen[key]} and {n} are the same series {key}: one row per series")
        seen[key] = n
    runs = sorted({r["run_id"] for r in rows})
    if len(runs) > 1:
        raise PerfInputError(f"{source}: column 'run_id' holds rows of several runs ({', '.join(runs)}): "
                             "compare one run at a time")
    skus = sorted({sku_key(r) for r in rows})
    if len(skus) > 1:
        raise PerfInputError(f"{source}: column 'sku' holds rows of several SKUs ({', '.join(skus)}): "
                             "compare one run at a time")
    return rows


def check_baseline(path: Path, text: str) -> dict[str, list[dict[str, Any]]]:
    """A baseline file's series -> entries, or PerfInputError naming `path` and the field."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PerfInputError(f"{path}: not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from None
    if not isinstance(doc, dict):
        raise PerfInputError(f"{path}: expected a JSON object with field 'series'")
    if "series" not in doc:
        raise PerfInputError(f"{path}: missing field 'series'")
    series = doc["series"]
    if not isinstance(series, dict):
        raise PerfInputError(f"{path}: field 'series' must be an object (series -> list of entries)")
    for key, entries in series.items():
        parts = key.split("|")
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise PerfInputError(f"{path}: series {key!r}: a series key is 'suite|case_id|provider'")
        if parts[0] != path.stem:
            raise PerfInputError(f"{path}: series {key!r}: suite '{parts[0]}' in a file of suite '{path.stem}'")
        if not isinstance(entries, list) or not entries:
            raise PerfInputError(f"{path}: series {key!r}: expected a non-empty list of entries")
        for i, entry in enumerate(entries):
            where = f"{path}: series {key!r} entry {i}"
            if not isinstance(entry, dict):
                raise PerfInputError(f"{where}: expected an object")
            for field, kind in ENTRY_FIELDS.items():
                if field not in entry:
                    raise PerfInputError(f"{where}: missing field '{field}'")
                v = entry[field]
                if kind is str and not isinstance(v, str):
                    raise PerfInputError(f"{where}: field '{field}' must be a string, got {v!r}")
                if kind is float and (isinstance(v, bool) or not isinstance(v, (int, float))
                                      or not math.isfinite(v) or v <= 0):
                    raise PerfInputError(f"{where}: field '{field}' must be a positive number, got {v!r}")
            extra = sorted(set(entry) - set(ENTRY_FIELDS))
            if extra:
                raise PerfInputError(f"{where}: unexpected field '{extra[0]}'")
    return series
