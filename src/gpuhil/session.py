"""The one place capabilities are built: probe -> catalog match -> capabilities (emulated or targeted).

`build` is used by `gpuhil run`, the pytest plugin, `gpuhil gates` and the benchmarks, so all of them
say the same thing about the same machine, and it refuses what cannot be one (unknown SKU ids,
emulation without a GPU, contradicting options). `gpuhil run` builds the session once and hands it
to pytest as a file (`to_dict` / `load_file`): the controller and its xdist workers decide on the
same session instead of probing again. Kernels take capabilities as an argument; a user calling a
kernel directly gets `device.current.device_capabilities()`: this device as probed, never emulated, never from an
environment variable.

The options that name a catalog SKU mean one thing in every command and in the plugin:
`--target-sku ID` decides as that SKU (no device needed), `--expect-sku ID` refuses a runner whose
device is not that SKU, `--emulate-sku ID` caps this GPU's limits at that SKU's.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import ids
from .catalog import matrix as matrix_mod
from .catalog.matrix import Matrix, Sku
from .device import torch_facts
from .device.capabilities import Capabilities
from .device.current import probed_capabilities
from .device.emulate import EmulationRefused
from .device.emulate import emulate as emulate_caps
from .device.probe import DeviceFingerprint, probe
from .gating import Requirements, Verdict, gate

SESSION_FILE_SCHEMA = 1


class SessionSetupError(ValueError):
    """Options that contradict each other, name something the catalog does not have, or ask for a
    device this machine is not."""


# What `build` and `load_file` refuse with: one line each, a usage error (exit 2) for every caller.
SETUP_ERRORS = (SessionSetupError, EmulationRefused)


def catalog_sku(matrix: Matrix, value: str | None, flag: str) -> Sku:
    """The catalog row an option (`--target-sku`, `--expect-sku`, `--emulate-sku`) names: the one
    check every command and the plugin apply, refusing in one line that lists the known ids."""
    try:
        ids.option_value(value, flag)
    except ids.InvalidValue as exc:
        raise SessionSetupError(str(exc)) from None
    if value not in matrix.skus:
        raise SessionSetupError(f"{flag}: unknown SKU '{value}' (catalog {matrix.path} has: {', '.join(matrix.skus)})")
    return matrix.skus[value]


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

    @property
    def selection_id(self) -> str | None:
        """The catalog selection a runner in this session runs: that of the SKU it acts as (the
        emulated or target SKU), else the device's own; None when the catalog has none for it."""
        acting = self.caps.emulated_sku or next((s.id for s in (self.target_sku, self.sku) if s), None)
        return acting if acting in self.matrix.selections else None

    def header_lines(self, prefix: str = "gpuhil: ") -> list[str]:
        """What this session is, for pytest's header and the run report."""
        fp = self.fingerprint
        lines = [f"{fp.summary()} [fingerprint {fp.fingerprint_id}]"]
        if fp.gpu_present:
            match = f"{self.sku.id} ({self.sku.name})" if self.sku else "none (unknown device: runs from its probe alone)"
            lines.append(f"catalog SKU: {match}")
        lines.append(f"software: torch {fp.torch} (CUDA {fp.cuda_runtime}), cutlass-dsl {fp.cutlass_dsl} "
                     f"(payload CUDA {fp.dsl_cuda}), ptxas {fp.ptxas}, driver {fp.driver_version}, git {fp.git_sha}")
        libraries = ", ".join(f"{d} {v}" for d, v in sorted(fp.libraries.items())) or "none installed"
        lines.append(f"kernel libraries: {libraries}; JIT nvcc {fp.nvcc or 'absent'}")
        if self.caps.emulated_sku:
            lines.append(f"EMULATING {self.caps.emulated_sku}: {self.caps.describe()}")
            lines += [f"  {n}" for n in self.caps.emulation_notes]
        if self.target_sku:
            lines.append(f"TARGET {self.target_sku.id}: reasoning with its catalog row: {self.caps.describe()}")
        if not self.attached:
            lines.append("no device in this session: only gates, AOT compiles and host checks run")
        for d in self.drift:
            lines.append(f"DRIFT vs catalog: {d}")
        return [prefix + line for line in lines]

    def to_dict(self) -> dict[str, Any]:
        """The session as `load_file` reads it back (JSON types only)."""
        return {
            "schema": SESSION_FILE_SCHEMA, "matrix": str(Path(self.matrix.path).resolve()),
            "fingerprint": self.fingerprint.to_dict(), "sku": self.sku.id if self.sku else None,
            "emulated_sku": self.caps.emulated_sku, "target_sku": self.target_sku.id if self.target_sku else None,
            "attached": self.attached, "capabilities": _jsonable(dataclasses.asdict(self.caps)),
            "drift": list(self.drift),
        }


