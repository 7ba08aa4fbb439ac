"""FP8 grouped GEMM (MoE experts): gpuhil-cute-warp, gpuhil's own warp-MMA kernel for sm_89+ parts.

    out = grouped_gemm(q)          # q: recipes.QuantizedOperands; tile and stages from the probe

The stage count comes from the probed (or emulated) opt-in shared memory at run time; a tile that
cannot fit two stages raises UnsupportedConfig with the byte counts, before any launch.
"""

from __future__ import annotations

from ...capabilities import current
from ...requirements import UnsupportedConfig, check, ensure
from .spec import Tile, WarpGemmConfig, choose_tile, config_for, requirements, tile_requirements

__all__ = ["Tile", "UnsupportedConfig", "WarpGemmConfig", "grouped_gemm", "prepare"]


def prepare(q, *, tile: Tile | None = None, caps=None) -> WarpGemmConfig:
    """Choose and check the config for this problem on this device (no launch)."""
    caps = caps or current()
    g, n, _ = q.b.shape
    tile = tile or choose_tile(n, q.a.shape[0] / max(g, 1))  # the same rule as spec.problem_requirements
    cfg = config_for(tile, caps)
    if cfg is None:
        raise UnsupportedConfig(f"fp8 grouped GEMM tile {tile.name}", check(tile_requirements(tile, caps), caps))
    ensure(f"fp8 grouped GEMM {cfg.name}", requirements(cfg), caps)
    return cfg


def grouped_gemm(q, *, out=None, tile: Tile | None = None):
    import torch

    cfg = prepare(q, tile=tile)
    from . import cute_warp

    t, n = q.a.shape[0], q.b.shape[1]
    out = out if out is not None else torch.empty(t, n, dtype=torch.bfloat16, device=q.a.device)
    kernel = cute_warp.KernelConfig(cfg.tile.m, cfg.tile.n, cfg.tile.k, cfg.stages)
    compiled = cute_warp.compile_gemm(kernel, q.recipe)
    cute_warp.launch(compiled, kernel, q.a, q.b, q.offs, q.scale_a, q.scale_b, out)
    return out
