"""FP8 grouped GEMM on FlashInfer's cuDNN backend (provider `flashinfer-cudnn`):
`flashinfer.grouped_mm.grouped_mm_fp8(a, b, m_indptr, out_dtype=torch.float32)`, then gpuhil's
scales applied in torch and the result rounded to bf16 once.

Why the scales are applied outside. grouped_mm_fp8 takes one `alpha` of shape (1,) for the whole
call (flashinfer/grouped_mm/core.py:202-205), while gpuhil's recipes carry one scale per token of A
(rowwise) or per tensor, and one per expert (tensor) or per output channel of each expert (rowwise)
of B. So the kernel writes the fp32 accumulator and torch forms out = bf16(acc * scale_a[t] *
scale_b[g(t)][n]): the reference's order (dequantize, multiply, accumulate in fp32, round the
output once), the same epilogue torch._scaled_grouped_mm runs, with two fp32 multiplications
(2^-24 each) before the one bf16 rounding. A bf16 output scaled afterwards would round twice.

Requirements, from the library:
- compute capability: grouped_mm_fp8's own table, `grouped_mm_fp8.is_compute_capability_supported`
  (`@supported_compute_capability([89, 90, 100, 103, 107, 110, 120, 121])` on its check,
  core.py:168), read from the installed flashinfer (support.py);
- cuDNN: its cuDNN backend needs backend version >= 9.21.0 (`_CUDNN_MOE_MIN_VERSION = 92100`,
  flashinfer/grouped_mm/cudnn/core.py:53, checked by `_check_cudnn_version` at :88-105 before every
  call, core.py:283) and a frontend with `moe_grouped_matmul_mode`. FlashInfer asks the cuDNN the
  `cudnn` frontend loads (`cudnn.backend_version()`), gpuhil probes the one torch loads (the
  same library where the frontend finds torch's libcudnn.so.9; should they differ, FlashInfer's
  refusal of a case the gate let through fails as a gate disagreement quoting the version FlashInfer found).
- no JIT: cuDNN builds the kernel, so nvcc is not needed.
The cuDNN plan for a shape is built on its first call and cached (cudnn/core.py:141); building one
under a CUDA-graph capture is refused (cudnn/core.py:217), so a capture must follow a warm call.
"""

from __future__ import annotations

import dataclasses

import torch

from ...gating import Requirements
from ...ops.fp8_grouped_gemm.operands import rowwise_scales
from .. import FLASHINFER as LIBRARY
from ..provider import LibraryProvider
from . import support
from .layouts import indptr, per_row

CUDNN_MOE_MIN_VERSION = "9.21.0"  # _CUDNN_MOE_MIN_VERSION, flashinfer/grouped_mm/cudnn/core.py:53


class CudnnFp8(LibraryProvider):
    name, op, backend, library = "flashinfer-cudnn", "fp8_grouped_gemm", "cudnn", LIBRARY
    refusal_text = r"BackendSupportedError|does not support compute capability|requires backend version"

    @property
    def needs(self) -> Requirements:
        return Requirements(ccs=support.ccs("flashinfer.grouped_mm", "grouped_mm_fp8", "is_compute_capability_supported"),
                            min_cudnn=CUDNN_MOE_MIN_VERSION)

    @property
    def requirements(self) -> Requirements:
        """The library and the device; no JIT toolchain (cuDNN compiles nothing with nvcc)."""
        return dataclasses.replace(super().requirements, tools=self.needs.tools)

    def launcher(self, caps, **options):
        from flashinfer.grouped_mm import grouped_mm_fp8

        def grouped_gemm(q, out=None):
            t = q.a.shape[0]
            acc = grouped_mm_fp8(q.a, q.b, indptr(q.offs), out_dtype=torch.float32)
            scale_a, scale_b = rowwise_scales(q)
            res = (acc * scale_a[:, None] * per_row(scale_b, q.offs, t)).to(torch.bfloat16)
            return res if out is None else out.copy_(res)
        return grouped_gemm
