"""Argmax providers: torch.argmax (the peer) and gpuhil-cute (the CuTe DSL cluster kernel)."""

from __future__ import annotations

from ...gating import Requirements
from ...kernels import argmax as kernel
from ...kernels.argmax import spec
from ...providers import PeerLaunch, Provider
from .problems import ArgmaxProblem
from .torch_peer import torch_argmax


def _torch_requirements(problem: ArgmaxProblem, caps, **options) -> Requirements:
    return Requirements()


def _torch_prepare(logits, caps, **options):
    if options:
        raise ValueError(f"torch.argmax takes no options, got {sorted(options)}")
    return PeerLaunch(torch_argmax)


def _cute_requirements(problem: ArgmaxProblem, caps, *, cluster_n: int | None = None,
                       split_n: int | None = None) -> Requirements:
    """What the config dispatch picks for this problem (or the forced split) needs."""
    return spec.requirements(spec.select_config(problem.m, problem.n, problem.dtype, caps, cluster_n=cluster_n,
                                                split_n=split_n))


def _cute_prepare(logits, caps, *, cluster_n: int | None = None, split_n: int | None = None):
    return kernel.prepare(logits, caps=caps, cluster_n=cluster_n, split_n=split_n)


TORCH = Provider("torch", "argmax", "torch", _torch_requirements, _torch_prepare)
GPUHIL_CUTE = Provider("gpuhil-cute", "argmax", "cute-dsl", _cute_requirements, _cute_prepare)
PROVIDERS = (TORCH, GPUHIL_CUTE)
