"""gpuhil-cute-wgmma: FP8 grouped GEMM on Hopper warpgroup MMA, pure-Python spec (no DSL import).

Offered only where sm_90a code runs (wgmma and multicast TMA are sm_90a instructions: Blackwell and
the SM12x parts cannot execute them), so `gpuhil gates --target-sku gb10` / `--target-sku b200` say why not.
The stage count comes from the probed opt-in shared memory; a cluster also needs cluster launch and
its size within the probed maximum. The kernels.contract vocabulary: configs, choose, requirements,
unsupported; `schedule` is the per-shape sweep result that `choose` completes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ...device.capabilities import Capabilities
from ...gating import ConfigRow, Requirements, check
from .spec_warp import Tile

# The 64-row tile takes 256 bytes of K per stage: each weight row is then read as two adjacent
# 128-byte TMA boxes (the 128-byte swizzle's widest) in one go instead of one box per stage, which
# took the decode shapes from 85-97 % to 90-102 % of their byte roofline (docs/PERF.md,
# sixth pass). Its N of 128 keeps four such stages in 227 KiB; where two do not fit (99 KiB
# parts), the same tile with 128 bytes of K.
NARROW_TILES = (Tile(64, 128, 256), Tile(64, 128, 128))
TILES = (Tile(128, 128, 128), Tile(128, 256, 128), *NARROW_TILES)
# (CTAs along M, which share each B tile, x CTAs along N, which share each A tile), both by multicast.
CLUSTERS = ((1, 1), (2, 1), (1, 2), (2, 2))
# Ping-pong gives each of the two consumer warpgroups a whole tile, so one's epilogue runs under the
# other's mainloop; its fp32 accumulators (tile.m * tile.n / 128 per thread) must stay <= 128 registers.
PINGPONG_MAX_TILE_ELEMS = 128 * 128
LONG_K = 8192  # prefill: from this K the wide cooperative tile beats ping-pong (sweep in docs/PERF.md)
# Below 256 tokens per expert, from this K a 2x2 cluster of 64-row tiles beats a pair (sweep of the
# 64 x 256 tile that came before: it loses 4 % at K 4096 and wins 4 % at K 7168; a quad also leaves
# the SMs idle that no whole cluster fits).
QUAD_MIN_K = 6144
# From 256 to 511 tokens per expert (bound by bytes: sharing A cuts the L2 traffic), from this K a 2x2
# cluster of 128 x 128 tiles beats a pair (Qwen3 gate_up, K 2048: 1-5 % faster; Qwen3 down, K 768:
# even). From 512 (Mixtral gate_up, bound by FP8 math) the SMs no quad fits cost more: pair 1-3 % ahead.
SQUARE_QUAD_MIN_K = 2048
SQUARE_QUAD_MAX_TOKENS = 512
DECODE_MAX_TOKENS = 64  # per expert: one 64-row tile holds them all, so each weight byte is read once
MIN_STAGES, MAX_STAGES = 2, 8
MAX_GROUPS = 1024  # per-group tile starts live in smem; MoE layers ship at most 384 experts today
TARGETS = ("sm_90a",)


@dataclass(frozen=True)
class WgmmaConfig:
    tile: Tile
    cluster_m: int
    stages: int
    pingpong: bool = False  # two consumer warpgroups on alternate tiles (else both on one tile)
    cluster_n: int = 1  # CTAs along N sharing (multicasting) one A tile
    # B tiles are read once (decode): load them L2 evict-first, so the stream of weights does not push
    # out the activations that every N block of an expert reads again (0.7-3 % faster, docs/PERF.md).
    stream_b: bool = False

    @property
    def cluster_size(self) -> int:
        return self.cluster_m * self.cluster_n

    def __post_init__(self):
        if self.pingpong and not pingpong_fits(self.tile):
            raise ValueError(f"ping-pong tile {self.tile.name}: {self.tile.m * self.tile.n // 128} accumulators "
                             f"per thread, at most {PINGPONG_MAX_TILE_ELEMS // 128}")

    @property
    def name(self) -> str:
        cluster = f"{self.cluster_m}x{self.cluster_n}" if self.cluster_n > 1 else str(self.cluster_m)
        return f"{self.tile.name}c{cluster}s{self.stages}{'pp' if self.pingpong else ''}{'ef' if self.stream_b else ''}"

    @property
    def consumer_warpgroups(self) -> int:
        return 2 if self.pingpong else self.tile.m // 64

    @property
    def tile_warpgroups(self) -> int:
        """Warpgroups that share one tile's MMA (64 rows each); ping-pong: one per tile."""
        return 1 if self.pingpong else self.tile.m // 64


