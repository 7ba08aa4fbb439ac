"""FP8 grouped GEMM (MoE experts), gpuhil's own kernels behind one interface:

    out = grouped_gemm(q)          # gpuhil-cute-warp: warp-level mma.sync, sm_90a and SM12x
    out = grouped_gemm_wgmma(q)    # gpuhil-cute-wgmma: TMA + warpgroup MMA, sm_90a only

q is a recipes.QuantizedOperands. Tile (and cluster) come from the problem shape, the stage count
from the probed (or emulated) opt-in shared memory at run time; a config the device cannot run
raises UnsupportedConfig with the probed values, before any launch.
"""

from __future__ import annotations

from ...capabilities import current
from ...requirements import UnsupportedConfig, check, ensure
from . import spec_wgmma
from .spec import Tile, WarpGemmConfig, choose_tile, config_for, requirements, tile_requirements

__all__ = ["Tile", "UnsupportedConfig", "WarpGemmConfig", "grouped_gemm", "grouped_gemm_wgmma", "prepare",
           "prepare_wgmma"]


def _empty_out(q):
    import torch

    return torch.empty(q.a.shape[0], q.b.shape[1], dtype=torch.bfloat16, device=q.a.device)


def prepare(q, *, tile: Tile | None = None, caps=None) -> WarpGemmConfig:
    """Choose and check the warp-MMA config for this problem on this device (no launch)."""
    caps = caps or current()
    g, n, _ = q.b.shape
    tile = tile or choose_tile(n, q.a.shape[0] / max(g, 1))  # the same rule as spec.problem_requirements
    cfg = config_for(tile, caps)
    if cfg is None:
        raise UnsupportedConfig(f"fp8 grouped GEMM tile {tile.name}", check(tile_requirements(tile, caps), caps))
    ensure(f"fp8 grouped GEMM {cfg.name}", requirements(cfg), caps)
    return cfg


def grouped_gemm(q, *, out=None, tile: Tile | None = None):
    cfg = prepare(q, tile=tile)
    from . import cute_warp

    out = out if out is not None else _empty_out(q)
    kernel = cute_warp.KernelConfig(cfg.tile.m, cfg.tile.n, cfg.tile.k, cfg.stages)
    cute_warp.launch(cute_warp.compile_gemm(kernel, q.recipe), q, out)
    return out


def prepare_wgmma(q, *, tile: Tile | None = None, cluster_m: int | None = None, caps=None) -> spec_wgmma.WgmmaConfig:
    """Choose and check the wgmma config for this problem on this device (no launch)."""
    caps = caps or current()
    g, n, _ = q.b.shape
    chosen_tile, chosen_cluster = spec_wgmma.choose(n, q.a.shape[0] / max(g, 1), caps)  # as spec_wgmma.problem_requirements
    tile, cluster_m = tile or chosen_tile, cluster_m or chosen_cluster
    cfg = spec_wgmma.config_for(tile, cluster_m, caps)
    if cfg is None:
        two = spec_wgmma.WgmmaConfig(tile, cluster_m, spec_wgmma.MIN_STAGES)
        raise UnsupportedConfig(f"fp8 grouped GEMM (wgmma) {two.name}", check(spec_wgmma.requirements(two), caps))
    ensure(f"fp8 grouped GEMM (wgmma) {cfg.name}", spec_wgmma.requirements(cfg), caps)
    return cfg


def grouped_gemm_wgmma(q, *, out=None, tile: Tile | None = None, cluster_m: int | None = None):
    caps = current()
    cfg = prepare_wgmma(q, tile=tile, cluster_m=cluster_m, caps=caps)
    from . import cute_wgmma

    out = out if out is not None else _empty_out(q)
    cute_wgmma.launch(cute_wgmma.compile_gemm(cfg, q.recipe), cfg, q, out, caps.sm_count)
    return out
