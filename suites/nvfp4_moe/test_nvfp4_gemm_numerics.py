"""NVFP4 grouped GEMM numerics, both kernels, against dequantize-then-multiply in fp64 per expert.

Inputs are fresh random NVFP4 operands per test: every E2M1 code (signed zeros included), E4M3 block
scales mostly in [2^-3, 16] with zeros and subnormals sprinkled in, per-expert alpha from random
global scales; outputs are NaN-poisoned first, so an unwritten row or column fails.
Problems: shapes built to break tiling (K tails for k-tiles of 64, 128 and 256, a K shorter than one
k-tile, N not a tile multiple, empty and single-token experts, odd token counts, more than 32
experts so the schedule's scan takes several steps) and the MoE layers of the FP8 suite (K and N of
those are multiples of 64 and 8, as NVFP4 needs); the default tier keeps every adversarial problem,
Qwen3-30B-A3B and the decode problems, `--tier full` adds the rest.

Tolerance, per expert, relative Frobenius error <= 2^-7 (the FP8 suite's TOL): both kernels form
the exact products (every E2M1 x E4M3 value is a bf16, every product of two an fp32: see
fp4_convert; the native MMA forms the same products), so the only errors are fp32 accumulation over
K (random-signed rounding errors grow like sqrt(K) * 2^-24 relative to the root-sum-square of the
terms, < 2^-16 for K <= 14336) and the one bf16 rounding of the output (<= 2^-8 per element,
about 2^-9.5 RMS): 2^-7 is twice the worst single rounding and leaves room for nothing else.
Gates come from the spec's requirements via `requires` markers: on an H100 the native kernel
skips naming the MMA kind it lacks.
"""

import pytest
import torch

from fixtures.grouped_gemm import assert_close_per_group
from gpuhil.kernels.nvfp4_grouped_gemm import spec
from gpuhil.kernels.nvfp4_grouped_gemm.operands import Nvfp4GroupedOperands
from gpuhil.problems import GroupedGemmProblem, layer_problems, skewed

DEFAULT_TIER_LAYERS = ("qwen3-30b-a3b", "mixtral-8x7b-gate_up-decode", "mixtral-8x7b-down-decode",
                       "deepseek-v3-gate_up-decode", "deepseek-v3-down-decode")
E2M1_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def adversarial_problems(seed: int = 0) -> list[GroupedGemmProblem]:
    return [
        GroupedGemmProblem("k64-shorter-than-a-k-tile-n8-single-tokens", 8, 64, (1, 0, 1, 3, 0, 1, 1, 2)),
        GroupedGemmProblem("k192-tail-64-or-one-partial-tile", 64, 192, skewed(300, 8, seed)),
        GroupedGemmProblem("k1088-n200-odd-tokens", 200, 1088, (5, 131, 1, 63, 257, 0, 17, 9)),
        GroupedGemmProblem("all-empty-but-one", 256, 512, (0, 0, 0, 77, 0, 0, 0, 0)),
        GroupedGemmProblem("g160-scan-of-five-steps", 128, 256, skewed(1000, 160, seed + 1)),
        GroupedGemmProblem("t1-one-token-last-expert", 512, 2048, (0, 1)),
    ]


