"""The decision table: every registered kernel config, checked against a device's capabilities.

Kernel packages expose `gate_rows(caps)` in a pure-Python spec (no DSL import), so `gpuhil gates`
explains on a CPU machine what each SKU would run, with the same `check` dispatch uses.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from .capabilities import Capabilities
from .requirements import Requirements, check

# Spec modules, each with gate_rows(caps) -> Iterable[GateRow].
SPEC_MODULES = (
    "gpuhil.kernels.cluster_reduce.spec",
    "gpuhil.kernels.argmax.spec",
    "gpuhil.kernels.fp8_grouped_gemm.spec",
    "gpuhil.kernels.fp8_grouped_gemm.spec_wgmma",
)


@dataclass(frozen=True)
class GateRow:
    kernel: str
    config: str
    requirements: Requirements
    details: dict[str, Any] = field(default_factory=dict)


def decision_table(caps: Capabilities, *, as_runner: bool = True) -> list[dict[str, Any]]:
    """Rows for every registered config. `as_runner`: decide as that device's own runner would
    (a catalog SKU is treated as attached), so the table shows hardware decisions, not 'no GPU here'."""
    if as_runner:
        caps = caps.as_runner()
    rows = []
    for name in SPEC_MODULES:
        for row in importlib.import_module(name).gate_rows(caps):
            verdict = check(row.requirements, caps)
            rows.append({
                "kernel": row.kernel, "config": row.config, "supported": verdict.ok,
                "reasons": [str(r) for r in verdict.reasons], "requirements": row.requirements.describe(),
                **row.details,
            })
    return rows
