"""The provider protocol: an implementation of an op that suites sweep and benchmarks time (torch,
gpuhil's own kernels, third parties).

A provider is a `Provider` subclass. For a problem (a shape description) on a device (Capabilities):
- `plan(problem, caps, **options) -> gating.Plan`: what its dispatch would run there and what that
  needs, without raising (a provider without configs, such as a torch peer, plans no config). Its
  test gate (`requirements_for`) and `why_not` are read off this plan, so they ask what dispatch asks;
- `unsupported(problem)`: its own documented shape limits, or None;
- `prepare(inputs, caps, **options)`: plan, check (`Plan.ensure`) and compile once; returns a launch
  `launch(inputs, out=None) -> out` whose `config` is what really runs (None without configs).

gpuhil's own providers are listed by each op's record (gpuhil.ops.OPS) and collected by
`gpuhil.ops.providers_for`; the libraries gpuhil wraps (FlashInfer, quack) by gpuhil.thirdparty's
registry. A serving team's own register through the entry-point group `gpuhil.providers`:
each entry point names a callable returning one Provider or a list. One that cannot be loaded is
still listed (`Unloadable`) with the error, so its cases skip with that reason instead of vanishing.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata

from .device.capabilities import Capabilities
from .gating import Plan, Requirements
from .thirdparty import ENTRY_POINT_GROUP, LIBRARIES


class Provider:
    name: str
    op: str  # "argmax", "fp8_grouped_gemm", ...
    backend: str  # what known issues key on: "torch", "cute-dsl", "cutlass-cpp", ...
    origin: str = "gpuhil"  # "gpuhil", or the distribution that registered it
    load_error: str | None = None  # why a registered provider could not be loaded

    def plan(self, problem, caps: Capabilities, **options) -> Plan:
        raise NotImplementedError(f"{type(self).__name__}.plan")

    def prepare(self, inputs, caps: Capabilities, **options):
        raise NotImplementedError(f"{type(self).__name__}.prepare")

    def unsupported(self, problem) -> str | None:
        return None

    def requirements_for(self, problem, caps: Capabilities, **options) -> tuple[Requirements, ...]:
        """What the plan for `problem` on `caps` needs: the test gate's `requires`."""
        return self.plan(problem, caps, **options).requirements

    def why_not(self, problem, session, **options) -> str | None:
        """Why this provider does not run `problem` in `session` (load error, its own shape limits,
        its plan's refusal, or the gate's verdict on the plan's requirements), or None when it does."""
        if self.load_error:
            return self.load_error
        reason = self.unsupported(problem)
        if reason:
            return reason
        plan = self.plan(problem, session.caps, **options)
        for req in plan.requirements:
            verdict = session.verdict(req)
            if not verdict.ok:
                return f"requires {req.describe()}: {verdict.explain()}"
        return plan.why_not

    def __call__(self, inputs, caps: Capabilities, *, out=None, **options):
        return self.prepare(inputs, caps, **options)(inputs, out)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.op}/{self.name} ({self.backend}, {self.origin})>"


class PeerLaunch:
    """The launch of a provider without configs (a torch peer): `fn(inputs, out) -> out`."""

    config = None

    def __init__(self, fn: Callable) -> None:
        self.fn = fn

    def __call__(self, inputs, out=None):
        return self.fn(inputs, out)


class TorchPeer(Provider):
    """A provider without configs: its plan has none and needs `needs` (a GPU, torch operators);
    its launch is `launcher(caps)`, a function (inputs, out) -> out."""

    name, backend = "torch", "torch"
    needs = Requirements()

    def plan(self, problem, caps: Capabilities, **options) -> Plan:
        if options:
            raise ValueError(f"{self.op} torch peer takes no options, got {sorted(options)}")
        return Plan(f"{self.op} torch peer", requirements=(self.needs,))

    def launcher(self, caps: Capabilities) -> Callable:
        raise NotImplementedError(f"{type(self).__name__}.launcher")

    def prepare(self, inputs, caps: Capabilities, **options) -> PeerLaunch:
        self.plan(None, caps, **options).ensure(caps)
        return PeerLaunch(self.launcher(caps))


class Unloadable(Provider):
    """Providers that failed to load (an entry point, a bundled library's adapter): listed, so their
    cases skip with why."""

    backend = "unknown"

    def __init__(self, name: str, where: str, op: str, exc: Exception) -> None:
        self.name, self.op, self.origin = name, op, where
        self.load_error = f"provider {name} ({where}) could not be loaded: {type(exc).__name__}: {exc}"

    def plan(self, problem, caps: Capabilities, **options) -> Plan:
        return Plan(self.name, requirements=(Requirements(),), why_not=self.load_error)

    def prepare(self, inputs, caps: Capabilities, **options):
        raise RuntimeError(self.load_error)


def third_party(op: str) -> list[Provider]:
    """Providers of `op` from the libraries gpuhil wraps (gpuhil.thirdparty), then from entry points."""
    loaders = [(lib.dist, f"gpuhil adapter {lib.providers}", lib.load_providers) for lib in LIBRARIES]
    loaders += [(ep.name, f"entry point {ep.value}", lambda ep=ep: ep.load()())
                for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)]
    found: list[Provider] = []
    for name, where, load in loaders:
        try:
            made = load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not fatal
            found.append(Unloadable(name, where, op, exc))
            continue
        found.extend(made if isinstance(made, (list, tuple)) else [made])
    return [p for p in found if p.op == op]
