"""gpuhil-cute NVFP4 quantize: configs, scale layouts, Requirements and operand shapes (pure Python).

One thread quantizes one 16-element block; a CTA of `threads` threads covers `threads` consecutive
blocks of the row-major block grid (swizzled: of the padded scale grid, whose padding threads only
write a zero scale). No shared memory, no cluster: only the ISA (cvt e4m3x2, sm_89+) gates it, and
it is offered on the targets CI compiles it for. The kernels.contract vocabulary: configs, choose,
requirements, unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ...formats.nvfp4 import BLOCK, swizzled_shape
from ...gating import ConfigRow, Requirements

LAYOUTS = ("linear", "swizzled")
TARGETS = ("sm_90a", "sm_100a", "sm_120a", "sm_121a")
MAX_ITEMS = 2**31 - 1024  # thread index (one per scale byte, padding included) stays in int32 for a whole CTA


@dataclass(frozen=True)
class QuantizeConfig:
    threads: int = 128

    def __post_init__(self):
        if self.threads % 32 or not 32 <= self.threads <= 1024:
            raise ValueError(f"threads must be a multiple of 32 in 32..1024, got {self.threads}")

    @property
    def name(self) -> str:
        return f"t{self.threads}"


DEFAULT = QuantizeConfig()


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"scale layout must be one of {LAYOUTS}, got {layout!r}")
    return layout


def smem_bytes(config: QuantizeConfig) -> int:
    """Registers only: the block, its scale and its codes never leave the thread."""
    return 0


def requirements(config: QuantizeConfig) -> Requirements:
    return Requirements(targets=frozenset(TARGETS), smem_bytes=smem_bytes(config), needs_dsl=True)


class QuantizeShape(NamedTuple):
    """What the spec reads of a problem, as `prepare` takes it off x [rows, K]."""

    rows: int
    k: int


def unsupported(problem) -> str | None:
    """Whole 16-element blocks per row."""
    ok = problem.k > 0 and problem.k % BLOCK == 0
    return None if ok else f"x: K must be a positive multiple of {BLOCK} (NVFP4 blocks), got {problem.k}"


def choose(problem, caps, *, config: QuantizeConfig = DEFAULT) -> QuantizeConfig:
    """One config serves every shape and device (no shared memory, no cluster to size)."""
    return config


def scale_numel(rows: int, k: int, layout: str) -> int:
    """Bytes the scale output holds: rows * K/16 (linear) or rows_pad * cols_pad (swizzled)."""
    if check_layout(layout) == "linear":
        return rows * (k // BLOCK)
    r, c = swizzled_shape(rows, k // BLOCK)
    return r * c


def work_items(rows: int, k: int, layout: str) -> int:
    """Threads the launch needs: one per scale byte it writes."""
    return scale_numel(rows, k, layout)


def output_shapes(rows: int, k: int, layout: str) -> tuple[tuple[int, int], tuple[int, ...]]:
    """Shapes of (packed codes, scales) for an x of [rows, k]: ([rows, k/2], [rows, k/16] or [rows_pad * cols_pad])."""
    scales = (rows, k // BLOCK) if check_layout(layout) == "linear" else (scale_numel(rows, k, layout),)
    return (rows, k // 2), scales


def configs(caps):
    for layout in LAYOUTS:
        yield ConfigRow("nvfp4_quantize", f"gpuhil-cute {DEFAULT.name} {layout} scales", requirements(DEFAULT),
                        {"layout": layout, "smem_bytes": smem_bytes(DEFAULT)})
