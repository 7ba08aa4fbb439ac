"""NVFP4 grouped GEMM on FlashInfer's cuDNN backend (provider `flashinfer-cudnn`):
`flashinfer.grouped_mm.grouped_mm_fp4(a, b, a_descale, b_descale, m_indptr, out_dtype=torch.float32,
block_size=16)`, then gpuhil's per-expert alpha applied in torch and the result rounded to bf16 once.

Operands (gpuhil.ops.nvfp4_moe.operands.Nvfp4GroupedOperands -> FlashInfer, core.py:443-600):
- a [T, K/2] and b [G, N, K/2] packed E2M1 uint8, element 2j in the low nibble: taken as they are
  (uint8 is accepted, core.py:458-461; cuDNN reads b K-major through b.transpose(1, 2),
  cudnn/core.py:557).
- block scales: cuDNN reads them in its F8_128x4 reordering (cudnn/core.py:348, 370), the 128x4
  tiles gpuhil's `swizzle_scales` writes: A's [T, K/16] as one matrix over all routed rows,
  [T_pad, C_pad]; B's per expert, [G, N_pad, C_pad] (rows padded to 128, scale columns to 4, zeros).
  That is how FlashInfer's own tests pass them (nvfp4_quantize's 128x4 output reshaped (-1, K/16));
  those only use token counts and N that are multiples of 128, so how cuDNN addresses A's tiles
  for an expert that starts inside a tile is read from its reordering, not seen run.
- alpha: grouped_mm_fp4 takes one (1,) for the whole call (core.py:488-491), gpuhil one per expert:
  the kernel writes fp32 and torch forms bf16(acc * alpha[g(t)]), the single rounding gpuhil's
  kernels have.
B's scales are swizzled once per weight set (layouts.ConvertedOnce); A's on every call (a serving
stack's quantizer would write them swizzled).

Requirements, from the library: grouped_mm_fp4's own table, `@supported_compute_capability([100,
103, 107, 110, 120, 121])` (core.py:443) read through `is_compute_capability_supported`
(support.py): no Hopper; cuDNN backend >= 9.21.0 (core.py:591, cudnn/core.py:53); no JIT.
"""

from __future__ import annotations

import dataclasses

import torch

from ...formats.nvfp4 import BLOCK
from ...gating import Requirements
from .. import FLASHINFER as LIBRARY
from ..provider import LibraryProvider
from . import support
from .fp8_grouped_gemm import CUDNN_MOE_MIN_VERSION
from .layouts import ConvertedOnce, indptr, per_row, swizzled


class CudnnFp4(LibraryProvider):
    name, op, backend, library = "flashinfer-cudnn", "nvfp4_grouped_gemm", "cudnn", LIBRARY
    refusal_text = r"BackendSupportedError|does not support compute capability|requires backend version"

    @property
    def needs(self) -> Requirements:
        return Requirements(ccs=support.ccs("flashinfer.grouped_mm", "grouped_mm_fp4", "is_compute_capability_supported"),
                            min_cudnn=CUDNN_MOE_MIN_VERSION)

    @property
    def requirements(self) -> Requirements:
        """The library and the device; no JIT toolchain (cuDNN compiles nothing with nvcc)."""
        return dataclasses.replace(super().requirements, tools=self.needs.tools)

    def unsupported(self, problem) -> str | None:
        return None if problem.k % BLOCK == 0 else f"K={problem.k}: NVFP4 blocks are {BLOCK} elements"

    def launcher(self, caps, **options):
        from flashinfer.grouped_mm import grouped_mm_fp4

        b_scales = ConvertedOnce(swizzled)

        def grouped_gemm(ops, out=None):
            t = ops.a.shape[0]
            acc = grouped_mm_fp4(ops.a, ops.b, swizzled(ops.a_scale), b_scales(ops.b_scale), indptr(ops.offs),
                                 out_dtype=torch.float32, block_size=BLOCK)
            res = (acc * per_row(ops.alpha, ops.offs, t)[:, None]).to(torch.bfloat16)
            return res if out is None else out.copy_(res)
        return grouped_gemm
