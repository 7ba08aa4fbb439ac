"""NVFP4 grouped GEMM (MoE experts), gpuhil's two kernels behind one interface:

    out = grouped_gemm(ops)        # ops: operands.Nvfp4GroupedOperands; out [T, N] bf16

Kernel and tile come from the problem shape and the device (spec.choose): the native block-scaled
kernel on SM12x with a CUDA 13+ DSL payload, the dequant kernel otherwise; the stage count from the
probed (or emulated) opt-in shared memory. When seed 002's gate sends an SM12x part to the dequant
kernel, dispatch warns with what to fix. A config the device cannot run raises UnsupportedConfig
with the probed values, before any launch. This module imports neither torch nor the DSL.
"""

from __future__ import annotations

import warnings

from ...capabilities import current
from ...requirements import UnsupportedConfig, check, ensure
from .operands import Nvfp4GroupedOperands
from .spec import DEQUANT, MIN_STAGES, NATIVE, GemmConfig, Tile, choose, config_for, requirements, tile_for

__all__ = ["GemmConfig", "NativeFallbackWarning", "Nvfp4GroupedOperands", "Tile", "UnsupportedConfig", "compiled_for",
           "grouped_gemm", "prepare"]


class NativeFallbackWarning(UserWarning):
    """The native kernel was refused for the DSL payload alone (seed 002): the dequant kernel runs."""


def prepare(ops, *, kernel: str | None = None, tile: Tile | None = None, caps=None) -> GemmConfig:
    """The config to run `ops` with on this device (no launch). `kernel`/`tile` force a choice;
    whatever is chosen passes the same gate as the test suite, or UnsupportedConfig is raised."""
    caps = caps or current()
    g, n, _ = ops.b.shape
    tokens_per_group = ops.a.shape[0] / max(g, 1)
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


def compiled_for(cfg: GemmConfig):
    """(compiled kernel, its launch function) for `cfg` on the current GPU (cached per config)."""
    if cfg.kernel == NATIVE:
        from . import cute_native as module

        compiled = module.compile_native(module.KernelConfig(cfg.tile.m, cfg.tile.n, cfg.tile.k, cfg.stages))
    elif cfg.kernel == DEQUANT:
        from . import cute_dequant as module

        compiled = module.compile_dequant(module.KernelConfig(cfg.tile.m, cfg.tile.n, cfg.tile.k, cfg.stages))
    else:
        raise ValueError(f"unknown kernel {cfg.kernel!r}")
    return compiled, module.launch


def grouped_gemm(ops, *, out=None, kernel: str | None = None, tile: Tile | None = None, stream=None):
    """out[rows of g] = bf16(alpha[g] * A_g @ B[g]^T), A and B dequantized from NVFP4."""
    cfg = prepare(ops, kernel=kernel, tile=tile)
    compiled, launch = compiled_for(cfg)
    if out is None:
        import torch

        out = torch.empty(ops.a.shape[0], ops.b.shape[1], dtype=torch.bfloat16, device=ops.a.device)
    launch(compiled, ops, out, stream)
    return out
