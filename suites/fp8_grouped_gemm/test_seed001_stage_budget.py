"""Seed 001: CUTLASS picked grouped-GEMM stages to fit the SM12x family's largest shared memory, and
on the GB10 (101376 B opt-in) the kernel asked for 102400 B: 13 of 16 MoE tactics failed.
gpuhil-cute-warp computes its stage count at run time from the probed (or emulated) opt-in limit:

- on every catalog SKU, every tile gets a stage count, and the GB10's limit clamps some tiles below
  the H100's (CPU, from the catalog rows; that those stages fit is the spec's arithmetic, and that the
  compiled kernel takes what the spec says is test_aot_warp_gemm_targets.py);
- on a GPU (natively, and with --emulate-sku gb10 on an H100) dispatch picks the stages the probe
  allows, and the kernel with those stages matches the reference for every tile;
- a tile that cannot fit even two stages is refused by the plan, before launch, with both byte counts.
"""

import dataclasses

import pytest
import torch

from fixtures.grouped_gemm import assert_close_per_group, make_operands
from gpuhil.gating import UnsupportedConfig
from gpuhil.kernels import fp8_grouped_gemm as gg
from gpuhil.kernels.fp8_grouped_gemm.spec_warp import MIN_STAGES, TILES, config_for, requirements, smem_bytes, staged, stages_for
from gpuhil.ops.fp8_grouped_gemm.problems import adversarial_problems
from gpuhil.ops.fp8_grouped_gemm.reference import reference

GB10_OPTIN = 101376
PROBLEM = adversarial_problems()[0]  # K=2000: the K tail crosses every K-tile


@pytest.mark.skus(where=lambda s: s.arch_family >= 9 or s.cc == "8.9")
def test_every_tile_gets_stages_on_every_sku(sku, catalog_caps):
    assert [t.name for t in TILES if config_for(t, catalog_caps) is None] == [], sku.id


def test_gb10_gets_fewer_stages_than_h100_for_the_same_tile(sku_caps):
    gb10, h100 = sku_caps("gb10"), sku_caps("h100")
    assert gb10.smem_optin_bytes == GB10_OPTIN
    clamped = [t for t in TILES if config_for(t, gb10).stages < config_for(t, h100).stages]
    assert clamped, "the GB10's 99 KiB must clamp at least one tile's stages"


def test_a_tile_that_cannot_fit_two_stages_is_refused_with_byte_counts(sku_caps):
    small = dataclasses.replace(sku_caps("gb10"), smem_optin_bytes=48 * 1024)
    big = max(TILES, key=lambda t: smem_bytes(t, MIN_STAGES))
    needs = f"needs {smem_bytes(big, MIN_STAGES)} B, probed {48 * 1024} B"
    plan = gg.plan(PROBLEM, small, tile=big)
    assert plan.config is None and not plan.ok and needs in plan.why_not
    with pytest.raises(UnsupportedConfig, match=needs):
        plan.ensure(small)



@pytest.mark.gpu
@pytest.mark.parametrize("tile", [pytest.param(t, id=t.name, marks=pytest.mark.requires(
    lambda caps, t=t: requirements(staged(t, caps)))) for t in TILES])
def test_dispatch_uses_the_probed_stages_and_stays_exact(tile, capabilities, rng):
    """Run with --emulate-sku gb10 on an H100: the same sm_90a kernel, within 101376 B."""
    q = make_operands(PROBLEM, "rowwise", rng)
    launch = gg.prepare(q, capabilities, tile=tile)
    assert launch.config.stages == stages_for(tile, capabilities.smem_optin_bytes)
    out = torch.full((PROBLEM.total_tokens, PROBLEM.n), float("nan"), dtype=torch.bfloat16, device="cuda")
    launch(q, out)
    torch.cuda.synchronize()
    assert_close_per_group(out, reference(q), PROBLEM)
