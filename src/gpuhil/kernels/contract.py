"""The vocabulary every kernel spec speaks (`kernels/<kernel>/spec*.py`: pure Python, no DSL import).

A kernel package builds its non-raising `plan(problem, caps, **options) -> gating.Plan` from these
four functions, and `prepare(inputs, caps, **options)` is that plan, `Plan.ensure`, then the compile:
the test gate, `gpuhil gates` and dispatch ask the same spec the same question. A problem is anything
with the attributes a spec reads (`m`, `n`, `dtype`; `n`, `k`, `groups`, `tokens_per_group`; ...):
kernels never import the ops that describe problems.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from ..device.capabilities import Capabilities
from ..gating import ConfigRow, Requirements


@runtime_checkable
class KernelSpec(Protocol):
    def configs(self, caps: Capabilities) -> Iterable[ConfigRow]:
        """Every config the kernel offers, sized for this device (stages from its opt-in smem): the
        rows of `gpuhil gates`."""

    def choose(self, problem: Any, caps: Capabilities, **options: Any) -> Any:
        """The config dispatch launches for `problem` here; options force parts of it. Where no stage
        count fits, the smallest config, so its requirements name the bytes."""

    def requirements(self, config: Any) -> Requirements:
        """What `config` needs of a device: the one predicate gate and dispatch both check."""

    def unsupported(self, problem: Any) -> str | None:
        """Why the kernel does not take this shape at all (on any device), or None."""
