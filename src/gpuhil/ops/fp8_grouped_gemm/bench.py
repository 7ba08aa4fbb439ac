"""`gpuhil bench grouped-gemm`: every FP8 grouped-GEMM provider per MoE shape, against torch and two
ceilings measured in the same run: the dense FP8 GEMM rate (torch._scaled_mm on 8192^3) and the copy
bandwidth. A shape's roofline is the larger of its FLOPs at that rate and the bytes it must move once
(activations, every routed expert's weights, scales, the output) at that bandwidth.

Each provider is timed from CUDA-graph replays of one call (weights of every shape exceed the L2,
so each call streams them cold), rowwise recipe, uniform routing. At decode sizes the host time per
call without graphs is measured too: what a caller that does not capture graphs pays on the CPU.
A decode goal that would take more than the roofline, given torch's own share of it, prints as CEIL;
so does a math-bound prefill goal that a dense FP8 GEMM of the same FLOPs, timed the same way in the
same run, does not reach itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

GOAL_PREFILL_PCT_OF_ROOFLINE = 90.0  # gpuhil-cute-wgmma, every prefill shape
GOAL_DECODE_VS_TORCH = 1.25  # gpuhil-cute-wgmma, every decode shape
GOAL_HOST_US = 15.0  # both gpuhil providers, decode shapes
GOAL_PROVIDER = "gpuhil-cute-wgmma"


@dataclass(frozen=True)
class GemmRow:
    problem: str
    provider: str
    config: str
    us: float
    tflops: float
    vs_torch: float | None
    pct_of_fp8_ceiling: float
    throttled: bool
    roofline_us: float = 0.0
    bound: str = ""  # what sets the roofline: "fp8 math" or "bytes"
    pct_of_roofline: float = 0.0
    host_us: float | None = None  # decode shapes only
    # Shapes bound by FP8 math: a dense FP8 GEMM of the same FLOPs, timed the same way in the same run.
    same_flops_dense_us: float | None = None


def bytes_once(problem) -> int:
    """Bytes a grouped GEMM must move at least once: fp8 activations and the weights of every expert
    that received a token, fp32 row/column scales, the bf16 output."""
    touched = sum(1 for t in problem.tokens if t)
    t, n, k = problem.total_tokens, problem.n, problem.k
    return t * k + touched * n * k + 4 * t + 4 * touched * n + 2 * t * n


def roofline(problem, fp8_tflops: float, copy_gbps: float) -> tuple[float, str]:
    """(us, bound): the time the measured ceilings allow, and which one sets it."""
    math_us = problem.flops / (fp8_tflops * 1e12) * 1e6
    bytes_us = bytes_once(problem) / (copy_gbps * 1e9) * 1e6
    return (math_us, "fp8 math") if math_us >= bytes_us else (bytes_us, "bytes")


def same_flops_dense_us(timer, problem) -> float:
    """The dense FP8 GEMM [T, K] x [K, N] (T = all routed tokens), timed like the providers (graph
    replays of 3 calls, back to back). The dense ceiling is measured one GEMM at a time with pauses
    between samples; a run this long draws as much power as the grouped GEMM does, so it shows what
    the tensor cores sustain for this much work under the same power cap."""
    from ...perf.ceilings import fp8_gemm

    return timer.graph([fp8_gemm(problem.total_tokens, problem.n, problem.k)], calls_per_replay=3).median_us


def bench(session, names: tuple[str, ...] = (), on_row=None) -> tuple[list[GemmRow], dict, object]:
    import torch

    from ...perf.ceilings import copy_gbps, gemm_tflops
    from ...perf.timer import Timer
    from .. import providers_for
    from .problems import layer_problems
    from .operands import random_operands

    caps, fp = session.caps, session.fingerprint
    timer = Timer(l2_bytes=caps.l2_bytes, uuid=fp.uuid)
    ceilings = {"fp8_tflops": gemm_tflops(timer, "fp8"), "copy_gbps": copy_gbps(timer)}
    problems = [p for p in layer_problems() if p.name.endswith("uniform") and (not names or any(n in p.name for n in names))]
    rows = []
    for problem in problems:
        q = random_operands(problem, "rowwise", torch.Generator().manual_seed(0))
        out = torch.empty(problem.total_tokens, problem.n, dtype=torch.bfloat16, device="cuda")
        roof_us, bound = roofline(problem, ceilings["fp8_tflops"], ceilings["copy_gbps"])
        dense_us = same_flops_dense_us(timer, problem) if bound == "fp8 math" else None
        torch_us = None
        for p in providers_for("fp8_grouped_gemm"):
            if p.why_not(problem, session):
                continue
            launch = p.prepare(q, caps)
            launch(q, out)
            t = timer.graph([lambda launch=launch: launch(q, out)], calls_per_replay=3)
            torch_us = t.median_us if p.name == "torch" else torch_us
            config = launch.config.name if launch.config else "-"
            tflops = problem.flops / (t.median_us * 1e-6) / 1e12
            host = timer.host(lambda launch=launch: launch(q, out)) if "decode" in problem.name else None
            row = GemmRow(problem.name, p.name, config, t.median_us, tflops,
                          torch_us / t.median_us if torch_us else None, 100 * tflops / ceilings["fp8_tflops"],
                          t.throttled, roof_us, bound, 100 * roof_us / t.median_us, host, dense_us)
            rows.append(row)
            if on_row:
                on_row(row)
        del q, out
    return rows, ceilings, fp


def goals(rows: list[GemmRow]) -> list[str]:
    """One MET/MISS line per goal and shape; a decode shape where GOAL_DECODE_VS_TORCH would take
    more than the roofline (torch already runs at over 1/1.25 of it) is CEIL, with both numbers."""
    out = []
    torch_pct = {r.problem: r.pct_of_roofline for r in rows if r.provider == "torch"}
    for r in rows:
        if r.provider == GOAL_PROVIDER and "prefill" in r.problem:
            out.append(_prefill_goal(r))
        if r.provider == GOAL_PROVIDER and "decode" in r.problem and r.vs_torch is not None:
            out.append(_decode_goal(r, torch_pct.get(r.problem)))
        if r.host_us is not None and r.provider != "torch":
            ok = r.host_us <= GOAL_HOST_US
            out.append(f"{'MET ' if ok else 'MISS'} host {r.problem} {r.provider}: {r.host_us:.1f} us per call without "
                       f"graphs (goal <= {GOAL_HOST_US:.0f} us)")
    return out


def _prefill_goal(r: GemmRow) -> str:
    """MET/MISS for the prefill goal. Where FP8 math sets the roofline and a dense FP8 GEMM of the same
    FLOPs, run the same way, itself stays below the goal's share of it, the goal asks more than the
    tensor cores sustain under this run's power cap: CEIL, with both numbers."""
    tag = "MET " if r.pct_of_roofline >= GOAL_PREFILL_PCT_OF_ROOFLINE else "MISS"
    why = ""
    if r.same_flops_dense_us:
        dense_pct = 100 * r.roofline_us / r.same_flops_dense_us
        if tag == "MISS" and dense_pct < GOAL_PREFILL_PCT_OF_ROOFLINE:
            tag = "CEIL"
        why = (f"; a dense FP8 GEMM of the same FLOPs reaches {dense_pct:.1f} % in this run, "
               f"ours is {100 * r.same_flops_dense_us / r.us:.1f} % of its rate")
    return (f"{tag} {r.problem} {r.provider}: {r.pct_of_roofline:.1f} % of roofline {r.roofline_us:.1f} us "
            f"({r.bound}) (goal >= {GOAL_PREFILL_PCT_OF_ROOFLINE:.0f} %{why})")


