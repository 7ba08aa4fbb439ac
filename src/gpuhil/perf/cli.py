"""`gpuhil perf baseline update`, `gpuhil perf compare` and `gpuhil perf acknowledge`.

Exit status: 0, 1 when `--gate` fails (a series SLOW or ERROR, or MISSING without `--allow-missing`),
2 when an input is malformed or a baseline folder is missing: one line on stderr naming the file and
the column or field, never a verdict. Today's date (UTC), which decides whether an acknowledgement
still holds, is read here once and passed down.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import asdict
from pathlib import Path

from pydantic import ValidationError

from .. import atomic, ids, run_record
from . import acknowledged, store
from .baseline import VERDICTS, Baseline
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


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def _ack_path(arg: str | None, folder: Path) -> Path:
    """--acknowledged FILE, else acknowledged.yaml in the baselines root (beside the SKU folders)."""
    if arg is not None and not arg.strip():
        raise _Refused("--acknowledged: empty value: give a file or leave the option out")
    return Path(arg) if arg else folder.parent / acknowledged.FILE


@_guard
def update(args) -> int:
    rows, sku = _rows(args.from_)
    today = utc_today()
    folder = _baseline_dir(args.baseline, sku, creating=True)
    entries = acknowledged.load(_ack_path(getattr(args, "acknowledged", None), folder), today)
    base = Baseline(folder)
    added, already = base.add_run(rows, keep_after=acknowledged.resetter(entries, sku, today))
    paths = base.save() if added else []
    print(f"baseline {sku}: promoted {added} of {len(rows)} rows"
          + (f", {already} already there from run {rows[0]['run_id']}" if already else "")
          + (f", {base.dropped} entries from before an expected change left out" if base.dropped else "")
          + f" (throttled or errored rows are never promoted) into {', '.join(map(str, paths)) or 'nothing'}")
    return 0


def judge_run(results, baseline: str | None, ack_file: str | None = None, today: dt.date | None = None):
    """(sku, every series' verdict, counts per verdict) of a run against its SKU's baseline and the
    acknowledgements beside it (as of `today`, UTC today when None). A baseline folder without a single
    series is refused: every series would be NEW and a gate would pass on nothing."""
    rows, sku = _rows(str(results))
    today = today or utc_today()
    folder = _baseline_dir(baseline, sku, creating=False)
    entries = acknowledged.load(_ack_path(ack_file, folder), today)
    base = Baseline(folder)
    if not base.series:
        raise _Refused(f"no baseline for SKU '{sku}': {base.dir} holds no *.json baseline file (not fetched, or "
                       "emptied?): every series would be NEW")
    verdicts = [acknowledged.verdict(base.history(r), r, acknowledged.of(entries, sku, store.series_key(
        r["suite"], r["case_id"], r["provider"])), today) for r in rows] + base.missing(rows)
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
    sku, verdicts, counts = judge_run(args.results, args.baseline, args.acknowledged)
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


# --- gpuhil perf acknowledge ------------------------------------------------------------------------------

OPTIONS = {"series": "SERIES", "sku": "--sku", "commits": "--commits", "since": "--since",
           "fingerprint": "--fingerprint", "reason": "--reason", "who": "--who", "until": "--until"}


def _run_started(results: str, rows: list[dict]) -> str:
    """When a run started: run.json's `started` (what the history orders runs by), else its first row's time."""
    record = Path(results) / run_record.NAME
    if record.is_file():
        try:
            started = json.loads(record.read_bytes().decode("utf-8"))["started"]
            if acknowledged.instant(started) is not None:
                return started
        except (ValueError, KeyError, TypeError, RecursionError):
            pass
    return min(rows, key=lambda r: acknowledged.instant(r["timestamp"]))["timestamp"]


def _since(args, history: list, row: dict | None, rows: list[dict]) -> str:
    """When the first run at commit B started: --since, else the given run when it is at B, else the
    first baseline entry at B."""
    if args.since is not None:
        if acknowledged.instant(args.since) is None:
            raise _Refused(f"--since {args.since!r}: not an ISO 8601 time (when the first run at B started)")
        return args.since
    b = acknowledged.COMMITS.fullmatch(args.commits).group(2)
    if row is not None and (row.get("git_sha") or "").startswith(b):
        return _run_started(args.results, rows)
    at_b = [e for e in history if e.git_sha.startswith(b)]
    if at_b:
        return min(at_b, key=lambda e: acknowledged.instant(e.timestamp)).timestamp
    raise _Refused(f"--commits {args.commits}: no run at commit {b} in "
                   f"{'--results ' + args.results + ' or ' if args.results else ''}the baseline of this series: "
                   "give --results of the first run at B, or --since TIME (when it started)")


@_guard
def acknowledge(args) -> int:
    """Add (or replace) one entry of acknowledged.yaml, checked like the file is read; nothing else is written."""
    today = utc_today()
    for name, flag in (("reason", "--reason"), ("who", "--who"), ("until", "--until")):
        if getattr(args, name) is None:
            raise _Refused(f"{flag}: missing (gpuhil perf acknowledge SERIES --reason TEXT --who NAME --until YYYY-MM-DD "
                           "--commits A..B | --fingerprint ID)")
    try:
        acknowledged.check_series(args.series)
    except ValueError as exc:
        raise _Refused(f"SERIES: {exc}") from None
    if (args.commits is None) == (args.fingerprint is None):
        raise _Refused("--commits A..B or --fingerprint ID: give exactly one (what the entry covers)")
    if args.since is not None and args.commits is None:
        raise _Refused("--since: only goes with --commits")
    try:
        until = acknowledged.day(args.until)
    except ValueError as exc:
        raise _Refused(f"--until: {exc}") from None
    if until <= today:
        raise _Refused(f"--until {until}: not in the future (today is {today}, UTC)")
    if (until - today).days > acknowledged.MAX_DAYS:
        raise _Refused(f"--until {until}: {(until - today).days} days away, at most {acknowledged.MAX_DAYS}: "
                       "acknowledge again when it runs out")
    rows, run_sku = _rows(args.results) if args.results is not None else ([], None)
    if args.sku is not None and run_sku is not None and args.sku != run_sku:
        raise _Refused(f"--sku {args.sku}: --results {args.results} is a run of SKU '{run_sku}'")
    sku = args.sku or run_sku
    if sku is None:
        raise _Refused("--sku: missing: name the SKU's baseline folder (h100, h100-as-h20), or give --results RESULTS")
    ids.check_id(sku, "--sku")
    folder = _baseline_dir(args.baseline, sku, creating=True)
    history = Baseline(folder).series.get(args.series, []) if folder.is_dir() else []
    row = next((r for r in rows if store.series_key(r["suite"], r["case_id"], r["provider"]) == args.series), None)
    if not history and row is None:
        raise _Refused(f"SERIES {args.series!r}: not in the baseline of SKU '{sku}' ({folder})"
                       + (f" nor in run {rows[0]['run_id']} ({args.results})" if rows else
                          "; give --results RESULTS of a run that has it"))
    doc = {"series": args.series, "sku": sku, "kind": "expected" if args.expected else "acknowledged",
           "reason": args.reason, "who": args.who, "added": today, "until": until}
    if args.fingerprint is not None:
        seen = {e.fingerprint_id for e in history} | ({row["fingerprint_id"]} if row else set())
        if args.fingerprint not in seen:
            raise _Refused(f"--fingerprint {args.fingerprint}: no run of this series has it (seen: {', '.join(sorted(seen))})")
        doc["fingerprint"] = args.fingerprint
    else:
        if not acknowledged.COMMITS.fullmatch(args.commits):
            raise _Refused(f"--commits {args.commits!r}: not A..B (two git shas, 7 to 40 lower-case hex digits)")
        doc.update(commits=args.commits, since=_since(args, history, row, rows))
    try:
        entry = acknowledged.Acknowledgement.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise _Refused(f"{OPTIONS.get(str(err['loc'][0]), err['loc'][0])}: "
                       f"{str(err['msg']).removeprefix('Value error, ')}") from None
    path = _ack_path(args.acknowledged, folder)
    if not path.parent.is_dir():
        raise _Refused(f"--acknowledged: {path.parent} is not a folder (the baselines root holds {acknowledged.FILE})")
    entries = acknowledged.load(path, today)  # a malformed file is refused, never overwritten
    same = next((i for i, e in enumerate(entries)
                 if (e.series, e.sku, e.kind, e.scope) == (entry.series, entry.sku, entry.kind, entry.scope)), None)
    if same is None:
        entries.append(entry)
    else:
        entries[same] = entry
    text = acknowledged.dump(entries)
    acknowledged.parse(path, text, today)  # what is written reads back
    atomic.write_text(path, text)
    print(f"{path}: {'replaced' if same is not None else 'added'} {entry.kind} entry for {entry.series} on {sku} "
          f"({entry.scope}), until {entry.until}")
    return 0
