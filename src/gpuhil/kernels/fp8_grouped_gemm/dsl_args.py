"""The host-function arguments both gpuhil FP8 grouped-GEMM kernels take: pointers in the order
(a, b, out, offs, scale_a, scale_b), then int32 sizes, then the stream."""

from __future__ import annotations

import cuda.bindings.driver as cuda
from cutlass import BFloat16, Float8E4M3FN, Float32, Int32

from ..compiled import gmem_ptr


def pointers(a: int = 0, b: int = 0, out: int = 0, offs: int = 0, sa: int = 0, sb: int = 0) -> tuple:
    """Typed gmem pointers; all zero: compile-time stand-ins."""
    return (gmem_ptr(Float8E4M3FN, a, 16), gmem_ptr(Float8E4M3FN, b, 16), gmem_ptr(BFloat16, out, 16),
            gmem_ptr(Int32, offs, 4), gmem_ptr(Float32, sa, 4), gmem_ptr(Float32, sb, 4))


def host_args(config, scale_mode: str, a: int, b: int, out: int, offs: int, sa: int, sb: int, *rest: int) -> tuple:
    """The DSL arguments for raw values (the generic, first-call path of a packed launch)."""
    *sizes, stream = rest
    return (*pointers(a, b, out, offs, sa, sb), *sizes, cuda.CUstream(stream))
