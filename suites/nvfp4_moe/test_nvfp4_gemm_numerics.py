"""NVFP4 grouped GEMM numerics, every provider, against dequantize-then-multiply per expert.

Inputs are fresh random NVFP4 operands per test (gpuhil.ops.nvfp4_moe.operands: every E2M1 code,
signed zeros included, E4M3 scales with zeros and subnormals sprinkled in, per-expert alpha); outputs
are NaN-poisoned first, so an unwritten row or column fails.
Problems: shapes built to break tiling (K tails for k-tiles of 64, 128 and 256, a K shorter than one
k-tile, N not a tile multiple, empty and single-token experts, odd token counts, more than 32 experts
so the schedule's scan takes several steps) and the NVFP4 MoE layers' GEMMs (Qwen3-30B-A3B,
DeepSeek-V3, a gpt-oss-120b-like layer) at decode (1, 7, 64 tokens) and prefill (4096), uniform and
skewed routing; each problem's tier is declared with it (gpuhil.ops.nvfp4_moe.problems), `--tier
full` adds the full-tier ones.

Tolerance, per expert, relative Frobenius error <= 2^-7: the gpuhil kernels form the exact products
(every E2M1 x E4M3 value is a bf16, every product of two an fp32: see fp4_convert; the native MMA
forms the same products), so their only errors are fp32 accumulation over K (random-signed, growing
like sqrt(K) * 2^-24, < 2^-16 for K <= 7168) and the one bf16 rounding of the output (<= 2^-8 per
element, about 2^-9.5 RMS). The torch peer rounds twice (its bf16 GEMM output, then after alpha):
about 2^-8.5 RMS. 2^-7 holds both with room for nothing else.
"""

import pytest
import torch

from fixtures.grouped_gemm import assert_close_per_group
from gpuhil.kernels.nvfp4_grouped_gemm import spec, spec_wgmma
from gpuhil.ops import providers_for
from gpuhil.ops.nvfp4_moe.operands import random_grouped_operands
from gpuhil.ops.nvfp4_moe.problems import GroupedGemmProblem, adversarial_gemm_problems, gemm_problems, skewed
from gpuhil.ops.nvfp4_moe.reference import grouped_reference
from gpuhil.testing import case

PROVIDERS = providers_for("nvfp4_grouped_gemm")


def cases():
    for prov in PROVIDERS:
        for problem in [*adversarial_gemm_problems(), *gemm_problems()]:
            yield case(prov, problem, prov, problem, id=f"{prov.name}-{problem.name}")


