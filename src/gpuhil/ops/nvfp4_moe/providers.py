"""NVFP4 MoE providers, for three ops of one folder:

- nvfp4_quantize: `torch` (the reference quantizer on the device) and `gpuhil-cute` (the CuTe DSL
  kernel); option `layout`: "linear" scales [rows, K/16] (default) or "swizzled" (128x4 tiles, flat);
- nvfp4_grouped_gemm: `torch` (dequantize + bf16 GEMM), `gpuhil-cute-dequant` (dequantize to bf16 in
  the mainloop: Hopper and SM12x), `gpuhil-cute-native` (block-scaled kind::mxf4nvf4 MMA: SM12x,
  DSL payload CUDA >= 13) and `gpuhil-cute-dequant-wgmma` (dequantize to bf16 for warpgroup MMA: sm_90a; not
  yet picked by dispatch, which keeps the dequant kernel on Hopper until a GPU bench shows it faster);
- nvfp4_moe_layer: `torch` and `gpuhil-cute` (gpuhil's quantize kernel and the grouped GEMM its
  dispatch picks: native where the gate allows, the dequant kernel otherwise, seed 002's fallback).
Each provider's requirements for a problem are those of its kernels' plans there, and the device
memory the case holds at its peak (memory.py), so a case that cannot fit is skipped with the bytes.
"""

from __future__ import annotations

import dataclasses
import functools

from ...gating import Plan, Requirements
from ...kernels import nvfp4_grouped_gemm as gemm_kernels
from ...kernels import nvfp4_quant
from ...kernels.nvfp4_grouped_gemm import spec as gemm_spec
from ...kernels.nvfp4_grouped_gemm import spec_wgmma as gemm_wgmma_spec
from ...kernels.nvfp4_quant import QuantizeShape
from ...providers import PeerLaunch, Provider, TorchPeer
from . import memory, torch_peer
from .layer import LayerKernels, moe_layer
from .problems import GroupedGemmProblem, LayerProblem, uniform


def _whole_blocks(problem) -> str | None:
    """What the torch peers take: whole 16-element NVFP4 blocks along K."""
    return None if problem.k % 16 == 0 else f"K={problem.k}: NVFP4 blocks are 16 elements"


def _needing(plan: Plan, device_memory_bytes: int) -> Plan:
    """`plan` that also needs `device_memory_bytes` of free device memory."""
    return dataclasses.replace(plan, requirements=(*plan.requirements, Requirements(device_memory_bytes=device_memory_bytes)))


# -- quantize --------------------------------------------------------------------------------------


class QuantizeTorch(TorchPeer):
    op = "nvfp4_quantize"

    def unsupported(self, problem) -> str | None:
        return _whole_blocks(problem)

    def launcher(self, caps):
        return lambda inputs, out: torch_peer.quantize(*inputs, out)


class QuantizeCute(Provider):
    name, op, backend = "gpuhil-cute", "nvfp4_quantize", "cute-dsl"

    def unsupported(self, problem) -> str | None:
        return nvfp4_quant.spec.unsupported(problem)

    def plan(self, problem, caps, *, layout: str = "linear") -> Plan:
        return nvfp4_quant.plan(problem, caps, layout=layout)

    def prepare(self, inputs, caps, *, layout: str = "linear"):
        return nvfp4_quant.prepare(inputs, caps, layout=layout)


# -- grouped GEMM ----------------------------------------------------------------------------------


def _torch_grouped_gemm(caps):
    return functools.partial(torch_peer.grouped_gemm, grouped_mm="_grouped_mm" in caps.torch_ops)


class GemmTorch(TorchPeer):
    op = "nvfp4_grouped_gemm"

    def unsupported(self, problem) -> str | None:
        return _whole_blocks(problem)

    def plan(self, problem, caps, **options) -> Plan:
        plan = super().plan(problem, caps, **options)
        return plan if problem is None else _needing(plan, memory.grouped_gemm_bytes(problem, peer=True))

    def launcher(self, caps):
        return _torch_grouped_gemm(caps)


