"""NVFP4 grouped GEMM (MoE experts), gpuhil's two CuTe DSL kernels, pure-Python spec (no DSL import).

* ``dequant``: the packed E2M1 bytes and their E4M3 block scales ride a cp.async ring; each k-tile
  is expanded to a bf16 tile in shared memory and multiplied with warp-level ``mma.sync`` bf16
  (fp32 accumulation). sm_90a, sm_120a and sm_121a.
* ``native``: the same ring feeds SM12x's block-scaled ``mma.sync ... kind::mxf4nvf4`` (E2M1 x
  E2M1, UE4M3 scales every 16 elements). sm_120a and sm_121a only, and only from a CuTe DSL whose
  native payload is CUDA 13 or newer: seed 002 is a CUDA 12.9 payload lowering this MMA to PTX that
  ptxas rejects, after the serving stack had already picked the kernel.

The stage count of either comes from the probed (or emulated) opt-in shared memory at run time,
never from an arch table (seed 001). `kernel_choice` picks the kernel and tile per problem shape from
the capabilities alone, and says why it fell back when the native kernel is refused, so `gpuhil gates`
shows the same decision dispatch takes. The kernels.contract vocabulary: configs, choose,
requirements, unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...device.capabilities import Capabilities
from ...gating import ConfigRow, Requirements, Verdict, check
from ..tiles import Tile

DEQUANT, NATIVE = "dequant", "native"
KERNELS = (DEQUANT, NATIVE)
TARGETS = {DEQUANT: ("sm_90a", "sm_120a", "sm_121a"), NATIVE: ("sm_120a", "sm_121a")}
MMA_KINDS = {DEQUANT: "mma_sync_bf16", NATIVE: "mma_sync_block_scale_fp4"}
# Seed 002: below this payload the block-scaled MMA does not reach a cubin that runs.
MIN_NATIVE_DSL_CUDA = "13.0"
TILES_MN = ((64, 64), (128, 64), (128, 128))
TILES_K = {DEQUANT: (64, 128), NATIVE: (128, 256)}  # native: whole m16n8k64 atoms per k-tile
MIN_STAGES, MAX_STAGES = 2, 6  # past 6 the cp.async ring hides no more latency at these tile sizes
SF_VEC = 16  # NVFP4: one E4M3 scale per 16 consecutive K elements
K_MULTIPLE = 64  # scale rows are K/16 bytes: 4-byte cp.async chunks need K % 64 == 0
N_MULTIPLE = 8  # 16-byte bf16 output chunks


@dataclass(frozen=True)
class GemmConfig:
    kernel: str
    tile: Tile
    stages: int

    def __post_init__(self):
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {self.kernel!r}")
        if self.tile not in TILES[self.kernel]:
            raise ValueError(f"{self.kernel} tile {self.tile.name} is not one of {[t.name for t in TILES[self.kernel]]}")
        if not MIN_STAGES <= self.stages <= MAX_STAGES:
            raise ValueError(f"stages must be in {MIN_STAGES}..{MAX_STAGES}, got {self.stages}")

    @property
    def name(self) -> str:
        return f"{self.kernel} {self.tile.name}s{self.stages}"


# Every tile x k-tile is offered. The 64-column k-64 dequant tiles were withdrawn once (wrong on the
# H100 at K = 1088): their scale rings have fewer 4-byte chunks than threads, and the idle threads'
# predicated-off cp.async was a zero fill of a working thread's chunk (grouped_gemm.ring.Stream).
TILES = {kern: tuple(Tile(m, n, k) for (m, n) in TILES_MN for k in TILES_K[kern]) for kern in KERNELS}


def packed_stage_bytes(tile: Tile) -> int:
    """E2M1 codes of the A and B tiles, two to a byte."""
    return (tile.m + tile.n) * tile.k // 2


def scale_stage_bytes(tile: Tile) -> int:
    """One E4M3 byte per 16 K elements of each A and B row."""
    return (tile.m + tile.n) * tile.k // SF_VEC


def stage_bytes(tile: Tile) -> int:
    return packed_stage_bytes(tile) + scale_stage_bytes(tile)


def fixed_bytes(kernel: str, tile: Tile) -> int:
    """Shared memory outside the ring: the dequant kernel's bf16 A and B tiles (one k-tile)."""
    return (tile.m + tile.n) * tile.k * 2 if kernel == DEQUANT else 0


