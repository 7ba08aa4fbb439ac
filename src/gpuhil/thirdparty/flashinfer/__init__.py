"""FlashInfer's kernels as gpuhil providers, one module per op it covers."""

from __future__ import annotations

from .. import FLASHINFER as LIBRARY

__all__ = ["LIBRARY", "providers"]


def providers() -> list:
    from .b12x import B12xMoeLayer

    return [B12xMoeLayer()]