# --- to be replaced by gpuhil.ops.nvfp4_moe.reference.dequantize -----------------------------------
def dequantize(packed: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """[..., K/2] uint8 codes (element 2j in the low nibble) and [..., K/16] E4M3 scales -> [..., K]
    float64 values code * scale (the global scale is left to alpha)."""
    codes = torch.stack((packed & 0xF, packed >> 4), dim=-1).flatten(-2).long()
    table = torch.tensor(E2M1_VALUES, dtype=torch.float64, device=packed.device)
    values = torch.where(codes >= 8, -table[codes & 7], table[codes & 7])
    return values * scales.double().repeat_interleave(16, dim=-1)
# ----------------------------------------------------------------------------------------------------


def random_scales(shape, rng) -> torch.Tensor:
    """E4M3 block scales: normal codes in [2^-3, 16], one in 32 a zero or a subnormal (exact products
    must hold there too)."""
    codes = torch.randint(0x20, 0x59, shape, generator=rng, dtype=torch.int32)
    odd = torch.randint(0, 32, shape, generator=rng) == 0
    codes = torch.where(odd, torch.randint(0, 8, shape, generator=rng, dtype=torch.int32), codes)
    return codes.to(torch.uint8).view(torch.float8_e4m3fn)


def random_operands(problem: GroupedGemmProblem, rng) -> Nvfp4GroupedOperands:
    t, n, k, g = problem.total_tokens, problem.n, problem.k, problem.groups
    global_a = torch.empty(1).uniform_(1.0, 8.0, generator=rng)
    global_b = torch.empty(g).uniform_(1.0, 8.0, generator=rng)
    ops = Nvfp4GroupedOperands(
        a=torch.randint(0, 256, (t, k // 2), generator=rng, dtype=torch.int32).to(torch.uint8),
        a_scale=random_scales((t, k // 16), rng),
        b=torch.randint(0, 256, (g, n, k // 2), generator=rng, dtype=torch.int32).to(torch.uint8),
        b_scale=random_scales((g, n, k // 16), rng),
        offs=torch.tensor(problem.offsets(), dtype=torch.int32),
        alpha=(1.0 / (global_a * global_b)).float(),
    )
    return Nvfp4GroupedOperands(*(x.cuda() for x in (ops.a, ops.a_scale, ops.b, ops.b_scale, ops.offs, ops.alpha)))


def reference(ops: Nvfp4GroupedOperands, problem: GroupedGemmProblem) -> torch.Tensor:
    """fp64 per expert: alpha[g] * dequant(A rows of g) @ dequant(B[g])^T."""
    out = torch.zeros(problem.total_tokens, problem.n, dtype=torch.float64, device=ops.a.device)
    start = 0
    for g, end in enumerate(problem.offsets()):
        if end > start:
            a = dequantize(ops.a[start:end], ops.a_scale[start:end])
            b = dequantize(ops.b[g], ops.b_scale[g])
            out[start:end] = ops.alpha[g].double() * (a @ b.T)
        start = end
    return out


def poisoned_out(problem: GroupedGemmProblem) -> torch.Tensor:
    return torch.full((problem.total_tokens, problem.n), float("nan"), dtype=torch.bfloat16, device="cuda")


def kernel_marks(kernel: str, problem: GroupedGemmProblem, tile=None) -> list:
    """What dispatch needs for (kernel, tile) at the two stages any device must fit, as a gate."""
    tile = tile or spec.tile_for(kernel, problem.n, problem.total_tokens / problem.groups)
    marks = [pytest.mark.requires(spec.requirements(spec.GemmConfig(kernel, tile, spec.MIN_STAGES)))]
    reason = spec.unsupported_reason(problem)
    return marks + ([pytest.mark.skip(reason=reason)] if reason else [])


def cases():
    problems = [(p, []) for p in adversarial_problems()]
    problems += [(p, [] if p.name.startswith(DEFAULT_TIER_LAYERS) else [pytest.mark.slow]) for p in layer_problems()]
    for kernel in spec.KERNELS:
        for problem, marks in problems:
            yield pytest.param(kernel, problem, id=f"{kernel}-{problem.name}",
                               marks=kernel_marks(kernel, problem) + marks)


@pytest.mark.gpu
@pytest.mark.parametrize("kernel, problem", list(cases()))
def test_grouped_gemm_matches_reference(kernel, problem, rng):
    from gpuhil.kernels.nvfp4_grouped_gemm import grouped_gemm

    ops = random_operands(problem, rng)
    out = poisoned_out(problem)
    grouped_gemm(ops, out=out, kernel=kernel)
    torch.cuda.synchronize()
    assert_close_per_group(out, reference(ops, problem), problem)


TAIL_PROBLEM = adversarial_problems()[2]  # K = 1088: a K tail for k-tiles of 128 and 256, N = 200


def tile_cases():
    for kernel in spec.KERNELS:
        for tile in spec.TILES[kernel]:
            yield pytest.param(kernel, tile, id=f"{kernel}-{tile.name}", marks=kernel_marks(kernel, TAIL_PROBLEM, tile))


@pytest.mark.gpu
@pytest.mark.parametrize("kernel, tile", list(tile_cases()))
def test_every_tile_with_the_probed_stages(kernel, tile, rng):
    """Every tile, not only the chosen ones, at the stage count this device (or the emulated SKU)
    gets: a config the gate offers anywhere must be right everywhere."""
    from gpuhil.kernels.nvfp4_grouped_gemm import grouped_gemm

    ops = random_operands(TAIL_PROBLEM, rng)
    out = poisoned_out(TAIL_PROBLEM)
    grouped_gemm(ops, out=out, kernel=kernel, tile=tile)
    torch.cuda.synchronize()
    assert_close_per_group(out, reference(ops, TAIL_PROBLEM), TAIL_PROBLEM)


GRAPH_PROBLEM = adversarial_problems()[4]  # 160 experts, skewed


@pytest.mark.gpu
@pytest.mark.parametrize("kernel", [pytest.param(k, marks=kernel_marks(k, GRAPH_PROBLEM)) for k in spec.KERNELS])
def test_launch_is_cuda_graph_capturable(kernel, rng):
    """Capture once, replay on new operands and new routing: no host sync or allocation inside."""
    from gpuhil.kernels.nvfp4_grouped_gemm import grouped_gemm

    ops = random_operands(GRAPH_PROBLEM, rng)
    out = poisoned_out(GRAPH_PROBLEM)
    grouped_gemm(ops, out=out, kernel=kernel)  # compile and check outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        grouped_gemm(ops, out=out, kernel=kernel)
    for seed_offset in range(2):
        problem = GroupedGemmProblem(GRAPH_PROBLEM.name, GRAPH_PROBLEM.n, GRAPH_PROBLEM.k,
                                     skewed(GRAPH_PROBLEM.total_tokens, GRAPH_PROBLEM.groups, 7 + seed_offset))
        fresh = random_operands(problem, rng)
        for dst, src in zip((ops.a, ops.a_scale, ops.b, ops.b_scale, ops.offs, ops.alpha),
                            (fresh.a, fresh.a_scale, fresh.b, fresh.b_scale, fresh.offs, fresh.alpha)):
            dst.copy_(src)
        out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        assert_close_per_group(out, reference(ops, problem), problem)