def build(matrix: Matrix, *, emulate: str | None = None, target: str | None = None, expect: str | None = None,
          require_gpu: str | None = None, fingerprint: DeviceFingerprint | None = None) -> Session:
    """Probe (unless `fingerprint` is given) and decide this session's capabilities, or refuse
    (SETUP_ERRORS): every option is checked before the probe, the device against them after it.
    `require_gpu` names what asked for a GPU (an option, a variable), None when nothing did."""
    if emulate is not None and target is not None:
        raise SessionSetupError("--emulate-sku and --target-sku exclude each other: emulation caps the real "
                                "device's limits, a target reasons about a device that is not here")
    emu_sku = catalog_sku(matrix, emulate, "--emulate-sku") if emulate is not None else None
    tgt_sku = catalog_sku(matrix, target, "--target-sku") if target is not None else None
    if expect is not None:
        catalog_sku(matrix, expect, "--expect-sku")
    fp = fingerprint if fingerprint is not None else probe()
    sku = catalog_row(matrix, fp)
    if (expect is not None or require_gpu) and not fp.gpu_present:
        why = f"--expect-sku {expect}" if expect is not None else require_gpu
        raise SessionSetupError(f"this runner expects a GPU ({why}) but the probe found none: "
                                f"{fp.errors.get('gpu', 'no device')}")
    if expect is not None and (sku is None or sku.id != expect):
        raise SessionSetupError(f"--expect-sku {expect}: the probed device is {fp.name} (PCI {fp.pci_device_id}, "
                                f"cc {fp.cc}), catalog SKU {sku.id if sku else 'none'}")
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


def catalog_row(matrix: Matrix, fp: DeviceFingerprint) -> Sku | None:
    """The catalog row of a probed device, None without a GPU or for an uncatalogued one."""
    return matrix.match(fp.name, fp.pci_device_id, fp.cc) if fp.gpu_present else None


def load_file(path: Path, suites_dir: Path | None = None) -> Session:
    """The session `gpuhil run` wrote (`Session.to_dict`): what its pytest controller and workers
    decide on, without probing again. SessionSetupError, naming the file, when it cannot be read.
    `suites_dir`: the suites/ the catalog's selections are checked against (the run's checkout)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SessionSetupError(f"--session-file {path}: cannot read it ({exc})".splitlines()[0]) from None
    if not isinstance(doc, dict) or doc.get("schema") != SESSION_FILE_SCHEMA:
        raise SessionSetupError(f"--session-file {path}: not a gpuhil session (schema {SESSION_FILE_SCHEMA} expected)")
    try:
        matrix = matrix_mod.load(doc["matrix"], suites_dir=suites_dir)
        fp_doc = {k: v for k, v in doc["fingerprint"].items() if k != "fingerprint_id"}
        fp = DeviceFingerprint(**fp_doc)
        caps = Capabilities(**_capabilities_fields(doc["capabilities"]))
        sku = matrix.skus[doc["sku"]] if doc["sku"] is not None else None
        target = matrix.skus[doc["target_sku"]] if doc["target_sku"] is not None else None
        return Session(matrix, fp, sku, caps, bool(doc["attached"]), target, tuple(doc["drift"]))
    except matrix_mod.MatrixError as exc:
        raise SessionSetupError(f"--session-file {path}: {exc}".splitlines()[0]) from None
    except KeyError as exc:
        raise SessionSetupError(f"--session-file {path}: field {exc} is missing or names no catalog SKU") from None
    except (TypeError, AttributeError, ValueError) as exc:
        raise SessionSetupError(f"--session-file {path}: malformed ({exc})".splitlines()[0]) from None


# Capabilities fields JSON turns into lists: back to the frozen types the dataclass holds.
_SET_FIELDS = ("targets", "mma_kinds", "torch_ops")


def _capabilities_fields(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    for f in _SET_FIELDS:
        out[f] = frozenset(out[f])
    out["probed_resident_clusters"] = tuple(tuple(p) for p in out["probed_resident_clusters"])
    out["emulation_notes"] = tuple(out["emulation_notes"])
    for f in ("libraries", "tools"):
        out[f] = tuple(tuple(p) for p in out.get(f, ()))
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, (frozenset, set)):
        return sorted(value)
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def catalog_capabilities(sku: Sku, software: DeviceFingerprint | None = None) -> Capabilities:
    """A catalog SKU as its own runner would see it, with this machine's software facts (DSL payload,
    torch): what `gpuhil gates --target-sku` and pytest `--target-sku` decide on."""
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
                  "cudnn", "ptxas", "nvcc", "libraries", "git_sha", "cuda_runtime"):
            setattr(fp, f, getattr(software, f))
            if f in software.how_read:
                fp.how_read[f] = software.how_read[f] + " (this machine)"
    return fp
