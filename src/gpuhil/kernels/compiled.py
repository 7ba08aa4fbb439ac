"""The launch contract every gpuhil CuTe DSL kernel follows.

A kernel module provides `build(config, variant)` (the @cute.jit host function) and
`aot_args(config, variant)` (compile-time stand-ins: typed null pointers, scalars, a null stream).
`compile_kernel` compiles that pair once per (config, variant, target) for the current GPU or ahead of
time for a named target, and the launcher passes typed pointers plus the stream from `stream_for`.
Host functions take raw typed pointers, not DLPack tensors, so a launch costs no per-call wrapping.

A kernel that also gives `host_args(config, variant, *raw)` (raw ints -> the DSL arguments) gets
`CompiledKernel.launch(*raw)`: a PackedCall that writes the raw values straight into C slots instead of
converting typed arguments on every call (see PackedCall). The slots' C types come from the host
function's own annotations, so the signature is stated once.
"""

from __future__ import annotations

import ctypes
import functools
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import compile_clock

# One C value per host-function argument: what the compiled host function reads through each address,
# as a struct code in the platform's native size and alignment (as C lays out the same values).
SLOT_CODES = {"ptr": "P", "i32": "i", "i64": "q", "stream": "P"}
_ANNOTATION_KINDS = {"Pointer": "ptr", "Int32": "i32", "Int64": "i64", "CUstream": "stream"}


def arg_kinds(host_fn: Callable) -> tuple[str, ...] | None:
    """The slot kind of each parameter of a @cute.jit host function, from its annotations (a type, or
    its name as a string under postponed evaluation); None when one is not a plain pointer (cute.Pointer),
    Int32, Int64 or stream (cuda.CUstream)."""
    import inspect

    kinds = []
    for param in inspect.signature(host_fn).parameters.values():
        ann = param.annotation if isinstance(param.annotation, str) else getattr(param.annotation, "__name__", "")
        ann = ann.rpartition(".")[2]
        if ann not in _ANNOTATION_KINDS:
            return None
        kinds.append(_ANNOTATION_KINDS[ann])
    return tuple(kinds)


