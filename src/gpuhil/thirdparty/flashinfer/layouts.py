"""gpuhil's grouped and NVFP4 operands in the layouts FlashInfer's kernels take (pure torch).

- Groups: gpuhil passes cumulative END offsets `offs` [G] (int32); FlashInfer's grouped GEMMs take
  `m_indptr` [G+1] int32 with a leading 0 (flashinfer/grouped_mm/core.py:192-198), of which the cuDNN
  graph reads the G starts (grouped_mm/cudnn/core.py:253, 559: `m_indptr[:-1]`).
- A per-expert value (FP8 weight scales, NVFP4 alpha) the kernel cannot take is applied per row
  after it: `per_row` gives each routed row its expert's value.
- NVFP4 block scales: gpuhil keeps them linear; FlashInfer's NVFP4 kernels read the 128x4-tiled
  layout (gpuhil.ops.nvfp4_moe.reference.swizzle_scales), as a [rows_pad, cols_pad] matrix per
  operand (whole A, each expert of B).
- Gated FC1 weights: gpuhil stores gate rows then up rows; FlashInfer's CUTLASS MoE reads the first
  half as the linear (up) input and the second as the gate (`gated_off = inter_size`,
  csrc/fused_moe/cutlass_backend/cutlass_fused_moe_kernels.cuh:2429, 2505-2528).
- Weight conversions run once per weight set, as a server converts at load (`ConvertedOnce`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch

from ...formats.nvfp4 import BLOCK, swizzled_shape
from ...ops.nvfp4_moe import reference as R


def indptr(offs: torch.Tensor) -> torch.Tensor:
    """Cumulative END offsets [G] -> m_indptr [G+1] int32 with a leading 0."""
    return torch.cat([offs.new_zeros(1), offs]).to(torch.int32)


def per_row(values: torch.Tensor, offs: torch.Tensor, rows: int) -> torch.Tensor:
    """values [G, ...] -> [rows, ...]: row t gets the value of the group it belongs to (no host sync)."""
    counts = torch.diff(offs, prepend=offs.new_zeros(1)).clamp_min(0)
    return values.repeat_interleave(counts, dim=0, output_size=rows)


def swizzled(scales: torch.Tensor) -> torch.Tensor:
    """Linear e4m3 block scales [..., rows, K/16] -> 128x4-tiled [..., rows_pad, cols_pad] (padding zero)."""
    rows_pad, cols_pad = swizzled_shape(*scales.shape[-2:])
    return R.swizzle_scales(scales).view(*scales.shape[:-2], rows_pad, cols_pad)


def up_then_gate(rows: torch.Tensor) -> torch.Tensor:
    """[E, 2I, ...] in gpuhil's gate-then-up order -> FlashInfer's up-then-gate order (a copy)."""
    inter = rows.shape[1] // 2
    return torch.cat([rows[:, inter:], rows[:, :inter]], dim=1).contiguous()


def packed_as_int64(packed: torch.Tensor) -> torch.Tensor:
    """Packed E2M1 [..., K/2] uint8 -> [..., K/16] int64: how FlashInfer's CUTLASS MoE is told its
    weights are NVFP4 (16 codes per int64, flashinfer_cutlass_fused_moe_binding.cu:132, 1612-1615)."""
    if packed.shape[-1] * 2 % BLOCK:
        raise ValueError(f"packed codes: K={packed.shape[-1] * 2} is not a whole number of NVFP4 blocks")
    return packed.contiguous().view(torch.int64)


class ConvertedOnce:
    """A weight set converted to a library's layout, reused while the very same source tensors are
    passed unchanged: one per launch (a launcher makes its own), so it lives as long as a prepared
    launch does.

    Keyed on the source tensor objects (weak references: no storage is kept alive, and a new tensor
    at a freed one's address is not mistaken for it) and their version counters (torch bumps them on
    every in-place write), so a launch on other weights, or on the same weights rewritten in place,
    converts again, and repeated launches on one weight set (a server's steady state, a benchmark)
    reuse the conversion."""

    def __init__(self, convert: Callable) -> None:
        self.convert = convert
        self.sources: tuple = ()
        self.versions: tuple[int, ...] = ()
        self.value = None

    def __call__(self, *sources: torch.Tensor):
        same = len(sources) == len(self.sources) and all(ref() is t for ref, t in zip(self.sources, sources))
        versions = tuple(t._version for t in sources)
        if not same or versions != self.versions:
            self.value = self.convert(*sources)
            self.sources, self.versions = tuple(weakref.ref(t) for t in sources), versions
        return self.value
