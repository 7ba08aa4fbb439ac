"""gpuhil-cute-warp: FP8 grouped GEMM on warp-level MMA (mma.sync e4m3, sm_89+), pure-Python spec.

The stage count is chosen at run time from the probed (or emulated) opt-in shared memory, never
from an arch table: seed 001 is CUTLASS picking stages for the SM12x family's largest part and
failing on the GB10 by 1 KiB. Every config states its Requirements, and `gpuhil gates` lists the
stages and bytes each SKU would get (the kernels.contract vocabulary: configs, choose, requirements,
unsupported).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...device.capabilities import Capabilities
from ...gating import ConfigRow, Requirements
from ..tiles import Tile

TILES_MN = ((64, 64), (128, 64), (128, 128))
TILES_K = (64, 128)
MIN_STAGES, MAX_STAGES = 2, 6  # past 6 the cp.async ring hides no more latency at these tile sizes
TARGETS = ("sm_90a", "sm_120a", "sm_121a")


@dataclass(frozen=True)
class WarpGemmConfig:
    tile: Tile
    stages: int

    def __post_init__(self):
        if (self.tile.m, self.tile.n) not in TILES_MN or self.tile.k not in TILES_K:
            raise ValueError(f"tile {self.tile.name} is not one of {TILES_MN} x K {TILES_K}")
        if not MIN_STAGES <= self.stages <= MAX_STAGES:
            raise ValueError(f"stages must be in {MIN_STAGES}..{MAX_STAGES}, got {self.stages}")

    @property
    def name(self) -> str:
        return f"{self.tile.name}s{self.stages}"

    @property
    def warps(self) -> int:
        # H100, gate_up shape: 128x128x64 is fastest with 4 warps (64x64 warp tiles); 128x128x128
        # with 4 warps runs out of registers, so 8 there.
        return 8 if (self.tile.m, self.tile.n, self.tile.k) == (128, 128, 128) else 4

    @property
    def warp_layout(self) -> tuple[int, int, int]:
        """Warps along (M, N, K); each warp tile is a multiple of 16 x 16."""
        if self.warps == 4:
            return (2, 2, 1)
        return (2, 4, 1) if self.tile.n == 128 else (4, 2, 1)


TILES = tuple(Tile(m, n, k) for (m, n) in TILES_MN for k in TILES_K)


def stage_bytes(tile: Tile) -> int:
    """One stage of the ring: an A tile and a B tile of FP8 (one byte an element)."""
    return (tile.m + tile.n) * tile.k


def smem_bytes(tile: Tile, stages: int) -> int:
    """Shared memory of one CTA: the A and B FP8 stage ring. The bf16 epilogue tile reuses the ring,
    which always holds it from two stages on: 2 * (m + n) * k >= 2 * m * n for k >= 64, m, n <= 128."""
    ring = stages * stage_bytes(tile)
    assert stages < MIN_STAGES or tile.m * tile.n * 2 <= ring, f"epilogue tile does not fit the ring of {tile.name}"
    return ring


def stages_for(tile: Tile, smem_optin_bytes: int) -> int | None:
    """Most stages that fit the device's opt-in limit (capped), or None when not even two fit."""
    fit = min(MAX_STAGES, smem_optin_bytes // stage_bytes(tile))
    return fit if fit >= MIN_STAGES else None


def config_for(tile: Tile, caps: Capabilities) -> WarpGemmConfig | None:
    stages = stages_for(tile, caps.smem_optin_bytes or 0)
    return WarpGemmConfig(tile, stages) if stages else None


def requirements(config: WarpGemmConfig) -> Requirements:
    # Offered on the targets CI compiles it for (AOT), where its PTX is known to assemble.
    return Requirements(targets=frozenset(TARGETS), mma_kind="mma_sync_fp8",
                        smem_bytes=smem_bytes(config.tile, config.stages), needs_dsl=True)


def staged(tile: Tile, caps: Capabilities) -> WarpGemmConfig:
    """The tile with the stages this device gives it, or two when none fit (so a refusal names the
    bytes two stages would take)."""
    return config_for(tile, caps) or WarpGemmConfig(tile, MIN_STAGES)


def unsupported(problem) -> str | None:
    """16-byte FP8 rows for cp.async need K % 16; 16-byte bf16 output chunks need N % 8."""
    bad = [f"{d}={v} (needs a multiple of {m})" for d, v, m in (("K", problem.k, 16), ("N", problem.n, 8)) if v % m]
    return "gpuhil-cute-warp: " + ", ".join(bad) if bad else None


def choose(problem, caps: Capabilities, *, tile: Tile | None = None) -> WarpGemmConfig:
    """The tile for the problem's shape (or the forced one) at this device's stages."""
    return staged(tile or choose_tile(problem.n, problem.tokens_per_group), caps)


def choose_tile(n: int, tokens_per_group: float) -> Tile:
    """Per problem: small M-tiles for decode (few tokens per expert), the widest tile otherwise."""
    if tokens_per_group <= 64 or n < 128:
        return Tile(64, 64, 128)
    return Tile(128, 128, 64) if n >= 1024 else Tile(128, 64, 128)


def configs(caps: Capabilities):
    for tile in TILES:
        cfg = config_for(tile, caps)
        req = requirements(staged(tile, caps))
        yield ConfigRow("fp8_grouped_gemm", f"gpuhil-cute-warp {tile.name}", req,
                        {"tile": tile.name, "stages": cfg.stages if cfg else None,
                         "smem_bytes": req.smem_bytes, "smem_optin_bytes": caps.smem_optin_bytes})
