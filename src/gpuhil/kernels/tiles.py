"""A GEMM kernel's CTA tile: M rows, N columns, K elements per k-tile (shared by every GEMM spec)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class Tile:
    m: int
    n: int
    k: int

    @property
    def name(self) -> str:
        return f"{self.m}x{self.n}x{self.k}"


GRID_Y_LIMIT = 65535  # CUDA's largest grid.y


def check_grouped_grid_rows(tile_m: int, tokens: int, groups: int) -> None:
    """The warp-MMA grouped GEMMs launch ceil(T / tile_m) + G row tiles along grid.y (each group may
    start a partial tile): refuse, before a launch, a problem past CUDA's grid.y limit."""
    rows = -(-tokens // tile_m) + groups
    if rows > GRID_Y_LIMIT:
        raise ValueError(f"ceil(T/tile_m) + G = {rows} exceeds the grid.y limit {GRID_Y_LIMIT}")


class GroupedShape(NamedTuple):
    """What the grouped-GEMM specs read of a problem, as `prepare` takes it off the operands."""

    n: int
    k: int
    groups: int
    tokens_per_group: float

    @classmethod
    def of(cls, tokens: int, groups: int, n: int, k: int) -> "GroupedShape":
        return cls(n, k, groups, tokens / max(groups, 1))
