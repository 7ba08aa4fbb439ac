"""The launch contract every gpuhil CuTe DSL kernel follows.

A kernel module provides `build(config, variant)` (the @cute.jit host function) and
`aot_args(config, variant)` (compile-time stand-ins: typed null pointers, scalars, a null stream).
`compile_kernel` compiles that pair once per (config, variant, target) for the current GPU or ahead of
time for a named target, and the launcher passes typed pointers plus the stream from `stream_for`.
Host functions take raw typed pointers, not DLPack tensors, so a launch costs no per-call wrapping.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CompiledKernel:
    """A compiled host function and what it was built for (launch checks read config and variant)."""

    config: Any
    variant: str  # dtype, scale recipe, ...: what else the build was specialised on
    target: str | None  # None: the current GPU
    fn: Callable = field(repr=False, compare=False)

    def __call__(self, *args):
        return self.fn(*args)


@functools.cache
def compile_kernel(build: Callable, aot_args: Callable, config, variant: str, target: str | None = None) -> CompiledKernel:
    """Compiled `build(config, variant)`, valid for every problem size; cached per process.

    target=None compiles for the current GPU (JIT); otherwise ahead of time for that target through
    gpuhil.aot (launchable only on a GPU of that target)."""
    import cutlass.cute as cute

    fn, args = build(config, variant), aot_args(config, variant)
    if target is None:
        compiled = cute.compile(fn, *args)
    else:
        from ..aot import compile_for_target

        compiled = compile_for_target(fn, *args, target=target).compiled
    return CompiledKernel(config, variant, target, compiled)


def require(cond: bool, msg: str) -> None:
    """Host-side operand check before a launch: a wrong operand is a ValueError naming it, never a
    fault inside the kernel."""
    if not cond:
        raise ValueError(msg)


def gmem_ptr(dtype, address: int = 0, align: int = 16):
    """A typed global-memory pointer (a bare int would be narrowed to Int32); 0 for AOT stand-ins."""
    import cutlass.cute as cute
    from cutlass.cute.runtime import make_ptr

    return make_ptr(dtype, address, cute.AddressSpace.gmem, assumed_align=align)


def stream_for(device, stream=None):
    """`stream` (a CUstream or a raw handle) or, by default, torch's current stream on `device`."""
    import cuda.bindings.driver as cuda

    if stream is None:
        import torch

        stream = torch.cuda.current_stream(device).cuda_stream
    return cuda.CUstream(stream) if isinstance(stream, int) else stream


def null_stream():
    import cuda.bindings.driver as cuda

    return cuda.CUstream(0)


class Launch:
    """A compiled config bound to its launcher: `launch(inputs, out=None) -> out`. `config` is the
    config that really runs, so a test can assert on what dispatch chose."""

    __slots__ = ("compiled", "_launcher", "_make_out")

    def __init__(self, compiled: CompiledKernel, launcher: Callable, make_out: Callable) -> None:
        self.compiled, self._launcher, self._make_out = compiled, launcher, make_out

    @property
    def config(self):
        return self.compiled.config

    def __call__(self, inputs, out=None):
        out = self._make_out(inputs) if out is None else out
        self._launcher(self.compiled, inputs, out)
        return out
