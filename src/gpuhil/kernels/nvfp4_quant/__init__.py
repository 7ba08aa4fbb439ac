"""NVFP4 quantize: gpuhil's own CuTe DSL kernel, bit-exact with gpuhil.ops.nvfp4_moe.reference.quantize.

    packed, scales = quantize(x_bf16, global_scale)                     # linear scales [rows, K/16]
    packed, scales = quantize(x_bf16, global_scale, layout="swizzled")  # 128x4 tiles, flat

The global scale is a one-element fp32 CUDA tensor read by the kernel, so a captured CUDA graph
replays with whatever value it holds. A device the kernel is not built for raises UnsupportedConfig
naming the probed feature, before any launch.
"""

from __future__ import annotations

from ...capabilities import Capabilities, current
from ...requirements import UnsupportedConfig, ensure
from .spec import DEFAULT, LAYOUTS, QuantizeConfig, check_layout, output_shapes, requirements

__all__ = ["LAYOUTS", "QuantizeConfig", "UnsupportedConfig", "prepare", "quantize"]


def prepare(layout: str = "linear", *, config: QuantizeConfig = DEFAULT, caps: Capabilities | None = None):
    """Check the config against this device and compile it; everything that can fail fails here."""
    check_layout(layout)
    ensure(f"nvfp4 quantize {config.name} ({layout} scales)", requirements(config), caps or current())
    from . import cute

    return cute.compile_quantize(config, layout)


def quantize(x, global_scale, *, layout: str = "linear", config: QuantizeConfig = DEFAULT, out: tuple | None = None):
    """(packed uint8 [rows, K/2], scales float8_e4m3fn) of bf16 x [rows, K]; `out` reuses buffers."""
    import torch

    if x.dim() != 2:
        raise ValueError(f"x: expected a 2-D [rows, K] tensor, got shape {tuple(x.shape)}")
    compiled = prepare(layout, config=config)
    if out is None:
        packed_shape, scale_shape = output_shapes(x.shape[0], x.shape[-1], layout)
        out = (torch.empty(packed_shape, dtype=torch.uint8, device=x.device),
               torch.empty(scale_shape, dtype=torch.float8_e4m3fn, device=x.device))
    from . import cute

    cute.launch(compiled, x, global_scale, *out)
    return out
