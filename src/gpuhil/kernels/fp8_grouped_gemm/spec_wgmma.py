"""gpuhil-cute-wgmma: FP8 grouped GEMM on Hopper warpgroup MMA, pure-Python spec (no DSL import).

Offered only where sm_90a code runs (wgmma and multicast TMA are sm_90a instructions: Blackwell and
the SM12x parts cannot execute them), so `gpuhil gates --sku gb10` / `--sku b200` say why not.
The stage count comes from the probed opt-in shared memory; cluster (2,1) also needs cluster launch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...device.capabilities import Capabilities
from ...gating import ConfigRow, Requirements, check
from .spec_warp import Tile

TILES = (Tile(128, 128, 128), Tile(128, 256, 128), Tile(64, 256, 128))
CLUSTERS_M = (1, 2)  # CTAs along M sharing (multicasting) one B tile
MIN_STAGES, MAX_STAGES = 2, 8
MAX_GROUPS = 1024  # per-group tile starts live in smem; MoE layers ship at most 384 experts today
TARGETS = ("sm_90a",)


@dataclass(frozen=True)
class WgmmaConfig:
    tile: Tile
    cluster_m: int
    stages: int

    @property
    def name(self) -> str:
        return f"{self.tile.name}c{self.cluster_m}s{self.stages}"


def _round_up(x: int, to: int) -> int:
    return -(-x // to) * to


def smem_bytes(tile: Tile, stages: int) -> int:
    """The kernel's shared storage: mbarriers (full + empty per stage) and the per-group tile starts,
    then the A and B stage rings, each 1024-byte aligned for the 128-byte swizzle."""
    header = _round_up(2 * 8 * stages + 4 * (MAX_GROUPS + 1), 1024)
    return header + stages * (tile.m * tile.k + _round_up(tile.n * tile.k, 1024))


def stages_for(tile: Tile, smem_optin_bytes: int) -> int | None:
    """Most stages that fit the device's opt-in limit (capped), or None when not even two fit."""
    return max((s for s in range(MIN_STAGES, MAX_STAGES + 1) if smem_bytes(tile, s) <= smem_optin_bytes), default=None)


def config_for(tile: Tile, cluster_m: int, caps: Capabilities) -> WgmmaConfig | None:
    stages = stages_for(tile, caps.smem_optin_bytes or 0)
    return WgmmaConfig(tile, cluster_m, stages) if stages else None


def requirements(config: WgmmaConfig) -> Requirements:
    return Requirements(targets=frozenset(TARGETS), mma_kind="wgmma", cluster_size=config.cluster_m,
                        smem_bytes=smem_bytes(config.tile, config.stages), needs_dsl=True)


def choose(n: int, tokens_per_group: float, caps: Capabilities) -> tuple[Tile, int]:
    """(tile, cluster_m) per problem, from a sweep of every config on the H100 (docs/PERF.md).
    Decode (a few tokens per expert): one 64-row tile per expert, the widest N, so each weight byte
    is read once. Prefill: 128 x 256 once experts hold >= 512 tokens (fewest A and B re-reads),
    128 x 128 below that; two CTAs share each B tile through multicast once an expert has rows for
    both, where the device launches clusters (the same check that gates the config)."""
    if tokens_per_group <= 64:
        return Tile(64, 256, 128), 1
    tile = Tile(128, 256, 128) if n >= 256 and tokens_per_group >= 512 else Tile(128, 128, 128)
    if tokens_per_group >= 256:
        paired = config_for(tile, 2, caps)
        if paired and check(requirements(paired), caps).ok:
            return tile, 2
    return tile, 1


def config_requirements(tile: Tile, cluster_m: int, caps: Capabilities) -> Requirements:
    """What (tile, cluster) needs on this device: its probed stages, or two when none fit (so a
    refusal names the bytes two stages would take)."""
    return requirements(config_for(tile, cluster_m, caps) or WgmmaConfig(tile, cluster_m, MIN_STAGES))


def unsupported_reason(n: int, k: int, groups: int) -> str | None:
    """TMA needs 16-byte global strides (K % 16); the tile starts of at most MAX_GROUPS groups fit smem."""
    bad = []
    if k % 16:
        bad.append(f"K={k} (TMA needs a multiple of 16)")
    if n % 8:
        bad.append(f"N={n} (needs a multiple of 8)")
    if groups > MAX_GROUPS:
        bad.append(f"G={groups} (at most {MAX_GROUPS} groups)")
    return "gpuhil-cute-wgmma: " + ", ".join(bad) if bad else None


def gate_rows(caps: Capabilities):
    for tile in TILES:
        for cluster_m in CLUSTERS_M:
            fits = config_for(tile, cluster_m, caps)
            req = config_requirements(tile, cluster_m, caps)
            yield ConfigRow("fp8_grouped_gemm", f"gpuhil-cute-wgmma {tile.name} cluster ({cluster_m},1)", req,
                            {"tile": tile.name, "cluster": [cluster_m, 1], "stages": fits.stages if fits else None,
                             "smem_bytes": req.smem_bytes, "smem_optin_bytes": caps.smem_optin_bytes})
