"""NVFP4 quantize: gpuhil's own CuTe DSL kernel, bit-exact with gpuhil.ops.nvfp4_moe.reference.quantize.

    packed, scales = quantize(x_bf16, global_scale)                     # linear scales [rows, K/16]
    packed, scales = quantize(x_bf16, global_scale, layout="swizzled")  # 128x4 tiles, flat

The global scale is a one-element fp32 CUDA tensor read by the kernel, so a captured CUDA graph
replays with whatever value it holds. A device the kernel is not built for raises UnsupportedConfig
naming the probed feature, before any launch.
"""

from __future__ import annotations

from ...device.capabilities import Capabilities
from ...device.current import device_capabilities
from ...gating import Plan, UnsupportedConfig
from ..compiled import Launch
from . import spec
from .spec import DEFAULT, LAYOUTS, QuantizeConfig, QuantizeShape, check_layout, output_shapes

__all__ = ["LAYOUTS", "QuantizeConfig", "QuantizeShape", "UnsupportedConfig", "plan", "prepare", "quantize"]


def plan(problem, caps: Capabilities, *, layout: str = "linear", config: QuantizeConfig = DEFAULT) -> Plan:
    """The config that quantizes `problem` (rows, k) on this device, and what it needs."""
    refused = spec.unsupported(problem)
    if refused:
        return Plan("nvfp4 quantize", why_not=refused)
    cfg = spec.choose(problem, caps, config=config)
    return Plan(f"nvfp4 quantize {cfg.name} ({layout} scales)", cfg, (spec.requirements(cfg),))


def prepare(inputs, caps: Capabilities | None = None, *, layout: str = "linear",
            config: QuantizeConfig = DEFAULT) -> Launch:
    """Plan, check and compile for inputs (x [rows, K] bf16, global_scale); everything that can fail
    fails here. The launch takes inputs (x, global_scale) and out (packed, scales)."""
    x = inputs[0]
    if x.dim() != 2:
        raise ValueError(f"x: expected a 2-D [rows, K] tensor, got shape {tuple(x.shape)}")
    check_layout(layout)
    caps = caps or device_capabilities(x.device.index or 0)
    cfg = plan(QuantizeShape(*x.shape), caps, layout=layout, config=config).ensure(caps)
    from . import cute

    def make_out(inputs):
        import torch

        x = inputs[0]
        packed_shape, scale_shape = output_shapes(x.shape[0], x.shape[-1], layout)
        return (torch.empty(packed_shape, dtype=torch.uint8, device=x.device),
                torch.empty(scale_shape, dtype=torch.float8_e4m3fn, device=x.device))

    return Launch(cute.compile_quantize(cfg, layout), lambda c, inputs, out: cute.launch(c, *inputs, *out), make_out)


def quantize(x, global_scale, *, layout: str = "linear", config: QuantizeConfig = DEFAULT,
             caps: Capabilities | None = None, out: tuple | None = None):
    """(packed uint8 [rows, K/2], scales float8_e4m3fn) of bf16 x [rows, K]; `out` reuses buffers."""
    return prepare((x, global_scale), caps, layout=layout, config=config)((x, global_scale), out)
