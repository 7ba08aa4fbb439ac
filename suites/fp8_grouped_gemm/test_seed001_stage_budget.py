"""Seed 001: CUTLASS picked grouped-GEMM stages to fit the SM12x family's largest shared memory, and
on the GB10 (101376 B opt-in) the kernel asked for 102400 B: 13 of 16 MoE tactics failed.
gpuhil-cute-warp computes its stage count at run time from the probed (or emulated) opt-in limit:

- on every catalog SKU, every tile's stages fit that SKU's limit (CPU, from the catalog rows);
- on a GPU (natively, and with --emulate-sku gb10 on an H100) dispatch picks the stages the probe
  allows, and the kernel with those stages matches the reference for every tile;
- a tile that cannot fit even two stages is refused with both byte counts.
"""

import dataclasses

import pytest
import torch

from fixtures.grouped_gemm import assert_close_per_group, make_operands
from gpuhil.gating import check
from gpuhil.kernels import fp8_grouped_gemm as gg
from gpuhil.kernels.fp8_grouped_gemm.spec_warp import (MIN_STAGES, TILES, WarpGemmConfig, config_for, requirements,
                                                       smem_bytes, stages_for, tile_requirements)
from gpuhil.ops.fp8_grouped_gemm.problems import adversarial_problems
from gpuhil.ops.fp8_grouped_gemm.reference import reference

GB10_OPTIN = 101376


@pytest.mark.skus(where=lambda s: s.arch_family >= 9 or s.cc == "8.9")
def test_every_tile_fits_the_skus_probed_limit(sku, catalog_caps):
    for tile in TILES:
        cfg = config_for(tile, catalog_caps)
        assert cfg is not None, f"{tile.name} gets no stages on {sku.id}"
        assert smem_bytes(cfg.tile, cfg.stages) <= sku.smem_optin_bytes, (sku.id, cfg)
        assert cfg.stages >= MIN_STAGES


def test_gb10_gets_fewer_stages_than_h100_for_the_same_tile(sku_caps):
    gb10, h100 = sku_caps("gb10"), sku_caps("h100")
    clamped = [t for t in TILES if config_for(t, gb10).stages < config_for(t, h100).stages]
    assert clamped, "the GB10's 99 KiB must clamp at least one tile's stages"
    assert all(smem_bytes(t, config_for(t, gb10).stages) <= GB10_OPTIN for t in TILES)


def test_a_tile_that_cannot_fit_two_stages_is_refused_with_byte_counts(sku_caps):
    small = dataclasses.replace(sku_caps("gb10"), smem_optin_bytes=48 * 1024)
    big = max(TILES, key=lambda t: smem_bytes(t, MIN_STAGES))
    assert stages_for(big, small.smem_optin_bytes) is None
    verdict = check(requirements(WarpGemmConfig(big, MIN_STAGES)), small)
    assert not verdict.ok and f"needs {smem_bytes(big, MIN_STAGES)} B, probed {48 * 1024} B" in verdict.explain()


PROBLEM = adversarial_problems()[0]  # K=2000: the K tail crosses every K-tile


@pytest.mark.gpu
@pytest.mark.parametrize("tile", [pytest.param(t, id=t.name, marks=pytest.mark.requires(
    lambda caps, t=t: tile_requirements(t, caps))) for t in TILES])
def test_dispatch_uses_the_probed_stages_and_stays_exact(tile, capabilities, rng):
    """Run with --emulate-sku gb10 on an H100: the same sm_90a kernel, within 101376 B."""
    q = make_operands(PROBLEM, "rowwise", rng)
    launch = gg.prepare(q, caps=capabilities, tile=tile)
    assert launch.config.stages == stages_for(tile, capabilities.smem_optin_bytes)
    assert smem_bytes(launch.config.tile, launch.config.stages) <= capabilities.smem_optin_bytes
    out = torch.full((PROBLEM.total_tokens, PROBLEM.n), float("nan"), dtype=torch.bfloat16, device="cuda")
    launch(q, out)
    torch.cuda.synchronize()
    assert_close_per_group(out, reference(q), PROBLEM)
