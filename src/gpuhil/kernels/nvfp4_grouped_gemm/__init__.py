"""NVFP4 grouped GEMM (MoE experts), gpuhil's kernels behind one interface:

    out = grouped_gemm(ops, caps)     # ops: gpuhil.ops.nvfp4_moe.operands.Nvfp4GroupedOperands; out [T, N] bf16
    plan(GroupedShape.of(tokens, groups, n, k), caps)   # what dispatch would run, and what it needs (no GPU)

Kernel and tile come from the problem shape and the device (spec.kernel_choice): the native
block-scaled kernel on SM12x with a CUDA 13+ DSL payload, the dequant kernel otherwise; the stage
count from the probed (or emulated) opt-in shared memory. When seed 002's gate sends an SM12x part to
the dequant kernel, the plan carries the warning and dispatch warns once with what is installed and
what to install. `kernel="wgmma"` (spec_wgmma.KERNEL) forces the sm_90a TMA-free warpgroup-MMA
kernel (cute_wgmma), offered beside the others and never picked by dispatch until a GPU bench shows
it faster. A config the device cannot run raises UnsupportedConfig with the probed values, before
any launch.
"""

from __future__ import annotations

import warnings

from ...device.capabilities import Capabilities
from ...device.current import device_capabilities
from ...gating import Plan, UnsupportedConfig, check
from ..compiled import Launch
from ..tiles import GroupedShape
from . import spec, spec_wgmma
from .spec import GemmConfig, Tile

__all__ = ["GemmConfig", "GroupedShape", "NativeFallbackWarning", "Tile", "UnsupportedConfig", "grouped_gemm",
           "plan", "prepare"]


class NativeFallbackWarning(UserWarning):
    """The native kernel was refused for the DSL payload alone (seed 002): the dequant kernel runs."""


def plan(problem, caps: Capabilities, *, kernel: str | None = None, tile: Tile | None = None) -> Plan:
    """The config dispatch runs for `problem` (n, k, groups, tokens_per_group) on this device.
    `kernel`/`tile` force a choice; whatever is chosen passes the same gate as the test suite."""
    if kernel == spec_wgmma.KERNEL:
        return _plan_wgmma(problem, caps, tile)
    refused = spec.unsupported(problem)
    if refused:
        return Plan("NVFP4 grouped GEMM", why_not=refused)
    cfg = spec.choose(problem, caps, kernel=kernel, tile=tile)
    req = spec.requirements(cfg)
    warning = None
    if kernel is None and tile is None:
        warning = spec.kernel_choice(problem.n, problem.tokens_per_group, caps).warning()
    fits = spec.stages_for(cfg.kernel, cfg.tile, caps.smem_optin_bytes or 0) is not None
    # Not even two stages fit: the plan names the bytes two would take.
    return Plan(f"NVFP4 grouped GEMM {cfg.name}", cfg if fits else None, (req,), warning=warning,
                why_not=None if fits else f"no stage count of {cfg.name} fits: {check(req, caps).explain()}")


def _plan_wgmma(problem, caps: Capabilities, tile: Tile | None) -> Plan:
    refused = spec_wgmma.unsupported(problem)
    if refused:
        return Plan("NVFP4 grouped GEMM (wgmma)", why_not=refused)
    cfg = spec_wgmma.choose(problem, caps, tile=tile)
    req = spec_wgmma.requirements(cfg)
    fits = spec_wgmma.stages_for(cfg.tile, caps.smem_optin_bytes or 0) is not None
    return Plan(f"NVFP4 grouped GEMM {cfg.name}", cfg if fits else None, (req,),
                why_not=None if fits else f"no stage count of {cfg.name} fits: {check(req, caps).explain()}")


def _empty_out(ops):
    import torch

    return torch.empty(ops.a.shape[0], ops.b.shape[1], dtype=torch.bfloat16, device=ops.a.device)


def prepare(ops, caps: Capabilities | None = None, *, kernel: str | None = None, tile: Tile | None = None) -> Launch:
    caps = caps or device_capabilities(ops.a.device.index or 0)
    groups, n, half_k = ops.b.shape
    planned = plan(GroupedShape.of(ops.a.shape[0], groups, n, 2 * half_k), caps, kernel=kernel, tile=tile)
    cfg = planned.ensure(caps)
    if planned.warning:
        warnings.warn(planned.warning, NativeFallbackWarning, stacklevel=2)
    if kernel == spec_wgmma.KERNEL:
        from . import cute_wgmma

        resident = caps.resident_clusters(1)  # the persistent grid's bound (an emulated SKU's too)
        return Launch(cute_wgmma.compile_gemm(cfg), lambda compiled, ops, out: cute_wgmma.launch(compiled, ops, out, resident),
                      _empty_out)
    from . import cute_gemm

    return Launch(cute_gemm.compile_gemm(cfg), cute_gemm.launch, _empty_out)


def grouped_gemm(ops, caps: Capabilities | None = None, *, out=None, kernel: str | None = None,
                 tile: Tile | None = None):
    """out[rows of g] = bf16(alpha[g] * A_g @ B[g]^T), A and B dequantized from NVFP4."""
    return prepare(ops, caps, kernel=kernel, tile=tile)(ops, out)
