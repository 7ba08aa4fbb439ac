"""NVFP4 MoE: the format's fp32 reference, quantize and grouped-GEMM providers, a whole MoE layer
built from them, problems, the torch peer and the rooflines. Three ops live here: nvfp4_quantize,
nvfp4_grouped_gemm and nvfp4_moe_layer."""

from __future__ import annotations

from ...kernels.nvfp4_grouped_gemm import spec as gemm_spec
from ...kernels.nvfp4_quant import spec as quant_spec
from . import providers
from .problems import gemm_problems

OPS = tuple(providers.PROVIDERS)

__all__ = ["OPS", "gate_rows", "providers"]


def gate_rows(caps):
    """The quantize kernel and both grouped-GEMM kernels' configs for a device. Each GEMM row names
    the MoE problems whose dispatch picks it there (`chosen_for`); where seed 002's gate sends an SM12x
    part to the dequant kernel, every native row carries the fallback's warning (`fallback`)."""
    yield from quant_spec.gate_rows(caps)
    chosen: dict[tuple, list[str]] = {}
    fallback = None
    for p in gemm_problems():
        if p.name.endswith("uniform"):
            choice = gemm_spec.choose(p.n, p.tokens_per_group, caps)
            chosen.setdefault((choice.config.kernel, choice.config.tile.name), []).append(p.name.removesuffix("-uniform"))
            fallback = fallback or choice.warning()
    for row in gemm_spec.gate_rows(caps):
        row.details["chosen_for"] = chosen.get((row.details["variant"], row.details["tile"]), [])
        if fallback and row.details["variant"] == gemm_spec.NATIVE:
            row.details["fallback"] = fallback
        yield row
