"""The ops gpuhil tests, one package each: problems, reference, torch peer, providers, benchmark.

Kernels live in gpuhil.kernels (one folder each, with a pure-Python spec); an op's providers wrap
them. `providers_for(op)` is the one registry suites, fixtures and benchmarks ask.
"""

from __future__ import annotations

from ..providers import Provider, third_party
from . import argmax, fp8_grouped_gemm, nvfp4_moe

# op -> the package holding it (one folder may hold several ops: nvfp4_moe has three)
OPS = {"argmax": argmax, "fp8_grouped_gemm": fp8_grouped_gemm, **{op: nvfp4_moe for op in nvfp4_moe.OPS}}
PACKAGES = (argmax, fp8_grouped_gemm, nvfp4_moe)


def providers_for(op: str) -> list[Provider]:
    """gpuhil's own providers of `op`, then those registered through the entry point."""
    if op not in OPS:
        raise KeyError(f"unknown op '{op}' (have: {', '.join(OPS)})")
    own = OPS[op].providers.PROVIDERS
    return [*(own[op] if isinstance(own, dict) else own), *third_party(op)]


def provider(op: str, name: str) -> Provider:
    for p in providers_for(op):
        if p.name == name:
            return p
    raise KeyError(f"no provider '{name}' for {op}")
