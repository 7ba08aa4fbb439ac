"""Capabilities: what a device can do, as kernels and gates need it.

Three sources: a probed fingerprint (the real device), a catalog SKU (CPU-side reasoning about a GPU
that is not here), or the real device capped by an emulated SKU. Emulation lowers resource limits only;
the ISA (arch family, targets, MMA kinds) stays the real device's, because that is what really runs.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from .matrix import Matrix, Sku
from .predicates import version_at_least
from .probe import DeviceFingerprint

EMULATE_ENV = "GPUHIL_EMULATE_SKU"


class EmulationRefused(ValueError):
    """The real device cannot go down to the emulated SKU's limits (it would have to go up)."""


def targets_for(cc: str | None) -> frozenset[str]:
    """ISA targets whose code runs on a device of this compute capability (arch-specific 'a',
    family 'f' and the plain target)."""
    if not cc:
        return frozenset()
    major, minor = (int(x) for x in cc.split("."))
    t = {f"sm_{major}{minor}"}
    if major >= 9:
        t.add(f"sm_{major}{minor}a")
    if major >= 10:
        t.add(f"sm_{major}0f")  # family targets run on every minor of the family
        t.add(f"sm_{major}{minor}f")
    return frozenset(t)


def mma_kinds_for(cc: str | None) -> frozenset[str]:
    """Tensor-core instruction families by compute capability (PTX ISA target requirements)."""
    if not cc:
        return frozenset()
    major, minor = (int(x) for x in cc.split("."))
    kinds = set()
    if (major, minor) >= (8, 0):
        kinds.add("mma_sync_bf16")
    if (major, minor) >= (8, 9):
        kinds.add("mma_sync_fp8")  # warp-level e4m3/e5m2 mma.sync
    if major == 9:
        kinds.add("wgmma")  # sm_90a warpgroup MMA
    if major == 10:
        kinds.add("tcgen05")
    if major == 12:
        kinds.add("mma_sync_block_scale_fp4")  # kind::mxf4nvf4 block-scaled mma.sync
    return frozenset(kinds)


@dataclass(frozen=True)
class Capabilities:
    source: str  # "probe", "catalog gb10", "probe capped by h20"
    gpu_present: bool
    runnable: bool  # a real device is attached and these capabilities describe it
    cc: str | None = None
    arch_family: int | None = None
    targets: frozenset[str] = frozenset()
    mma_kinds: frozenset[str] = frozenset()
    sm_count: int | None = None
    smem_optin_bytes: int | None = None
    l2_bytes: int | None = None
    mem_bytes: int | None = None
    cluster_launch: bool = False
    max_cluster_size: int = 1
    dsl_cuda: str | None = None
    cutlass_dsl: str | None = None
    torch: str | None = None
    torch_cuda: bool = False
    emulated_sku: str | None = None
    emulation_notes: tuple[str, ...] = ()

    def facts(self) -> dict[str, object]:
        """The values feature predicates (known issues) are evaluated on."""
        return {
            "gpu_present": self.gpu_present, "cluster_launch": self.cluster_launch,
            "torch_cuda": self.torch_cuda, "arch_family": self.arch_family, "sm_count": self.sm_count,
            "smem_optin_bytes": self.smem_optin_bytes, "max_cluster_size": self.max_cluster_size,
            "cc": self.cc, "dsl_cuda": self.dsl_cuda, "cutlass_dsl": self.cutlass_dsl, "torch": self.torch,
        }

    @classmethod
    def from_fingerprint(cls, fp: DeviceFingerprint) -> "Capabilities":
        src = "catalog" if fp.synthetic else "probe"
        return cls(
            source=src, gpu_present=fp.gpu_present, runnable=fp.gpu_present and not fp.synthetic,
            cc=fp.cc, arch_family=fp.arch_family, targets=targets_for(fp.cc), mma_kinds=mma_kinds_for(fp.cc),
            sm_count=fp.sm_count, smem_optin_bytes=fp.smem_optin_bytes, l2_bytes=fp.l2_bytes,
            mem_bytes=fp.mem_bytes, cluster_launch=bool(fp.cluster_launch),
            max_cluster_size=fp.max_cluster_size or 1, dsl_cuda=fp.dsl_cuda, cutlass_dsl=fp.cutlass_dsl,
            torch=fp.torch, torch_cuda=bool(fp.torch_cuda_build),
        )

    @classmethod
    def from_sku(cls, sku: Sku, software: DeviceFingerprint | None = None) -> "Capabilities":
        """A catalog SKU, with this machine's software (DSL payload, torch) for the software facts."""
        return cls.from_fingerprint(synthetic_fingerprint(sku, software))

    def emulate(self, sku: Sku) -> "Capabilities":
        """Cap resource limits at `sku`'s values; refuse a limit the device would have to raise."""
        if not self.runnable:
            raise EmulationRefused(f"--emulate-sku {sku.id}: no GPU here to emulate on; use --target-sku for CPU-side reasoning")
        refusals = []
        if sku.smem_optin_bytes > (self.smem_optin_bytes or 0):
            refusals.append(f"opt-in smem {sku.smem_optin_bytes} B > this device's {self.smem_optin_bytes} B")
        if sku.cluster_launch and not self.cluster_launch:
            refusals.append("cluster launch, which this device lacks (CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH=0)")
        if sku.max_cluster_size > self.max_cluster_size:
            refusals.append(f"max cluster size {sku.max_cluster_size} > this device's {self.max_cluster_size}")
        if sku.sm_count and sku.sm_count > (self.sm_count or 0):
            refusals.append(f"{sku.sm_count} SMs > this device's {self.sm_count}")
        if refusals:
            raise EmulationRefused(f"cannot emulate {sku.id} on this device: it needs " + "; ".join(refusals))
        notes = [f"ISA stays the real device's (cc {self.cc}, targets {', '.join(sorted(self.targets))})"]
        l2, mem = self.l2_bytes, self.mem_bytes
        for label, theirs, ours in (("L2", sku.l2_bytes, l2), ("memory", sku.mem_bytes, mem)):
            if theirs and ours and theirs > ours:
                notes.append(f"{label}: {sku.id} has {theirs} B, more than this device's {ours} B; kept at {ours} B")
        return dataclasses.replace(
            self, source=f"probe capped by {sku.id}", emulated_sku=sku.id,
            smem_optin_bytes=sku.smem_optin_bytes, cluster_launch=sku.cluster_launch,
            max_cluster_size=sku.max_cluster_size, sm_count=sku.sm_count or self.sm_count,
            l2_bytes=min(x for x in (sku.l2_bytes, l2) if x) if (sku.l2_bytes or l2) else None,
            mem_bytes=min(x for x in (sku.mem_bytes, mem) if x) if (sku.mem_bytes or mem) else None,
            emulation_notes=tuple(notes),
        )

    def as_runner(self) -> "Capabilities":
        """A catalog SKU decided as its own runner would: attached, so hardware decides, not 'no GPU here'."""
        return dataclasses.replace(self, runnable=True) if self.gpu_present else self

    def describe(self) -> str:
        if not self.gpu_present:
            return f"{self.source}: no GPU"
        return (f"{self.source}: cc {self.cc}, {self.sm_count} SMs, opt-in smem {self.smem_optin_bytes} B, "
                f"cluster launch {int(self.cluster_launch)} (max {self.max_cluster_size}), "
                f"DSL payload CUDA {self.dsl_cuda or 'absent'}")


