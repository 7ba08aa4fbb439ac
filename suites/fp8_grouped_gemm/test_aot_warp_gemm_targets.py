"""Every gpuhil-cute-warp config compiles for sm_90a, sm_120a and sm_121a with no GPU, and the shared
memory the compiled kernel really takes is what the spec (and so the gate) says.

Grid: every tile x the stages each catalog SKU's opt-in limit gives it (H100, RTX 5090, GB10) x both
scale recipes, each for its SKU's own target; the consumer Blackwell rows must stay <= 101376 B.
"""

import pytest

from gpuhil.gating import Requirements
from gpuhil.kernels.fp8_grouped_gemm.spec_warp import TARGETS, TILES, config_for, smem_bytes
from gpuhil.ops.fp8_grouped_gemm.operands import RECIPES

SKU_TARGETS = {"h100": "sm_90a", "rtx5090": "sm_120a", "gb10": "sm_121a"}
assert set(SKU_TARGETS.values()) == set(TARGETS)


@pytest.mark.aot
@pytest.mark.requires(Requirements(needs_gpu=False, needs_dsl=True))
@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.skus(where=lambda s: s.id in SKU_TARGETS)
def test_every_config_compiles_for_the_skus_target_within_its_smem(sku, catalog_caps, recipe, tmp_path):
    from gpuhil.kernels import aot
    from gpuhil.kernels.fp8_grouped_gemm import cute_warp

    target = SKU_TARGETS[sku.id]
    for tile in TILES:
        cfg = config_for(tile, catalog_caps)
        res = aot.compile_kernel_for_target(cute_warp.build, cute_warp.aot_args, cfg, recipe, target=target,
                                            keep_dir=tmp_path)
        assert res.smem_bytes == smem_bytes(tile, cfg.stages), (tile.name, res.smem_bytes)
        assert res.smem_bytes <= sku.smem_optin_bytes
        assert res.cluster_shape == (1, 1, 1)
        ptx = res.ptx_path.read_text()
        assert "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32" in ptx and "cp.async" in ptx
        assert "wgmma" not in ptx, "the portable kernel must not use Hopper-only warpgroup MMA"
