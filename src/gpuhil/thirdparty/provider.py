"""The provider base for a third-party library's kernel: its requirements are stated once (with a
source), and what gpuhil's gate needs of the process follows from the library record (installed,
its JIT toolchain found), so a missing library or nvcc skips naming what to install or find.

A library call goes through `Library.call`: the library refusing a case our gate allowed fails as a
gate disagreement naming both sides, a JIT compile failure fails with the compiler's first error
line. A crash or a CUDA fault inside the library is isolated by the runner like any other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ..device.capabilities import Capabilities
from ..gating import Plan, Requirements, availability
from ..providers import PeerLaunch, Provider
from .library import Library


class LibraryNotUsable(RuntimeError):
    """Dispatch of a library provider in a process without the library or its JIT toolchain."""


class LibraryProvider(Provider):
    """Subclasses set `name`, `op`, `backend`, `library`, `needs` (their device requirements, stated
    once) and implement `launcher(caps, **options) -> fn(inputs, out) -> out`, which imports the
    library. `refusals` / `refusal_text` say how the library signals "unsupported"."""

    library: Library
    needs = Requirements()
    refusals: tuple[type[BaseException], ...] = ()
    refusal_text: str | None = None

    @property
    def origin(self) -> str:
        return f"{self.library.dist} {self.library.installed_version() or 'not installed'}"

    @property
    def requirements(self) -> Requirements:
        """`needs`, plus the library itself and its JIT toolchain."""
        return dataclasses.replace(self.needs, libraries=self.needs.libraries | {self.library.dist},
                                   tools=self.needs.tools | set(self.library.jit))

    def refuse(self, problem, caps: Capabilities, **options) -> str | None:
        """A device-dependent refusal beyond `needs` (e.g. a config table keyed on the SM count)."""
        return None

    def plan(self, problem, caps: Capabilities, **options) -> Plan:
        what = f"{self.name} {getattr(problem, 'name', self.op)}"
        return Plan(what, requirements=(self.requirements,),
                    why_not=self.refuse(problem, caps, **options) if problem is not None else None)

    def launcher(self, caps: Capabilities, **options) -> Callable:
        raise NotImplementedError(f"{type(self).__name__}.launcher")

    def prepare(self, inputs, caps: Capabilities, **options) -> PeerLaunch:
        plan = self.plan(None, caps, **options)
        plan.ensure(caps)
        missing = availability(dataclasses.replace(self.requirements, needs_gpu=False), True, caps)
        if not missing.ok:
            raise LibraryNotUsable(f"{plan.what}: {missing.explain()}")
        fn = self.library.call(plan.what, lambda: self.launcher(caps, **options), refusals=self.refusals,
                               refusal_text=self.refusal_text)

        def launch(inputs, out=None):
            return self.library.call(plan.what, lambda: fn(inputs, out), refusals=self.refusals,
                                     refusal_text=self.refusal_text)
        return PeerLaunch(launch)
