"""One finished `gpuhil run` results folder, read and checked before it may enter the history.

Required: junit.xml (what ran), probe.json (on what) and report.md (written last by `gpuhil run`, so its
presence says the run finished). The perf parquet is optional: a run without --perf is a coverage-only
run and adds test outcomes but no timings. Perf rows left unmerged under rows/ mean the session died
before its end, and such a run is refused like a missing file.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import junit
from .ids import HistoryError, check_id, machine_label

REQUIRED = ("junit.xml", "probe.json", "report.md")
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


def _report_fields(path: Path) -> dict[str, str | None]:
    text = path.read_text(errors="replace")
    head = re.search(r"^# gpuhil run (\S+)", text, re.M)
    if not head:
        raise HistoryError(f"{path}: no '# gpuhil run <stamp>' header (not a gpuhil run report)")
    sku = re.search(r"^- catalog SKU: (\S+)", text, re.M)
    command = re.search(r"^- command: `(.*)`", text, re.M)
    try:
        argv = shlex.split(command.group(1)) if command else []
    except ValueError:  # unbalanced quotes in a hand-edited report: words are enough to find the flags
        argv = command.group(1).split()
    emulated = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--emulate-sku"), None)
    emulated = emulated or next((a.split("=", 1)[1] for a in argv if a.startswith("--emulate-sku=")), None)
    return {"stamp": head.group(1), "sku": sku.group(1) if sku else None, "emulated_sku": emulated,
            "perf_requested": "--perf" in argv}


def _probe(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HistoryError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not doc.get("fingerprint_id"):
        raise HistoryError(f"{path}: field fingerprint_id is missing")
    return doc


def _perf(results: Path):
    import pandas as pd

    from ..perf.store import SCHEMA

    merged = sorted(results.glob("perf-*.parquet"))
    if len(merged) > 1:
        raise HistoryError(f"{results}: {len(merged)} perf-*.parquet files ({', '.join(p.name for p in merged)}): "
                           "one results folder holds one run")
    if not merged:
        if any(results.glob("rows/*/*.parquet")):
            raise HistoryError(f"{results}: perf rows under rows/ were never merged into perf-<run>.parquet "
                               "(the session did not finish)")
        return pd.DataFrame({k: pd.Series(dtype=v) for k, v in SCHEMA.items()}), None
    try:
        df = pd.read_parquet(merged[0])
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError, its IO errors OSErrors
        raise HistoryError(f"{merged[0]}: unreadable parquet ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    missing = [c for c in ("run_id", "sku", "suite", "case_id", "provider", "median_us", "status") if c not in df]
    if missing:
        raise HistoryError(f"{merged[0]}: column {missing[0]} is missing (perf rows must follow docs/PERF_SCHEMA.md)")
    for col in SCHEMA:
        if col not in df:
            df[col] = None
    try:
        df = df[list(SCHEMA)].astype(SCHEMA)
    except (TypeError, ValueError) as exc:
        raise HistoryError(f"{merged[0]}: columns do not fit docs/PERF_SCHEMA.md ({exc})".splitlines()[0]) from None
    return df, merged[0]


def _one(df, col: str, path: Path) -> str | None:
    values = sorted(set(df[col].dropna().astype(str)))
    if len(values) > 1:
        raise HistoryError(f"{path}: field {col} has {len(values)} values ({', '.join(values[:3])}): one run per file")
    return values[0] if values else None


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def load(results: Path) -> Run:
    """Read and check one results folder; HistoryError (one line) when it may not enter the history."""
    results = Path(results)
    if not results.is_dir():
        raise HistoryError(f"{results}: not a results folder")
    for name in REQUIRED:
        if not (results / name).is_file():
            raise HistoryError(f"{results}: {name} is missing (a finished `gpuhil run` writes junit.xml, "
                               "probe.json and report.md)")
    report = _report_fields(results / "report.md")
    probe = _probe(results / "probe.json")
    cases, started = junit.parse(results / "junit.xml")
    perf, perf_path = _perf(results)

    sku = report["sku"] if report["sku"] not in (None, "none") else "unknown"
    emulated = report["emulated_sku"]
    run_id = None
    if perf_path is not None and len(perf):
        run_id = _one(perf, "run_id", perf_path)
        row_sku = _one(perf, "sku", perf_path)
        if row_sku != sku:
            raise HistoryError(f"{perf_path}: field sku is {row_sku!r} but report.md names catalog SKU {sku!r}")
        emulated = _one(perf, "emulated_sku", perf_path) or None
        started = started or str(perf["timestamp"].dropna().min())
    # Without timed rows there is no session run id: the report's stamp and the SKU name the run.
    run_id = run_id or f"{report['stamp']}-{sku}"
    check_id(sku, "sku", str(results / "report.md"))
    check_id(run_id, "run_id", str(perf_path or results / "report.md"))
    if emulated is not None:
        check_id(emulated, "emulated_sku", str(perf_path or results / "report.md"))
    if not started:
        raise HistoryError(f"{results / 'junit.xml'}: testsuite has no timestamp and the run has no perf rows")

    sources = [results / n for n in REQUIRED] + ([perf_path] if perf_path else [])
    meta = {"run_id": run_id, "sku": sku, "emulated_sku": emulated, "machine": machine_label(sku, emulated),
            "timestamp": started, "git_sha": probe.get("git_sha") or _first(perf, "git_sha") or "",
            **{k: _str(probe.get(v)) for k, v in FINGERPRINT.items()},
            "perf_requested": bool(report["perf_requested"]), "perf_rows": len(perf),
            **junit.counts(cases), "source_sha256": _digest(sources)}
    meta["result"] = "FAIL" if meta["failed"] or meta["error"] else "PASS"
    files = {p.name: p for p in sources[:3]}
    return Run(results, meta, perf, cases, files)


def _first(df, col: str) -> str | None:
    values = df[col].dropna() if col in df else []
    return str(values.iloc[0]) if len(values) else None


def _str(v: Any) -> str | None:
    return None if v is None else str(v)
