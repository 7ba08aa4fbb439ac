"""The DSL-side launch arguments both gpuhil grouped-GEMM kernels take: typed gmem pointers in the
order (a, b, out, offs, scale_a, scale_b), and the CUDA stream."""

from __future__ import annotations

import cuda.bindings.driver as cuda

import cutlass.cute as cute
from cutlass import BFloat16, Float8E4M3FN, Float32, Int32


def pointers(a: int = 0, b: int = 0, out: int = 0, offs: int = 0, sa: int = 0, sb: int = 0) -> tuple:
    """Typed gmem pointers (a bare int would be narrowed to Int32); all zero: compile-time stand-ins."""
    from cutlass.cute.runtime import make_ptr

    gmem = cute.AddressSpace.gmem
    return (make_ptr(Float8E4M3FN, a, gmem, assumed_align=16), make_ptr(Float8E4M3FN, b, gmem, assumed_align=16),
            make_ptr(BFloat16, out, gmem, assumed_align=16), make_ptr(Int32, offs, gmem, assumed_align=4),
            make_ptr(Float32, sa, gmem, assumed_align=4), make_ptr(Float32, sb, gmem, assumed_align=4))


def operand_pointers(q, out) -> tuple:
    """Pointers to torch operands (recipes.QuantizedOperands) and the output."""
    return pointers(q.a.data_ptr(), q.b.data_ptr(), out.data_ptr(), q.offs.data_ptr(),
                    q.scale_a.data_ptr(), q.scale_b.data_ptr())


def stream_for(device, stream=None) -> cuda.CUstream:
    """`stream` (a CUstream or a raw handle) or, by default, torch's current stream on `device`."""
    import torch

    if stream is None:
        stream = torch.cuda.current_stream(device).cuda_stream
    return cuda.CUstream(stream) if isinstance(stream, int) else stream
