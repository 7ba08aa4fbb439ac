"""Every gpuhil-cute-warp config compiles for sm_90a, sm_120a and sm_121a with no GPU, and the shared
memory the compiled kernel really takes is what the spec (and so the gate) says.

Grid: every tile x the stages each catalog SKU's opt-in limit gives it (H100, RTX 5090, GB10) x both
scale recipes, each for its SKU's own target; the consumer Blackwell rows must stay <= 101376 B.
"""

import pytest

from gpuhil import matrix
from gpuhil.capabilities import Capabilities
from gpuhil.kernels.fp8_grouped_gemm.recipes import RECIPES
from gpuhil.kernels.fp8_grouped_gemm.spec import TARGETS, TILES, config_for, smem_bytes
from gpuhil.probe import software_fingerprint
from gpuhil.requirements import Requirements

MX = matrix.active()  # the session's catalog (--matrix)
SKU_TARGETS = {"h100": "sm_90a", "rtx5090": "sm_120a", "gb10": "sm_121a"}
assert set(SKU_TARGETS.values()) == set(TARGETS)


@pytest.mark.aot
@pytest.mark.requires(Requirements(needs_gpu=False, needs_dsl=True))
@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("sku_id", SKU_TARGETS)
def test_every_config_compiles_for_the_skus_target_within_its_smem(sku_id, recipe, tmp_path):
    from gpuhil import aot
    from gpuhil.kernels.fp8_grouped_gemm import cute_warp

    sku, target = MX.sku(sku_id), SKU_TARGETS[sku_id]
    caps = Capabilities.from_sku(sku, software_fingerprint())
    for tile in TILES:
        cfg = config_for(tile, caps)
        kernel = cute_warp.KernelConfig(tile.m, tile.n, tile.k, cfg.stages)
        res = aot.compile_for_target(cute_warp.build(kernel, recipe), *cute_warp.aot_args(kernel, recipe),
                                     target=target, keep_dir=tmp_path)
        assert res.smem_bytes == smem_bytes(tile, cfg.stages), (tile.name, res.smem_bytes)
        assert res.smem_bytes <= sku.smem_optin_bytes
        assert res.cluster_shape == (1, 1, 1)
        ptx = res.ptx_path.read_text()
        assert "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32" in ptx and "cp.async" in ptx
        assert "wgmma" not in ptx, "the portable kernel must not use Hopper-only warpgroup MMA"
