"""The DSL-side pointer arguments both NVFP4 grouped-GEMM kernels take, in the order
(a, a_scale, b, b_scale, out, offs, alpha)."""

from __future__ import annotations

from cutlass import BFloat16, Float8E4M3FN, Float32, Int32, Uint8

from ..compiled import gmem_ptr


def pointers(a: int = 0, a_scale: int = 0, b: int = 0, b_scale: int = 0, out: int = 0, offs: int = 0,
             alpha: int = 0) -> tuple:
    """Typed gmem pointers; all zero: compile-time stand-ins. Packed codes are bytes here; each kernel
    views them as it needs (bytes or Float4E2M1FN)."""
    return (gmem_ptr(Uint8, a, 16), gmem_ptr(Float8E4M3FN, a_scale, 4), gmem_ptr(Uint8, b, 16),
            gmem_ptr(Float8E4M3FN, b_scale, 4), gmem_ptr(BFloat16, out, 16), gmem_ptr(Int32, offs, 4),
            gmem_ptr(Float32, alpha, 4))


def operand_pointers(ops, out) -> tuple:
    """Pointers to torch operands (operands.Nvfp4GroupedOperands) and the output."""
    return pointers(ops.a.data_ptr(), ops.a_scale.data_ptr(), ops.b.data_ptr(), ops.b_scale.data_ptr(),
                    out.data_ptr(), ops.offs.data_ptr(), ops.alpha.data_ptr())
