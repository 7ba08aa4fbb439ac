"""`gpuhil history add` and `gpuhil dashboard build`: subcommands for gpuhil's parser.

    from gpuhil.dashboard.cli import add_subparsers
    add_subparsers(sub)   # sub = parser.add_subparsers(...)

Malformed input (a missing or damaged file, an unsafe id) ends with one line naming the file and field
on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path


def _environment(exc: OSError) -> str:
    """An OSError as one line: the path and what the system said (a file where a folder goes, read-only)."""
    return f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc).splitlines()[0]


def cmd_history_add(args) -> int:
    from ..history import HistoryError, add

    try:
        report = add([Path(p) for p in args.results], Path(args.history), skip_incomplete=args.skip_incomplete)
    except HistoryError as exc:
        print(f"gpuhil history add: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gpuhil history add: {_environment(exc)}", file=sys.stderr)
        return 2
    for sku, run_id in report.added:
        print(f"added {sku}/{run_id}")
    for sku, run_id in report.unchanged:
        print(f"unchanged {sku}/{run_id} (already in the history)")
    for line in report.refused:
        print(f"gpuhil history add: skipped: {line}", file=sys.stderr)
    print(f"history {args.history}: {len(report.added)} added, {len(report.unchanged)} unchanged, "
          f"{len(report.refused)} refused")
    if report.refused and not report.added and not report.unchanged:  # a green job that recorded nothing
        print(f"gpuhil history add: nothing added: all {len(report.refused)} results folders were refused",
              file=sys.stderr)
        return 2
    return 0


def cmd_dashboard_build(args) -> int:
    from ..history import HistoryError
    from . import build

    try:
        site = build(Path(args.history), Path(args.out), Path(args.baselines) if args.baselines else None,
                     today=dt.datetime.now(dt.timezone.utc).date())  # whether an acknowledgement still holds
    except HistoryError as exc:
        print(f"gpuhil dashboard build: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gpuhil dashboard build: {_environment(exc)}", file=sys.stderr)
        return 2
    found = [f for m in site.fleet.machines.values() for f in m.findings if f.kind == "regression"]
    accepted = sum(not f.open for f in found)
    print(f"site {site.root}/index.html: {len(site.fleet.machines)} machines, {len(site.fleet.views)} series, "
          f"{len(found) - accepted} new regression(s)" + (f" (and {accepted} acknowledged or expected)" if accepted else "")
          + f", {site.total_bytes / 1e6:.1f} MB")
    return 0


def _path(value: str) -> str:
    """argparse type of every path option: an empty value would be the working directory."""
    if not value.strip():
        raise argparse.ArgumentTypeError("empty value: give a path")
    return value


def add_subparsers(sub: argparse._SubParsersAction) -> None:
    """Register `history add` and `dashboard build` on gpuhil's top-level subparsers."""
    sh = sub.add_parser("history", help="the fleet's run history (partitioned parquet, docs/HISTORY.md)")
    hsub = sh.add_subparsers(dest="history_command", required=True)
    ha = hsub.add_parser("add", help="append finished runs' results folders (idempotent)")
    ha.add_argument("results", nargs="+", type=_path, metavar="RESULTS", help="results folder of `gpuhil run`")
    ha.add_argument("--history", required=True, type=_path, metavar="DIR", help="history folder (created if absent)")
    ha.add_argument("--skip-incomplete", action="store_true",
                    help="add the complete runs and list the refused ones instead of refusing the batch "
                         "(exit 2 when every folder was refused)")
    ha.set_defaults(fn=cmd_history_add)

    sd = sub.add_parser("dashboard", help="the static perf dashboard")
    dsub = sd.add_subparsers(dest="dashboard_command", required=True)
    db = dsub.add_parser("build", help="write the site (works offline from file://)")
    db.add_argument("--history", required=True, type=_path, metavar="DIR")
    db.add_argument("--out", required=True, type=_path, metavar="SITE",
                    help="a new or empty folder, or a site an earlier build made (it carries .gpuhil-site)")
    db.add_argument("--baselines", type=_path, metavar="DIR",
                    help="baselines root for the baseline bands, missing series and acknowledged.yaml")
    db.set_defaults(fn=cmd_dashboard_build)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (python -m gpuhil.dashboard.cli ...) until gpuhil's own parser registers these."""
    p = argparse.ArgumentParser(prog="gpuhil")
    add_subparsers(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    raise SystemExit(main())
