"""FP8 grouped-GEMM operands (QuantizedOperands), the scale recipes and the quantization helpers that
produce them, and fresh random operands for the suites and the benchmark.

- "tensor": one scale for all of A, one per expert for B (what per-tensor FP8 checkpoints ship).
- "rowwise": one per token of A, one per output channel of each expert's B (FP8-Dynamic checkpoints).
A scale maps FP8 back to real values: x ~= fp8(x / scale) * scale, with scale = amax / 448 (e4m3 max).
"""

from __future__ import annotations

from dataclasses import dataclass

E4M3_MAX = 448.0
RECIPES = ("tensor", "rowwise")


@dataclass
class QuantizedOperands:
    recipe: str
    a: object  # [T, K] float8_e4m3fn
    b: object  # [G, N, K] float8_e4m3fn
    scale_a: object  # tensor: [1]; rowwise: [T]   (fp32)
    scale_b: object  # tensor: [G]; rowwise: [G, N] (fp32)
    offs: object  # [G] int32 cumulative end offsets


def _scale(amax):
    import torch

    return torch.clamp(amax.float(), min=1e-12) / E4M3_MAX


def quantize(a_bf16, b_bf16, offs, recipe: str) -> QuantizedOperands:
    """a: [T, K], b: [G, N, K] in bf16/fp32 -> FP8 operands with scales of the given recipe."""
    import torch

    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    fp8 = torch.float8_e4m3fn
    if recipe == "tensor":
        sa = _scale(a_bf16.abs().amax()).reshape(1)
        a8 = (a_bf16.float() / sa).to(fp8)
    else:
        sa = _scale(a_bf16.abs().amax(dim=1))
        a8 = (a_bf16.float() / sa[:, None]).to(fp8)
    # Expert by expert: a DeepSeek-V3 layer's weights in fp32 at once would not fit the GPU.
    b8 = torch.empty(b_bf16.shape, dtype=fp8, device=b_bf16.device)
    sb = torch.empty(b_bf16.shape[:1] if recipe == "tensor" else b_bf16.shape[:2], dtype=torch.float32,
                     device=b_bf16.device)
    for e in range(b_bf16.shape[0]):
        w = b_bf16[e].float()
        if recipe == "tensor":
            sb[e] = _scale(w.abs().amax())
            b8[e] = (w / sb[e]).to(fp8)
        else:
            sb[e] = _scale(w.abs().amax(dim=1))
            b8[e] = (w / sb[e][:, None]).to(fp8)
    return QuantizedOperands(recipe, a8.contiguous(), b8.contiguous(), sa.contiguous(), sb.contiguous(), offs)


def rowwise_scales(q: QuantizedOperands):
    """The same scales written out rowwise (for providers that only take rowwise): exact, no requantization."""
    if q.recipe == "rowwise":
        return q.scale_a, q.scale_b
    t, (g, n) = q.a.shape[0], q.b.shape[:2]
    return q.scale_a.expand(t).contiguous(), q.scale_b[:, None].expand(g, n).contiguous()


def random_operands(problem, recipe: str, rng) -> QuantizedOperands:
    """Fresh random bf16 activations and weights for `problem`, quantized with `recipe`, on the GPU.
    `rng` (a CPU torch.Generator) seeds both, so a failing case can be replayed."""
    import torch

    a = torch.randn(problem.total_tokens, problem.k, generator=rng).to(torch.bfloat16).cuda()
    b = torch.empty(problem.groups, problem.n, problem.k, dtype=torch.bfloat16, device="cuda")
    b.normal_(generator=torch.Generator(device="cuda").manual_seed(int(torch.randint(0, 2**31, (1,), generator=rng))))
    offs = torch.tensor(problem.offsets(), dtype=torch.int32, device="cuda")
    return quantize(a, b, offs, recipe)