def poisoned_out(problem: GroupedGemmProblem) -> torch.Tensor:
    return torch.full((problem.total_tokens, problem.n), float("nan"), dtype=torch.bfloat16, device="cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("provider, problem", list(cases()))
def test_grouped_gemm_matches_reference(provider, problem, rng, capabilities):
    ops = random_grouped_operands(problem, rng)
    out = poisoned_out(problem)
    provider(ops, capabilities, out=out)
    torch.cuda.synchronize()
    assert_close_per_group(out, grouped_reference(ops, problem.offsets()), problem)


TAIL_PROBLEM = adversarial_gemm_problems()[2]  # K = 1088: a K tail for k-tiles of 128 and 256, N = 200


def tile_cases():
    for prov in PROVIDERS:
        tiles = {"gpuhil-cute-dequant": spec.TILES[spec.DEQUANT], "gpuhil-cute-native": spec.TILES[spec.NATIVE],
                 "gpuhil-cute-dequant-wgmma": spec_wgmma.TILES}.get(prov.name, ())
        for tile in tiles:
            yield case(prov, TAIL_PROBLEM, prov, tile, id=f"{prov.name}-{tile.name}", tile=tile)


@pytest.mark.gpu
@pytest.mark.parametrize("provider, tile", list(tile_cases()))
def test_every_tile_with_the_probed_stages(provider, tile, rng, capabilities):
    """Every tile, not only the chosen ones, at the stage count this device (or the emulated SKU)
    gets: a config the gate offers anywhere must be right everywhere."""
    ops = random_grouped_operands(TAIL_PROBLEM, rng)
    out = poisoned_out(TAIL_PROBLEM)
    launch = provider.prepare(ops, capabilities, tile=tile)
    assert launch.config.tile == tile
    staged = spec_wgmma.stages_for(tile, capabilities.smem_optin_bytes) if provider.name == "gpuhil-cute-dequant-wgmma" \
        else spec.stages_for(launch.config.kernel, tile, capabilities.smem_optin_bytes)
    assert launch.config.stages == staged
    launch(ops, out)
    torch.cuda.synchronize()
    assert_close_per_group(out, grouped_reference(ops, TAIL_PROBLEM.offsets()), TAIL_PROBLEM)


GRAPH_PROBLEM = adversarial_gemm_problems()[4]  # 160 experts, skewed


@pytest.mark.gpu
@pytest.mark.parametrize("provider", [case(p, GRAPH_PROBLEM, p, id=p.name) for p in PROVIDERS
                                      if p.origin == "gpuhil" and p.backend == "cute-dsl"])
def test_launch_is_cuda_graph_capturable(provider, rng, capabilities):
    """gpuhil's kernels: capture once, replay on new operands and new routing (no host sync or
    allocation inside the launch)."""
    ops = random_grouped_operands(GRAPH_PROBLEM, rng)
    out = poisoned_out(GRAPH_PROBLEM)
    launch = provider.prepare(ops, capabilities)
    launch(ops, out)  # compile and check outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        launch(ops, out)
    for seed_offset in range(2):
        problem = GroupedGemmProblem(GRAPH_PROBLEM.name, GRAPH_PROBLEM.n, GRAPH_PROBLEM.k,
                                     skewed(GRAPH_PROBLEM.total_tokens, GRAPH_PROBLEM.groups, 7 + seed_offset))
        fresh = random_grouped_operands(problem, rng)
        for dst, src in zip((ops.a, ops.a_scale, ops.b, ops.b_scale, ops.offs, ops.alpha),
                            (fresh.a, fresh.a_scale, fresh.b, fresh.b_scale, fresh.offs, fresh.alpha)):
            dst.copy_(src)
        out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        assert_close_per_group(out, grouped_reference(ops, problem.offsets()), problem)


# The dequant tiles whose scale rings have fewer 4-byte chunks than threads (64 columns, k-tiles of
# 64): once withdrawn as wrong on the H100 at K = 1088 (17 k-tiles, a 6-stage ring). Their idle
# loader threads zero-filled a working thread's scale chunk (grouped_gemm.ring.Stream), a race whose
# loser is timing: K = 1088 as it broke, and K = 4096 (64 k-tiles) so the ring wraps many times.
RING_RACE_PROBLEMS = (TAIL_PROBLEM, GroupedGemmProblem("k4096-n200-ring-wraps", 200, 4096, (5, 131, 1, 63, 0, 9)))
RING_RACE_TILES = tuple(t for t in spec.TILES[spec.DEQUANT] if t.n == 64 and t.k == 64)
assert {(t.m, t.n, t.k) for t in RING_RACE_TILES} == {(64, 64, 64), (128, 64, 64)}


def ring_race_cases():
    prov = next(p for p in PROVIDERS if p.name == "gpuhil-cute-dequant")
    for problem in RING_RACE_PROBLEMS:
        for tile in RING_RACE_TILES:
            yield case(prov, problem, prov, problem, tile, id=f"{tile.name}-{problem.name}", tile=tile)


@pytest.mark.gpu
@pytest.mark.parametrize("provider, problem, tile", list(ring_race_cases()))
def test_dequant_tiles_with_idle_scale_loaders_past_the_ring(provider, problem, tile, rng, capabilities):
    ops = random_grouped_operands(problem, rng)
    out = poisoned_out(problem)
    launch = provider.prepare(ops, capabilities, tile=tile)
    assert launch.config.tile == tile and launch.config.stages < problem.k // tile.k  # the ring wraps
    launch(ops, out)
    torch.cuda.synchronize()
    assert_close_per_group(out, grouped_reference(ops, problem.offsets()), problem)
