"""gpuhil-cute-nvfp4-wgmma: the NVFP4 grouped GEMM on Hopper warpgroup MMA, pure-Python spec (no DSL
import). sm_90a only (wgmma is an sm_90a instruction), offered as its own provider; dispatch
(spec.kernel_choice) keeps the dequant kernel until a GPU bench shows this one faster.

Per k-tile (64 K elements, so the op's K % 64 == 0 leaves no K tail) a producer warpgroup streams
the packed E2M1 codes (32 bytes a row) and E4M3 scales (4 bytes a row) of A and B into a
``stages``-deep ring by cp.async, the consumer warpgroups expand each landed stage into one of two
bf16 operand tiles in the 128-byte-swizzled K-major layout wgmma reads, and the next stage's
expansion runs while the tensor cores multiply this one. Why cp.async and not TMA: a scale row is
K/16 bytes, and TMA needs 16-byte global strides (K % 256 == 0), which gpt-oss-120b's K = 2880 and
the K-tail problems do not have. The kernels.contract vocabulary: configs, choose, requirements,
unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...device.capabilities import Capabilities
from ...gating import ConfigRow, Requirements
from ..tiles import Tile
from .spec import K_MULTIPLE, N_MULTIPLE, SF_VEC

TILE_K = 64  # one 128-byte swizzle atom of bf16 per row; K % 64 == 0 (the op's rule) leaves no tail
TILES = (Tile(64, 128, TILE_K), Tile(128, 128, TILE_K))  # (decode, prefill); N % 32 for the quad store
MIN_STAGES, MAX_STAGES = 2, 8
OPERAND_BUFFERS = 2  # bf16 A and B tiles: one being expanded while the wgmma reads the other
MAX_GROUPS = 1024  # per-group tile starts live in smem (as in the FP8 wgmma kernel)
DECODE_MAX_TOKENS = 64  # per expert: one 64-row tile holds them all
KERNEL = "wgmma"  # the `kernel` the op's plan and prepare take for it
TARGETS = ("sm_90a",)
NAME = "gpuhil-cute-nvfp4-wgmma"


@dataclass(frozen=True)
class NvWgmmaConfig:
    tile: Tile
    stages: int

    def __post_init__(self):
        if self.tile not in TILES:
            raise ValueError(f"nvfp4 wgmma tile {self.tile.name} is not one of {[t.name for t in TILES]}")
        if not MIN_STAGES <= self.stages <= MAX_STAGES:
            raise ValueError(f"stages must be in {MIN_STAGES}..{MAX_STAGES}, got {self.stages}")

    @property
    def name(self) -> str:
        return f"wgmma {self.tile.name}s{self.stages}"

    @property
    def consumer_warpgroups(self) -> int:
        return self.tile.m // 64  # 64 accumulator rows each

    @property
    def threads(self) -> int:
        return 128 * (1 + self.consumer_warpgroups)  # the producer warpgroup first


def _round_up(x: int, to: int) -> int:
    return -(-x // to) * to


def stage_bytes(tile: Tile) -> int:
    """Codes (two a byte) and scales (one a 16 elements) of the A and B rows of one k-tile."""
    return (tile.m + tile.n) * (tile.k // 2 + tile.k // SF_VEC)


def smem_bytes(tile: Tile, stages: int) -> int:
    """The kernel's shared storage, in its allocation order: mbarriers (full + empty per stage) and
    the tile starts; the bf16 A and B operand buffers (1024-byte aligned for the 128-byte swizzle);
    the code rings (multiples of 128 bytes), then the scale rings."""
    header = _round_up(2 * 8 * stages + 4 * (MAX_GROUPS + 1), 1024)
    operands = OPERAND_BUFFERS * (tile.m + tile.n) * tile.k * 2
    return header + operands + stages * stage_bytes(tile)


def stages_for(tile: Tile, smem_optin_bytes: int) -> int | None:
    """Most stages that fit the device's opt-in limit (capped), or None when not even two fit."""
    return max((s for s in range(MIN_STAGES, MAX_STAGES + 1) if smem_bytes(tile, s) <= smem_optin_bytes), default=None)


def config_for(tile: Tile, caps: Capabilities) -> NvWgmmaConfig | None:
    stages = stages_for(tile, caps.smem_optin_bytes or 0)
    return NvWgmmaConfig(tile, stages) if stages else None


def staged(tile: Tile, caps: Capabilities) -> NvWgmmaConfig:
    """The tile with the stages this device gives it, or two when none fit (so a refusal names the
    bytes two stages would take)."""
    return config_for(tile, caps) or NvWgmmaConfig(tile, MIN_STAGES)


def requirements(config: NvWgmmaConfig) -> Requirements:
    return Requirements(targets=frozenset(TARGETS), mma_kind="wgmma", smem_bytes=smem_bytes(config.tile, config.stages),
                        needs_dsl=True)


def tile_for(tokens_per_group: float) -> Tile:
    """Decode: 64-row tiles, so each weight byte is read about once; prefill: 128 rows (two consumer
    warpgroups share each B tile)."""
    return TILES[0] if tokens_per_group <= DECODE_MAX_TOKENS else TILES[1]


def choose(problem, caps: Capabilities, *, tile: Tile | None = None) -> NvWgmmaConfig:
    return staged(tile or tile_for(problem.tokens_per_group), caps)


def unsupported(problem) -> str | None:
    """Whole k-tiles and 4-byte scale chunks (K % 64), whole 16-byte output chunks (N % 8), and the
    tile starts of at most MAX_GROUPS groups in smem."""
    bad = [f"{d}={v} (needs a multiple of {m})"
           for d, v, m in (("K", problem.k, K_MULTIPLE), ("N", problem.n, N_MULTIPLE)) if v % m]
    if problem.groups > MAX_GROUPS:
        bad.append(f"G={problem.groups} (at most {MAX_GROUPS} groups)")
    return f"{NAME}: " + ", ".join(bad) if bad else None


def configs(caps: Capabilities):
    for tile in TILES:
        fits = config_for(tile, caps)
        cfg = fits or NvWgmmaConfig(tile, MIN_STAGES)
        yield ConfigRow("nvfp4_grouped_gemm", f"{NAME} {tile.name}", requirements(cfg),
                        {"variant": "wgmma", "tile": tile.name, "stages": fits.stages if fits else None,
                         "smem_bytes": smem_bytes(tile, cfg.stages), "smem_optin_bytes": caps.smem_optin_bytes})

