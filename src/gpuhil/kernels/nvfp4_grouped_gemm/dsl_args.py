"""The host side of the NVFP4 grouped GEMM: its pointer arguments, in the order (a, a_scale, b,
b_scale, out, offs, alpha), then T, N, K, G and the stream; the compile-time stand-ins, the DSL
arguments for raw values (the packed launch's first call) and the checked launch."""

from __future__ import annotations

import cuda.bindings.driver as cuda
from cutlass import BFloat16, Float8E4M3FN, Float32, Int32, Uint8

from . import operands as operands_mod
from ..compiled import CompiledKernel, gmem_ptr, null_stream
from ..grouped_gemm.launcher import launch_checked


def pointers(a: int = 0, a_scale: int = 0, b: int = 0, b_scale: int = 0, out: int = 0, offs: int = 0,
             alpha: int = 0) -> tuple:
    """Typed gmem pointers; all zero: compile-time stand-ins. Packed codes are bytes here; each
    mainloop views them as it needs (bytes or Float4E2M1FN)."""
    return (gmem_ptr(Uint8, a, 16), gmem_ptr(Float8E4M3FN, a_scale, 4), gmem_ptr(Uint8, b, 16),
            gmem_ptr(Float8E4M3FN, b_scale, 4), gmem_ptr(BFloat16, out, 16), gmem_ptr(Int32, offs, 4),
            gmem_ptr(Float32, alpha, 4))


def aot_args(config, variant: str = "nvfp4"):
    """Compile-time stand-ins for the host function (no GPU)."""
    return (*pointers(), Int32(1), Int32(8), Int32(64), Int32(1), null_stream())


def host_args(config, variant: str, a: int, a_scale: int, b: int, b_scale: int, out: int, offs: int, alpha: int,
              *rest: int) -> tuple:
    """The DSL arguments for raw values (the generic, first-call path of a packed launch)."""
    *sizes, stream = rest
    return (*pointers(a, a_scale, b, b_scale, out, offs, alpha), *sizes, cuda.CUstream(stream))


def launch(compiled: CompiledKernel, ops, out, stream=None) -> None:
    """Launch on torch operands (operands.Nvfp4GroupedOperands); no host sync, no allocation, so
    CUDA-graph capturable."""
    sizes = operands_mod.check(ops, out)
    addresses = (ops.a.data_ptr(), ops.a_scale.data_ptr(), ops.b.data_ptr(), ops.b_scale.data_ptr(), out.data_ptr(),
                 ops.offs.data_ptr(), ops.alpha.data_ptr())
    launch_checked(compiled, addresses, sizes, ops.a.device.index, stream)
