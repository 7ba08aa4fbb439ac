"""The DSL-side pointer arguments both gpuhil FP8 grouped-GEMM kernels take, in the order
(a, b, out, offs, scale_a, scale_b)."""

from __future__ import annotations

from cutlass import BFloat16, Float8E4M3FN, Float32, Int32

from ..compiled import gmem_ptr


def pointers(a: int = 0, b: int = 0, out: int = 0, offs: int = 0, sa: int = 0, sb: int = 0) -> tuple:
    """Typed gmem pointers; all zero: compile-time stand-ins."""
    return (gmem_ptr(Float8E4M3FN, a, 16), gmem_ptr(Float8E4M3FN, b, 16), gmem_ptr(BFloat16, out, 16),
            gmem_ptr(Int32, offs, 4), gmem_ptr(Float32, sa, 4), gmem_ptr(Float32, sb, 4))


def operand_pointers(q, out) -> tuple:
    """Pointers to torch operands (a QuantizedOperands) and the output."""
    return pointers(q.a.data_ptr(), q.b.data_ptr(), out.data_ptr(), q.offs.data_ptr(),
                    q.scale_a.data_ptr(), q.scale_b.data_ptr())
