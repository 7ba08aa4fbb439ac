"""One test session's view of the hardware: probe -> catalog match -> capabilities (emulated or targeted).

Shared by the pytest plugin and `gpuhil run`, so both say the same thing about the same machine.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .capabilities import Capabilities, synthetic_fingerprint
from .matrix import Matrix, Sku
from .probe import DeviceFingerprint, probe


class SessionSetupError(ValueError):
    """Options that contradict each other or name something the catalog does not have."""


@dataclass(frozen=True)
class SessionContext:
    matrix: Matrix
    fingerprint: DeviceFingerprint  # the real device (or none)
    sku: Sku | None  # catalog row the real device matches, if any
    caps: Capabilities  # what gates and known issues are evaluated on
    target_sku: Sku | None = None
    drift: tuple[str, ...] = ()

    @property
    def selection_sku(self) -> Sku | None:
        """The SKU whose selection this machine's runner would run."""
        return self.target_sku or self.sku

    def header_lines(self) -> list[str]:
        fp = self.fingerprint
        lines = [f"gpuhil: {fp.summary()} [fingerprint {fp.fingerprint_id}]"]
        if fp.gpu_present:
            lines.append(f"gpuhil: catalog match: {self.sku.id + ' (' + self.sku.name + ')' if self.sku else 'none (unknown device: runs from its probe alone)'}")
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


def build(matrix: Matrix, *, emulate: str | None = None, target: str | None = None,
          fingerprint: DeviceFingerprint | None = None) -> SessionContext:
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
    if tgt_sku is not None:
        caps = dataclasses.replace(Capabilities.from_fingerprint(synthetic_fingerprint(tgt_sku, fp)),
                                   source=f"catalog {tgt_sku.id}")
    else:
        caps = Capabilities.from_fingerprint(fp)
        if emu_sku is not None:
            caps = caps.emulate(emu_sku)
    return SessionContext(matrix, fp, sku, caps, tgt_sku, drift(fp, sku) if sku else ())
