"""FP8 grouped GEMM (MoE experts), gpuhil's own kernels behind one interface:

    out = grouped_gemm(q, caps)                   # gpuhil-cute-warp: warp-level mma.sync, sm_90a and SM12x
    out = grouped_gemm(q, caps, kernel=WGMMA)     # gpuhil-cute-wgmma: TMA + warpgroup MMA, sm_90a only
    plan(GroupedShape.of(tokens, groups, n, k), caps, kernel=WGMMA)   # what dispatch would run (no GPU)

q holds the FP8 operands (a, b, scale_a, scale_b, offs, recipe). `plan` is dispatch's choice for a
problem on a device and what it needs (pure: `gpuhil gates`, the providers' gates and the tests read
the same plan); `prepare` plans, checks (`Plan.ensure`) and compiles once and returns a Launch. A
config the device cannot run raises UnsupportedConfig with the probed values, before any launch.
"""

from __future__ import annotations

from ...device.capabilities import Capabilities
from ...device.current import device_capabilities
from ...gating import Plan, UnsupportedConfig, check
from ..compiled import Launch
from ..tiles import GroupedShape, Tile
from . import spec_warp, spec_wgmma
from .spec_warp import WarpGemmConfig
from .spec_wgmma import WgmmaConfig

__all__ = ["WARP", "WGMMA", "GroupedShape", "Tile", "UnsupportedConfig", "WarpGemmConfig", "WgmmaConfig",
           "grouped_gemm", "plan", "prepare"]

WARP, WGMMA = "warp", "wgmma"
SPECS = {WARP: spec_warp, WGMMA: spec_wgmma}
_LABELS = {WARP: "fp8 grouped GEMM", WGMMA: "fp8 grouped GEMM (wgmma)"}


def plan(problem, caps: Capabilities, *, kernel: str = WARP, **options) -> Plan:
    """The `kernel` config dispatch runs for `problem` (n, k, groups, tokens_per_group) on this
    device; options force parts of it (warp: tile; wgmma: tile, cluster_m, cluster_n, pingpong)."""
    spec, label = SPECS[kernel], _LABELS[kernel]
    refused = spec.unsupported(problem)
    if refused:
        return Plan(label, why_not=refused)
    cfg = spec.choose(problem, caps, **options)
    req = spec.requirements(cfg)
    fits = spec.stages_for(cfg.tile, caps.smem_optin_bytes or 0) is not None
    # Not even two stages fit: the plan names the bytes two would take.
    return Plan(f"{label} {cfg.name}", cfg if fits else None, (req,),
                why_not=None if fits else f"no stage count of {cfg.tile.name} fits: {check(req, caps).explain()}")


def _empty_out(q):
    import torch

    return torch.empty(q.a.shape[0], q.b.shape[1], dtype=torch.bfloat16, device=q.a.device)


def prepare(q, caps: Capabilities | None = None, *, kernel: str = WARP, **options) -> Launch:
    caps = caps or device_capabilities(q.a.device.index or 0)
    groups, n, k = q.b.shape
    cfg = plan(GroupedShape.of(q.a.shape[0], groups, n, k), caps, kernel=kernel, **options).ensure(caps)
    if kernel == WARP:
        from . import cute_warp

        return Launch(cute_warp.compile_gemm(cfg, q.recipe), cute_warp.launch, _empty_out)
    from . import cute_wgmma

    resident = caps.resident_clusters(cfg.cluster_size)  # the persistent grid's bound (an emulated SKU's too)
    return Launch(cute_wgmma.compile_gemm(cfg, q.recipe),
                  lambda compiled, q, out: cute_wgmma.launch(compiled, q, out, resident), _empty_out)


def grouped_gemm(q, caps: Capabilities | None = None, *, out=None, kernel: str = WARP, **options):
    return prepare(q, caps, kernel=kernel, **options)(q, out)
