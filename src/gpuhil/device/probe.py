"""Read what this machine really is: the GPU through the CUDA driver and NVML, the software around it.

Every field records how it was read (`how_read`), and a field that could not be read records why
(`errors`). A machine without a GPU, a driver or cuda-python still yields a fingerprint with
`gpu_present=False` and the software fields: the probe never raises.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

# Fields whose change can move a timing: they make up `fingerprint_id`.
PERF_FIELDS = (
    "name", "pci_device_id", "cc", "sm_count", "sm_clock_max_mhz", "mem_clock_mhz",
    "mem_bus_width_bits", "ecc_enabled", "mig_mode", "driver_version", "cuda_runtime",
    "torch", "cutlass_dsl", "dsl_cuda",
)


@dataclass
class DeviceFingerprint:
    gpu_present: bool
    synthetic: bool = False  # built from a catalog row, not read off a device
    device_index: int | None = None
    # device
    name: str | None = None
    uuid: str | None = None
    pci_bus_id: str | None = None
    pci_device_id: str | None = None  # "0x2330": the NVIDIA device id, as the catalog matches it
    cc: str | None = None
    arch_family: int | None = None
    sm_count: int | None = None
    smem_optin_bytes: int | None = None
    smem_per_sm_bytes: int | None = None
    l2_bytes: int | None = None
    mem_bytes: int | None = None
    mem_bus_width_bits: int | None = None
    mem_clock_mhz: int | None = None
    peak_dram_gbs: float | None = None
    sm_clock_max_mhz: int | None = None
    cluster_launch: bool | None = None
    max_cluster_size: int | None = None
    # Cluster size (as a string: JSON keys) -> clusters of one-CTA-per-SM blocks resident at once, which
    # bounds a persistent grid. Not always sm_count / size: a cluster must fit one GPC.
    resident_clusters: dict[str, int] = field(default_factory=dict)
    ecc_enabled: bool | None = None
    mig_mode: bool | None = None
    # software
    cpu_arch: str | None = None
    python: str | None = None
    driver_version: str | None = None
    cuda_driver_api: str | None = None
    cuda_runtime: str | None = None
    torch: str | None = None
    torch_cuda_build: bool | None = None
    cudnn: str | None = None  # the cuDNN backend torch loads (None: a build without it)
    triton: str | None = None
    cutlass_dsl: str | None = None
    dsl_cuda: str | None = None
    ptxas: str | None = None
    nvcc: str | None = None  # the JIT toolchain third-party libraries compile with at run time
    libraries: dict[str, str] = field(default_factory=dict)  # installed kernel libraries: distribution -> version
    git_sha: str | None = None
    how_read: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def fingerprint_id(self) -> str:
        key = {f: getattr(self, f) for f in PERF_FIELDS}
        if self.libraries:  # a kernel library's version moves its providers' timings
            key["libraries"] = self.libraries
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["fingerprint_id"] = self.fingerprint_id
        return d

    def summary(self) -> str:
        if not self.gpu_present:
            return "no GPU (" + "; ".join(f"{k}: {v}" for k, v in self.errors.items() if k == "gpu") + ")"
        cl = f"cluster launch {int(bool(self.cluster_launch))} (max {self.max_cluster_size})"
        return (f"{self.name} cc {self.cc}, {self.sm_count} SMs, opt-in smem {self.smem_optin_bytes} B, "
                f"{cl}, L2 {self.l2_bytes} B, driver {self.driver_version}")


class DriverReader(Protocol):
    """What the probe asks the CUDA driver. Tests substitute a fake with a catalog SKU's answers."""

    def device_count(self) -> int: ...
    def attribute(self, index: int, name: str) -> int: ...
    def name(self, index: int) -> str: ...
    def uuid(self, index: int) -> str: ...
    def total_mem(self, index: int) -> int: ...
    def driver_api_version(self) -> int: ...
    def max_cluster_size(self, index: int) -> int: ...
    def resident_clusters(self, index: int, size: int, smem_bytes: int) -> int: ...


# The cluster sizes gpuhil's persistent kernels launch (the FP8 grouped GEMM's pairs and quads).
PERSISTENT_CLUSTER_SIZES = (2, 4)


