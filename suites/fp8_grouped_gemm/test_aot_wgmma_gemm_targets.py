"""Every gpuhil-cute-wgmma config compiles for sm_90a with no GPU; the compiled kernel's shared
memory is the spec's formula (so the gate's byte count is the truth), its cluster is the config's,
and the PTX really uses warpgroup MMA, for a cluster multicast TMA (one multicast load per shared
operand: B along M, A along N), for ping-pong the named barrier handing the mainloop from one
warpgroup to the other, and an epilogue whose global stores are all 16 bytes wide (the quad
transpose; 4-byte stores made Qwen3 down prefill 1.3x slower, docs/PERF.md), launched as a
programmatic dependent launch.

Grid: every config (4 tiles x 4 clusters, cooperative, and ping-pong where the tile fits) at the
stages the H100 catalog row gives (the only sm_90a smem size in the catalog: H100, H200 and H20
share it) x both scale recipes.
"""

import pytest

from gpuhil.device.probe import software_fingerprint
from gpuhil.gating import Requirements
from gpuhil.kernels.fp8_grouped_gemm.spec_wgmma import all_configs, config_for, smem_bytes
from gpuhil.ops.fp8_grouped_gemm.operands import RECIPES
from gpuhil.session import catalog_capabilities


@pytest.mark.aot
@pytest.mark.requires(Requirements(needs_gpu=False, needs_dsl=True))
@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("key", [pytest.param(c, id=c.label) for c in all_configs()])
def test_config_compiles_for_sm90a_within_the_specs_smem(key, recipe, tmp_path, gpuhil_session):
    from gpuhil.kernels import aot
    from gpuhil.kernels.fp8_grouped_gemm import cute_wgmma

    sku = gpuhil_session.matrix.sku("h100")
    tile, cluster_m, cluster_n, pingpong = key
    cfg = config_for(tile, cluster_m, catalog_capabilities(sku, software_fingerprint()), pingpong, cluster_n)
    res = aot.compile_kernel_for_target(cute_wgmma.build, cute_wgmma.aot_args, cfg, recipe, target="sm_90a",
                                        keep_dir=tmp_path)
    assert res.smem_bytes == smem_bytes(tile, cfg.stages) <= sku.smem_optin_bytes, (cfg.name, res.smem_bytes)
    assert res.cluster_shape == (cluster_m, cluster_n, 1)
    ptx = res.ptx_path.read_text()
    assert "wgmma.mma_async.sync.aligned" in ptx and ".e4m3.e4m3" in ptx
    assert "cp.async.bulk.tensor" in ptx
    loads = [line.split()[0] for line in ptx.splitlines() if "cp.async.bulk.tensor" in line]
    a_loads = [op for op in loads if ".2d." in op]  # A [T, K]
    b_loads = [op for op in loads if ".3d." in op]  # B [N, K, G]
    assert a_loads and b_loads and len(a_loads) + len(b_loads) == len(loads)
    assert all(("multicast::cluster" in op) == (cluster_n > 1) for op in a_loads), set(a_loads)  # A shared along N
    assert all(("multicast::cluster" in op) == (cluster_m > 1) for op in b_loads), set(b_loads)  # B shared along M
    assert ("bar.arrive" in ptx) == pingpong  # the mainloop turn handed to the other warpgroup
    # Programmatic dependent launch: setup overlaps the previous kernel, global accesses wait for it.
    assert "griddepcontrol.launch_dependents" in ptx and "griddepcontrol.wait" in ptx
    stores = {op for line in ptx.splitlines() for op in line.split() if op.startswith("st.global")}
    assert stores == {"st.global.v4.b32"}, stores  # one whole 8-column bf16 block per lane and store
    assert str(cute_wgmma.EVICT_FIRST) not in ptx  # only a config that streams B asks for evict-first


@pytest.mark.aot
@pytest.mark.requires(Requirements(needs_gpu=False, needs_dsl=True))
def test_decode_config_streams_the_weights_evict_first(tmp_path, gpuhil_session):
    """At decode sizes each weight byte is read once: the B loads carry the evict-first L2 policy."""
    from gpuhil.kernels import aot
    from gpuhil.kernels.fp8_grouped_gemm import WGMMA, GroupedShape, cute_wgmma, plan

    caps = catalog_capabilities(gpuhil_session.matrix.sku("h100"), software_fingerprint())
    cfg = plan(GroupedShape.of(512, 128, 1536, 2048), caps, kernel=WGMMA).config  # Qwen3-30B-A3B gate_up, 64 tokens x top-8
    assert cfg.stream_b and cfg.name.endswith("ppef")
    res = aot.compile_kernel_for_target(cute_wgmma.build, cute_wgmma.aot_args, cfg, "rowwise", target="sm_90a",
                                        keep_dir=tmp_path)
    assert str(cute_wgmma.EVICT_FIRST) in res.ptx_path.read_text()
