"""`gpuhil` command line: probe, matrix check, gates, benchmarks, perf baselines, history, dashboard, compile
cache, runner health, run, bisect."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from . import ids
from . import session as session_mod
from .catalog import matrix as matrix_mod
from .device.probe import probe, software_fingerprint


def _load_matrix(path: str | None, **kw) -> matrix_mod.Matrix:
    try:
        return matrix_mod.load(path, **kw)
    except matrix_mod.MatrixError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    except ids.InvalidValue as exc:  # $GPUHIL_MATRIX set but empty
        print(f"gpuhil: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _sku_id(value: str) -> str:
    """argparse type of every option naming a catalog SKU: an empty or unsafe id is a usage error."""
    try:
        return ids.check_id(value, "SKU id")
    except ids.InvalidValue as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _worker_count(value: str) -> int:
    """argparse type of --workers: a whole number, at least 1."""
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: a whole number of workers, at least 1")
    return n


def _sku(mx: matrix_mod.Matrix, sku_id: str, flag: str) -> matrix_mod.Sku:
    try:
        return session_mod.catalog_sku(mx, sku_id, flag)
    except session_mod.SessionSetupError as exc:
        print(f"gpuhil: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_probe(args) -> int:
    if args.target_sku is not None:
        sku = _sku(_load_matrix(args.matrix), args.target_sku, "--target-sku")
        fp = session_mod.synthetic_fingerprint(sku, software_fingerprint())
    else:
        fp = probe(args.device)
    if args.json:
        print(json.dumps(fp.to_dict(), indent=2, sort_keys=True, default=str))
        return 0
    d = fp.to_dict()
    how, errors = d.pop("how_read"), d.pop("errors")
    width = max(map(len, d))
    for key in sorted(d):
        print(f"{key:<{width}}  {d[key]!s:<40}  {how.get(key, '')}")
    for key, err in errors.items():
        print(f"{key:<{width}}  (not read)  {err}")
    return 0


def cmd_matrix_check(args) -> int:
    mx = _load_matrix(args.path, strict=True)
    tiers = {tier: sum(sel.tier == tier for sel in mx.selections.values()) for tier in ("default", "full")}
    print(f"{mx.path}: ok: {len(mx.skus)} SKUs ({tiers['default']} default tier, {tiers['full']} full), "
          f"{len(matrix_mod.suite_folders(mx.suites_dir))} suites in {mx.suites_dir}, {len(mx.known_issues)} known issues")
    return 0


def cmd_gates(args) -> int:
    from .report.gates import decision_table

    mx = _load_matrix(args.matrix)
    if args.all or args.target_sku is not None:
        skus = list(mx.skus.values()) if args.all else [_sku(mx, args.target_sku, "--target-sku")]
        software = software_fingerprint()
        if args.dsl_cuda:  # what-if: the same SKUs with another CuTe DSL native payload active
            software = dataclasses.replace(software, dsl_cuda=args.dsl_cuda)
        caps_of = {sku.id: session_mod.catalog_capabilities(sku, software) for sku in skus}
    else:
        caps_of = {"this-device": session_mod.build(mx).caps}
    out = {key: {"capabilities": caps.describe(), "configs": decision_table(caps)} for key, caps in caps_of.items()}
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    for key, block in out.items():
        print(f"== {key}: {block['capabilities']}")
        for row in block["configs"]:
            extra = {k: v for k, v in row.items() if k not in ("kernel", "config", "supported", "reasons", "requirements")}
            verdict = "yes" if row["supported"] else "NO: " + "; ".join(row["reasons"])
            print(f"  {row['kernel']:<18} {row['config']:<34} {verdict}  {extra if extra else ''}")
    return 0


def cmd_run(args) -> int:
    from .runner import run_main_job

    return run_main_job(args)


def _perf(what: str, args) -> int:
    from .perf import cli as perf_cli

    return getattr(perf_cli, what)(args)


def cmd_bench(args) -> int:
    from .perf import bench
    from .perf.validate import PerfInputError

    try:
        root = bench.checkout_root()
        goal_list = bench.load_goals(args.goals, root)  # a malformed goals file is refused before anything runs
        if args.from_:
            return bench.from_results(args, goal_list)
        if not args.suite:
            raise bench.BenchRefused("name a suite to run (e.g. argmax), or give --from RESULTS to render a run")
        bench.suite_dir(root, args.suite)
        session = session_mod.build(_load_matrix(args.matrix), emulate=args.emulate_sku)
        if not session.attached:
            raise bench.BenchRefused(f"needs a GPU; the probe found none "
                                     f"({session.fingerprint.errors.get('gpu', 'no device')}); "
                                     "--from RESULTS renders a run made elsewhere")
        return bench.run(args, root, session, goal_list)
    except (bench.BenchRefused, PerfInputError, ids.InvalidValue, *session_mod.SETUP_ERRORS) as exc:
        print(f"gpuhil bench: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpuhil", description=__doc__)
    p.add_argument("--matrix", help="hardware_matrix.yaml (default: $GPUHIL_MATRIX or the repo's)")
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("probe", help="fingerprint this machine (or a catalog SKU with --target-sku)")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--target-sku", type=_sku_id, metavar="ID",
                    help="print the fingerprint this catalog SKU would give, from its row (no device needed)")
    sp.add_argument("--device", type=int, default=0, help="CUDA device index")
    sp.set_defaults(fn=cmd_probe)

    sm = sub.add_parser("matrix", help="hardware_matrix.yaml tools")
    msub = sm.add_subparsers(dest="matrix_command", required=True)
    mc = msub.add_parser("check", help="validate; exit 2 with FILE:LINE: messages")
    mc.add_argument("path", nargs="?")
    mc.set_defaults(fn=cmd_matrix_check)

    sg = sub.add_parser("gates", help="decision table of every kernel config (CPU only)")
    g = sg.add_mutually_exclusive_group()
    g.add_argument("--target-sku", type=_sku_id, metavar="ID", help="decide as this catalog SKU (no device needed)")
    g.add_argument("--all", action="store_true", help="decide as every catalog SKU")
    sg.add_argument("--dsl-cuda", metavar="VERSION",
                    help="with --target-sku/--all: decide as if the CuTe DSL native payload were this CUDA version "
                         "(e.g. 12.9, the payload of seed 002)")
    sg.add_argument("--json", action="store_true")
    sg.set_defaults(fn=cmd_gates)

    sb = sub.add_parser("bench", help="a suite's perf cases: table vs the peer and the roofline, goal verdicts (GPU)",
                        description="Runs `pytest suites/SUITE -m perf --perf` and renders the table and the goals "
                                    "(baselines/goals.yaml) from the rows it wrote; --from renders an earlier run.")
    sb.add_argument("suite", nargs="?", metavar="SUITE", help="a folder under suites/: argmax, fp8_grouped_gemm, nvfp4_moe")
    sb.add_argument("--emulate-sku", type=_sku_id, metavar="ID", help="dispatch within a catalog SKU's limits (ISA unchanged)")
    sb.add_argument("-k", metavar="EXPR", help="only the perf cases pytest -k EXPR selects")
    sb.add_argument("--results-dir", help="where the rows go, new or empty (default: results/bench-<time>-<suite>)")
    sb.add_argument("--from", dest="from_", metavar="RESULTS",
                    help="render this run's rows (perf-*.parquet or results dir) instead of running anything")
    sb.add_argument("--goals", metavar="FILE", help="goals to judge (default: baselines/goals.yaml)")
    sb.add_argument("--peer", default="torch", help="the provider each row is set beside (default: torch)")
    sb.add_argument("--gate", action="store_true", help="exit 1 when a goal is MISS or a row ERROR")
    sb.set_defaults(fn=cmd_bench)

    sp_ = sub.add_parser("perf", help="perf store: baselines and noise-aware comparison")
    psub = sp_.add_subparsers(dest="perf_command", required=True)
    pb = psub.add_parser("baseline", help="baseline tools")
    pbsub = pb.add_subparsers(dest="baseline_command", required=True)
    pu = pbsub.add_parser("update", help="promote a run's rows into baselines/<sku>/")
    pu.add_argument("--from", dest="from_", required=True, metavar="RESULTS", help="perf-*.parquet or results dir")
    pu.add_argument("--baseline", help="baselines root or a SKU's folder in it (default: the repo's baselines/)")
    pu.add_argument("--acknowledged", metavar="FILE", help="expected changes to honour: a promoted entry after one "
                    "drops the entries before it (default: acknowledged.yaml in the baselines root)")
    pu.set_defaults(fn=lambda a: _perf("update", a))
    pc = psub.add_parser("compare", help="a verdict per series against the SKU's baseline (docs/PERF_SCHEMA.md)")
    pc.add_argument("results", metavar="RESULTS", help="perf-*.parquet or results dir")
    pc.add_argument("--baseline", help="baselines root or a SKU's folder in it (default: the repo's baselines/)")
    pc.add_argument("--gate", action="store_true", help="exit 1 when a series is SLOW, ERROR or MISSING")
    pc.add_argument("--allow-missing", action="store_true",
                    help="with --gate: a baseline series absent from the run (a deliberately partial run) does not fail")
    pc.add_argument("--acknowledged", metavar="FILE",
                    help="acknowledged regressions and expected changes (default: acknowledged.yaml in the baselines root)")
    pc.add_argument("--json", action="store_true")
    pc.set_defaults(fn=lambda a: _perf("compare", a))
    # Every value is checked by the command itself, so each refusal is one line (argparse prints its usage too).
    pa = psub.add_parser("acknowledge", help="accept a known slowdown, or declare an expected change, until a date",
                         description="Adds (or replaces) one entry of baselines/acknowledged.yaml: the gate and the "
                                     "dashboard show the series as acknowledged until the date, or judge runs after "
                                     "an expected change against the baseline entries after it (docs/PERF_SCHEMA.md).")
    pa.add_argument("series", metavar="SERIES", help="suite|case_id|provider, as `gpuhil perf compare --json` names it")
    pa.add_argument("--reason", metavar="TEXT", help="why, in one line (required)")
    pa.add_argument("--who", metavar="NAME", help="who accepts it (required)")
    pa.add_argument("--until", metavar="YYYY-MM-DD", help="last day it holds: in the future, at most 90 days away (required)")
    pa.add_argument("--expected", action="store_true",
                    help="a wanted change: runs after it are judged against the baseline entries after it")
    pa.add_argument("--commits", metavar="A..B", help="the change landed after commit A and is in commit B")
    pa.add_argument("--since", metavar="TIME", help="with --commits: when the first run at B started (default: "
                    "from --results when that run is at B, else the baseline's first entry at B)")
    pa.add_argument("--fingerprint", metavar="ID", help="instead of --commits: the probe fingerprint the change came with")
    pa.add_argument("--sku", metavar="SKU", help="the baseline folder: h100, h100-as-h20 (default: the --results run's)")
    pa.add_argument("--results", metavar="RESULTS", help="a run that has the series (perf-*.parquet or results dir)")
    pa.add_argument("--baseline", help="baselines root or a SKU's folder in it (default: the repo's baselines/)")
    pa.add_argument("--acknowledged", metavar="FILE", help="the file to write (default: acknowledged.yaml in the baselines root)")
    pa.set_defaults(fn=lambda a: _perf("acknowledge", a))

    from .dashboard.cli import add_subparsers as add_dashboard_commands
    from .bisect.cli import add_subparser as add_bisect_command

    add_dashboard_commands(sub)
    add_bisect_command(sub)
    from .cache_cli import add_subparsers as add_cache_commands

    add_cache_commands(sub)
    from .health.cli import add_subparser as add_health_command

    add_health_command(sub)

    sr = sub.add_parser("run", help="main job: probe, run this machine's selection, write a report")
    sr.add_argument("--results-dir", help="a new or empty folder (default: results/<timestamp>-<label>)")
    sr.add_argument("--emulate-sku", type=_sku_id, metavar="ID",
                    help="cap this GPU's limits at a catalog SKU's and run that SKU's selection (ISA unchanged)")
    sr.add_argument("--target-sku", type=_sku_id, metavar="ID",
                    help="decide as this catalog SKU and run its selection, no device needed (gates, AOT)")
    sr.add_argument("--expect-sku", type=_sku_id, metavar="ID",
                    help="the catalog SKU this runner must be (exit 2 when the probe disagrees)")
    sr.add_argument("--tier", choices=("default", "full"), default=None,
                    help="default: slow cases left out; full: everything the selection lists (default: its tier)")
    sr.add_argument("--perf", action="store_true",
                    help="also time perf cases: after the other tests, one worker per GPU, each case alone on its GPU")
    sr.add_argument("--workers", type=_worker_count, metavar="N",
                    help="xdist workers for the tests (default: from the GPUs, cores and memory; see the report)")
    # Checked by the runner, so that a bad value is one line (argparse prints its usage too).
    sr.add_argument("--reruns", metavar="N",
                    help="rerun each failed test alone in a fresh worker up to N times (default 2; 0: none): "
                         "FAILED every time, else FLAKY, or ORDER-DEPENDENT when it fails again after the test "
                         "that preceded it")
    sr.add_argument("--flaky-fails", action="store_true",
                    help="a FLAKY test (failed, then passed when run again) fails the run (default: reported only)")
    sr.add_argument("--require-gpu", action="store_true",
                    help="exit 2 when no GPU is found (also GPUHIL_REQUIRE_GPU=1/true/yes/on; the ci/ workflows set it)")
    sr.add_argument("--no-health", action="store_true",
                    help="skip the runner health gate before and after the tests (debugging; docs/HEALTH.md)")
    sr.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: extra pytest arguments")
    sr.set_defaults(fn=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # the invocation, as `gpuhil run` records it in its report
    try:
        return args.fn(args)
    except BrokenPipeError:  # `gpuhil ... | head`: the reader stopped early
        from .supervise import silence_stdout

        silence_stdout()
        print("gpuhil: stdout was closed before the output ended (broken pipe)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gpuhil: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
