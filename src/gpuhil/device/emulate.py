"""Emulate downwards: a real device takes on a lesser SKU's resource limits, keeping its own ISA
(arch family, targets, MMA kinds), because that ISA is what really runs."""

from __future__ import annotations

import dataclasses

from ..catalog.matrix import Sku
from .capabilities import Capabilities


class EmulationRefused(ValueError):
    """The real device cannot go down to the emulated SKU's limits (it would have to go up)."""


def emulate(caps: Capabilities, sku: Sku) -> Capabilities:
    """Cap resource limits at `sku`'s values; refuse a limit the device would have to raise."""
    refusals = []
    if sku.smem_optin_bytes > (caps.smem_optin_bytes or 0):
        refusals.append(f"opt-in smem {sku.smem_optin_bytes} B > this device's {caps.smem_optin_bytes} B")
    if sku.cluster_launch and not caps.cluster_launch:
        refusals.append("cluster launch, which this device lacks (CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH=0)")
    if sku.max_cluster_size > caps.max_cluster_size:
        refusals.append(f"max cluster size {sku.max_cluster_size} > this device's {caps.max_cluster_size}")
    if sku.sm_count and sku.sm_count > (caps.sm_count or 0):
        refusals.append(f"{sku.sm_count} SMs > this device's {caps.sm_count}")
    if refusals:
        raise EmulationRefused(f"cannot emulate {sku.id} on this device: it needs " + "; ".join(refusals))
    notes = [f"ISA stays the real device's (cc {caps.cc}, targets {', '.join(sorted(caps.targets))})"]
    l2, mem = caps.l2_bytes, caps.mem_bytes
    for label, theirs, ours in (("L2", sku.l2_bytes, l2), ("memory", sku.mem_bytes, mem)):
        if theirs and ours and theirs > ours:
            notes.append(f"{label}: {sku.id} has {theirs} B, more than this device's {ours} B; kept at {ours} B")
    return dataclasses.replace(
        caps, source=f"probe capped by {sku.id}", emulated_sku=sku.id,
        smem_optin_bytes=sku.smem_optin_bytes, cluster_launch=sku.cluster_launch,
        max_cluster_size=sku.max_cluster_size, sm_count=sku.sm_count or caps.sm_count,
        l2_bytes=_smaller(sku.l2_bytes, l2), mem_bytes=_smaller(sku.mem_bytes, mem),
        emulation_notes=tuple(notes),
    )


def _smaller(a: int | None, b: int | None) -> int | None:
    known = [x for x in (a, b) if x]
    return min(known) if known else None
