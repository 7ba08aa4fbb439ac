"""Both NVFP4 grouped-GEMM kernels compile for every target they are offered on, with no GPU, and the
shared memory each compiled kernel really takes is what the spec (and so the gate) says.

* dequant: every tile x the stages each catalog SKU's opt-in limit gives it (H100 232448 B, RTX 5090
  and GB10 101376 B), each for its SKU's own target (sm_90a, sm_120a, sm_121a); mma.sync bf16, no
  Hopper-only wgmma. A tile whose two stages do not fit a SKU is compiled at two stages too, to show
  the formula that refuses it is the kernel's real footprint (seed 001's failure mode).
* native: every tile on sm_120a and sm_121a at the SM12x stages; the PTX must carry the public
  ``kind::mxf4nvf4`` block-scaled mma.sync spelling (seed 002), never an internal ``_mma`` form.
* wgmma (gpuhil-cute-dequant-wgmma): every tile on sm_90a at the H100's stages; its PTX must carry the bf16
  warpgroup MMA, the cp.async ring's mbarrier arrivals and the proxy fence between the bf16 stores and
  the wgmma that reads them; the DSL refuses it for an SM12x target.
No config may spill registers (a spill would be a silent slowdown on every SKU).
"""

import re
import struct

import pytest

from gpuhil.gating import Requirements
from gpuhil.kernels.nvfp4_grouped_gemm import spec, spec_wgmma

SKU_TARGETS = {"h100": "sm_90a", "rtx5090": "sm_120a", "gb10": "sm_121a"}
assert set(SKU_TARGETS.values()) == set(spec.TARGETS[spec.DEQUANT])
NATIVE_SKUS = [s for s, t in SKU_TARGETS.items() if t in spec.TARGETS[spec.NATIVE]]
# The exact instruction the native kernel must contain (PTX ISA: warp-level block-scaled MMA).
NATIVE_MMA = "mma.sync.aligned.kind::mxf4nvf4.block_scale.scale_vec::4X.m16n8k64.row.col.f32.e2m1.e2m1.f32.ue4m3"
DEQUANT_MMA = "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"


def cubin_frame_bytes(path) -> int:
    """Per-thread stack frame the assembler gave the kernel (EIATTR_FRAME_SIZE in .nv.info): > 0
    means registers spilled to local memory."""
    blob = path.read_bytes()
    shoff = struct.unpack_from("<Q", blob, 0x28)[0]
    entsize, num, strndx = struct.unpack_from("<HHH", blob, 0x3A)
    heads = [struct.unpack_from("<IIQQQQIIQQ", blob, shoff + i * entsize) for i in range(num)]
    names = heads[strndx][4]
    for h in heads:
        if blob[names + h[0]: blob.index(b"\0", names + h[0])] == b".nv.info":
            pos, end = h[4], h[4] + h[5]
            while pos < end:
                fmt, attr, size = struct.unpack_from("<BBH", blob, pos)
                if fmt == 0x04 and attr == 0x11:  # EIATTR_FRAME_SIZE: (symbol, bytes)
                    return struct.unpack_from("<I", blob, pos + 8)[0]
                pos += 4 + size if fmt == 0x04 else 4
    raise AssertionError(f"no EIATTR_FRAME_SIZE in {path}")


def compile_config(kernel: str, tile, stages: int, target: str, keep_dir):
    from gpuhil.kernels import aot
    from gpuhil.kernels.nvfp4_grouped_gemm import cute_gemm

    cfg = spec.GemmConfig(kernel, tile, stages)
    return aot.compile_kernel_for_target(cute_gemm.build, cute_gemm.aot_args, cfg, "nvfp4", target=target, keep_dir=keep_dir)


@pytest.mark.aot
@pytest.mark.requires(Requirements(needs_gpu=False, needs_dsl=True))
@pytest.mark.skus(where=lambda s: s.id in SKU_TARGETS)
def test_dequant_configs_compile_for_the_skus_target_within_its_smem(sku, catalog_caps, tmp_path):
    target, caps = SKU_TARGETS[sku.id], catalog_caps
    offered = 0
    for tile in spec.TILES[spec.DEQUANT]:
        cfg = spec.config_for(spec.DEQUANT, tile, caps)
        stages = cfg.stages if cfg else spec.MIN_STAGES
        res = compile_config(spec.DEQUANT, tile, stages, target, tmp_path)
        assert res.smem_bytes == spec.smem_bytes(spec.DEQUANT, tile, stages), (tile.name, stages, res.smem_bytes)
        if cfg is None:  # refused: its real two-stage footprint is over the limit, as the spec says
            assert res.smem_bytes > sku.smem_optin_bytes, (tile.name, res.smem_bytes)
            continue
        offered += 1
        assert res.smem_bytes <= sku.smem_optin_bytes
        assert res.cluster_shape == (1, 1, 1)
        ptx = res.ptx_path.read_text()
        assert DEQUANT_MMA in ptx and "cp.async" in ptx and "ldmatrix" in ptx
        assert "wgmma" not in ptx, "the portable kernel must not use Hopper-only warpgroup MMA"
        assert "block_scale" not in ptx
        assert cubin_frame_bytes(res.cubin_path) == 0, f"{tile.name}s{stages} spills registers"
    assert offered >= len(spec.TILES[spec.DEQUANT]) - 1  # at most the widest tile is too big for 99 KiB