class NvmlReader(Protocol):
    def pci_device_id(self, uuid: str) -> int: ...
    def max_clock_mhz(self, uuid: str, which: str) -> int: ...
    def ecc_enabled(self, uuid: str) -> bool: ...
    def mig_enabled(self, uuid: str) -> bool: ...
    def driver_version(self) -> str: ...


# A kernel with no body: cuOccupancyMaxPotentialClusterSize needs a real function to answer for.
_PROBE_PTX = b"""
.version 8.0
.target sm_90
.address_size 64
.visible .entry gpuhil_cluster_probe() { ret; }
\0"""


class CudaDriver:
    """cuda.bindings.driver, with every error turned into an exception naming the call."""

    def __init__(self) -> None:
        from cuda.bindings import driver as cu  # ImportError is handled by the probe

        self.cu = cu
        self._call("cuInit", 0)

    def _call(self, fn: str, *args):
        out = getattr(self.cu, fn)(*args)
        err, rest = out[0], out[1:]
        if err != self.cu.CUresult.CUDA_SUCCESS:
            raise RuntimeError(f"{fn} failed: {err.name if hasattr(err, 'name') else err}")
        return rest[0] if len(rest) == 1 else rest

    def _dev(self, index: int):
        return self._call("cuDeviceGet", index)

    def device_count(self) -> int:
        return int(self._call("cuDeviceGetCount"))

    def attribute(self, index: int, name: str) -> int:
        attr = getattr(self.cu.CUdevice_attribute, name)
        return int(self._call("cuDeviceGetAttribute", attr, self._dev(index)))

    def name(self, index: int) -> str:
        raw = self._call("cuDeviceGetName", 256, self._dev(index))
        return raw.split(b"\0", 1)[0].decode()

    def uuid(self, index: int) -> str:
        b = bytes(self._call("cuDeviceGetUuid", self._dev(index)).bytes)
        h = b.hex()
        return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

    def total_mem(self, index: int) -> int:
        return int(self._call("cuDeviceTotalMem", self._dev(index)))

    def driver_api_version(self) -> int:
        return int(self._call("cuDriverGetVersion"))

    def _with_probe_kernel(self, index: int, ask):
        """ask(fn) on the empty probe kernel, loaded in the device's primary context."""
        cu = self.cu
        dev = self._dev(index)
        ctx = self._call("cuDevicePrimaryCtxRetain", dev)
        try:
            self._call("cuCtxPushCurrent", ctx)
            try:
                module = self._call("cuModuleLoadData", _PROBE_PTX)
                try:
                    fn = self._call("cuModuleGetFunction", module, b"gpuhil_cluster_probe")
                    # Ask for what a kernel may use once it opts in, as CuTe DSL kernels do.
                    self._call("cuFuncSetAttribute", fn,
                               cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1)
                    return ask(fn)
                finally:
                    self._call("cuModuleUnload", module)
            finally:
                self._call("cuCtxPopCurrent")
        finally:
            self._call("cuDevicePrimaryCtxRelease", dev)

    def _launch_config(self, grid: int, smem_bytes: int, cluster: int | None = None):
        cu = self.cu
        cfg = cu.CUlaunchConfig()
        cfg.gridDimX, cfg.gridDimY, cfg.gridDimZ = grid, 1, 1
        cfg.blockDimX, cfg.blockDimY, cfg.blockDimZ = 128, 1, 1
        cfg.sharedMemBytes = smem_bytes
        cfg.numAttrs = 0
        if cluster is not None:
            attr = cu.CUlaunchAttribute()
            attr.id = cu.CUlaunchAttributeID.CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION
            attr.value.clusterDim.x, attr.value.clusterDim.y, attr.value.clusterDim.z = cluster, 1, 1
            cfg.attrs, cfg.numAttrs = [attr], 1
        return cfg

    def max_cluster_size(self, index: int) -> int:
        return self._with_probe_kernel(index, lambda fn: int(
            self._call("cuOccupancyMaxPotentialClusterSize", fn, self._launch_config(64, 0))))

    def resident_clusters(self, index: int, size: int, smem_bytes: int) -> int:
        """Clusters of `size` blocks that each take `smem_bytes` of shared memory (one per SM when
        that is the opt-in maximum) the device runs at once."""
        def ask(fn):
            self._call("cuFuncSetAttribute", fn,
                       self.cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem_bytes)
            return int(self._call("cuOccupancyMaxActiveClusters", fn, self._launch_config(size, smem_bytes, size)))
        return self._with_probe_kernel(index, ask)