def synthetic_fingerprint(sku: Sku, software: DeviceFingerprint | None = None) -> DeviceFingerprint:
    """The fingerprint a device matching `sku` would give, from the catalog row alone."""
    fp = DeviceFingerprint(
        gpu_present=True, synthetic=True, name=sku.name, cc=sku.cc, arch_family=sku.arch_family,
        pci_device_id=(sku.match.pci_device_ids or [None])[0], sm_count=sku.sm_count,
        smem_optin_bytes=sku.smem_optin_bytes, smem_per_sm_bytes=sku.smem_per_sm_bytes,
        l2_bytes=sku.l2_bytes, mem_bytes=sku.mem_bytes, cluster_launch=sku.cluster_launch,
        max_cluster_size=sku.max_cluster_size, peak_dram_gbs=sku.mem_bw_gbs,
    )
    for f in ("name", "cc", "arch_family", "pci_device_id", "sm_count", "smem_optin_bytes", "smem_per_sm_bytes",
              "l2_bytes", "mem_bytes", "cluster_launch", "max_cluster_size", "peak_dram_gbs"):
        fp.how_read[f] = f"catalog row '{sku.id}' ({sku.sources.get(f, sku.sources.get('mem_bw_gbs', 'catalog'))})"
    if software is not None:
        for f in ("cpu_arch", "python", "torch", "torch_cuda_build", "triton", "cutlass_dsl", "dsl_cuda",
                  "ptxas", "git_sha", "cuda_runtime"):
            setattr(fp, f, getattr(software, f))
            if f in software.how_read:
                fp.how_read[f] = software.how_read[f] + " (this machine)"
    return fp


_current: Capabilities | None = None


def set_current(caps: Capabilities | None) -> None:
    """Make `caps` what kernel dispatch sees in this process (the pytest plugin does this)."""
    global _current
    _current = caps


def current(matrix: Matrix | None = None) -> Capabilities:
    """The capabilities kernel dispatch must obey: the probed device, capped by $GPUHIL_EMULATE_SKU."""
    global _current
    if _current is None:
        import torch

        from .probe import probe

        index = torch.cuda.current_device() if torch.cuda.is_available() else 0
        caps = Capabilities.from_fingerprint(probe(index))
        emulated = os.environ.get(EMULATE_ENV)
        if emulated:
            from .matrix import load

            caps = caps.emulate((matrix or load()).sku(emulated))
        _current = caps
    return _current


def torch_at_least(caps: Capabilities, wanted: str) -> bool:
    return caps.torch is not None and version_at_least(caps.torch, wanted)
