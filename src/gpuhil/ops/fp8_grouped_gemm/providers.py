"""FP8 grouped GEMM providers: torch._scaled_grouped_mm (the peer), gpuhil-cute-warp (warp-level MMA,
sm_90a and SM12x) and gpuhil-cute-wgmma (TMA + warpgroup MMA, sm_90a). Each one's requirements for a
problem are those of its kernel's plan there."""

from __future__ import annotations

from ...gating import Plan, Requirements
from ...kernels import fp8_grouped_gemm as kernels
from ...providers import Provider, TorchPeer
from .torch_peer import torch_grouped_gemm, unsupported_reason


class Torch(TorchPeer):
    op = "fp8_grouped_gemm"
    needs = Requirements(torch_ops=frozenset({"_scaled_grouped_mm"}))

    def unsupported(self, problem) -> str | None:
        return unsupported_reason(problem)

    def launcher(self, caps):
        return torch_grouped_gemm


class GpuhilKernel(Provider):
    """One of gpuhil's FP8 grouped-GEMM kernels; options force parts of its config (warp: tile;
    wgmma: tile, cluster_m, cluster_n, pingpong)."""

    op, backend = "fp8_grouped_gemm", "cute-dsl"

    def __init__(self, name: str, kernel: str) -> None:
        self.name, self.kernel = name, kernel

    def unsupported(self, problem) -> str | None:
        return kernels.SPECS[self.kernel].unsupported(problem)

    def plan(self, problem, caps, **options) -> Plan:
        return kernels.plan(problem, caps, kernel=self.kernel, **options)

    def prepare(self, q, caps, **options):
        return kernels.prepare(q, caps, kernel=self.kernel, **options)


TORCH = Torch()
WARP = GpuhilKernel("gpuhil-cute-warp", kernels.WARP)
WGMMA = GpuhilKernel("gpuhil-cute-wgmma", kernels.WGMMA)
PROVIDERS = (TORCH, WARP, WGMMA)
