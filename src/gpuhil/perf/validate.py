"""Checks on what the perf commands read: a run's rows (parquet) and a SKU's baseline files (JSON).

Every problem is one PerfInputError whose message is one line naming the file and the column or field
at fault, so `gpuhil perf` prints it and exits 2: a malformed input never reaches a verdict (a zero or
NaN median would otherwise read as FAST, a row of SKU `../../x` would write outside baselines/).
"""

from __future__ import annotations

import datetime as dt
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


def key_problem(value: object) -> str | None:
    """Why a case id or provider cannot be part of a series key (suite|case_id|provider), or None: the
    key must split back into the same three parts, or the baseline it is promoted into is refused."""
    if not isinstance(value, str) or not value.strip():
        return "empty"
    if "|" in value:
        return "'|' separates the parts of a series key (suite|case_id|provider) and may not appear in one"
    return None


def timing_problem(median: object, p25: object, p75: object) -> str | None:
    """Why three timings are not a measurement (positive finite, p25 <= median <= p75), or None."""
    for name, v in (("median_us", median), ("p25_us", p25), ("p75_us", p75)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            return f"{name} is {v!r}: a timing must be a positive number"
    if not p25 <= median <= p75:  # type: ignore[operator]
        return f"p25_us {p25!r}, median_us {median!r}, p75_us {p75!r} are out of order (p25 <= median <= p75)"
    return None


def _timestamp_problem(value: str) -> str | None:
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return "not an ISO 8601 time"
    return None


def value_problem(df, where) -> tuple[int, str] | None:
    """The first value in a frame of perf rows (schema columns, typed) that no command may judge, store
    or draw, as (its row's position, "column 'X' is V in WHERE: why"), or None. `where(i)` names row i.

    The one rule for every perf value, whoever reads it (compare, baseline update, history add, the
    dashboard): identifiers present and safe, a known status, keys that round-trip, timings positive,
    finite and ordered (an errored row may have none, never a bad one)."""
    import numpy as np

    n = len(df)
    checks: list[tuple[np.ndarray, Any]] = []  # (row is bad, message for row i), in the order a reader fixes them
    col_ = {c: df[c].astype(object).where(df[c].notna(), None).tolist() for c in {*NOT_NULL, *PATH_IDS}}
    for col in NOT_NULL:
        bad = np.array([v is None or (isinstance(v, str) and not v.strip()) for v in col_[col]], dtype=bool)
        checks.append((bad, lambda i, col=col: f"column '{col}' is empty in {where(i)}"))
    for col in PATH_IDS:
        problems = {v: ids.id_problem(v) for v in set(col_[col]) if v is not None}
        bad = np.array([v is not None and problems[v] is not None for v in col_[col]], dtype=bool)
        checks.append((bad, lambda i, col=col, problems=problems:
                       f"column '{col}' is {col_[col][i]!r} in {where(i)}: {problems[col_[col][i]]}"))
    status = col_["status"]
    checks.append((np.array([s is not None and s not in STATUSES for s in status], dtype=bool),
                   lambda i: f"column 'status' is {status[i]!r} in {where(i)}: expected one of {', '.join(STATUSES)}"))
    for col in ("case_id", "provider"):
        bad = np.array([isinstance(v, str) and "|" in v for v in col_[col]], dtype=bool)
        checks.append((bad, lambda i, col=col: f"column '{col}' is {col_[col][i]!r} in {where(i)}: "
                                               f"{key_problem(col_[col][i])}"))
    stamps = col_["timestamp"]
    stamp_problems = {v: _timestamp_problem(v) for v in set(stamps) if isinstance(v, str)}
    checks.append((np.array([isinstance(v, str) and stamp_problems[v] is not None for v in stamps], dtype=bool),
                   lambda i: f"column 'timestamp' is {stamps[i]!r} in {where(i)}: not an ISO 8601 time"))
    t = df[list(TIMINGS)].astype("float64").to_numpy()  # NaN for null
    errored = np.array([s == "error" for s in status], dtype=bool)
    for j, col in enumerate(TIMINGS):
        v = t[:, j]
        broken = ~np.isfinite(v) | (v <= 0)
        bad = np.where(errored, broken & ~np.isnan(v), broken)  # an errored case may have no timing at all
        checks.append((bad, lambda i, col=col, j=j: (f"column '{col}' is "
                                                      f"{'null or NaN' if math.isnan(t[i, j]) else repr(float(t[i, j]))} "
                                                      f"in {where(i)}: a timing must be a positive number")))
    with np.errstate(invalid="ignore"):
        unordered = (t[:, 0] < t[:, 1]) | (t[:, 0] > t[:, 2])  # False where any is NaN
    checks.append((unordered, lambda i: (f"columns 'p25_us', 'median_us', 'p75_us' are {float(t[i, 1])!r}, "
                                         f"{float(t[i, 0])!r}, {float(t[i, 2])!r} in {where(i)}: "
                                         "quantiles out of order (p25 <= median <= p75)")))
    if not n:
        return None
    worst = np.zeros(n, dtype=bool)
    for bad, _ in checks:
        worst |= bad
    if not worst.any():
        return None
    first = int(np.argmax(worst))
    return first, next(message(first) for bad, message in checks if bad[first])


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
    df = df[list(schema) + [c for c in df.columns if c not in schema]].astype(schema).reset_index(drop=True)
    rows = df.astype(object).where(df.notna(), None).to_dict("records")
    problem = value_problem(df, lambda i: f"row {i + 1} ({_series(rows[i])})")
    if problem:
        raise PerfInputError(f"{source}: {problem[1]}")
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
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


def read_baseline(path: Path) -> dict[str, list[dict[str, Any]]]:
    """A baseline file's checked series (check_baseline), or PerfInputError when it cannot be read as text."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PerfInputError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PerfInputError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    return check_baseline(path, text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for k, v in pairs:
        if k in seen:  # json.loads would keep the last silently: a hand-merged file would lose a series
            raise PerfInputError(f"field {k!r} appears twice")
        seen[k] = v
    return seen


def check_baseline(path: Path, text: str) -> dict[str, list[dict[str, Any]]]:
    """A baseline file's series -> entries, or PerfInputError naming `path` and the field."""
    try:
        doc = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise PerfInputError(f"{path}: not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise PerfInputError(f"{path}: not valid JSON (nested too deeply)") from None
    except PerfInputError as exc:
        raise PerfInputError(f"{path}: {exc}") from None
    if not isinstance(doc, dict):
        raise PerfInputError(f"{path}: expected a JSON object with field 'series'")
    if "series" not in doc:
        raise PerfInputError(f"{path}: missing field 'series'")
    series = doc["series"]
    if not isinstance(series, dict):
        raise PerfInputError(f"{path}: field 'series' must be an object (series -> list of entries)")
    if not series:  # a file emptied by hand or never fetched would turn every series of its suite NEW
        raise PerfInputError(f"{path}: field 'series' is empty: a baseline file holds at least one series "
                             "(remove the file to drop its suite)")
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
            problem = timing_problem(entry["median_us"], entry["p25_us"], entry["p75_us"])
            if problem:
                raise PerfInputError(f"{where}: {problem}")
        runs = [e["run_id"] for e in entries]
        twice = next((r for r in runs if runs.count(r) > 1), None)
        if twice is not None:  # a run promoted again would count its median twice and shrink the noise estimate
            raise PerfInputError(f"{path}: series {key!r}: run {twice!r} appears {runs.count(twice)} times: "
                                 "a run is promoted once")
    return series
