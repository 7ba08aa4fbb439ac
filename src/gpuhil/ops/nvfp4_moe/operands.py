"""The NVFP4 ops' operand types, and fresh random inputs for the suites and the benchmark.

Grouped-GEMM operands are random codes (every E2M1 code, signed zeros included) with E4M3 block
scales mostly in [2^-3, 16] and one in 32 a zero or a subnormal, so exactness of the products is
exercised everywhere; alpha from random global scales. Layer inputs are real: bf16 hidden states and
router logits, expert weights drawn at the scale of a trained layer and quantized by the reference.
Representable layers (problem.inputs) draw NVFP4 codes and scales first and build hidden states and
weights from them exactly, every 16-block holding a +-6 so its scale is the block maximum / 6.
Everything is drawn from a generator seeded by the test's `rng` (on the GPU), so a failure replays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from . import reference as R
from .problems import BLOCK_SCALE_CODES, GroupedGemmProblem, LayerProblem


@dataclass(frozen=True)
class Nvfp4GroupedOperands:
    """a [T, K/2] uint8, a_scale [T, K/16] float8_e4m3fn, b [G, N, K/2] uint8,
    b_scale [G, N, K/16] float8_e4m3fn, offs [G] int32 (cumulative END rows, on the GPU),
    alpha [G] float32. out[rows of g] = bf16(alpha[g] * A_g @ B[g]^T) with A, B dequantized.
    Block scales are non-negative, as NVFP4 quantization makes them: the native kernel's MMA reads
    them as UE4M3 (no sign bit). Not checked here: that would read device memory at launch."""

    a: Any
    a_scale: Any
    b: Any
    b_scale: Any
    offs: Any
    alpha: Any


def _cuda_generator(rng: torch.Generator) -> torch.Generator:
    return torch.Generator(device="cuda").manual_seed(int(torch.randint(0, 2**62, (1,), generator=rng)))


def random_scales(shape, gen: torch.Generator) -> torch.Tensor:
    codes = torch.randint(0x20, 0x59, shape, generator=gen, device=gen.device, dtype=torch.int32)
    odd = torch.randint(0, 32, shape, generator=gen, device=gen.device) == 0
    codes = torch.where(odd, torch.randint(0, 8, shape, generator=gen, device=gen.device, dtype=torch.int32), codes)
    return codes.to(torch.uint8).view(torch.float8_e4m3fn)


def random_codes(shape, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 256, shape, generator=gen, device=gen.device, dtype=torch.int32).to(torch.uint8)


def random_grouped_operands(problem: GroupedGemmProblem, rng: torch.Generator) -> Nvfp4GroupedOperands:
    gen = _cuda_generator(rng)
    t, n, k, g = problem.total_tokens, problem.n, problem.k, problem.groups
    global_a = torch.empty(1, device="cuda").uniform_(1.0, 8.0, generator=gen)
    global_b = torch.empty(g, device="cuda").uniform_(1.0, 8.0, generator=gen)
    return Nvfp4GroupedOperands(
        a=random_codes((t, k // 2), gen), a_scale=random_scales((t, k // 16), gen),
        b=random_codes((g, n, k // 2), gen), b_scale=random_scales((g, n, k // 16), gen),
        offs=torch.tensor(problem.offsets(), dtype=torch.int32, device="cuda"),
        alpha=(1.0 / (global_a * global_b)).float())


@dataclass
class LayerInputs:
    hidden: torch.Tensor  # [T, H] bf16
    router_logits: torch.Tensor  # [T, E] fp32
    w13: R.NVFP4Experts  # [E, 2I, H]: gate rows, then up rows
    w2: R.NVFP4Experts  # [E, H, I]
    top_k: int
    input_global_scale: torch.Tensor  # [1] fp32, from the batch (the recipe)
    intermediate_global_scale: torch.Tensor  # [1] fp32, calibrated (static, as serving stacks ship it)


def _weights(experts: int, n: int, k: int, gen: torch.Generator) -> R.NVFP4Experts:
    """Gaussian weights of std 1/sqrt(K) (activations keep their scale), quantized expert by expert
    with the per-expert recipe (a DeepSeek-V3 layer in fp32 at once would not fit the GPU)."""
    packed = torch.empty(experts, n, k // 2, dtype=torch.uint8, device="cuda")
    scales = torch.empty(experts, n, k // 16, dtype=torch.float8_e4m3fn, device="cuda")
    globals_ = torch.empty(experts, dtype=torch.float32, device="cuda")
    for e in range(experts):
        w = torch.randn(n, k, generator=gen, device="cuda") * k**-0.5
        globals_[e] = R.global_scale(w)[0]
        packed[e], scales[e] = R.quantize(w, globals_[e:e + 1])
    return R.NVFP4Experts(packed, scales, globals_)


def representable_nvfp4(shape: tuple[int, ...], k: int, block_scales: str, gen: torch.Generator):
    """(packed [*shape, K/2], scales [*shape, K/16]) of random codes whose every 16-block holds a +-6
    (code 7 or 15), scales drawn from BLOCK_SCALE_CODES[block_scales]: dequantized with a global scale
    of 1 they quantize back to exactly these codes and scales (with g = 1: q = 1/6 rounds by less
    than an fp32 ulp, far from an E4M3 rounding boundary; every value has <= 6 significant bits, so
    bf16 holds it)."""
    dev, blocks = gen.device, k // 16
    codes = torch.randint(0, 16, (*shape, blocks, 16), generator=gen, device=dev, dtype=torch.int32)
    where = torch.randint(0, 16, (*shape, blocks, 1), generator=gen, device=dev)
    six = 7 + 8 * torch.randint(0, 2, (*shape, blocks, 1), generator=gen, device=dev, dtype=torch.int32)
    codes = codes.scatter(-1, where, six).to(torch.uint8).reshape(*shape, k)
    lo, hi = BLOCK_SCALE_CODES[block_scales]
    scales = torch.randint(lo, hi + 1, (*shape, blocks), generator=gen, device=dev, dtype=torch.int32)
    return R.pack_codes(codes), scales.to(torch.uint8).view(torch.float8_e4m3fn)


def one_expert_logits(tokens: int, experts: int, gen: torch.Generator) -> torch.Tensor:
    """Random logits with one expert (drawn) far ahead for every token: it is in every top-k."""
    logits = torch.randn(tokens, experts, generator=gen, device=gen.device)
    hot = int(torch.randint(0, experts, (1,), generator=gen, device=gen.device))
    logits[:, hot] += 20.0
    return logits


def representable_layer(problem: LayerProblem, gen: torch.Generator) -> LayerInputs:
    """A layer whose hidden states and weights are exactly NVFP4 (global scales 1): see the module
    docstring. The intermediate is still quantized with a calibrated scale, as in every layer."""
    layer, t = problem.layer, problem.tokens
    one = torch.ones(1, device=gen.device)
    hidden = R.dequantize(*representable_nvfp4((t,), layer.hidden, problem.block_scales, gen), one).to(torch.bfloat16)
    experts = torch.ones(layer.experts, device=gen.device)
    w13 = R.NVFP4Experts(*representable_nvfp4((layer.experts, 2 * layer.inter), layer.hidden, problem.block_scales, gen),
                         experts)
    w2 = R.NVFP4Experts(*representable_nvfp4((layer.experts, layer.hidden), layer.inter, problem.block_scales, gen), experts)
    if problem.routing == "one-expert":
        logits = one_expert_logits(t, layer.experts, gen)
    else:
        logits = torch.randn(t, layer.experts, generator=gen, device=gen.device)
    g_mid = R.intermediate_amax_scale(hidden, logits, w13, layer.top_k, input_global_scale=one)
    return LayerInputs(hidden, logits, w13, w2, layer.top_k, one, g_mid)


def random_layer(problem: LayerProblem, rng: torch.Generator) -> LayerInputs:
    gen = _cuda_generator(rng)
    if problem.inputs == "representable":
        return representable_layer(problem, gen)
    layer, t = problem.layer, problem.tokens
    hidden = torch.randn(t, layer.hidden, generator=gen, device="cuda").to(torch.bfloat16)
    logits = torch.randn(t, layer.experts, generator=gen, device="cuda")
    if problem.routing == "skewed":
        # Zipf-like popularity: a few experts take most tokens, the last quarter none at all.
        rank = torch.randperm(layer.experts, generator=gen, device="cuda").float()
        logits = logits - 1.5 * torch.log1p(rank)
        logits[:, rank >= 0.75 * layer.experts] = float("-inf")
    w13 = _weights(layer.experts, 2 * layer.inter, layer.hidden, gen)
    w2 = _weights(layer.experts, layer.hidden, layer.inter, gen)
    g_in = R.global_scale(hidden)
    g_mid = R.intermediate_amax_scale(hidden, logits, w13, layer.top_k, input_global_scale=g_in)
    return LayerInputs(hidden, logits, w13, w2, layer.top_k, g_in, g_mid)