def pingpong_fits(tile: Tile) -> bool:
    return tile.m * tile.n <= PINGPONG_MAX_TILE_ELEMS


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


def config_for(tile: Tile, cluster_m: int, caps: Capabilities, pingpong: bool = False,
               cluster_n: int = 1, stream_b: bool = False) -> WgmmaConfig | None:
    stages = stages_for(tile, caps.smem_optin_bytes or 0)
    return WgmmaConfig(tile, cluster_m, stages, pingpong, cluster_n, stream_b) if stages else None


def requirements(config: WgmmaConfig) -> Requirements:
    return Requirements(targets=frozenset(TARGETS), mma_kind="wgmma", cluster_size=config.cluster_size,
                        smem_bytes=smem_bytes(config.tile, config.stages), needs_dsl=True)


class Choice(NamedTuple):
    tile: Tile
    cluster_m: int
    pingpong: bool
    cluster_n: int = 1


def _launches(tile: Tile, pingpong: bool, caps: Capabilities, cluster_m: int, cluster_n: int = 1) -> bool:
    """Whether this cluster of CTAs runs here: cluster launch, its size and stages, the same check
    that gates the config."""
    cfg = config_for(tile, cluster_m, caps, pingpong, cluster_n)
    return bool(cfg) and check(requirements(cfg), caps).ok


def schedule(n: int, k: int, tokens_per_group: float, caps: Capabilities) -> Choice:
    """(tile, cluster_m, pingpong, cluster_n) per problem, from sweeps of every config on the H100
    (docs/PERF.md).
    Decode (<= 64 tokens per expert): one 64-row tile per expert and N block, so each weight byte is
    read once, 256 bytes of K per stage (TILES); ping-pong, so a tile's stores run under the next
    tile's mainloop.
    Prefill: ping-pong 128 x 128, except where K >= LONG_K with >= 512 tokens per expert: there the
    epilogue is a small share of a tile (it scales with 1/K) and 128 x 256's operand reuse wins
    (cooperative: its accumulators exceed one warpgroup's registers). Where the device launches
    clusters, two CTAs share each B tile through multicast once an expert has rows for both: 128-row
    tiles from 256 tokens per expert (below SQUARE_QUAD_MAX_TOKENS and from SQUARE_QUAD_MIN_K in a
    2x2 cluster that shares A as well); below that 64-row tiles, so the pair still covers 128 rows,
    and from QUAD_MIN_K a 2x2 cluster."""
    narrow = narrow_tile(caps)
    if reads_weights_once(tokens_per_group):  # decode: the same predicate that makes B evict-first
        return Choice(narrow, 1, True)
    if n >= 256 and tokens_per_group >= 512 and k >= LONG_K:
        wide = Tile(128, 256, 128)
        return Choice(wide, 2 if _launches(wide, False, caps, 2) else 1, False)
    square = Tile(128, 128, 128)
    if tokens_per_group >= 256 and _launches(square, True, caps, 2):
        quad = (tokens_per_group < SQUARE_QUAD_MAX_TOKENS and k >= SQUARE_QUAD_MIN_K
                and _launches(square, True, caps, 2, 2))
        return Choice(square, 2, True, 2 if quad else 1)
    if tokens_per_group < 256 and k >= QUAD_MIN_K and _launches(narrow, True, caps, 2, 2):
        return Choice(narrow, 2, True, 2)
    if tokens_per_group < 256 and _launches(narrow, True, caps, 2):
        return Choice(narrow, 2, True)
    return Choice(square, 1, True)


def narrow_tile(caps: Capabilities) -> Tile:
    """The first of NARROW_TILES whose stages fit this device (else the last, so a refusal names it)."""
    return next((t for t in NARROW_TILES if stages_for(t, caps.smem_optin_bytes or 0)), NARROW_TILES[-1])


