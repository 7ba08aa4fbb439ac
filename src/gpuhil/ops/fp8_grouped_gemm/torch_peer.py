"""The peer provider: torch._scaled_grouped_mm (rowwise FP8, 2d x 3d, int32 offsets)."""

from __future__ import annotations

from .operands import rowwise_scales


def unsupported_reason(problem) -> str | None:
    """torch._scaled_grouped_mm checks that B's dimensions are multiples of 16 (as of torch 2.11)."""
    bad = [f"{d}={v}" for d, v in (("N", problem.n), ("K", problem.k)) if v % 16]
    return f"torch._scaled_grouped_mm needs N and K divisible by 16; problem has {', '.join(bad)}" if bad else None


def torch_grouped_gemm(q, out=None):
    import torch

    sa, sb = rowwise_scales(q)  # per-tensor scales written out rowwise: the same numbers
    res = torch._scaled_grouped_mm(q.a, q.b.transpose(-2, -1), sa, sb, offs=q.offs, out_dtype=torch.bfloat16)
    if out is None:
        return res
    out.copy_(res)
    return out
