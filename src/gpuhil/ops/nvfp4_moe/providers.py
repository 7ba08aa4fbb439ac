"""NVFP4 MoE providers, for three ops of one folder:

- nvfp4_quantize: `torch` (the reference quantizer on the device) and `gpuhil-cute` (the CuTe DSL
  kernel, linear scales; the swizzled layout is covered by the suite directly);
- nvfp4_grouped_gemm: `torch` (dequantize + bf16 GEMM), `gpuhil-cute-dequant` (dequantize to bf16 in
  the mainloop: Hopper and SM12x) and `gpuhil-cute-native` (block-scaled kind::mxf4nvf4 MMA: SM12x,
  DSL payload CUDA >= 13);
- nvfp4_moe_layer: `torch` and `gpuhil-cute` (gpuhil's quantize kernel and the grouped GEMM its
  dispatch picks: native where the gate allows, the dequant kernel otherwise, seed 002's fallback).
Each provider's requirements for a problem are those of the configs its dispatch picks there.
"""

from __future__ import annotations

import functools

from ...gating import Requirements
from ...kernels import nvfp4_grouped_gemm as gemm_kernels
from ...kernels import nvfp4_quant
from ...kernels.nvfp4_grouped_gemm import spec as gemm_spec
from ...kernels.nvfp4_quant import spec as quant_spec
from ...providers import PeerLaunch, Provider
from . import torch_peer
from .layer import LayerKernels, moe_layer
from .problems import GroupedGemmProblem, LayerProblem

# -- quantize --------------------------------------------------------------------------------------


def _quant_requirements(problem, caps, **_) -> Requirements:
    return quant_spec.requirements(quant_spec.DEFAULT)


def _quant_unsupported(problem) -> str | None:
    return None if problem.k % 16 == 0 else f"K={problem.k}: NVFP4 blocks are 16 elements"


QUANTIZE_TORCH = Provider("torch", "nvfp4_quantize", "torch", lambda problem, caps, **_: Requirements(),
                          lambda inputs, caps: PeerLaunch(lambda inputs, out: torch_peer.quantize(*inputs, out)),
                          unsupported=_quant_unsupported)
QUANTIZE_CUTE = Provider("gpuhil-cute", "nvfp4_quantize", "cute-dsl", _quant_requirements,
                         lambda inputs, caps: nvfp4_quant.prepare("linear", caps=caps), unsupported=_quant_unsupported)

# -- grouped GEMM ----------------------------------------------------------------------------------


def _kernel_requirements(kernel: str | None):
    """What the config dispatch picks for the problem needs (a forced tile: that tile's config)."""
    def requirements(problem: GroupedGemmProblem, caps, *, tile=None) -> Requirements:
        if kernel is None:
            cfg = gemm_spec.choose(problem.n, problem.tokens_per_group, caps).config
        else:
            cfg = gemm_spec.or_two_stages(kernel, tile or gemm_spec.tile_for(kernel, problem.n, problem.tokens_per_group), caps)
        return gemm_spec.requirements(cfg)
    return requirements


def _torch_gemm_prepare(ops, caps):
    return PeerLaunch(functools.partial(torch_peer.grouped_gemm, grouped_mm="_grouped_mm" in caps.torch_ops))


def _gemm_unsupported(problem: GroupedGemmProblem) -> str | None:
    return gemm_spec.unsupported_reason(problem.n, problem.k)


def _torch_gemm_unsupported(problem: GroupedGemmProblem) -> str | None:
    return None if problem.k % 16 == 0 else f"K={problem.k}: NVFP4 blocks are 16 elements"


GEMM_TORCH = Provider("torch", "nvfp4_grouped_gemm", "torch", lambda problem, caps, **_: Requirements(),
                      _torch_gemm_prepare, unsupported=_torch_gemm_unsupported)
GEMM_DEQUANT = Provider("gpuhil-cute-dequant", "nvfp4_grouped_gemm", "cute-dsl", _kernel_requirements(gemm_spec.DEQUANT),
                        lambda ops, caps, **o: gemm_kernels.prepare(ops, caps=caps, kernel=gemm_spec.DEQUANT, **o),
                        unsupported=_gemm_unsupported)
GEMM_NATIVE = Provider("gpuhil-cute-native", "nvfp4_grouped_gemm", "cute-dsl", _kernel_requirements(gemm_spec.NATIVE),
                       lambda ops, caps, **o: gemm_kernels.prepare(ops, caps=caps, kernel=gemm_spec.NATIVE, **o),
                       unsupported=_gemm_unsupported)

# -- the whole layer -------------------------------------------------------------------------------


def _layer_gemms(problem: LayerProblem) -> list[GroupedGemmProblem]:
    """The two grouped GEMMs of a batch, at the uniform split (dispatch picks per tokens per expert)."""
    from ..moe import uniform

    layer, routed = problem.layer, problem.tokens * problem.layer.top_k
    return [GroupedGemmProblem(f"{problem.name}-{gemm}", n, k, uniform(routed, layer.experts))
            for gemm, (n, k) in layer.gemms().items()]


def _cute_layer_requirements(problem: LayerProblem, caps, **_) -> list[Requirements]:
    gemms = [_kernel_requirements(None)(g, caps) for g in _layer_gemms(problem)]
    return [_quant_requirements(problem, caps), *gemms]


def _cute_layer_prepare(inputs, caps):
    quantize = nvfp4_quant.prepare("linear", caps=caps)
    kernels = LayerKernels(lambda x, g: quantize((x, g)), lambda ops: gemm_kernels.prepare(ops, caps=caps)(ops))
    return PeerLaunch(lambda inputs, out: moe_layer(inputs, kernels, out))


def _torch_layer_prepare(inputs, caps):
    gemm = functools.partial(torch_peer.grouped_gemm, grouped_mm="_grouped_mm" in caps.torch_ops)
    kernels = LayerKernels(torch_peer.quantize, gemm)
    return PeerLaunch(lambda inputs, out: moe_layer(inputs, kernels, out))


def _layer_unsupported(problem: LayerProblem) -> str | None:
    return next(filter(None, (_gemm_unsupported(g) for g in _layer_gemms(problem))), None)


LAYER_TORCH = Provider("torch", "nvfp4_moe_layer", "torch", lambda problem, caps, **_: Requirements(),
                       _torch_layer_prepare)
LAYER_CUTE = Provider("gpuhil-cute", "nvfp4_moe_layer", "cute-dsl", _cute_layer_requirements, _cute_layer_prepare,
                      unsupported=_layer_unsupported)

PROVIDERS = {
    "nvfp4_quantize": (QUANTIZE_TORCH, QUANTIZE_CUTE),
    "nvfp4_grouped_gemm": (GEMM_TORCH, GEMM_DEQUANT, GEMM_NATIVE),
    "nvfp4_moe_layer": (LAYER_TORCH, LAYER_CUTE),
}
