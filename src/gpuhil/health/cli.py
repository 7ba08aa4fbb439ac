"""`gpuhil health`: the runner health table of this machine's GPUs; exit 2 when a field is unhealthy."""

from __future__ import annotations

import json
import sys


def add_subparser(sub) -> None:
    sp = sub.add_parser(
        "health", help="is this runner's GPU healthy: NVML memory/clock/temperature state and two short kernels",
        description="Checks every GPU this process sees: retired pages and remapped rows pending or failed, "
                    "uncorrectable ECC errors, clock-pinning event reasons, temperature against the slowdown "
                    "threshold (NVML), a known-answer matmul and a device copy's bandwidth against the catalog's "
                    "mem_bw_gbs. Exit 0 healthy (or no GPU), 2 unhealthy. docs/HEALTH.md")
    sp.add_argument("--json", action="store_true", help="the report as JSON (what `gpuhil run` reads)")
    sp.add_argument("--mem-bw-gbs", type=_positive, metavar="GBS",
                    help="judge the copy against this bandwidth (default: the catalog row of the probed device)")
    sp.set_defaults(fn=run)


def _positive(value: str) -> float:
    import argparse

    try:
        x = float(value)
    except ValueError:
        x = 0.0
    if not x > 0 or x == float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r}: a bandwidth in GB/s, above 0")
    return x


def _catalog_gbs(matrix_path: str | None) -> float | None:
    """The probed device's mem_bw_gbs from the catalog; None for an uncatalogued device or no GPU."""
    from .. import ids, session
    from ..catalog import matrix as matrix_mod
    from ..device.probe import probe

    fp = probe(read_software=False)
    if not fp.gpu_present:
        return None
    try:
        row = session.catalog_row(matrix_mod.load(matrix_path), fp)
    except (matrix_mod.MatrixError, ids.InvalidValue) as exc:
        print(f"gpuhil health: {str(exc).splitlines()[0]}", file=sys.stderr)
        raise SystemExit(2) from None
    return row.mem_bw_gbs if row else None


def run(args) -> int:
    from .checks import markdown_table
    from .gate import check_this_machine

    catalog_gbs = args.mem_bw_gbs if args.mem_bw_gbs is not None else _catalog_gbs(args.matrix)
    report = check_this_machine(catalog_gbs)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for line in markdown_table(report):
            print(line)
        print(f"RUNNER UNHEALTHY: {report.summary()}" if not report.healthy else f"runner health: {report.summary()}")
    sys.stdout.flush()
    return 0 if report.healthy else 2
