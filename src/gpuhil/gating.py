"""Requirements of a kernel config, and the predicates that decide whether it may run.

- `check(requirements, capabilities)`: the pure hardware/software check, what a config needs against
  what a device can do. Kernel dispatch (selection, and `ensure` before any launch) and `gpuhil
  gates` call it, so a catalog SKU, a `--target-sku` session and the real device decide alike.
- `availability(requirements, attached, capabilities)`: is a device attached here, is the DSL
  importable. Only the test gate adds this: a config can be right for a GPU that is not here.
- `gate(...)` = both, what the pytest plugin skips on. Reasons name the feature and the probed value.
- `Plan`: what a provider runs for a problem on a device (config, its Requirements, or why not). Test
  gates, `gpuhil gates` and dispatch (`Plan.ensure` before compiling) read the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .device.capabilities import Capabilities
from .thirdparty import LIBRARIES
from .thirdparty.library import resolve
from .versions import version_at_least, version_tuple


@dataclass(frozen=True)
class Requirements:
    needs_gpu: bool = True
    needs_dsl: bool = False
    arch_families: frozenset[int] | None = None  # e.g. {9}; None: any
    targets: frozenset[str] | None = None  # the device must run one of these ISA targets
    min_cc: str | None = None
    ccs: frozenset[str] | None = None  # one of these compute capabilities (a library's own support metadata)
    cluster_size: int = 1
    smem_bytes: int = 0
    mma_kind: str | None = None
    min_dsl_cuda: str | None = None  # CuTe DSL native payload (cutlass.CUDA_VERSION)
    torch_ops: frozenset[str] = frozenset()  # torch build facts (device.torch_facts)
    min_cudnn: str | None = None  # the cuDNN backend torch loads (torch.backends.cudnn.version())
    libraries: frozenset[str] = frozenset()  # kernel libraries (distributions) that must be installed
    tools: frozenset[str] = frozenset()  # JIT tools that must be found ("nvcc")
    device_memory_bytes: int = 0  # device memory a case allocates at its peak (operands + workspace)

    def describe(self) -> str:
        parts = ["GPU"] if self.needs_gpu else []
        if self.arch_families:
            parts.append("family " + "/".join(map(str, sorted(self.arch_families))))
        if self.targets:
            parts.append("target " + "|".join(sorted(self.targets)))
        if self.min_cc:
            parts.append(f"cc>={self.min_cc}")
        if self.ccs is not None:
            parts.append("cc " + "|".join(sorted(self.ccs)))
        if self.cluster_size > 1:
            parts.append(f"cluster {self.cluster_size}")
        if self.smem_bytes:
            parts.append(f"smem {self.smem_bytes} B")
        if self.mma_kind:
            parts.append(f"mma {self.mma_kind}")
        if self.min_dsl_cuda:
            parts.append(f"DSL payload CUDA>={self.min_dsl_cuda}")
        if self.torch_ops:
            parts.append("torch " + ", ".join(sorted(self.torch_ops)))
        if self.min_cudnn:
            parts.append(f"cuDNN>={self.min_cudnn}")
        if self.device_memory_bytes:
            parts.append(f"device memory {gib(self.device_memory_bytes)}")
        parts += sorted(self.libraries) + [f"JIT {t}" for t in sorted(self.tools)]
        return ", ".join(parts) or "none"


@dataclass(frozen=True)
class Reason:
    feature: str
    needed: str
    probed: str

    def __str__(self) -> str:
        return f"{self.feature}: needs {self.needed}, probed {self.probed}"


@dataclass(frozen=True)
class Verdict:
    reasons: tuple[Reason, ...] = field(default_factory=tuple)
    source: str = ""

    @property
    def ok(self) -> bool:
        return not self.reasons

    def __bool__(self) -> bool:
        return self.ok

    def __add__(self, other: "Verdict") -> "Verdict":
        return Verdict(self.reasons + other.reasons, self.source or other.source)

    def explain(self) -> str:
        if self.ok:
            return "supported"
        where = f" [{self.source}]" if self.source else ""
        return "; ".join(map(str, self.reasons)) + where


@dataclass(frozen=True)
class ConfigRow:
    """One kernel config as a spec offers it to a device: plain data for the gate report."""

    kernel: str
    config: str
    requirements: Requirements
    details: dict[str, Any] = field(default_factory=dict)


class UnsupportedConfig(RuntimeError):
    """A kernel config this device cannot run, refused before launch. Names attribute and probed value."""

    def __init__(self, what: str, verdict: Verdict) -> None:
        self.verdict = verdict
        super().__init__(f"{what} is not supported here: {verdict.explain()}")


def check(req: Requirements, caps: Capabilities) -> Verdict:
    r: list[Reason] = []
    if req.min_dsl_cuda and (caps.dsl_cuda is None or not version_at_least(caps.dsl_cuda, req.min_dsl_cuda)):
        r.append(Reason("DSL payload CUDA (cutlass.CUDA_VERSION)", f">= {req.min_dsl_cuda}", caps.dsl_cuda or "absent"))
    if caps.gpu_present:
        if req.arch_families is not None and caps.arch_family not in req.arch_families:
            fams = "/".join(map(str, sorted(req.arch_families)))
            r.append(Reason("arch family (cc major)", f"one of {fams}", str(caps.arch_family)))
        if req.targets is not None and not (req.targets & caps.targets):
            r.append(Reason("ISA target", " or ".join(sorted(req.targets)),
                            f"cc {caps.cc} runs {', '.join(sorted(caps.targets)) or 'nothing'}"))
        if req.min_cc and (caps.cc is None or not version_at_least(caps.cc, req.min_cc)):
            r.append(Reason("compute capability", f">= {req.min_cc}", str(caps.cc)))
        if req.ccs is not None and caps.cc not in req.ccs:
            r.append(Reason("compute capability (the library's support metadata)",
                            "one of " + ", ".join(sorted(req.ccs, key=version_tuple)), str(caps.cc)))
        if req.mma_kind and req.mma_kind not in caps.mma_kinds:
            r.append(Reason("MMA kind", req.mma_kind, f"cc {caps.cc} has {', '.join(sorted(caps.mma_kinds)) or 'none'}"))
        if req.cluster_size > 1 and not caps.cluster_launch:
            r.append(Reason("cluster launch (CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH)", f"1 for cluster size {req.cluster_size}", "0"))
        elif req.cluster_size > caps.max_cluster_size:
            r.append(Reason("max cluster size (cuOccupancyMaxPotentialClusterSize)", str(req.cluster_size),
                            str(caps.max_cluster_size)))
        if req.smem_bytes and req.smem_bytes > (caps.smem_optin_bytes or 0):
            r.append(Reason("opt-in smem per block (MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)", f"{req.smem_bytes} B",
                            f"{caps.smem_optin_bytes} B"))
        memory = _device_memory(req.device_memory_bytes, caps)
        if memory:
            r.append(memory)
    if req.min_cudnn and (caps.cudnn is None or not version_at_least(caps.cudnn, req.min_cudnn)):
        r.append(Reason("cuDNN backend (torch.backends.cudnn.version())", f">= {req.min_cudnn}", caps.cudnn or "absent"))
    missing_ops = sorted(req.torch_ops - caps.torch_ops)
    if missing_ops:
        r.append(Reason("torch build", ", ".join(missing_ops), f"torch {caps.torch} lacks it on cc {caps.cc}"))
    return Verdict(tuple(r), caps.source)


def gib(n: int) -> str:
    return f"{n} B ({n / 2**30:.2f} GiB)"


def _device_memory(need: int, caps: Capabilities) -> Reason | None:
    """A case that would not fit: `need` bytes against the free memory read in this process
    (cudaMemGetInfo), capped by the device's total (an emulated SKU's may be smaller); a catalog row,
    which has no free figure, is judged on its total."""
    free, total = caps.mem_free_bytes, caps.mem_bytes
    known = [m for m in (free, total) if m is not None]
    if not need or not known or need <= min(known):
        return None
    if free is None:
        return Reason("device memory (total)", gib(need), f"{gib(total)} in all")
    if total is None or free <= total:
        return Reason("device memory (free, cudaMemGetInfo)", gib(need),
                      f"{gib(free)} free" + (f" of {gib(total)}" if total is not None else ""))
    return Reason("device memory (free, cudaMemGetInfo)", gib(need), f"{gib(free)} free, capped at this SKU's {gib(total)}")


def availability(req: Requirements, attached: bool, caps: Capabilities) -> Verdict:
    """What this process must have beyond the device's capabilities: the device itself, the DSL."""
    r: list[Reason] = []
    if req.needs_gpu and not attached:
        r.append(Reason("GPU", "a CUDA device",
                        "none attached" if not caps.gpu_present else f"{caps.source} (no device here)"))
    if req.needs_dsl and not caps.cutlass_dsl:
        r.append(Reason("CuTe DSL", "nvidia-cutlass-dsl installed", "not importable (pip install 'gpuhil[cute]')"))
    for dist in sorted(req.libraries):
        if caps.library(dist) is None:
            lib = resolve(LIBRARIES, dist)
            how = lib.install if lib else f"pip install {dist}"
            r.append(Reason(f"kernel library {dist}", "installed", f"not installed ({how})"))
    for tool in sorted(req.tools):
        if caps.tool(tool) is None:
            r.append(Reason(f"JIT toolchain {tool}", "on PATH, CUDA_HOME, CUDA_PATH or /usr/local/cuda",
                            "not found there"))
    return Verdict(tuple(r), caps.source)


