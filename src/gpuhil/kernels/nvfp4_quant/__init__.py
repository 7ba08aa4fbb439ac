"""NVFP4 quantize: gpuhil's own CuTe DSL kernel, bit-exact with gpuhil.ops.nvfp4_moe.reference.quantize.

    packed, scales = quantize(x_bf16, global_scale)                     # linear scales [rows, K/16]
    packed, scales = quantize(x_bf16, global_scale, layout="swizzled")  # 128x4 tiles, flat

The global scale is a one-element fp32 CUDA tensor read by the kernel, so a captured CUDA graph
replays with whatever value it holds. A device the kernel is not built for raises UnsupportedConfig
naming the probed feature, before any launch.
"""

from __future__ import annotations

from ...device.capabilities import Capabilities
from ...gating import UnsupportedConfig, ensure
from ...device.current import device_capabilities
from ..compiled import Launch
from .spec import DEFAULT, LAYOUTS, QuantizeConfig, check_layout, output_shapes, requirements

__all__ = ["LAYOUTS", "QuantizeConfig", "UnsupportedConfig", "prepare", "quantize"]


def prepare(layout: str = "linear", *, config: QuantizeConfig = DEFAULT, caps: Capabilities | None = None,
            device_index: int = 0) -> Launch:
    """Check the config against this device and compile it; everything that can fail fails here.
    The launch takes inputs (x, global_scale) and out (packed, scales)."""
    check_layout(layout)
    ensure(f"nvfp4 quantize {config.name} ({layout} scales)", requirements(config),
           caps or device_capabilities(device_index))
    from . import cute

    def make_out(inputs):
        import torch

        x = inputs[0]
        packed_shape, scale_shape = output_shapes(x.shape[0], x.shape[-1], layout)
        return (torch.empty(packed_shape, dtype=torch.uint8, device=x.device),
                torch.empty(scale_shape, dtype=torch.float8_e4m3fn, device=x.device))

    return Launch(cute.compile_quantize(config, layout), lambda c, inputs, out: cute.launch(c, *inputs, *out), make_out)


def quantize(x, global_scale, *, layout: str = "linear", config: QuantizeConfig = DEFAULT,
             caps: Capabilities | None = None, out: tuple | None = None):
    """(packed uint8 [rows, K/2], scales float8_e4m3fn) of bf16 x [rows, K]; `out` reuses buffers."""
    if x.dim() != 2:
        raise ValueError(f"x: expected a 2-D [rows, K] tensor, got shape {tuple(x.shape)}")
    return prepare(layout, config=config, caps=caps, device_index=x.device.index or 0)((x, global_scale), out)
