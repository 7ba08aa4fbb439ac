"""The portable peer: NVFP4 dequantized with torch ops and multiplied by torch's bf16 GEMMs.

The block products e2m1 * e4m3 are exact in bf16, so the dequantized operands are the values the
kernels multiply; torch's bf16 GEMM accumulates in fp32 and writes bf16, and the per-expert alpha is
applied after that (a second bf16 rounding the gpuhil kernels do not have). torch._grouped_mm does
all experts in one call where this build runs it (no host sync: graph-capturable); elsewhere one
matmul per expert (the offsets are read on the host). The operands are dequantized a slice of
rows at a time into one bf16 buffer, so the reference's fp32 temporaries stay at a slice's size
(~0.5 GiB) instead of several fp32 copies of every expert's weights (a DeepSeek-V3 gate_up weight is
7.5 G elements: 28 GiB per fp32 copy, more than any GPU holds at once).
"""

from __future__ import annotations

import torch

from . import reference as R


SLICE_ELEMENTS = 1 << 24  # elements dequantized at once: their fp32 temporaries bound the peer's workspace


def dequantize_bf16(packed: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """bf16 [..., K] e2m1 * e4m3 (exact in bf16), SLICE_ELEMENTS at a time into one buffer."""
    k = 2 * packed.shape[-1]
    rows_packed, rows_scales = packed.reshape(-1, k // 2), scales.reshape(-1, k // R.BLOCK)
    out = torch.empty(rows_packed.shape[0], k, dtype=torch.bfloat16, device=packed.device)
    step = max(1, SLICE_ELEMENTS // k)
    for r in range(0, rows_packed.shape[0], step):
        out[r:r + step] = R.block_products(rows_packed[r:r + step], rows_scales[r:r + step], torch.bfloat16)
    return out.reshape(*packed.shape[:-1], k)


def grouped_gemm(ops, out=None, *, grouped_mm: bool = True):
    """out [T, N] bf16 = bf16(alpha[g] * bf16(A_g @ B_g^T)) from Nvfp4GroupedOperands."""
    a = dequantize_bf16(ops.a, ops.a_scale)
    b = dequantize_bf16(ops.b, ops.b_scale)
    if out is None:
        out = torch.empty(a.shape[0], b.shape[1], dtype=torch.bfloat16, device=a.device)
    row_alpha = ops.alpha.repeat_interleave(_counts(ops.offs), output_size=a.shape[0])
    if grouped_mm:
        prod = torch._grouped_mm(a, b.transpose(-2, -1), offs=ops.offs)
    else:
        prod = torch.empty_like(out)
        start = 0
        for g, end in enumerate(ops.offs.tolist()):
            if end > start:
                prod[start:end] = a[start:end] @ b[g].T
            start = end
    out.copy_((prod.float() * row_alpha[:, None]).to(torch.bfloat16))
    return out


def _counts(offs: torch.Tensor) -> torch.Tensor:
    return torch.diff(offs, prepend=offs.new_zeros(1)).clamp_min(0)


def quantize(x, global_scale, out=None):
    """The reference quantizer on the device (bit-exact with gpuhil's kernel by construction)."""
    packed, scales = R.quantize(x, global_scale)
    if out is None:
        return packed, scales
    out[0].copy_(packed)
    out[1].copy_(scales)
    return out
