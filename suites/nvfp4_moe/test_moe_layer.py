"""A whole NVFP4 MoE layer (route, permute, quantize, gate_up, SiLU * up, re-quantize, down, combine),
every provider, against the fp32 reference on real MoE shapes.

Why this grid: Qwen3-30B-A3B at every batch (1, 7, 64 tokens and a 4096-token prefill) with uniform
and skewed routing (a quarter of the experts empty, a few taking most tokens); gpt-oss-120b-like
(hidden 2880, top-4) at decode 64; DeepSeek-V3 (256 experts, hidden 7168) and the rest in the full tier
(each problem's tier is declared with it: gpuhil.ops.nvfp4_moe.problems).

Tolerances. gpuhil-cute is compared with the reference run on the same dataflow (activation_dtype
bf16: its GEMMs write h and y in bf16, its quantizer reads m in bf16). Its products are exact and its
quantizer bit-exact, so it differs only by fp32 accumulation order in the GEMMs (~sqrt(K) 2^-24
relative), which now and then moves a bf16 rounding of h by one ulp, and rarely that moves an
intermediate E2M1 code by one step. Simulated on a 16-expert Qwen3-shaped layer: relative Frobenius
error 1.0e-3, the worst token 1.6e-2 (one flipped code). Bounds: 2^-7 overall, 2^-4 per token.
The torch peer rounds each GEMM twice (bf16 output, then alpha), so about a third of its h differ by
an ulp from any single-rounding dataflow and ~1 % of its intermediate codes move: it is compared with
the fp32 reference, from which any bf16-activation dataflow sits ~3 % away (simulated: 3.2e-2
overall, worst token 8.6e-2; the bf16-dataflow reference itself is 2.9e-2 from it). Bounds: 2^-4
overall, 2^-2 per token. Either bound still fails a dropped or misrouted expert (~35 % of a token).

The overall bounds are argued from an error averaged over tokens; a one-token batch has no average,
its Frobenius error is that token's and gets the per-token bound. Measured on the H100 over 100 seeds
per case: the torch peer's one-token error reached 6.0e-2 (99th percentile 5.9e-2; one suite run drew
6.5e-2, over 2^-4), while 7 tokens already stayed at or below 4.7e-2.
"""

import pytest
import torch

from gpuhil.ops import providers_for
from gpuhil.ops.nvfp4_moe import reference as R
from gpuhil.ops.nvfp4_moe.operands import random_layer
from gpuhil.ops.nvfp4_moe.problems import layer_problems
from gpuhil.testing import case

TOLERANCE = {  # provider: (reference activation dtype, overall, per token)
    "gpuhil-cute": (torch.bfloat16, 2.0**-7, 2.0**-4),
    "torch": (torch.float32, 2.0**-4, 2.0**-2),
}


def cases():
    for prov in providers_for("nvfp4_moe_layer"):
        for problem in layer_problems():
            yield case(prov, problem, prov, problem, id=f"{prov.name}-{problem.name}")


@pytest.mark.gpu
@pytest.mark.parametrize("provider, problem", list(cases()))
def test_moe_layer_matches_reference(provider, problem, rng, capabilities):
    inputs = random_layer(problem, rng)
    out = torch.full((problem.tokens, problem.layer.hidden), float("nan"), dtype=torch.float32, device="cuda")
    provider(inputs, capabilities, out=out)
    torch.cuda.synchronize()
    dtype, overall, per_token = TOLERANCE.get(provider.name, TOLERANCE["torch"])
    overall = per_token if problem.tokens == 1 else overall  # no average over one token (see above)
    ref = R.moe_layer(inputs.hidden, inputs.router_logits, inputs.w13, inputs.w2, inputs.top_k,
                      input_global_scale=inputs.input_global_scale,
                      intermediate_global_scale=inputs.intermediate_global_scale, activation_dtype=dtype).double()
    got = out.double()
    assert torch.isfinite(got).all(), "NaN/Inf in the layer output"
    err = (got - ref).norm() / ref.norm()
    worst = ((got - ref).norm(dim=1) / ref.norm(dim=1).clamp_min(1e-30)).max()
    assert err <= overall, f"relative Frobenius error {err:.2e} > {overall:.2e}"
    assert worst <= per_token, f"worst token's relative error {worst:.2e} > {per_token:.2e}"