def _decode_goal(r: GemmRow, torch_pct: float | None) -> str:
    """MET/MISS for the decode goal; a miss also says what % of the roofline the goal would take."""
    tag, why = "MET ", ""
    if r.vs_torch < GOAL_DECODE_VS_TORCH:
        tag = "MISS"
        if torch_pct:
            needed = GOAL_DECODE_VS_TORCH * torch_pct
            tag = "CEIL" if needed > 100.0 else tag  # faster than the roofline allows
            why = (f"; {GOAL_DECODE_VS_TORCH:.2f}x needs {needed:.1f} % of the roofline, torch is at {torch_pct:.1f} %, "
                   f"ours {r.pct_of_roofline:.1f} %")
    return f"{tag} {r.problem} {r.provider}: {r.vs_torch:.2f}x torch (goal >= {GOAL_DECODE_VS_TORCH:.2f}x{why})"


def table(rows: list[GemmRow], ceilings: dict) -> str:
    head = (f"| problem | provider | config | us | TFLOP/s | vs torch | % of FP8 ceiling ({ceilings['fp8_tflops']:.0f} "
            f"TFLOP/s) | roofline us (bound) | % of roofline | host us/call |\n"
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    body = [f"| {r.problem} | {r.provider} | {r.config} | {r.us:.1f} | {r.tflops:.0f} | "
            f"{'' if r.vs_torch is None else f'{r.vs_torch:.2f}x'} | {r.pct_of_fp8_ceiling:.1f}"
            f"{' (throttled)' if r.throttled else ''} | {r.roofline_us:.1f} ({r.bound}) | {r.pct_of_roofline:.1f} | "
            f"{'' if r.host_us is None else f'{r.host_us:.1f}'} |" for r in rows]
    return "\n".join([head, *body])


def main(args, session) -> int:
    import json

    rows, ceilings, fp = bench(session, tuple(x for x in args.problems.split(",") if x),
                               on_row=lambda r: print(f"  measured {r}", flush=True))
    print(f"device: {fp.name} (fingerprint {fp.fingerprint_id}), measured dense FP8 ceiling "
          f"{ceilings['fp8_tflops']:.0f} TFLOP/s, copy {ceilings['copy_gbps']:.0f} GB/s")
    print(table(rows, ceilings))
    for line in goals(rows):
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**ceilings, "fingerprint": fp.to_dict(), "rows": [asdict(r) for r in rows]}, f, indent=2, default=str)
    return 0
