"""The host side both NVFP4 grouped-GEMM kernels share: their pointer arguments, in the order
(a, a_scale, b, b_scale, out, offs, alpha), then T, N, K, G and the stream; the compile-time stand-ins
and the checked launch."""

from __future__ import annotations

from cutlass import BFloat16, Float8E4M3FN, Float32, Int32, Uint8

from . import operands as operands_mod
from ..compiled import CompiledKernel, gmem_ptr, null_stream, stream_for
from ..tiles import check_grouped_grid_rows


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


def aot_args(config, variant: str = "nvfp4"):
    """Compile-time stand-ins for either kernel's host function (no GPU)."""
    return (*pointers(), Int32(1), Int32(8), Int32(64), Int32(1), null_stream())


def launch(compiled: CompiledKernel, ops, out, stream=None) -> None:
    """Launch on torch operands (operands.Nvfp4GroupedOperands); no host sync, no allocation, so
    CUDA-graph capturable."""
    T, N, K, G = operands_mod.check(ops, out)
    check_grouped_grid_rows(compiled.config.tile.m, T, G)
    if T == 0:
        return
    compiled(*operand_pointers(ops, out), T, N, K, G, stream_for(ops.a.device, stream))
