"""`gpuhil perf baseline update` and `gpuhil perf compare`."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from . import store
from .baseline import Baseline, judge


def _rows(results: str) -> tuple[list[dict], str]:
    try:
        df = store.read(Path(results))
    except (FileNotFoundError, OSError) as exc:
        print(f"gpuhil perf: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    # An emulated run is another machine as far as timings go: it gets its own baseline folder.
    emulated = df["emulated_sku"].fillna("")
    keys = sorted(set(df["sku"].fillna("unknown") + emulated.map(lambda e: f"-as-{e}" if e else "")))
    if len(keys) != 1:
        print(f"gpuhil perf: {results}: expected rows of one SKU, found {keys or 'none'}", file=sys.stderr)
        raise SystemExit(2)
    return df.astype(object).where(df.notna(), None).to_dict("records"), keys[0]


def _baseline_root(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    from ..catalog.matrix import default_path

    return default_path().parent / "baselines"


def update(args) -> int:
    rows, sku = _rows(args.from_)
    base = Baseline(_baseline_root(args.baseline), sku)
    added = base.add_run(rows)
    paths = base.save()
    print(f"baseline {sku}: promoted {added} of {len(rows)} rows (throttled or failed rows are never promoted) "
          f"into {', '.join(map(str, paths))}")
    return 0


def compare(args) -> int:
    rows, sku = _rows(args.results)
    base = Baseline(_baseline_root(args.baseline), sku)
    verdicts = [judge(base.history(r), r) for r in rows]
    counts = {v: sum(1 for x in verdicts if x.verdict == v) for v in ("SAME", "FAST", "SLOW", "AMBG", "INVALID", "EPOCH", "NEW")}
    if args.json:
        print(json.dumps({"sku": sku, "counts": counts, "verdicts": [asdict(v) for v in verdicts]}, indent=2))
    else:
        print(f"| series ({sku}) | verdict | baseline us | current us | ratio | threshold | note |")
        print("|---|---|---:|---:|---:|---:|---|")
        for v in sorted(verdicts, key=lambda v: v.series):
            f = lambda x, fmt: "" if x is None else format(x, fmt)  # noqa: E731
            print(f"| {v.series.replace('|', ' / ')} | {v.verdict} | {f(v.baseline_us, '.2f')} | {f(v.current_us, '.2f')} | "
                  f"{f(v.ratio, '.3f')} | {f(v.threshold, '.1%')} | {v.note} |")
        print("summary: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n))
    return 1 if args.gate and counts["SLOW"] else 0
