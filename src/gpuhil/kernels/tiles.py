"""A GEMM kernel's CTA tile: M rows, N columns, K elements per k-tile (shared by every GEMM spec)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tile:
    m: int
    n: int
    k: int

    @property
    def name(self) -> str:
        return f"{self.m}x{self.n}x{self.k}"
