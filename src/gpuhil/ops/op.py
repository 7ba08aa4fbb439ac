"""The record of one op: everything a runner, the gate table and a benchmark need to know of it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..device.capabilities import Capabilities
from ..gating import ConfigRow
from ..providers import Provider


@dataclass(frozen=True)
class Op:
    name: str  # what providers, known issues and `providers_for` name: "argmax"
    suite: str  # its folder under suites/
    problems: Callable[[], Sequence[Any]]  # the op's problems, each with a name and a tier
    reference: Callable[..., Any]  # the ground truth its providers are judged against
    providers: tuple[Provider, ...]  # gpuhil's own; third parties come through the entry point
    gate_rows: Callable[[Capabilities], Iterable[ConfigRow]] | None = None  # its kernels' configs (`gpuhil gates`)
    roofline: Callable[..., Any] | None = None  # the op's roofline, where it has one
