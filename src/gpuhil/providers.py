"""The provider protocol: an implementation of an op that suites sweep and benchmarks time (torch,
gpuhil's own kernels, third parties).

A provider answers, for a problem (a shape description) on a device (Capabilities):
- `requirements(problem, caps, **options)`: what the config its dispatch will choose needs, straight
  from the kernel's spec (the test gate and dispatch use the same Requirements);
- `unsupported(problem)`: its own documented shape limits, or None;
- `prepare(inputs, caps, **options)`: choose, check and compile once; returns a launch
  `launch(inputs, out=None) -> out` whose `config` is what really runs (None for a peer without configs).

Built-in providers are listed by each op (gpuhil.ops.<op>.providers) and collected by
`gpuhil.ops.providers_for`. Third parties register through the entry-point group `gpuhil.providers`:
each entry point names a callable returning one Provider or a list. One that cannot be loaded is
still listed with the error, so its cases skip with that reason instead of vanishing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from .device.capabilities import Capabilities
from .gating import Requirements

ENTRY_POINT_GROUP = "gpuhil.providers"


def _any_shape(problem: Any) -> str | None:
    return None


@dataclass(frozen=True)
class Provider:
    name: str
    op: str  # "argmax", "fp8_grouped_gemm", ...
    backend: str  # what known issues key on: "torch", "cute-dsl", "cutlass-cpp", ...
    requirements: Callable[..., Requirements | Sequence[Requirements]]
    prepare: Callable[..., Any]
    unsupported: Callable[[Any], str | None] = _any_shape
    origin: str = "gpuhil"  # "gpuhil", or the distribution that registered it
    load_error: str | None = None  # why a registered provider could not be loaded

    def requirements_for(self, problem, caps: Capabilities, **options) -> tuple[Requirements, ...]:
        req = self.requirements(problem, caps, **options)
        return (req,) if isinstance(req, Requirements) else tuple(req)

    def why_not(self, problem, session, **options) -> str | None:
        """Why this provider does not run `problem` in `session` (load error, its own shape limits,
        or the gate's verdict), or None when it does."""
        if self.load_error:
            return self.load_error
        reason = self.unsupported(problem)
        if reason:
            return reason
        for req in self.requirements_for(problem, session.caps, **options):
            verdict = session.verdict(req)
            if not verdict.ok:
                return f"requires {req.describe()}: {verdict.explain()}"
        return None

    def __call__(self, inputs, caps: Capabilities, *, out=None, **options):
        return self.prepare(inputs, caps, **options)(inputs, out)

    def __str__(self) -> str:
        return self.name


class PeerLaunch:
    """The launch of a provider without configs (a torch peer): `fn(inputs, out) -> out`."""

    config = None

    def __init__(self, fn: Callable) -> None:
        self.fn = fn

    def __call__(self, inputs, out=None):
        return self.fn(inputs, out)


def third_party(op: str) -> list[Provider]:
    found: list[Provider] = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            made = ep.load()()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not fatal
            found.append(_broken(ep, op, exc))
            continue
        found.extend(made if isinstance(made, (list, tuple)) else [made])
    return [p for p in found if p.op == op]


def _broken(ep, op: str, exc: Exception) -> Provider:
    def refuse(*_args, **_kw):
        raise RuntimeError(why)

    why = f"provider {ep.name} (entry point {ep.value}) could not be loaded: {type(exc).__name__}: {exc}"
    return Provider(ep.name, op, "unknown", lambda problem, caps, **_: Requirements(), refuse,
                    origin=f"entry point {ep.value}", load_error=why)
