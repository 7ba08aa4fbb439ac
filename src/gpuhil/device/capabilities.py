"""Capabilities: what a device can do, as kernel dispatch and gates need it. Plain data.

Whether such a device is attached to this process is not a capability: the session knows that
(`Session.attached`). So the same catalog row gives the same capabilities, and therefore the same
kernel choices, in `gpuhil gates`, under `--target-sku` and in dispatch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .probe import DeviceFingerprint


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
    cc: str | None = None
    arch_family: int | None = None
    targets: frozenset[str] = frozenset()
    mma_kinds: frozenset[str] = frozenset()
    sm_count: int | None = None
    smem_optin_bytes: int | None = None
    l2_bytes: int | None = None
    mem_bytes: int | None = None
    mem_free_bytes: int | None = None  # free device memory when this process read it (None: not read)
    cluster_launch: bool = False
    max_cluster_size: int = 1
    probed_resident_clusters: tuple[tuple[int, int], ...] = ()  # (cluster size, clusters resident at once)
    dsl_cuda: str | None = None
    cutlass_dsl: str | None = None
    torch: str | None = None
    torch_cuda: bool = False
    torch_ops: frozenset[str] = frozenset()  # torch operators this build runs on this device
    cudnn: str | None = None  # the cuDNN backend torch loads: "9.19.0"
    libraries: tuple[tuple[str, str], ...] = ()  # installed kernel libraries: (distribution, version)
    tools: tuple[tuple[str, str], ...] = ()  # JIT toolchain found: (tool, version), e.g. ("nvcc", "13.0.88")
    emulated_sku: str | None = None
    emulation_notes: tuple[str, ...] = ()

    def facts(self) -> dict[str, object]:
        """The values feature predicates (known issues) are evaluated on."""
        return {
            "gpu_present": self.gpu_present, "cluster_launch": self.cluster_launch,
            "torch_cuda": self.torch_cuda, "arch_family": self.arch_family, "sm_count": self.sm_count,
            "smem_optin_bytes": self.smem_optin_bytes, "max_cluster_size": self.max_cluster_size,
            "cc": self.cc, "dsl_cuda": self.dsl_cuda, "cutlass_dsl": self.cutlass_dsl, "torch": self.torch,
            "cudnn": self.cudnn,
            **{f"library:{dist}": version for dist, version in self.libraries},
        }

    def library(self, dist: str) -> str | None:
        """The installed version of kernel library `dist`, None when it is not installed."""
        return dict(self.libraries).get(dist)

    def tool(self, name: str) -> str | None:
        """The version of JIT tool `name` found here, None when absent."""
        return dict(self.tools).get(name)

    @classmethod
    def from_fingerprint(cls, fp: DeviceFingerprint, *, source: str | None = None,
                         torch_ops: frozenset[str] = frozenset()) -> "Capabilities":
        return cls(
            source=source or ("catalog" if fp.synthetic else "probe"), gpu_present=fp.gpu_present,
            cc=fp.cc, arch_family=fp.arch_family, targets=targets_for(fp.cc), mma_kinds=mma_kinds_for(fp.cc),
            sm_count=fp.sm_count, smem_optin_bytes=fp.smem_optin_bytes, l2_bytes=fp.l2_bytes,
            mem_bytes=fp.mem_bytes, cluster_launch=bool(fp.cluster_launch),
            max_cluster_size=fp.max_cluster_size or 1,
            probed_resident_clusters=tuple(sorted((int(n), c) for n, c in fp.resident_clusters.items())),
            dsl_cuda=fp.dsl_cuda, cutlass_dsl=fp.cutlass_dsl,
            torch=fp.torch, torch_cuda=bool(fp.torch_cuda_build), torch_ops=torch_ops, cudnn=fp.cudnn,
            libraries=tuple(sorted(fp.libraries.items())), tools=(("nvcc", fp.nvcc),) if fp.nvcc else (),
        )

    def resident_clusters(self, size: int) -> int:
        """How many clusters of `size` one-CTA-per-SM blocks run at once: the probed answer, capped by
        sm_count / size (an emulated SKU's SM count); without a probe (a catalog row), that bound."""
        bound = max(1, (self.sm_count or 1) // size)
        return min(dict(self.probed_resident_clusters).get(size, bound), bound)

    def describe(self) -> str:
        if not self.gpu_present:
            return f"{self.source}: no GPU"
        return (f"{self.source}: cc {self.cc}, {self.sm_count} SMs, opt-in smem {self.smem_optin_bytes} B, "
                f"cluster launch {int(self.cluster_launch)} (max {self.max_cluster_size}), "
                f"DSL payload CUDA {self.dsl_cuda or 'absent'}")