def reads_weights_once(tokens_per_group: float) -> bool:
    """Whether every B tile is loaded once (decode), so loads can stream it evict-first (stream_b)."""
    return tokens_per_group <= DECODE_MAX_TOKENS


def cluster_for(chosen: Choice, cluster_m: int | None, cluster_n: int | None) -> tuple[int, int]:
    """(cluster_m, cluster_n) a launch runs: the chosen cluster, or the forced dimensions with an
    unforced one at 1."""
    if cluster_m is None and cluster_n is None:
        return chosen.cluster_m, chosen.cluster_n
    return cluster_m or 1, cluster_n or 1


def staged(tile: Tile, cluster_m: int, caps: Capabilities, pingpong: bool = False, cluster_n: int = 1,
           stream_b: bool = False) -> WgmmaConfig:
    """The config with the stages this device gives it, or two when none fit (so a refusal names the
    bytes two stages would take)."""
    return (config_for(tile, cluster_m, caps, pingpong, cluster_n, stream_b)
            or WgmmaConfig(tile, cluster_m, MIN_STAGES, pingpong, cluster_n, stream_b))


def choose(problem, caps: Capabilities, *, tile: Tile | None = None, cluster_m: int | None = None,
           cluster_n: int | None = None, pingpong: bool | None = None) -> WgmmaConfig:
    """The config dispatch launches for the problem's shape. A forced tile keeps the scheduled
    ping-pong where its accumulators allow it; a forced cluster_m or cluster_n leaves the other at 1
    unless it is forced too."""
    per_group = problem.tokens_per_group
    chosen = schedule(problem.n, problem.k, per_group, caps)
    tile = tile or chosen.tile
    cluster_m, cluster_n = cluster_for(chosen, cluster_m, cluster_n)
    if pingpong is None:
        pingpong = chosen.pingpong and pingpong_fits(tile)
    return staged(tile, cluster_m, caps, pingpong, cluster_n, reads_weights_once(per_group))


def unsupported(problem) -> str | None:
    """TMA needs 16-byte global strides (K % 16); the tile starts of at most MAX_GROUPS groups fit smem."""
    bad = []
    if problem.k % 16:
        bad.append(f"K={problem.k} (TMA needs a multiple of 16)")
    if problem.n % 8:
        bad.append(f"N={problem.n} (needs a multiple of 8)")
    if problem.groups > MAX_GROUPS:
        bad.append(f"G={problem.groups} (at most {MAX_GROUPS} groups)")
    return "gpuhil-cute-wgmma: " + ", ".join(bad) if bad else None


def schedules(tile: Tile) -> tuple[bool, ...]:
    """The ping-pong settings a tile runs with: cooperative always, ping-pong where it fits."""
    return (False, True) if pingpong_fits(tile) else (False,)


class ConfigKey(NamedTuple):
    """A config up to its stages (which the device's shared memory decides)."""
    tile: Tile
    cluster_m: int
    cluster_n: int
    pingpong: bool

    @property
    def label(self) -> str:
        return f"{self.tile.name}-c{self.cluster_m}x{self.cluster_n}{'-pingpong' if self.pingpong else ''}"


def all_configs() -> list[ConfigKey]:
    """Every config the kernel offers."""
    return [ConfigKey(tile, cm, cn, pp) for tile in TILES for cm, cn in CLUSTERS for pp in schedules(tile)]


def configs(caps: Capabilities):
    for tile, cm, cn, pp in all_configs():
        fits = config_for(tile, cm, caps, pp, cn)
        req = requirements(staged(tile, cm, caps, pp, cn))
        yield ConfigRow("fp8_grouped_gemm",
                        f"gpuhil-cute-wgmma {tile.name} cluster ({cm},{cn}){' ping-pong' if pp else ''}", req,
                        {"tile": tile.name, "cluster": [cm, cn], "pingpong": pp,
                         "stages": fits.stages if fits else None, "smem_bytes": req.smem_bytes,
                         "smem_optin_bytes": caps.smem_optin_bytes})
