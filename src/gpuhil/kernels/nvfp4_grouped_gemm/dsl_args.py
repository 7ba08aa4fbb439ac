"""The DSL-side launch arguments both NVFP4 grouped-GEMM kernels take: typed gmem pointers in the
order (a, a_scale, b, b_scale, out, offs, alpha)."""

from __future__ import annotations

import cutlass.cute as cute
from cutlass import BFloat16, Float8E4M3FN, Float32, Int32, Uint8

from ..fp8_grouped_gemm.dsl_args import stream_for  # noqa: F401 - one stream rule for every gpuhil GEMM


def pointers(a: int = 0, a_scale: int = 0, b: int = 0, b_scale: int = 0, out: int = 0, offs: int = 0,
             alpha: int = 0) -> tuple:
    """Typed gmem pointers (a bare int would be narrowed to Int32); all zero: compile-time stand-ins.
    Packed codes are bytes here; each kernel views them as it needs (bytes or Float4E2M1FN)."""
    from cutlass.cute.runtime import make_ptr

    gmem = cute.AddressSpace.gmem
    return (make_ptr(Uint8, a, gmem, assumed_align=16), make_ptr(Float8E4M3FN, a_scale, gmem, assumed_align=4),
            make_ptr(Uint8, b, gmem, assumed_align=16), make_ptr(Float8E4M3FN, b_scale, gmem, assumed_align=4),
            make_ptr(BFloat16, out, gmem, assumed_align=16), make_ptr(Int32, offs, gmem, assumed_align=4),
            make_ptr(Float32, alpha, gmem, assumed_align=4))


def operand_pointers(ops, out) -> tuple:
    """Pointers to torch operands (operands.Nvfp4GroupedOperands) and the output."""
    return pointers(ops.a.data_ptr(), ops.a_scale.data_ptr(), ops.b.data_ptr(), ops.b_scale.data_ptr(),
                    out.data_ptr(), ops.offs.data_ptr(), ops.alpha.data_ptr())
