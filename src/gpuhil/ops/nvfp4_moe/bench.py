"""`gpuhil bench nvfp4-moe`: the NVFP4 MoE layer and its gate_up grouped GEMM, gpuhil beside the torch
peer, against ceilings measured in the same run.

Each case is timed from CUDA-graph replays (the layer's routing, permutation, quantization, both
GEMMs and the combine are one capture), uniform routing. The roofline of a case is the larger of
its FLOPs at the measured bf16 GEMM rate (the dequant kernels run bf16 tensor-core math on Hopper)
and its bytes at the measured copy bandwidth (NVFP4 weights of the experts it touches, plus the
activations read and written once).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Nvfp4Row:
    case: str
    provider: str
    config: str
    us: float
    tflops: float
    vs_torch: float | None
    roofline_us: float
    bound: str  # "bf16 math" or "bytes"
    pct_of_roofline: float
    throttled: bool


def _layer_bytes(problem) -> int:
    t, h = problem.tokens, problem.layer.hidden
    return problem.weight_bytes() + t * h * (2 + 4)  # bf16 hidden in, fp32 out


def _gemm_bytes(problem) -> int:
    return problem.groups * problem.n * problem.k * 9 // 16 + problem.total_tokens * (problem.k * 9 // 16 + 2 * problem.n)


def bench(session, layers: tuple[str, ...] = (), on_row=None):
    import torch

    from ...perf.ceilings import copy_gbps, gemm_tflops
    from ...perf.timer import Timer
    from .. import providers_for
    from .operands import random_grouped_operands, random_layer
    from .problems import gemm_problems, layer_problems

    caps, fp = session.caps, session.fingerprint
    timer = Timer(l2_bytes=caps.l2_bytes, uuid=fp.uuid)
    ceilings = {"bf16_tflops": gemm_tflops(timer, "bf16"), "copy_gbps": copy_gbps(timer)}
    wanted = ("decode64-uniform", "prefill-uniform")
    rng = torch.Generator().manual_seed(0)
    rows: list[Nvfp4Row] = []

    def run(case, problem, inputs, out, flops, nbytes, providers):
        torch_us, torch_out = None, None
        for p in providers:
            if p.why_not(problem, session):
                continue
            launch = p.prepare(inputs, caps)
            launch(inputs, out)
            if torch_out is None:
                torch_out = out.float().clone()
            else:  # each within 2^-4 of the fp32 reference (suite): within 2^-3 of each other
                err = ((out.float() - torch_out).norm() / torch_out.norm()).item()
                assert err <= 2.0**-3, f"{case}: {p.name} is {err:.2e} away from torch"
            t = timer.graph([lambda launch=launch: launch(inputs, out)], calls_per_replay=3)
            torch_us = t.median_us if p.name == "torch" else torch_us
            roof_math, roof_bytes = flops / (ceilings["bf16_tflops"] * 1e6), nbytes / (ceilings["copy_gbps"] * 1e3)
            roof = max(roof_math, roof_bytes)
            config = launch.config.name if getattr(launch, "config", None) else "-"
            row = Nvfp4Row(case, p.name, config, t.median_us, flops / (t.median_us * 1e6),
                           torch_us / t.median_us if torch_us and p.name != "torch" else None, roof,
                           "bf16 math" if roof_math >= roof_bytes else "bytes", 100 * roof / t.median_us, t.throttled)
            rows.append(row)
            if on_row:
                on_row(row)

    for problem in (p for p in layer_problems() if p.name.endswith(wanted) and (not layers or p.layer.name in layers)):
        inputs = random_layer(problem, rng)
        out = torch.empty(problem.tokens, problem.layer.hidden, device="cuda")
        run(f"layer {problem.name}", problem, inputs, out, problem.flops, _layer_bytes(problem),
            providers_for("nvfp4_moe_layer"))
        del inputs, out
    for problem in (p for p in gemm_problems() if "gate_up" in p.name and p.name.endswith(wanted)
                    and (not layers or p.name.startswith(layers))):
        ops = random_grouped_operands(problem, rng)
        out = torch.empty(problem.total_tokens, problem.n, dtype=torch.bfloat16, device="cuda")
        run(f"gate_up {problem.name.removesuffix('-uniform')}", problem, ops, out, problem.flops,
            _gemm_bytes(problem), providers_for("nvfp4_grouped_gemm"))
        del ops, out
    return rows, ceilings, fp


def table(rows: list[Nvfp4Row], ceilings: dict) -> str:
    head = ("| case | provider | config | us | TFLOP/s | vs torch | roofline us (bound) | % of roofline |\n"
            "|---|---|---|---:|---:|---:|---:|---:|")
    body = [f"| {r.case} | {r.provider} | {r.config} | {r.us:.1f} | {r.tflops:.1f} | "
            f"{'' if r.vs_torch is None else f'{r.vs_torch:.2f}x'} | {r.roofline_us:.1f} ({r.bound}) | "
            f"{r.pct_of_roofline:.1f}{' (throttled)' if r.throttled else ''} |" for r in rows]
    foot = (f"\nceilings measured in this run: bf16 GEMM {ceilings['bf16_tflops']:.0f} TFLOP/s, "
            f"copy {ceilings['copy_gbps']:.0f} GB/s")
    return "\n".join([head, *body]) + foot


def main(args, session) -> int:
    import json

    rows, ceilings, fp = bench(session, tuple(x for x in args.layers.split(",") if x),
                               on_row=lambda r: print(f"  measured {r}", flush=True))
    print(f"device: {fp.name} (fingerprint {fp.fingerprint_id})")
    print(table(rows, ceilings))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"ceilings": ceilings, "fingerprint": fp.to_dict(), "rows": [asdict(r) for r in rows]},
                      f, indent=2, default=str)
    return 0
