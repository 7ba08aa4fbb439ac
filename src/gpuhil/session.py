"""The one place capabilities are built: probe -> catalog match -> capabilities (emulated or targeted).

`build` is used by the pytest plugin, `gpuhil run`, `gpuhil gates` and the benchmarks, so all of them
say the same thing about the same machine. Kernels take capabilities as an argument; a user calling a
kernel directly gets `device.current.device_capabilities()`: this device as probed, never emulated, never from an
environment variable.
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalog.matrix import Matrix, Sku
from .device import torch_facts
from .device.capabilities import Capabilities
from .device.current import probed_capabilities
from .device.emulate import EmulationRefused
from .device.emulate import emulate as emulate_caps
from .device.probe import DeviceFingerprint, probe
from .gating import Requirements, Verdict, gate


class SessionSetupError(ValueError):
    """Options that contradict each other or name something the catalog does not have."""


@dataclass(frozen=True)
class Session:
    matrix: Matrix
    fingerprint: DeviceFingerprint  # the real machine (gpu_present False without one)
    sku: Sku | None  # catalog row the real device matches, if any
    caps: Capabilities  # what dispatch, gates and known issues are decided on
    attached: bool  # `caps` describe a device attached to this process (not a catalog target)
    target_sku: Sku | None = None
    drift: tuple[str, ...] = ()

    def verdict(self, req: Requirements) -> Verdict:
        """The test gate for `req` in this session."""
        return gate(req, self.caps, self.attached)

    def header_lines(self) -> list[str]:
        fp = self.fingerprint
        lines = [f"gpuhil: {fp.summary()} [fingerprint {fp.fingerprint_id}]"]
        if fp.gpu_present:
            match = f"{self.sku.id} ({self.sku.name})" if self.sku else "none (unknown device: runs from its probe alone)"
            lines.append(f"gpuhil: catalog match: {match}")
        lines.append(f"gpuhil: software: torch {fp.torch} (CUDA {fp.cuda_runtime}), cutlass-dsl {fp.cutlass_dsl} "
                     f"(payload CUDA {fp.dsl_cuda}), ptxas {fp.ptxas}, driver {fp.driver_version}, git {fp.git_sha}")
        if self.caps.emulated_sku:
            lines.append(f"gpuhil: EMULATING {self.caps.emulated_sku}: {self.caps.describe()}")
            lines += [f"gpuhil:   {n}" for n in self.caps.emulation_notes]
        if self.target_sku:
            lines.append(f"gpuhil: TARGET {self.target_sku.id}: reasoning with its catalog row: {self.caps.describe()}")
        for d in self.drift:
            lines.append(f"gpuhil: DRIFT vs catalog: {d}")
        return lines


def build(matrix: Matrix, *, emulate: str | None = None, target: str | None = None,
          fingerprint: DeviceFingerprint | None = None) -> Session:
    """Probe (unless `fingerprint` is given) and decide this session's capabilities."""
    if emulate and target:
        raise SessionSetupError("--emulate-sku and --target-sku exclude each other: emulation caps the real "
                                "device's limits, a target reasons about a device that is not here")
    try:
        emu_sku = matrix.sku(emulate) if emulate else None
        tgt_sku = matrix.sku(target) if target else None
    except KeyError as exc:
        raise SessionSetupError(exc.args[0]) from None
    fp = fingerprint if fingerprint is not None else probe()
    sku = matrix.match(fp.name, fp.pci_device_id, fp.cc) if fp.gpu_present else None
    attached = fp.gpu_present and not fp.synthetic
    if tgt_sku is not None:
        caps, attached = catalog_capabilities(tgt_sku, fp), False
    else:
        caps = probed_capabilities(fp, on_device=attached)
        if emu_sku is not None:
            if not attached:
                raise EmulationRefused(f"--emulate-sku {emu_sku.id}: no GPU here to emulate on; "
                                       "use --target-sku for CPU-side reasoning")
            caps = emulate_caps(caps, emu_sku)
    return Session(matrix, fp, sku, caps, attached, tgt_sku, drift(fp, sku) if sku else ())


def catalog_capabilities(sku: Sku, software: DeviceFingerprint | None = None) -> Capabilities:
    """A catalog SKU as its own runner would see it, with this machine's software facts (DSL payload,
    torch): what `gpuhil gates --sku` and `--target-sku` decide on."""
    return Capabilities.from_fingerprint(synthetic_fingerprint(sku, software), source=f"catalog {sku.id}",
                                         torch_ops=torch_facts.ops_for(sku.arch_family))


def drift(fp: DeviceFingerprint, sku: Sku) -> tuple[str, ...]:
    """Where the probe disagrees with the catalog row. The probe wins; the catalog should be fixed."""
    out = []
    for f in ("cc", "sm_count", "smem_optin_bytes", "cluster_launch", "max_cluster_size", "l2_bytes"):
        probed, listed = getattr(fp, f), getattr(sku, f)
        if probed is not None and listed is not None and probed != listed:
            out.append(f"{sku.id}.{f}: catalog {listed}, probed {probed}")
    if fp.peak_dram_gbs and abs(fp.peak_dram_gbs - sku.mem_bw_gbs) > 0.05 * sku.mem_bw_gbs:
        out.append(f"{sku.id}.mem_bw_gbs: catalog {sku.mem_bw_gbs}, probed peak {fp.peak_dram_gbs} (>5% apart)")
    return tuple(out)


# Fingerprint field -> the catalog field (and so the `sources:` entry) its value comes from.
_CATALOG_SOURCE = {
    "cc": "cc", "pci_device_id": "match.pci_device_ids", "sm_count": "sm_count",
    "smem_optin_bytes": "smem_optin_bytes", "smem_per_sm_bytes": "smem_per_sm_bytes", "l2_bytes": "l2_bytes",
    "mem_bytes": "mem_bytes", "cluster_launch": "cluster_launch", "max_cluster_size": "max_cluster_size",
    "peak_dram_gbs": "mem_bw_gbs",
}


def synthetic_fingerprint(sku: Sku, software: DeviceFingerprint | None = None) -> DeviceFingerprint:
    """The fingerprint a device matching `sku` would give, from the catalog row alone."""
    fp = DeviceFingerprint(
        gpu_present=True, synthetic=True, name=sku.name, cc=sku.cc, arch_family=sku.arch_family,
        pci_device_id=(sku.match.pci_device_ids or [None])[0], sm_count=sku.sm_count,
        smem_optin_bytes=sku.smem_optin_bytes, smem_per_sm_bytes=sku.smem_per_sm_bytes,
        l2_bytes=sku.l2_bytes, mem_bytes=sku.mem_bytes, cluster_launch=sku.cluster_launch,
        max_cluster_size=sku.max_cluster_size, peak_dram_gbs=sku.mem_bw_gbs,
    )
    row = f"catalog row '{sku.id}'"
    fp.how_read["name"] = f"{row} name"
    fp.how_read["arch_family"] = f"{row}: major of cc {sku.cc}"
    for f, key in _CATALOG_SOURCE.items():
        if getattr(fp, f) is None:
            fp.how_read[f] = f"{row}: no published value (a device reports it in its own probe)"
        else:
            fp.how_read[f] = f"{row} {key}: {sku.sources.get(key, 'no source cited')}"
    if software is not None:
        for f in ("cpu_arch", "python", "torch", "torch_cuda_build", "triton", "cutlass_dsl", "dsl_cuda",
                  "ptxas", "git_sha", "cuda_runtime"):
            setattr(fp, f, getattr(software, f))
            if f in software.how_read:
                fp.how_read[f] = software.how_read[f] + " (this machine)"
    return fp