@pytest.mark.aot
@pytest.mark.requires(Requirements(needs_gpu=False, needs_dsl=True))
@pytest.mark.skus(where=lambda s: s.id in NATIVE_SKUS)
def test_native_configs_compile_for_sm12x_with_the_public_mxf4nvf4_spelling(sku, catalog_caps, tmp_path):
    target, caps = SKU_TARGETS[sku.id], catalog_caps
    for tile in spec.TILES[spec.NATIVE]:
        cfg = spec.config_for(spec.NATIVE, tile, caps)
        assert cfg is not None, f"{tile.name} must fit {sku.id}'s {sku.smem_optin_bytes} B"
        res = compile_config(spec.NATIVE, tile, cfg.stages, target, tmp_path)
        assert res.smem_bytes == spec.smem_bytes(spec.NATIVE, tile, cfg.stages) <= sku.smem_optin_bytes
        assert res.smem_bytes <= 101376  # the GB10's opt-in limit, the smallest SM12x part
        assert res.cluster_shape == (1, 1, 1)
        ptx = res.ptx_path.read_text()
        mmas = set(re.findall(r"\b_?mma\.[\w.:]+", ptx))
        assert mmas == {NATIVE_MMA}, mmas
        assert re.search(r"^\s*\.target\s+" + target + r"\b", ptx, re.M)
        assert cubin_frame_bytes(res.cubin_path) == 0, f"{tile.name}s{cfg.stages} spills registers"


@pytest.mark.aot
@pytest.mark.requires(Requirements(needs_gpu=False, needs_dsl=True))
def test_native_kernel_is_refused_by_the_dsl_for_a_target_without_the_instruction(tmp_path):
    """The DSL itself refuses MmaMXF4NVF4Op outside sm_120a/sm_121a: no silent miscompile on Hopper."""
    tile = spec.TILES[spec.NATIVE][0]
    with pytest.raises(Exception, match="sm_120a"):
        compile_config(spec.NATIVE, tile, spec.MIN_STAGES, "sm_90a", tmp_path)


def compile_wgmma(tile, stages: int, target: str, keep_dir):
    from gpuhil.kernels import aot
    from gpuhil.kernels.nvfp4_grouped_gemm import cute_wgmma

    cfg = spec_wgmma.NvWgmmaConfig(tile, stages)
    return aot.compile_kernel_for_target(cute_wgmma.build, cute_wgmma.aot_args, cfg, "nvfp4", target=target,
                                         keep_dir=keep_dir)


@pytest.mark.aot
@pytest.mark.requires(Requirements(needs_gpu=False, needs_dsl=True))
@pytest.mark.skus(where=lambda s: s.id == "h100")
def test_wgmma_configs_compile_for_sm90a_within_the_h100_smem(sku, catalog_caps, tmp_path):
    for tile in spec_wgmma.TILES:
        cfg = spec_wgmma.config_for(tile, catalog_caps)
        assert cfg is not None, f"{tile.name} must fit the H100's {sku.smem_optin_bytes} B"
        res = compile_wgmma(tile, cfg.stages, "sm_90a", tmp_path)
        assert res.smem_bytes == spec_wgmma.smem_bytes(tile, cfg.stages) <= sku.smem_optin_bytes
        assert res.cluster_shape == (1, 1, 1)
        ptx = res.ptx_path.read_text()
        mmas = set(re.findall(r"\bwgmma\.mma_async[\w.:]+", ptx))
        assert mmas == {f"wgmma.mma_async.sync.aligned.m64n{tile.n}k16.f32.bf16.bf16"}, mmas
        assert "cp.async.mbarrier.arrive.noinc" in ptx and "fence.proxy.async.shared::cta" in ptx
        assert "mma.sync" not in ptx and "block_scale" not in ptx
        assert cubin_frame_bytes(res.cubin_path) == 0, f"wgmma {tile.name}s{cfg.stages} spills registers"


@pytest.mark.aot
@pytest.mark.requires(Requirements(needs_gpu=False, needs_dsl=True))
def test_wgmma_kernel_is_refused_by_the_dsl_for_sm120a(tmp_path):
    """Warpgroup MMA is sm_90a only: the DSL refuses it elsewhere, as the gate does."""
    with pytest.raises(Exception, match="expects arch to be sm_90a"):
        compile_wgmma(spec_wgmma.TILES[0], spec_wgmma.MIN_STAGES, "sm_120a", tmp_path)