class GemmKernel(Provider):
    """One of gpuhil's NVFP4 grouped-GEMM kernels (forced: the suite covers each); option: tile."""

    op, backend = "nvfp4_grouped_gemm", "cute-dsl"

    def __init__(self, name: str, kernel: str) -> None:
        self.name, self.kernel = name, kernel

    def unsupported(self, problem) -> str | None:
        if self.kernel == gemm_wgmma_spec.KERNEL:
            return gemm_wgmma_spec.unsupported(problem)
        return gemm_spec.unsupported(problem)

    def plan(self, problem, caps, *, tile=None) -> Plan:
        return _needing(gemm_kernels.plan(problem, caps, kernel=self.kernel, tile=tile),
                        memory.grouped_gemm_bytes(problem, peer=False))

    def prepare(self, ops, caps, *, tile=None):
        return gemm_kernels.prepare(ops, caps, kernel=self.kernel, tile=tile)


# -- the whole layer -------------------------------------------------------------------------------


def layer_gemms(problem: LayerProblem) -> list[GroupedGemmProblem]:
    """The two grouped GEMMs of a batch, at the uniform split (dispatch picks per tokens per expert)."""
    layer, routed = problem.layer, problem.tokens * problem.layer.top_k
    return [GroupedGemmProblem(f"{problem.name}-{gemm}", n, k, uniform(routed, layer.experts))
            for gemm, (n, k) in layer.gemms().items()]


class LayerTorch(TorchPeer):
    op = "nvfp4_moe_layer"

    def plan(self, problem, caps, **options) -> Plan:
        plan = super().plan(problem, caps, **options)
        return plan if problem is None else _needing(plan, memory.layer_bytes(problem, peer=True))

    def launcher(self, caps):
        kernels = LayerKernels(torch_peer.quantize, _torch_grouped_gemm(caps))
        return lambda inputs, out: moe_layer(inputs, kernels, out)


class LayerCute(Provider):
    """gpuhil's quantize kernel and the grouped GEMM dispatch picks per call (from the routed counts)."""

    name, op, backend = "gpuhil-cute", "nvfp4_moe_layer", "cute-dsl"

    def unsupported(self, problem: LayerProblem) -> str | None:
        return next(filter(None, (gemm_spec.unsupported(g) for g in layer_gemms(problem))), None)

    def plan(self, problem: LayerProblem, caps) -> Plan:
        """Both quantizes' plans (hidden, intermediate) and both GEMMs' at the uniform split."""
        rows, layer = problem.tokens, problem.layer
        quantizes = [nvfp4_quant.plan(QuantizeShape(r, k), caps) for r, k in ((rows, layer.hidden),
                                                                               (rows * layer.top_k, layer.inter))]
        parts = [*quantizes, *(gemm_kernels.plan(g, caps) for g in layer_gemms(problem))]
        return Plan(f"NVFP4 MoE layer {problem.name}", tuple(p.config for p in parts),
                    (*(r for p in parts for r in p.requirements),
                     Requirements(device_memory_bytes=memory.layer_bytes(problem, peer=False))),
                    why_not=next((p.why_not for p in parts if p.why_not), None),
                    warning=next((p.warning for p in parts if p.warning), None))

    def prepare(self, inputs, caps) -> PeerLaunch:
        quantize = nvfp4_quant.prepare((inputs.hidden, inputs.input_global_scale), caps)
        kernels = LayerKernels(lambda x, g: quantize((x, g)), lambda ops: gemm_kernels.prepare(ops, caps)(ops))
        return PeerLaunch(lambda inputs, out: moe_layer(inputs, kernels, out))


QUANTIZE_TORCH, QUANTIZE_CUTE = QuantizeTorch(), QuantizeCute()
GEMM_TORCH = GemmTorch()
GEMM_DEQUANT = GemmKernel("gpuhil-cute-dequant", gemm_spec.DEQUANT)
GEMM_NATIVE = GemmKernel("gpuhil-cute-native", gemm_spec.NATIVE)
GEMM_WGMMA = GemmKernel("gpuhil-cute-dequant-wgmma", gemm_wgmma_spec.KERNEL)
LAYER_TORCH, LAYER_CUTE = LayerTorch(), LayerCute()
