"""NVFP4 grouped GEMM (MoE experts), gpuhil's two kernels behind one interface:

    out = grouped_gemm(ops, caps=caps)     # ops: operands.Nvfp4GroupedOperands; out [T, N] bf16

Kernel and tile come from the problem shape and the device (spec.choose): the native block-scaled
kernel on SM12x with a CUDA 13+ DSL payload, the dequant kernel otherwise; the stage count from the
probed (or emulated) opt-in shared memory. When seed 002's gate sends an SM12x part to the dequant
kernel, dispatch warns once with what is installed and what to install. A config the device cannot
run raises UnsupportedConfig with the probed values, before any launch.
"""

from __future__ import annotations

import warnings

from ...device.capabilities import Capabilities
from ...gating import UnsupportedConfig, check, ensure
from ...device.current import device_capabilities
from ..compiled import Launch
from .operands import Nvfp4GroupedOperands
from .spec import MIN_STAGES, NATIVE, GemmConfig, Tile, choose, config_for, requirements, tile_for

__all__ = ["GemmConfig", "NativeFallbackWarning", "Nvfp4GroupedOperands", "Tile", "UnsupportedConfig",
           "grouped_gemm", "plan", "prepare"]


class NativeFallbackWarning(UserWarning):
    """The native kernel was refused for the DSL payload alone (seed 002): the dequant kernel runs."""


def plan(tokens: int, groups: int, n: int, caps: Capabilities, *, kernel: str | None = None,
         tile: Tile | None = None) -> GemmConfig:
    """The config dispatch runs for this shape on this device, checked (no DSL, no GPU needed).
    `kernel`/`tile` force a choice; whatever is chosen passes the same gate as the test suite."""
    tokens_per_group = tokens / max(groups, 1)
    choice = choose(n, tokens_per_group, caps)
    if kernel is None and tile is None:
        if choice.warning():
            warnings.warn(choice.warning(), NativeFallbackWarning, stacklevel=3)
        kernel, tile = choice.config.kernel, choice.config.tile
    else:
        kernel = kernel or choice.config.kernel
        tile = tile or tile_for(kernel, n, tokens_per_group)
    cfg = config_for(kernel, tile, caps)
    if cfg is None:
        two = GemmConfig(kernel, tile, MIN_STAGES)
        raise UnsupportedConfig(f"NVFP4 grouped GEMM {two.name}", check(requirements(two), caps))
    ensure(f"NVFP4 grouped GEMM {cfg.name}", requirements(cfg), caps)
    return cfg


def _empty_out(ops):
    import torch

    return torch.empty(ops.a.shape[0], ops.b.shape[1], dtype=torch.bfloat16, device=ops.a.device)


def prepare(ops, *, caps: Capabilities | None = None, kernel: str | None = None, tile: Tile | None = None) -> Launch:
    caps = caps or device_capabilities(ops.a.device.index or 0)
    cfg = plan(ops.a.shape[0], ops.b.shape[0], ops.b.shape[1], caps, kernel=kernel, tile=tile)
    if cfg.kernel == NATIVE:
        from . import cute_native as module

        compiled = module.compile_native(cfg)
    else:
        from . import cute_dequant as module

        compiled = module.compile_dequant(cfg)
    return Launch(compiled, module.launch, _empty_out)


def grouped_gemm(ops, *, caps: Capabilities | None = None, out=None, kernel: str | None = None,
                 tile: Tile | None = None):
    """out[rows of g] = bf16(alpha[g] * A_g @ B[g]^T), A and B dequantized from NVFP4."""
    return prepare(ops, caps=caps, kernel=kernel, tile=tile)(ops, out)
