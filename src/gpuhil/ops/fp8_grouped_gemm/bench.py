"""`gpuhil bench grouped-gemm`: every FP8 grouped-GEMM provider per MoE shape, against torch and the
dense FP8 ceiling measured in the same run (torch._scaled_mm on 8192^3).

Each provider is timed from CUDA-graph replays of one call (weights of every shape exceed the L2,
so each call streams them cold), rowwise recipe, uniform routing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


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


def bench(session, names: tuple[str, ...] = (), on_row=None) -> tuple[list[GemmRow], float, object]:
    import torch

    from ...perf.ceilings import gemm_tflops
    from ...perf.timer import Timer
    from .. import providers_for
    from .problems import layer_problems
    from .recipes import random_operands

    caps, fp = session.caps, session.fingerprint
    timer = Timer(l2_bytes=caps.l2_bytes, uuid=fp.uuid)
    ceiling = gemm_tflops(timer, "fp8")
    problems = [p for p in layer_problems() if p.name.endswith("uniform") and (not names or any(n in p.name for n in names))]
    rows = []
    for problem in problems:
        q = random_operands(problem, "rowwise", torch.Generator().manual_seed(0))
        out = torch.empty(problem.total_tokens, problem.n, dtype=torch.bfloat16, device="cuda")
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
            row = GemmRow(problem.name, p.name, config, t.median_us, tflops,
                          torch_us / t.median_us if torch_us else None, 100 * tflops / ceiling, t.throttled)
            rows.append(row)
            if on_row:
                on_row(row)
        del q, out
    return rows, ceiling, fp


def table(rows: list[GemmRow], ceiling: float) -> str:
    head = (f"| problem | provider | config | us | TFLOP/s | vs torch | % of FP8 ceiling ({ceiling:.0f} TFLOP/s) |\n"
            "|---|---|---|---:|---:|---:|---:|")
    body = [f"| {r.problem} | {r.provider} | {r.config} | {r.us:.1f} | {r.tflops:.0f} | "
            f"{'' if r.vs_torch is None else f'{r.vs_torch:.2f}x'} | {r.pct_of_fp8_ceiling:.1f}"
            f"{' (throttled)' if r.throttled else ''} |" for r in rows]
    return "\n".join([head, *body])


def main(args, session) -> int:
    import json

    rows, ceiling, fp = bench(session, tuple(x for x in args.problems.split(",") if x),
                              on_row=lambda r: print(f"  measured {r}", flush=True))
    print(f"device: {fp.name} (fingerprint {fp.fingerprint_id}), measured dense FP8 ceiling {ceiling:.0f} TFLOP/s")
    print(table(rows, ceiling))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"fp8_ceiling_tflops": ceiling, "fingerprint": fp.to_dict(), "rows": [asdict(r) for r in rows]},
                      f, indent=2, default=str)
    return 0
