"""Argmax providers: torch.argmax (the peer) and gpuhil-cute (the CuTe DSL cluster kernel)."""

from __future__ import annotations

from ...gating import Plan
from ...kernels import argmax as kernel
from ...providers import Provider, TorchPeer
from .torch_peer import torch_argmax


class Torch(TorchPeer):
    op = "argmax"

    def launcher(self, caps):
        return torch_argmax


class GpuhilCute(Provider):
    """Options: `cluster_n` forces a split over a cluster, `split_n` one through global memory."""

    name, op, backend = "gpuhil-cute", "argmax", "cute-dsl"

    def plan(self, problem, caps, *, cluster_n: int | None = None, split_n: int | None = None) -> Plan:
        return kernel.plan(problem, caps, cluster_n=cluster_n, split_n=split_n)

    def prepare(self, logits, caps, *, cluster_n: int | None = None, split_n: int | None = None):
        return kernel.prepare(logits, caps, cluster_n=cluster_n, split_n=split_n)


TORCH, GPUHIL_CUTE = Torch(), GpuhilCute()
PROVIDERS = (TORCH, GPUHIL_CUTE)