class Nvml:
    def __init__(self) -> None:
        import pynvml  # nvidia-ml-py

        self.nv = pynvml
        pynvml.nvmlInit()

    def _h(self, uuid: str):
        return self.nv.nvmlDeviceGetHandleByUUID(uuid)

    def pci_device_id(self, uuid: str) -> int:
        return int(self.nv.nvmlDeviceGetPciInfo(self._h(uuid)).pciDeviceId) >> 16

    def max_clock_mhz(self, uuid: str, which: str) -> int:
        clk = {"sm": self.nv.NVML_CLOCK_SM, "mem": self.nv.NVML_CLOCK_MEM}[which]
        return int(self.nv.nvmlDeviceGetMaxClockInfo(self._h(uuid), clk))

    def ecc_enabled(self, uuid: str) -> bool:
        return bool(self.nv.nvmlDeviceGetEccMode(self._h(uuid))[0])

    def mig_enabled(self, uuid: str) -> bool:
        return bool(self.nv.nvmlDeviceGetMigMode(self._h(uuid))[0])

    def driver_version(self) -> str:
        v = self.nv.nvmlSystemGetDriverVersion()
        return v.decode() if isinstance(v, bytes) else str(v)


_DRIVER_ATTRS = {
    "sm_count": "CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT",
    "smem_optin_bytes": "CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN",
    "smem_per_sm_bytes": "CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR",
    "l2_bytes": "CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE",
    "mem_bus_width_bits": "CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH",
}


class _Recorder:
    """Fills a fingerprint field by field; a failing read becomes an error entry, never an exception."""

    def __init__(self, fp: DeviceFingerprint) -> None:
        self.fp = fp

    def read(self, name: str, how: str, fn) -> Any:
        try:
            value = fn()
        except Exception as exc:  # noqa: BLE001 - the probe reports, it does not fail
            self.fp.errors[name] = f"{how}: {type(exc).__name__}: {exc}"
            return None
        if value is not None:
            setattr(self.fp, name, value)
            self.fp.how_read[name] = how
        return value


def probe(index: int = 0, driver: DriverReader | None = None, nvml: NvmlReader | None = None,
          read_software: bool = True) -> DeviceFingerprint:
    """Fingerprint GPU `index` (as the process sees it, after CUDA_VISIBLE_DEVICES) and the software."""
    fp = DeviceFingerprint(gpu_present=False)
    rec = _Recorder(fp)
    if read_software:
        read_software_fields(rec)
    if driver is None:
        try:
            driver = CudaDriver()
        except Exception as exc:  # noqa: BLE001 - no cuda-python, no driver, no device
            fp.errors["gpu"] = f"CUDA driver unavailable: {type(exc).__name__}: {exc}"
            return fp
    try:
        count = driver.device_count()
    except Exception as exc:  # noqa: BLE001
        fp.errors["gpu"] = f"cuDeviceGetCount: {exc}"
        return fp
    if count <= index:
        fp.errors["gpu"] = f"cuDeviceGetCount reports {count} device(s); index {index} absent"
        return fp
    fp.gpu_present = True
    fp.device_index = index
    read_device_fields(rec, driver, index)
    if nvml is None:
        try:
            nvml = Nvml()
        except Exception as exc:  # noqa: BLE001
            fp.errors["nvml"] = f"NVML unavailable: {type(exc).__name__}: {exc}"
    if nvml is not None and fp.uuid:
        read_nvml_fields(rec, nvml, fp.uuid)
    if fp.mem_clock_mhz and fp.mem_bus_width_bits:
        # Double data rate: two transfers per clock over the whole bus.
        fp.peak_dram_gbs = round(2 * fp.mem_clock_mhz * 1e6 * fp.mem_bus_width_bits / 8 / 1e9, 1)
        fp.how_read["peak_dram_gbs"] = "2 x mem_clock_mhz x mem_bus_width_bits / 8"
    return fp


class _NoDevice:
    def device_count(self) -> int:
        return 0


@functools.cache
def software_fingerprint() -> DeviceFingerprint:
    """This machine's software fields only, without touching a device (catalog reasoning pairs them
    with a SKU's row)."""
    fp = probe(driver=_NoDevice())
    fp.errors.pop("gpu", None)
    return fp


