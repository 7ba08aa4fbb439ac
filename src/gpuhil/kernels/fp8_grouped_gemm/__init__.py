"""FP8 grouped GEMM (MoE experts), gpuhil's own kernels behind one interface:

    out = grouped_gemm(q, caps=caps)          # gpuhil-cute-warp: warp-level mma.sync, sm_90a and SM12x
    out = grouped_gemm_wgmma(q, caps=caps)    # gpuhil-cute-wgmma: TMA + warpgroup MMA, sm_90a only

q holds the FP8 operands (a, b, scale_a, scale_b, offs, recipe). `plan_*` is dispatch's choice for a
shape on a device (pure: `gpuhil gates` and the tests call the same function); `prepare_*` plans,
checks and compiles once and returns a Launch. A config the device cannot run raises
UnsupportedConfig with the probed values, before any launch.
"""

from __future__ import annotations

from ...device.capabilities import Capabilities
from ...gating import UnsupportedConfig, check, ensure
from ...device.current import device_capabilities
from ..compiled import Launch
from . import spec_warp, spec_wgmma
from .spec_warp import Tile, WarpGemmConfig
from .spec_wgmma import WgmmaConfig

__all__ = ["Tile", "UnsupportedConfig", "WarpGemmConfig", "WgmmaConfig", "grouped_gemm", "grouped_gemm_wgmma",
           "plan_warp", "plan_wgmma", "prepare", "prepare_wgmma"]


def plan_warp(tokens: int, groups: int, n: int, caps: Capabilities, *, tile: Tile | None = None) -> WarpGemmConfig:
    """The warp-MMA config for this shape on this device, checked (no DSL, no GPU needed)."""
    tile = tile or spec_warp.choose_tile(n, tokens / max(groups, 1))
    cfg = spec_warp.config_for(tile, caps)
    if cfg is None:  # not even two stages fit: the refusal names the bytes two would take
        raise UnsupportedConfig(f"fp8 grouped GEMM tile {tile.name}", check(spec_warp.tile_requirements(tile, caps), caps))
    ensure(f"fp8 grouped GEMM {cfg.name}", spec_warp.requirements(cfg), caps)
    return cfg


def plan_wgmma(tokens: int, groups: int, n: int, k: int, caps: Capabilities, *, tile: Tile | None = None,
               cluster_m: int | None = None, cluster_n: int | None = None,
               pingpong: bool | None = None) -> WgmmaConfig:
    """The wgmma config for this shape on this device, checked (no DSL, no GPU needed). A forced
    tile keeps the chosen schedule where its accumulators allow ping-pong; a forced cluster_m or
    cluster_n leaves the other at 1 unless it is forced too."""
    per_group = tokens / max(groups, 1)
    chosen = spec_wgmma.choose(n, k, per_group, caps)
    tile = tile or chosen.tile
    cluster_m, cluster_n = spec_wgmma.cluster_for(chosen, cluster_m, cluster_n)
    if pingpong is None:
        pingpong = chosen.pingpong and spec_wgmma.pingpong_fits(tile)
    cfg = spec_wgmma.config_for(tile, cluster_m, caps, pingpong, cluster_n, spec_wgmma.reads_weights_once(per_group))
    if cfg is None:
        two = WgmmaConfig(tile, cluster_m, spec_wgmma.MIN_STAGES, False, cluster_n)
        raise UnsupportedConfig(f"fp8 grouped GEMM (wgmma) {two.name}", check(spec_wgmma.requirements(two), caps))
    ensure(f"fp8 grouped GEMM (wgmma) {cfg.name}", spec_wgmma.requirements(cfg), caps)
    return cfg


def _shape(q) -> tuple[int, int, int, int]:
    g, n, k = q.b.shape
    return q.a.shape[0], g, n, k


def _empty_out(q):
    import torch

    return torch.empty(q.a.shape[0], q.b.shape[1], dtype=torch.bfloat16, device=q.a.device)


def prepare(q, *, caps: Capabilities | None = None, tile: Tile | None = None) -> Launch:
    caps = caps or device_capabilities(q.a.device.index or 0)
    tokens, groups, n, _ = _shape(q)
    cfg = plan_warp(tokens, groups, n, caps, tile=tile)
    from . import cute_warp

    return Launch(cute_warp.compile_gemm(cfg, q.recipe), cute_warp.launch, _empty_out)


def prepare_wgmma(q, *, caps: Capabilities | None = None, tile: Tile | None = None, cluster_m: int | None = None,
                  cluster_n: int | None = None, pingpong: bool | None = None) -> Launch:
    caps = caps or device_capabilities(q.a.device.index or 0)
    cfg = plan_wgmma(*_shape(q), caps, tile=tile, cluster_m=cluster_m, cluster_n=cluster_n, pingpong=pingpong)
    from . import cute_wgmma

    resident = caps.resident_clusters(cfg.cluster_size)  # the persistent grid's bound (an emulated SKU's too)
    return Launch(cute_wgmma.compile_gemm(cfg, q.recipe),
                  lambda compiled, q, out: cute_wgmma.launch(compiled, q, out, resident), _empty_out)


def grouped_gemm(q, *, caps: Capabilities | None = None, out=None, tile: Tile | None = None):
    return prepare(q, caps=caps, tile=tile)(q, out)


def grouped_gemm_wgmma(q, *, caps: Capabilities | None = None, out=None, tile: Tile | None = None,
                       cluster_m: int | None = None, cluster_n: int | None = None, pingpong: bool | None = None):
    return prepare_wgmma(q, caps=caps, tile=tile, cluster_m=cluster_m, cluster_n=cluster_n,
                         pingpong=pingpong)(q, out)
