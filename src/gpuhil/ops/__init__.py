"""The ops gpuhil tests, one package each (problems, reference, operands, torch peer, providers) and
one `Op` record per op in `OPS`, the registry suites, `gpuhil gates` and benchmarks read.

Kernels live in gpuhil.kernels (one folder each, with a pure-Python spec); an op's providers wrap
them. A new op is a package here whose `OPS` holds its records, and one entry in the registry below.
"""

from __future__ import annotations

from ..providers import Provider, third_party
from . import argmax, fp8_grouped_gemm, nvfp4_moe
from .op import Op

# The registry: every op package's records, one line each (imported above). One folder may hold
# several ops (nvfp4_moe has three).
OPS: tuple[Op, ...] = (
    *argmax.OPS,
    *fp8_grouped_gemm.OPS,
    *nvfp4_moe.OPS,
)

__all__ = ["OPS", "Op", "op", "provider", "providers_for"]


def op(name: str) -> Op:
    for record in OPS:
        if record.name == name:
            return record
    raise KeyError(f"unknown op '{name}' (have: {', '.join(r.name for r in OPS)})")


def providers_for(name: str) -> list[Provider]:
    """gpuhil's own providers of op `name`, then those registered through the entry point."""
    return [*op(name).providers, *third_party(name)]


def provider(op_name: str, name: str) -> Provider:
    for p in providers_for(op_name):
        if p.name == name:
            return p
    raise KeyError(f"no provider '{name}' for {op_name}")