def smem_bytes(kernel: str, tile: Tile, stages: int) -> int:
    """Shared memory of one CTA. Allocation order keeps every buffer at its natural alignment, so
    this is the exact sum: packed ring, (dequant: bf16 tiles,) scale ring. The bf16 output tile of
    the epilogue reuses the dequant kernel's bf16 tiles ((m + n) * k >= m * n for k >= 64) and the
    native kernel's packed ring (from two stages on, (m + n) * k >= 2 * m * n for k >= 128)."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    epilogue = tile.m * tile.n * 2
    reused = fixed_bytes(kernel, tile) if kernel == DEQUANT else MIN_STAGES * packed_stage_bytes(tile)
    assert epilogue <= reused, f"epilogue tile does not fit the reused smem of {kernel} {tile.name}"
    return stages * stage_bytes(tile) + fixed_bytes(kernel, tile)


def stages_for(kernel: str, tile: Tile, smem_optin_bytes: int) -> int | None:
    """Most stages that fit the device's opt-in limit (capped), or None when not even two fit."""
    room = smem_optin_bytes - fixed_bytes(kernel, tile)
    fit = min(MAX_STAGES, room // stage_bytes(tile)) if room > 0 else 0
    return fit if fit >= MIN_STAGES else None


def config_for(kernel: str, tile: Tile, caps: Capabilities) -> GemmConfig | None:
    stages = stages_for(kernel, tile, caps.smem_optin_bytes or 0)
    return GemmConfig(kernel, tile, stages) if stages else None


def requirements(config: GemmConfig) -> Requirements:
    # Offered on the targets CI compiles each kernel for (AOT), where its PTX is known to assemble.
    return Requirements(targets=frozenset(TARGETS[config.kernel]), mma_kind=MMA_KINDS[config.kernel],
                        smem_bytes=smem_bytes(config.kernel, config.tile, config.stages), needs_dsl=True,
                        min_dsl_cuda=MIN_NATIVE_DSL_CUDA if config.kernel == NATIVE else None)


def staged(kernel: str, tile: Tile, caps: Capabilities) -> GemmConfig:
    """The tile with the stages this device gives it, or two when none fit (so a refusal names the
    bytes two stages would take)."""
    return config_for(kernel, tile, caps) or GemmConfig(kernel, tile, MIN_STAGES)


def tile_for(kernel: str, n: int, tokens_per_group: float) -> Tile:
    """Decode (a few tokens per expert): one 64-row tile per expert and 64 columns, so the weight
    bytes spread over the most CTAs. Prefill: 128 rows, 128 columns where N allows. The dequant
    kernel keeps k-tiles of 64 at 128 x 128 so two stages fit SM12x's 99 KiB beside its bf16 tiles."""
    decode = tokens_per_group <= 64 or n < 128
    if kernel == NATIVE:
        return Tile(64, 64, 256) if decode else Tile(128, 128 if n >= 1024 else 64, 128)
    if decode:
        return Tile(64, 64, 128)
    return Tile(128, 128, 64) if n >= 1024 else Tile(128, 64, 128)


@dataclass(frozen=True)
class Choice:
    config: GemmConfig  # what dispatch runs (its own gate still decides whether it may)
    native: Verdict  # the native kernel's verdict on this device; not ok: why this is the fallback

    @property
    def fell_back(self) -> bool:
        return self.config.kernel != NATIVE

    @property
    def payload_only(self) -> bool:
        """Refused for the DSL payload alone: the device runs the MMA, the compiler cannot (seed 002)."""
        return bool(self.native.reasons) and all(r.feature.startswith("DSL payload") for r in self.native.reasons)

    def warning(self) -> str | None:
        """The actionable warning dispatch raises when seed 002's gate sends an SM12x part to the
        dequant kernel; None when the native kernel runs or this device cannot execute it anyway."""
        if not (self.fell_back and self.payload_only):
            return None
        return (f"NVFP4 grouped GEMM: using the dequant kernel ({self.config.name}) instead of the native "
                f"kind::mxf4nvf4 kernel: {self.native.explain()}. A CUDA 12.x CuTe DSL payload lowers "
                "this MMA to PTX that ptxas rejects; the DSL loads its CUDA 13 payload when "
                "nvidia-cutlass-dsl-libs-cu13 is installed and the driver supports CUDA 13.")


def kernel_choice(n: int, tokens_per_group: float, caps: Capabilities) -> Choice:
    """Kernel and config per problem shape, a pure function of (shape, capabilities): the native
    kernel where its gate passes (SM12x, payload >= 13, smem), otherwise the dequant kernel."""
    native = staged(NATIVE, tile_for(NATIVE, n, tokens_per_group), caps)
    verdict = check(requirements(native), caps)
    if verdict.ok:
        return Choice(native, verdict)
    return Choice(staged(DEQUANT, tile_for(DEQUANT, n, tokens_per_group), caps), verdict)


def choose(problem, caps: Capabilities, *, kernel: str | None = None, tile: Tile | None = None) -> GemmConfig:
    """The config dispatch runs for the problem's shape: `kernel_choice`'s, or the forced kernel
    and/or tile (a forced tile keeps the chosen kernel; a forced kernel gets its tile for the shape)."""
    if kernel is None and tile is None:
        return kernel_choice(problem.n, problem.tokens_per_group, caps).config
    kernel = kernel or kernel_choice(problem.n, problem.tokens_per_group, caps).config.kernel
    return staged(kernel, tile or tile_for(kernel, problem.n, problem.tokens_per_group), caps)


def unsupported(problem) -> str | None:
    """Scale rows must be whole 4-byte chunks (K % 64) and output rows whole 16-byte chunks (N % 8)."""
    bad = [f"{d}={v} (needs a multiple of {m})"
           for d, v, m in (("K", problem.k, K_MULTIPLE), ("N", problem.n, N_MULTIPLE)) if v % m]
    return "gpuhil-cute NVFP4 grouped GEMM: " + ", ".join(bad) if bad else None


def configs(caps: Capabilities):
    """Every kernel x tile at the stages this device gives it; the native rows say why not where
    they are refused (on SM12x with a CUDA 12.x payload: seed 002's gate)."""
    for kernel in KERNELS:
        for tile in TILES[kernel]:
            fits = config_for(kernel, tile, caps)
            cfg = fits or GemmConfig(kernel, tile, MIN_STAGES)
            yield ConfigRow("nvfp4_grouped_gemm", f"gpuhil-cute-nvfp4-{kernel} {tile.name}", requirements(cfg),
                            {"variant": kernel, "tile": tile.name, "stages": fits.stages if fits else None,
                             "smem_bytes": smem_bytes(kernel, tile, cfg.stages), "smem_optin_bytes": caps.smem_optin_bytes})