def read_device_fields(rec: _Recorder, drv: DriverReader, i: int) -> None:
    fp = rec.fp
    rec.read("name", "cuDeviceGetName", lambda: drv.name(i))
    rec.read("uuid", "cuDeviceGetUuid", lambda: drv.uuid(i))
    rec.read("pci_bus_id", "cuDeviceGetAttribute(PCI_DOMAIN_ID, PCI_BUS_ID, PCI_DEVICE_ID)", lambda: "%04x:%02x:%02x.0" % (
        drv.attribute(i, "CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID"),
        drv.attribute(i, "CU_DEVICE_ATTRIBUTE_PCI_BUS_ID"),
        drv.attribute(i, "CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID")))
    major = rec.read("arch_family", "cuDeviceGetAttribute(COMPUTE_CAPABILITY_MAJOR)",
                     lambda: drv.attribute(i, "CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR"))
    if major is not None:
        rec.read("cc", "cuDeviceGetAttribute(COMPUTE_CAPABILITY_MAJOR, _MINOR)",
                 lambda: f"{major}.{drv.attribute(i, 'CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR')}")
    for name, attr in _DRIVER_ATTRS.items():
        rec.read(name, f"cuDeviceGetAttribute({attr})", lambda a=attr: drv.attribute(i, a))
    rec.read("mem_bytes", "cuDeviceTotalMem", lambda: drv.total_mem(i))
    rec.read("mem_clock_mhz", "cuDeviceGetAttribute(CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE) / 1000",
             lambda: drv.attribute(i, "CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE") // 1000 or None)
    rec.read("sm_clock_max_mhz", "cuDeviceGetAttribute(CU_DEVICE_ATTRIBUTE_CLOCK_RATE) / 1000",
             lambda: drv.attribute(i, "CU_DEVICE_ATTRIBUTE_CLOCK_RATE") // 1000 or None)
    launch = rec.read("cluster_launch", "cuDeviceGetAttribute(CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH)",
                      lambda: bool(drv.attribute(i, "CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH")))
    if launch:
        rec.read("max_cluster_size",
                 "cuOccupancyMaxPotentialClusterSize(empty kernel, 128 threads, non-portable sizes allowed)",
                 lambda: drv.max_cluster_size(i))
    elif launch is False:
        fp.max_cluster_size = 1
        fp.how_read["max_cluster_size"] = "1: CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH is 0"
    if launch and fp.smem_optin_bytes:
        sizes = [n for n in PERSISTENT_CLUSTER_SIZES if n <= (fp.max_cluster_size or 1)]
        rec.read("resident_clusters",
                 "cuOccupancyMaxActiveClusters(empty kernel, 128 threads, opt-in smem per block, cluster sizes "
                 f"{', '.join(map(str, sizes))})",
                 lambda: {str(n): drv.resident_clusters(i, n, fp.smem_optin_bytes) for n in sizes} or None)
    rec.read("cuda_driver_api", "cuDriverGetVersion",
             lambda: "%d.%d" % divmod(drv.driver_api_version() // 10, 100))


def read_nvml_fields(rec: _Recorder, nv: NvmlReader, uuid: str) -> None:
    rec.read("pci_device_id", "nvmlDeviceGetPciInfo().pciDeviceId >> 16",
             lambda: f"0x{nv.pci_device_id(uuid):04x}")
    rec.read("ecc_enabled", "nvmlDeviceGetEccMode (current)", lambda: nv.ecc_enabled(uuid))
    rec.read("mig_mode", "nvmlDeviceGetMigMode (current)", lambda: nv.mig_enabled(uuid))
    rec.read("driver_version", "nvmlSystemGetDriverVersion", nv.driver_version)
    # NVML's maxima are the boost clocks; the driver attributes are deprecated in CUDA 13.
    rec.read("sm_clock_max_mhz", "nvmlDeviceGetMaxClockInfo(NVML_CLOCK_SM)", lambda: nv.max_clock_mhz(uuid, "sm"))
    rec.read("mem_clock_mhz", "nvmlDeviceGetMaxClockInfo(NVML_CLOCK_MEM)", lambda: nv.max_clock_mhz(uuid, "mem"))


def _version(dist: str) -> str:
    return metadata.version(dist)


@functools.cache
def _torch_facts() -> tuple[str, str | None, bool]:
    """torch.__version__ and torch.version.cuda, read from torch/version.py, the module both come
    from, without importing torch: the import takes seconds of CPU, and every `gpuhil run` and
    pytest process probes."""
    import importlib.util

    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("No module named 'torch'")
    path = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    version_spec = importlib.util.spec_from_file_location("_gpuhil_probed_torch_version", path)
    module = importlib.util.module_from_spec(version_spec)
    version_spec.loader.exec_module(module)
    return module.__version__, module.cuda, module.cuda is not None


def _cudnn_version() -> str | None:
    if not _torch_facts()[2]:  # a build without CUDA has no cuDNN backend: torch would say unavailable
        return None
    import torch

    v = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return None if v is None else f"{v // 10000}.{v // 100 % 100}.{v % 100}"  # 91900 -> 9.19.0


def _dsl_payload() -> str:
    import cutlass

    v = cutlass.CUDA_VERSION
    return f"{v.major}.{v.minor}" if hasattr(v, "major") else str(v)


def _cuda_tool_version(tool: str) -> str:
    """The version a CUDA toolkit tool (ptxas, nvcc) prints, found on PATH, CUDA_HOME, CUDA_PATH or
    /usr/local/cuda, as the JIT compilers of the libraries look for it."""
    candidates = [shutil.which(tool)]
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home:
            candidates.append(str(Path(home) / "bin" / tool))
    for exe in filter(None, candidates):
        if Path(exe).exists():
            out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=20).stdout
            m = re.search(r"release [\d.]+, V([\d.]+)", out)
            return m.group(1) if m else out.strip().splitlines()[-1]
    raise FileNotFoundError(f"{tool} not on PATH, CUDA_HOME, CUDA_PATH or /usr/local/cuda")


def _library_versions() -> dict[str, str]:
    """Installed versions of the kernel libraries gpuhil wraps and of every distribution that registers
    providers through the entry point."""
    from ..thirdparty import ENTRY_POINT_GROUP, LIBRARIES

    dists = {lib.dist for lib in LIBRARIES}
    dists |= {ep.dist.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.dist is not None}
    found = {}
    for dist in sorted(dists):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return found


def _git_sha() -> str:
    if os.environ.get("GPUHIL_GIT_SHA"):  # a runner that copies the tree without .git passes it along
        return os.environ["GPUHIL_GIT_SHA"]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=20, check=True).stdout.strip()

    sha = git("rev-parse", "HEAD")
    return sha + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def read_software_fields(rec: _Recorder) -> None:
    fp = rec.fp
    fp.cpu_arch, fp.how_read["cpu_arch"] = platform.machine(), "platform.machine()"
    fp.python, fp.how_read["python"] = platform.python_version(), "platform.python_version()"
    facts = rec.read("torch", "torch.__version__ (torch/version.py)", lambda: _torch_facts()[0])
    if facts is not None:
        _, cuda, built = _torch_facts()
        fp.cuda_runtime, fp.how_read["cuda_runtime"] = cuda, "torch.version.cuda (torch/version.py)"
        fp.torch_cuda_build, fp.how_read["torch_cuda_build"] = built, "torch.version.cuda is not None"
        rec.read("cudnn", "torch.backends.cudnn.version() (backend loaded by torch)", _cudnn_version)
    rec.read("triton", "importlib.metadata.version('triton')", lambda: _version("triton"))
    rec.read("cutlass_dsl", "importlib.metadata.version('nvidia-cutlass-dsl')",
             lambda: _version("nvidia-cutlass-dsl"))
    if fp.cutlass_dsl:
        rec.read("dsl_cuda", "cutlass.CUDA_VERSION (the active native payload)", _dsl_payload)
    rec.read("ptxas", "ptxas --version", lambda: _cuda_tool_version("ptxas"))
    rec.read("nvcc", "nvcc --version", lambda: _cuda_tool_version("nvcc"))
    rec.read("libraries", "importlib.metadata.version of each kernel library (gpuhil.thirdparty, entry points)",
             _library_versions)
    rec.read("git_sha", "git rev-parse HEAD (+ -dirty)", _git_sha)
