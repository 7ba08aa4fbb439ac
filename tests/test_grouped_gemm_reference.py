"""The grouped-GEMM reference, scale recipes and MoE problems, on the CPU."""

import pytest
import torch

from gpuhil.ops.fp8_grouped_gemm.operands import E4M3_MAX, RECIPES, quantize, rowwise_scales
from gpuhil.ops.fp8_grouped_gemm.problems import LAYERS, adversarial_problems, layer_problems, skewed, uniform
from gpuhil.ops.fp8_grouped_gemm.reference import reference


def operands(tokens, n=24, k=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(sum(tokens), k, generator=g)
    b = torch.randn(len(tokens), n, k, generator=g)
    offs = torch.tensor(torch.tensor(tokens).cumsum(0).tolist(), dtype=torch.int32)
    return a, b, offs


@pytest.mark.parametrize("recipe", RECIPES)
def test_reference_is_the_per_expert_product_of_the_dequantized_operands(recipe):
    tokens = (5, 0, 1, 9)
    a, b, offs = operands(tokens)
    q = quantize(a, b, offs, recipe)
    ref = reference(q)
    assert ref.dtype == torch.float64 and ref.shape == (15, 24)
    sa, sb = rowwise_scales(q)
    deq_a = q.a.double() * sa.double()[:, None]
    start = 0
    for e, end in enumerate(offs.tolist()):
        deq_b = q.b[e].double() * sb[e].double()[:, None]
        torch.testing.assert_close(ref[start:end], deq_a[start:end] @ deq_b.T, rtol=0, atol=0)
        start = end


@pytest.mark.parametrize("recipe", RECIPES)
def test_quantization_error_is_that_of_e4m3(recipe):
    a, b, offs = operands((40, 24), k=256)
    ref = reference(quantize(a, b, offs, recipe))
    exact = torch.cat([a[:40].double() @ b[0].double().T, a[40:].double() @ b[1].double().T])
    err = (ref - exact).norm() / exact.norm()
    assert err < 0.06  # e4m3 keeps 3 mantissa bits: ~2^-4 relative per operand, averaged over K
    q = quantize(a, b, offs, recipe)
    assert q.a.float().abs().max() <= E4M3_MAX and q.b.float().abs().max() <= E4M3_MAX


def test_recipes_have_the_documented_scale_shapes():
    a, b, offs = operands((3, 4))
    assert quantize(a, b, offs, "tensor").scale_a.shape == (1,) and quantize(a, b, offs, "tensor").scale_b.shape == (2,)
    q = quantize(a, b, offs, "rowwise")
    assert q.scale_a.shape == (7,) and q.scale_b.shape == (2, 24)
    with pytest.raises(ValueError, match="recipe must be one of"):
        quantize(a, b, offs, "blockwise")


def test_token_splits():
    assert uniform(10, 4) == (3, 3, 2, 2)
    s = skewed(512, 128, seed=3)
    assert sum(s) == 512 and 0 in s and 1 in s and max(s) > 4 * (512 / 128)


def test_every_layer_gemm_and_phase_is_in_the_problem_set():
    names = {p.name for p in layer_problems()}
    for layer in LAYERS:
        for gemm in ("gate_up", "down"):
            for phase in ("decode", "prefill"):
                assert f"{layer.name}-{gemm}-{phase}-skewed" in names
    qwen = next(p for p in layer_problems() if p.name == "qwen3-30b-a3b-gate_up-prefill-uniform")
    assert (qwen.groups, qwen.total_tokens, qwen.k, qwen.n) == (128, 32768, 2048, 1536)


def test_adversarial_problems_break_tiling():
    probs = adversarial_problems()
    assert any(p.k % 128 for p in probs) and any(p.n <= 16 for p in probs)
    assert any(0 in p.tokens for p in probs) and any(1 in p.tokens for p in probs)
