"""`gpuhil` command line: probe, matrix check, gates, benchmarks, perf baselines, history, dashboard, run."""

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
    mx = _load_matrix(args.path, strict_expiry=True)
    print(f"{mx.path}: ok: {len(mx.skus)} SKUs, {len(mx.selections)} selections, {len(mx.known_issues)} known issues")
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
    from .ops.argmax import bench as argmax_bench
    from .ops.fp8_grouped_gemm import bench as grouped_gemm_bench
    from .ops.nvfp4_moe import bench as nvfp4_bench

    try:
        session = session_mod.build(_load_matrix(args.matrix), emulate=args.emulate_sku)
    except session_mod.SETUP_ERRORS as exc:
        print(f"gpuhil bench: {exc}", file=sys.stderr)
        return 2
    if not session.attached:
        print(f"gpuhil bench: needs a GPU; the probe found none ({session.fingerprint.errors.get('gpu', 'no device')})",
              file=sys.stderr)
        return 2
    benches = {"argmax": argmax_bench, "grouped-gemm": grouped_gemm_bench, "nvfp4-moe": nvfp4_bench}
    return benches[args.bench].main(args, session)


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

    sb = sub.add_parser("bench", help="benchmarks against the peer and the measured ceiling (GPU)")
    sb.add_argument("--emulate-sku", type=_sku_id, metavar="ID",
                    help="cap this GPU's limits at a catalog SKU's: dispatch within them (ISA unchanged)")
    bsub = sb.add_subparsers(dest="bench", required=True)
    ba = bsub.add_parser("argmax", help="gpuhil-cute vs torch.argmax, %% of measured copy bandwidth")
    ba.add_argument("--m", default="1,2,7,64,256,1024", help="batch sizes, comma separated")
    ba.add_argument("--n", default="", help="vocab sizes (default: the suite's)")
    ba.add_argument("--dtype", default="bf16", help="bf16,fp16,fp32")
    ba.add_argument("--json", help="also write the rows here")
    ba.add_argument("--sweep", action="store_true", help="time every supported config too (selector tuning)")
    ba.set_defaults(fn=cmd_bench)
    bg = bsub.add_parser("grouped-gemm", help="FP8 grouped GEMM providers vs torch and the dense FP8 ceiling")
    bg.add_argument("--problems", default="", help="substrings of problem names (default: every uniform MoE shape)")
    bg.add_argument("--json", help="also write the rows here")
    bg.set_defaults(fn=cmd_bench)
    bn = bsub.add_parser("nvfp4-moe", help="NVFP4 MoE layer and grouped GEMM vs torch, %% of the measured roofline")
    bn.add_argument("--layers", default="", help="layer names, comma separated (default: every NVFP4 layer)")
    bn.add_argument("--json", help="also write the rows here")
    bn.set_defaults(fn=cmd_bench)

    sp_ = sub.add_parser("perf", help="perf store: baselines and noise-aware comparison")
    psub = sp_.add_subparsers(dest="perf_command", required=True)
    pb = psub.add_parser("baseline", help="baseline tools")
    pbsub = pb.add_subparsers(dest="baseline_command", required=True)
    pu = pbsub.add_parser("update", help="promote a run's rows into baselines/<sku>/")
    pu.add_argument("--from", dest="from_", required=True, metavar="RESULTS", help="perf-*.parquet or results dir")
    pu.add_argument("--baseline", help="baselines root or a SKU's folder in it (default: the repo's baselines/)")
    pu.set_defaults(fn=lambda a: _perf("update", a))
    pc = psub.add_parser("compare", help="a verdict per series against the SKU's baseline (docs/PERF_SCHEMA.md)")
    pc.add_argument("results", metavar="RESULTS", help="perf-*.parquet or results dir")
    pc.add_argument("--baseline", help="baselines root or a SKU's folder in it (default: the repo's baselines/)")
    pc.add_argument("--gate", action="store_true", help="exit 1 when a series is SLOW, ERROR or MISSING")
    pc.add_argument("--allow-missing", action="store_true",
                    help="with --gate: a baseline series absent from the run (a deliberately partial run) does not fail")
    pc.add_argument("--json", action="store_true")
    pc.set_defaults(fn=lambda a: _perf("compare", a))

    from .dashboard.cli import add_subparsers as add_dashboard_commands

    add_dashboard_commands(sub)

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
    sr.add_argument("--perf", action="store_true", help="also time perf cases")
    sr.add_argument("--require-gpu", action="store_true",
                    help="exit 2 when no GPU is found (also GPUHIL_REQUIRE_GPU=1/true/yes/on; the ci/ workflows set it)")
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