def gate(req: Requirements, caps: Capabilities, attached: bool) -> Verdict:
    """The test gate: available here and supported by the device."""
    return availability(req, attached, caps) + check(req, caps)


@dataclass(frozen=True)
class Plan:
    """What a provider runs for a problem on a device, decided without raising, without the DSL and
    without a GPU. `config` is None for a provider without configs (a torch peer) and where nothing
    can be planned; `requirements` are what the plan needs of a device (where no stage count fits,
    those of the smallest, so a refusal names its bytes)."""

    what: str  # names the plan in errors: "fp8 grouped GEMM 128x128x64s4"
    config: Any = None
    requirements: tuple[Requirements, ...] = ()
    why_not: str | None = None  # the shape is refused, or no config fits this device (with the bytes)
    warning: str | None = None  # what dispatch warns about (seed 002: the native kernel's fallback)

    @property
    def ok(self) -> bool:
        return self.why_not is None

    def ensure(self, caps: Capabilities) -> Any:
        """Dispatch's side: the config to compile, or a refusal before launch: UnsupportedConfig naming
        the feature and its probed value, ValueError for a shape the kernel does not take."""
        for req in self.requirements:
            ensure(self.what, req, caps)
        if self.why_not:
            raise ValueError(f"{self.what}: {self.why_not}")
        return self.config


def ensure(what: str, req: Requirements, caps: Capabilities) -> None:
    """Dispatch's side of the predicate: raise before launch rather than fault inside the driver."""
    verdict = check(req, caps)
    if not verdict.ok:
        raise UnsupportedConfig(what, verdict)