class PackedCall:
    """Calls a compiled host function with its arguments written in place into C slots it owns.

    The DSL's generic call builds typed pointers and Int32/Int64 casts and converts each of them on
    every call: 15-20 us of Python, more than a decode-sized kernel runs. The compiled host function
    only reads one C value per argument, through an address, so the slots' addresses are all a call
    needs. The slots are the fields of one buffer, written by a single `struct.pack_into` per call
    (a third of the time of setting one ctypes value per argument); a value too wide for its slot
    raises struct.error instead of being truncated. The first call takes the generic path (it loads
    the module and validates everything) and compares the slots, byte for byte, with the DSL's own
    conversion of the same arguments (`agrees`); only if they match do later calls take the fast
    path. A DSL whose convention differs keeps the generic path: slower, never wrong. Slots are per
    thread, like the DSL's own packing buffer.

    Since a thread's slot addresses never change, neither does the address array the compiled entry
    point takes: the fast path builds it once per thread and calls the entry point with it (`_invoker`),
    skipping the executor's per-call lock and repacking. Where the executor does not expose what that
    needs, the fast path calls its public `run_compiled_program` instead.
    """

    def __init__(self, compiled: CompiledKernel, kinds: tuple[str, ...], host_args: Callable) -> None:
        unknown = [k for k in kinds if k not in SLOT_CODES]
        if unknown:
            raise ValueError(f"argument kinds {unknown} are not among {sorted(SLOT_CODES)}")
        self.compiled, self.kinds, self.host_args = compiled, kinds, host_args
        codes = "".join(SLOT_CODES[k] for k in kinds)
        self._pack = struct.Struct("@" + codes).pack_into
        # Each slot's offset and width: a zero-count code pads to that code's alignment, as C does.
        self._offsets = [struct.calcsize(f"@{codes[:i]}0{c}") for i, c in enumerate(codes)]
        self._widths = [struct.calcsize(f"@{c}") for c in codes]
        self._words = -(-struct.calcsize("@" + codes) // 8)
        self.fast = False
        self._local = threading.local()

    def _slots(self):
        """This thread's slot buffer (8-byte aligned) and the address of each slot in it."""
        local = self._local
        if not hasattr(local, "slots"):
            local.slots = (ctypes.c_int64 * self._words)()
            base = ctypes.addressof(local.slots)
            local.addrs = [base + offset for offset in self._offsets]
        return local.slots, local.addrs

    def dsl_args(self, raw: tuple) -> tuple:
        return self.host_args(self.compiled.config, self.compiled.variant, *raw)

    def agrees(self, raw: tuple) -> bool:
        """Whether the slots hold, for these raw values, the very bytes the DSL's conversion passes."""
        generate = getattr(self.compiled.fn, "generate_execution_args", None)
        if generate is None or not hasattr(self.compiled.fn, "run_compiled_program"):
            return False
        # exe_args point into memory owned by the DSL arguments and the adapted ones: keep both alive
        # while comparing, or a slot may be allocated where a freed value was and compare with itself.
        dsl = self.dsl_args(raw)
        exe_args, adapted = generate(*dsl)
        if len(exe_args) != len(self.kinds):
            return False
        slots, addrs = self._slots()
        try:
            self._pack(slots, 0, *raw)
        except struct.error:  # a value that does not fit its slot's width
            return False
        for addr, width, theirs in zip(addrs, self._widths, exe_args):
            theirs = theirs.value if isinstance(theirs, ctypes.c_void_p) else theirs
            if not isinstance(theirs, int) or ctypes.string_at(addr, width) != ctypes.string_at(theirs, width):
                return False
        del dsl, adapted
        return True

    def _invoker(self, addrs: list[int]) -> Callable[[], object]:
        """A no-argument call of the compiled program on this thread's slots."""
        fn = self.compiled.fn
        executor = getattr(fn, "_default_executor", None)  # made by the first, generic call
        try:
            entry, pack = executor.capi_func, executor._get_invoke_packed_args_func
            result = executor.cuda_result if executor._has_cuda_result else None
        except AttributeError:
            return functools.partial(fn.run_compiled_program, addrs)
        packed = pack(addrs)
        packed = (ctypes.c_void_p * len(packed))(*packed)  # a copy: the executor refills its own per call

        def invoke() -> None:
            entry(packed)
            if result is not None and result.value:
                raise RuntimeError(f"{self.compiled.config}: launch failed with CUDA error {result.value}")

        return invoke

    def __call__(self, *raw) -> None:
        local = self._local
        try:
            slots, invoke = local.slots, local.invoke
        except AttributeError:
            return self._first_call_in_thread(raw)
        self._pack(slots, 0, *raw)
        invoke()

    def _first_call_in_thread(self, raw: tuple) -> None:
        if not self.fast:
            self.compiled(*self.dsl_args(raw))
            self.fast = self.agrees(raw)
            return
        _, addrs = self._slots()
        self._local.invoke = self._invoker(addrs)
        self(*raw)


@dataclass(frozen=True)
class CompiledKernel:
    """A compiled host function and what it was built for (launch checks read config and variant)."""

    config: Any
    variant: str  # dtype, scale recipe, ...: what else the build was specialised on
    target: str | None  # None: the current GPU
    fn: Callable = field(repr=False, compare=False)
    packed: PackedCall | None = field(default=None, repr=False, compare=False)

    def __call__(self, *args):
        return self.fn(*args)

    def launch(self, *raw) -> None:
        """Call with raw values (addresses, ints, a stream handle) in the host function's order."""
        if self.packed is None:
            raise TypeError(f"{self.config} has no packed call (no host_args, or an argument that is not a "
                            "pointer, Int32, Int64 or stream): call it with DSL arguments")
        self.packed(*raw)


def compile_kernel(build: Callable, aot_args: Callable, config, variant: str, target: str | None = None, *,
                   host_args: Callable | None = None, cache=None) -> CompiledKernel:
    """Compiled `build(config, variant)`, valid for every problem size; cached per process and, through
    a persistent CompileCache (`cache`, else the one the process is scoped to: see
    gpuhil.kernels.compile_cache), across processes.

    target=None compiles for the current GPU (JIT); otherwise ahead of time for that target through
    gpuhil.kernels.aot (launchable only on a GPU of that target). With `host_args` the result also has the
    packed `launch(*raw)`."""
    from .compile_cache import scoped

    return _compile_kernel(build, aot_args, config, variant, target, host_args, cache if cache is not None else scoped())


@functools.cache
def _compile_kernel(build: Callable, aot_args: Callable, config, variant: str, target: str | None,
                    host_args: Callable | None, cache) -> CompiledKernel:
    with compile_clock.compiling():  # a cache hit counts as its lookup: what the run report's compile column shows
        compiled = _compiled_program(build, aot_args, config, variant, target, cache)
    kernel = CompiledKernel(config, variant, target, compiled)
    kinds = arg_kinds(build(config, variant)) if host_args is not None else None  # the host function's annotations
    if kinds is not None:
        object.__setattr__(kernel, "packed", PackedCall(kernel, kinds, host_args))
    return kernel


def _compiled_program(build: Callable, aot_args: Callable, config, variant: str, target: str | None, cache):
    if target is None:
        import cutlass.cute as cute

        compile = lambda: cute.compile(build(config, variant), *aot_args(config, variant))  # noqa: E731
        if cache is None:
            compiled = compile()
        else:
            from .compile_cache import jit

            compiled = jit(cache, build, config, variant, compile)
    else:
        from .aot import compile_kernel_for_target

        compiled = compile_kernel_for_target(build, aot_args, config, variant, target=target, cache=cache).compiled
    return compiled


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


def raw_stream(device_index: int, stream=None) -> int:
    """`stream` (a CUstream or a raw handle) as a raw handle, by default torch's current stream on
    that device (the index the launch's operand checks already read), for a packed launch: read
    without building Stream or device objects (each costs about a microsecond of host time per call)."""
    if stream is None:
        return _current_raw_stream()(device_index)
    return stream if isinstance(stream, int) else int(stream)


@functools.cache
def _current_raw_stream() -> Callable[[int], int]:
    import torch

    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    return raw or (lambda index: torch.cuda.current_stream(index).cuda_stream)


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
