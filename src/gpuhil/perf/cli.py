"""`gpuhil perf baseline update` and `gpuhil perf compare`.

Exit status: 0, 1 when `--gate` fails (a series SLOW or ERROR, or MISSING without `--allow-missing`),
2 when an input is malformed or a baseline folder is missing: one line on stderr naming the file and
the column or field, never a verdict.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from .. import ids, run_record
from . import store
from .baseline import VERDICTS, Baseline, judge
from .validate import PerfInputError, sku_key


class _Refused(Exception):
    """An input problem already phrased as the one line to print."""


def _rows(results: str) -> tuple[list[dict], str]:
    """A run's rows and SKU key. In a results folder whose run.json names the run, rows of another run id
    (an earlier run's file left in a reused folder) are refused, never judged as this run's."""
    if not results.strip():  # Path("") is the working directory: never what an empty CI variable meant
        raise _Refused("RESULTS: empty value: give a perf-*.parquet file or a results folder")
    rows = store.read(Path(results))
    record = Path(results) / run_record.NAME
    if record.is_file():
        try:
            run_id = json.loads(record.read_bytes().decode("utf-8"))["run_id"]
        except (ValueError, KeyError, TypeError, RecursionError) as exc:  # JSON and UTF-8 errors are ValueErrors
            raise _Refused(f"{record}: no readable field run_id ({type(exc).__name__})") from None
        if rows[0]["run_id"] != run_id:
            raise _Refused(f"{results}: perf rows are of run {rows[0]['run_id']!r} but run.json names run {run_id!r} "
                           "(an earlier run's rows in a reused folder)")
    return rows, sku_key(rows[0])


def _baseline_dir(arg: str | None, sku: str, *, creating: bool) -> Path:
    """The SKU's baseline folder from --baseline (the baselines root, or the SKU's own folder in it)."""
    if arg is not None and not arg.strip():
        raise _Refused("--baseline: empty value: give the baselines root or a SKU's folder, or leave the option out")
    if arg:
        given = Path(arg)
    else:
        from ..catalog.matrix import default_path

        given = default_path().parent / "baselines"
    if given.name == sku and not (given / sku).is_dir():
        folder = given
    elif given.is_dir() and any(given.glob("*.json")):  # a SKU folder holds the files itself
        raise _Refused(f"--baseline {given} is the baseline folder of SKU '{given.name}', but the run is SKU '{sku}': "
                       f"give the baselines root or {given.parent / sku}")
    else:
        folder = given / sku
    if folder.exists() and not folder.is_dir():
        raise _Refused(f"--baseline: {folder} is a file, not a baseline folder")
    if not creating and not folder.is_dir():
        raise _Refused(f"no baseline for SKU '{sku}': {folder} does not exist (--baseline takes the baselines root "
                       "or the SKU's folder; `gpuhil perf baseline update --from RESULTS` starts one)")
    return folder


def _guard(fn):
    def run(args) -> int:
        try:
            return fn(args)
        except (PerfInputError, _Refused, ids.InvalidValue) as exc:
            print(f"gpuhil perf: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:  # the environment: a path that is a file, read-only, full: never "a test failed"
            print(f"gpuhil perf: {exc.filename or ''}{': ' if exc.filename else ''}"
                  f"{exc.strerror or type(exc).__name__}", file=sys.stderr)
            return 2
    return run


@_guard
def update(args) -> int:
    rows, sku = _rows(args.from_)
    base = Baseline(_baseline_dir(args.baseline, sku, creating=True))
    added, already = base.add_run(rows)
    paths = base.save() if added else []
    print(f"baseline {sku}: promoted {added} of {len(rows)} rows"
          + (f", {already} already there from run {rows[0]['run_id']}" if already else "")
          + f" (throttled or errored rows are never promoted) into {', '.join(map(str, paths)) or 'nothing'}")
    return 0


def judge_run(results, baseline: str | None):
    """(sku, every series' verdict, counts per verdict) of a run against its SKU's baseline. A baseline
    folder without a single series is refused: every series would be NEW and a gate would pass on nothing."""
    rows, sku = _rows(str(results))
    base = Baseline(_baseline_dir(baseline, sku, creating=False))
    if not base.series:
        raise _Refused(f"no baseline for SKU '{sku}': {base.dir} holds no *.json baseline file (not fetched, or "
                       "emptied?): every series would be NEW")
    verdicts = [judge(base.history(r), r) for r in rows] + base.missing(rows)
    return sku, verdicts, {v: sum(1 for x in verdicts if x.verdict == v) for v in VERDICTS}


def perf_summary(results) -> list[str]:
    """Markdown lines for a run report: verdict counts and every series that is not SAME, or why not."""
    try:
        sku, verdicts, counts = judge_run(results, None)
    except (PerfInputError, _Refused, ids.InvalidValue, OSError) as exc:
        return [f"No verdicts: {exc}"]
    lines = [f"Verdicts against the committed baseline of {sku}: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n),
             "", "| series | verdict | baseline us | current us | ratio | note |", "|---|---|---:|---:|---:|---|"]
    for v in sorted((v for v in verdicts if v.verdict != "SAME"), key=lambda v: v.series):
        f = lambda x, fmt: "" if x is None else format(x, fmt)  # noqa: E731
        lines.append(f"| {v.series.replace('|', ' / ')} | {v.verdict} | {f(v.baseline_us, '.2f')} | "
                     f"{f(v.current_us, '.2f')} | {f(v.ratio, '.3f')} | {v.note} |")
    return lines


@_guard
def compare(args) -> int:
    sku, verdicts, counts = judge_run(args.results, args.baseline)
    failing = [k for k in ("SLOW", "ERROR") if counts[k]] + (["MISSING"] if counts["MISSING"] and not args.allow_missing else [])
    gate = None if not args.gate else ("fail" if failing else "pass")
    if args.json:
        print(json.dumps({"sku": sku, "counts": counts, "gate": gate, "verdicts": [asdict(v) for v in verdicts]}, indent=2))
    else:
        print(f"| series ({sku}) | verdict | baseline us | current us | ratio | threshold | note |")
        print("|---|---|---:|---:|---:|---:|---|")
        for v in sorted(verdicts, key=lambda v: v.series):
            f = lambda x, fmt: "" if x is None else format(x, fmt)  # noqa: E731
            print(f"| {v.series.replace('|', ' / ')} | {v.verdict} | {f(v.baseline_us, '.2f')} | {f(v.current_us, '.2f')} | "
                  f"{f(v.ratio, '.3f')} | {f(v.threshold, '.1%')} | {v.note} |")
        print("summary: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n))
        if gate:
            print(f"gate: {gate}" + (f" ({', '.join(f'{counts[k]} {k}' for k in failing)})" if failing else ""))
    return 1 if gate == "fail" else 0
