"""FP8 grouped GEMM providers: torch._scaled_grouped_mm (the peer), gpuhil-cute-warp (warp-level MMA,
sm_90a and SM12x) and gpuhil-cute-wgmma (TMA + warpgroup MMA, sm_90a). Each one's requirements for a
problem are those of the config its dispatch picks there, from the kernel's spec."""

from __future__ import annotations

from ...gating import Requirements
from ...kernels import fp8_grouped_gemm as kernels
from ...kernels.fp8_grouped_gemm import spec_warp, spec_wgmma
from ...providers import PeerLaunch, Provider
from .problems import GroupedGemmProblem
from .torch_peer import torch_grouped_gemm, unsupported_reason


def _torch_requirements(problem: GroupedGemmProblem, caps, **options) -> Requirements:
    return Requirements(torch_ops=frozenset({"_scaled_grouped_mm"}))


def _torch_prepare(q, caps, **options):
    if options:
        raise ValueError(f"torch._scaled_grouped_mm takes no options, got {sorted(options)}")
    return PeerLaunch(torch_grouped_gemm)


def _warp_requirements(problem: GroupedGemmProblem, caps, *, tile=None) -> Requirements:
    return spec_warp.tile_requirements(tile or spec_warp.choose_tile(problem.n, problem.tokens_per_group), caps)


def _wgmma_requirements(problem: GroupedGemmProblem, caps, *, tile=None, cluster_m=None, cluster_n=None,
                        pingpong=None) -> Requirements:
    chosen = spec_wgmma.choose(problem.n, problem.k, problem.tokens_per_group, caps)
    cluster_m, cluster_n = spec_wgmma.cluster_for(chosen, cluster_m, cluster_n)  # as dispatch resolves it
    return spec_wgmma.config_requirements(tile or chosen.tile, cluster_m, caps, cluster_n)  # either schedule


TORCH = Provider("torch", "fp8_grouped_gemm", "torch", _torch_requirements, _torch_prepare,
                 unsupported=unsupported_reason)
WARP = Provider("gpuhil-cute-warp", "fp8_grouped_gemm", "cute-dsl", _warp_requirements,
                lambda q, caps, **options: kernels.prepare(q, caps=caps, **options),
                unsupported=lambda p: spec_warp.unsupported_reason(p.n, p.k))
WGMMA = Provider("gpuhil-cute-wgmma", "fp8_grouped_gemm", "cute-dsl", _wgmma_requirements,
                 lambda q, caps, **options: kernels.prepare_wgmma(q, caps=caps, **options),
                 unsupported=lambda p: spec_wgmma.unsupported_reason(p.n, p.k, p.groups))
PROVIDERS = (TORCH, WARP, WGMMA)
