"""Every gpuhil-cute-wgmma config compiles for sm_90a with no GPU; the compiled kernel's shared
memory is the spec's formula (so the gate's byte count is the truth), its cluster is the config's,
and the PTX really uses warpgroup MMA, for cluster (2,1) multicast TMA, and for ping-pong the named
barrier handing the mainloop from one warpgroup to the other.

Grid: every config (3 tiles x 2 clusters, cooperative, and ping-pong where the tile fits) at the
stages the H100 catalog row gives (the only sm_90a smem size in the catalog: H100, H200 and H20
share it) x both scale recipes.
"""

import pytest

from gpuhil.device.probe import software_fingerprint
from gpuhil.gating import Requirements
from gpuhil.kernels.fp8_grouped_gemm.spec_wgmma import all_configs, config_for, smem_bytes
from gpuhil.ops.fp8_grouped_gemm.recipes import RECIPES
from gpuhil.session import catalog_capabilities


@pytest.mark.aot
@pytest.mark.requires(Requirements(needs_gpu=False, needs_dsl=True))
@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("tile, cluster_m, pingpong", [
    pytest.param(*c, id=f"{c[0].name}-c{c[1]}{'-pingpong' if c[2] else ''}") for c in all_configs()])
def test_config_compiles_for_sm90a_within_the_specs_smem(tile, cluster_m, pingpong, recipe, tmp_path, gpuhil_session):
    from gpuhil import aot
    from gpuhil.kernels.fp8_grouped_gemm import cute_wgmma

    sku = gpuhil_session.matrix.sku("h100")
    cfg = config_for(tile, cluster_m, catalog_capabilities(sku, software_fingerprint()), pingpong)
    res = aot.compile_for_target(cute_wgmma.build(cfg, recipe), *cute_wgmma.aot_args(cfg, recipe),
                                 target="sm_90a", keep_dir=tmp_path)
    assert res.smem_bytes == smem_bytes(tile, cfg.stages) <= sku.smem_optin_bytes, (cfg.name, res.smem_bytes)
    assert res.cluster_shape == (cluster_m, 1, 1)
    ptx = res.ptx_path.read_text()
    assert "wgmma.mma_async.sync.aligned" in ptx and ".e4m3.e4m3" in ptx
    assert "cp.async.bulk.tensor" in ptx
    assert ("multicast::cluster" in ptx) == (cluster_m > 1)
    assert ("bar.arrive" in ptx) == pingpong  # the mainloop turn handed to the other warpgroup
