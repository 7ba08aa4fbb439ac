"""Grouped-GEMM reference: dequantize (fp8 x scales) and multiply per group in fp32, or fp64 when small."""

from __future__ import annotations

SMALL_FLOPS = 2 * 1024**3  # below this the reference runs in float64


def reference(q):
    """[T, N] reference from the FP8 operands every provider multiplies, so only accumulation order
    and output rounding can differ. Dequantized one expert at a time: a DeepSeek-V3 layer's weights
    would not fit the GPU in fp32 all at once."""
    import torch

    t, k = q.a.shape
    g, n, _ = q.b.shape
    dtype = torch.float64 if 2 * t * n * k <= SMALL_FLOPS else torch.float32
    a = q.a.to(dtype) * (q.scale_a.to(dtype)[:, None] if q.recipe == "rowwise" else q.scale_a.to(dtype))
    out = torch.zeros(t, n, dtype=dtype, device=a.device)
    start = 0
    for e, end in enumerate(q.offs.tolist()):
        if end > start:
            sb = q.scale_b[e].to(dtype)
            b = q.b[e].to(dtype) * (sb[:, None] if q.recipe == "rowwise" else sb)
            out[start:end] = a[start:end] @ b.T
        start = end
    return out
