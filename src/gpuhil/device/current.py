"""This process's device as probed: what a kernel called without `caps=` decides on.

Probed on every call, never cached in module state: a session (tests, `gpuhil run`, benchmarks)
builds its capabilities once and passes them, and `prepare` takes them explicitly on the hot path.
Never emulated, never read from an environment variable. A probe runs work on the device, which a
CUDA-graph capture forbids: a call made inside a capture must pass `caps=` (or capture a prepared launch).
"""

from __future__ import annotations

import dataclasses

from . import torch_facts
from .capabilities import Capabilities
from .probe import DeviceFingerprint, probe


def probed_capabilities(fp: DeviceFingerprint, *, on_device: bool) -> Capabilities:
    """Capabilities of a probed device; torch operators are tried on it when it is attached."""
    ops = torch_facts.ops_for(fp.arch_family)
    return Capabilities.from_fingerprint(fp, torch_ops=torch_facts.confirmed_on_device(ops) if on_device else ops)


def device_capabilities(index: int = 0) -> Capabilities:
    """CUDA device `index` of this process as probed: the default for a user calling a kernel directly."""
    return probed_capabilities(probe(index), on_device=True)


def with_free_memory(caps: Capabilities) -> Capabilities:
    """`caps` with the free memory of this process's current CUDA device, read now
    (torch.cuda.mem_get_info: what cudaMemGetInfo reports, other processes' use excluded)."""
    import torch

    free, _ = torch.cuda.mem_get_info()
    return dataclasses.replace(caps, mem_free_bytes=int(free))
