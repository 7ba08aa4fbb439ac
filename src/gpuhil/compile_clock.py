"""How much of a stretch of work was spent compiling kernels.

The compile entry points run their work inside `compiling()`; whoever wants to know how much of a
stretch was compiling opens `counting()` around it and reads the clock (the pytest plugin does, per
test, for the run report's compile column). A compile nested in another (compile_kernel calling
compile_for_target) counts once. Outside any `counting()`, `compiling()` costs one context-variable
read.

Why a context variable, not an argument: compiles happen deep inside a provider's `prepare`, reached
from a test through code that has no reason to carry a clock; threading one through every kernel's
signature would change their API for bookkeeping. A ContextVar is scoped like a `with` block, is
local to its thread, and holds nothing once the block ends: no state outlives the one who opened it.
It imports nothing of gpuhil, so kernels may use it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class CompileClock:
    seconds: float = 0.0  # spent compiling since `counting()` opened
    _depth: int = 0
    _taken: float = 0.0

    def take(self) -> float:
        """Seconds spent compiling since the previous `take` (or since the clock opened)."""
        new, self._taken = self.seconds - self._taken, self.seconds
        return new


_OPEN: ContextVar[CompileClock | None] = ContextVar("gpuhil_compile_clock", default=None)


@contextmanager
def counting() -> Iterator[CompileClock]:
    """Count the compiles inside this block into the clock it yields."""
    clock = CompileClock()
    token = _OPEN.set(clock)
    try:
        yield clock
    finally:
        _OPEN.reset(token)


@contextmanager
def compiling() -> Iterator[None]:
    """Around a compile (a cache lookup that finds it counts as its lookup)."""
    clock = _OPEN.get()
    if clock is None:
        yield
        return
    clock._depth += 1
    began = time.perf_counter()
    try:
        yield
    finally:
        clock._depth -= 1
        if clock._depth == 0:
            clock.seconds += time.perf_counter() - began
