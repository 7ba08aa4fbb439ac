"""Fake CUDA driver and NVML that answer like a catalog SKU would, for probing without that GPU."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from gpuhil.catalog.matrix import Sku


class FakeDriver:
    def __init__(self, sku: Sku, *, cluster_probe: int | None = None) -> None:
        self.sku = sku
        self.cluster_probe_calls = 0
        self._cluster = cluster_probe if cluster_probe is not None else sku.max_cluster_size
        major, minor = sku.cc.split(".")
        self.attrs = {
            "CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR": int(major),
            "CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR": int(minor),
            "CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT": sku.sm_count or 144,  # unpublished: any real answer
            "CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN": sku.smem_optin_bytes,
            "CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR": sku.smem_per_sm_bytes or 0,
            "CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE": sku.l2_bytes or 0,
            "CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH": 5120,
            "CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE": 2_619_000,
            "CU_DEVICE_ATTRIBUTE_CLOCK_RATE": 1_980_000,
            "CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH": int(sku.cluster_launch),
            "CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID": 0,
            "CU_DEVICE_ATTRIBUTE_PCI_BUS_ID": 0x1B,
            "CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID": 0,
        }

    def device_count(self) -> int:
        return 1

    def attribute(self, index: int, name: str) -> int:
        return self.attrs[name]

    def name(self, index: int) -> str:
        return self.sku.match.names[0] if self.sku.match.names else self.sku.name

    def uuid(self, index: int) -> str:
        return "GPU-00000000-0000-0000-0000-" + self.sku.id.encode().hex()[:12].ljust(12, "0")

    def total_mem(self, index: int) -> int:
        return self.sku.mem_bytes or 1

    def driver_api_version(self) -> int:
        return 13000

    def max_cluster_size(self, index: int) -> int:
        self.cluster_probe_calls += 1
        return self._cluster

    def resident_clusters(self, index: int, size: int, smem_bytes: int) -> int:
        self.cluster_probe_calls += 1
        return self.attrs["CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT"] // size


class FakeNvml:
    def __init__(self, sku: Sku) -> None:
        self.sku = sku

    def pci_device_id(self, uuid: str) -> int:
        return int(self.sku.match.pci_device_ids[0], 16) if self.sku.match.pci_device_ids else 0

    def max_clock_mhz(self, uuid: str, which: str) -> int:
        return {"sm": 1980, "mem": 2619}[which]

    def ecc_enabled(self, uuid: str) -> bool:
        return True

    def mig_enabled(self, uuid: str) -> bool:
        return False

    def driver_version(self) -> str:
        return "580.159.04"


class NoDriver:
    def device_count(self) -> int:
        raise RuntimeError("cuInit failed: CUDA_ERROR_NO_DEVICE")


def make_checkout(root, matrix_text: str | None = None) -> None:
    """A minimal gpuhil checkout at `root`: the repo's matrix (or `matrix_text`), the repo's suite
    folders (empty), and a conftest loading the plugin."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    text = matrix_text if matrix_text is not None else (repo / "hardware_matrix.yaml").read_text()
    root = Path(root)
    (root / "hardware_matrix.yaml").write_text(text)
    (root / "conftest.py").write_text('pytest_plugins = ("gpuhil.pytest_plugin",)\n')
    for suite in (repo / "suites").iterdir():
        if suite.is_dir() and not suite.name.startswith((".", "_")):
            (root / "suites" / suite.name).mkdir(parents=True, exist_ok=True)


def install_fake_distribution(pytester, module: str, source: str, entry_points: str) -> None:
    """A fake installed distribution on pytester's path: `module`.py holding `source`, and an
    entry_points.txt (e.g. registering a provider in the gpuhil.providers group)."""
    site = pytester.mkdir("site")
    (site / f"{module}.py").write_text(source)
    dist = site / f"{module}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(entry_points)
    pytester.syspathinsert(site)


# A provider any pytester suite can build cases with: the named provider the case builder needs for a
# case's identity, gated on nothing (no GPU). Pasted at the top of a generated test file.
NAMED_PROVIDER = textwrap.dedent("""
    from gpuhil.gating import Plan, Requirements
    from gpuhil.providers import Provider
    from gpuhil.testing import case


    class Named(Provider):
        op, backend = "argmax", "torch"

        def __init__(self, name):
            self.name = name

        def plan(self, problem, caps):
            return Plan(self.name, requirements=(Requirements(needs_gpu=False),))
""")


def gpuhil(*args, cwd, env=None, timeout=600) -> subprocess.CompletedProcess:
    """`python -m gpuhil ARGS` in `cwd`, as a user runs it, its output captured."""
    return subprocess.run([sys.executable, "-m", "gpuhil", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env={**os.environ, **(env or {})})


class HealthNvml:
    """NVML as the runner health checks ask it (pynvml's constants and error classes), answering each
    field from `answers`: a healthy H100 at rest unless told otherwise. An answer that is an exception
    is raised, as NVML raises NVMLError_NotSupported for a field the part lacks."""

    HEALTHY = {
        "nvmlDeviceGetRetiredPagesPendingStatus": 0,  # NVML_FEATURE_DISABLED
        "nvmlDeviceGetRemappedRows": (0, 0, 0, 0),  # corrected, uncorrected, pending, failure
        "nvmlDeviceGetTotalEccErrors": 0,
        "nvmlDeviceGetCurrentClocksEventReasons": 0x1,  # idle: not a pinning reason
        "nvmlDeviceGetCurrentClocksThrottleReasons": 0x1,
        "nvmlDeviceGetTemperature": 34,
        "nvmlDeviceGetTemperatureThreshold": 87,
        "nvmlDeviceGetHandleByUUID": "handle",
    }

    def __init__(self, **answers) -> None:
        import pynvml

        self._nv = pynvml
        self.answers = {**self.HEALTHY, **answers}
        self.asked: list[tuple] = []

    def __getattr__(self, name: str):
        if name in self.answers:
            def call(*args):
                self.asked.append((name, *args))
                answer = self.answers[name]
                if isinstance(answer, BaseException):
                    raise answer
                return answer
            return call
        return getattr(self._nv, name)  # constants and error classes

    def error(self, code_name: str):
        return self._nv.NVMLError(getattr(self._nv, code_name))


def flashinfer_jit_cache(tmp_path, monkeypatch, built=()):
    """FlashInfer's JIT cache moved to an empty folder under `tmp_path` (its JitSpec reads the folder at
    each call), holding a finished build of each module in `built`, in a process FlashInfer takes for an
    H100's (it refuses a JitSpec where it finds no GPU arch). Returns the folder."""
    from flashinfer.jit import core, env as jit_env

    monkeypatch.setattr(core.current_compilation_context, "TARGET_CUDA_ARCHS", {(9, "0a")})
    monkeypatch.setattr(jit_env, "FLASHINFER_JIT_DIR", tmp_path / "cached_ops")
    monkeypatch.setattr(jit_env, "FLASHINFER_BASE_DIR", tmp_path)
    for module in built:
        (tmp_path / "cached_ops" / module).mkdir(parents=True)
        (tmp_path / "cached_ops" / module / f"{module}.so").touch()
    return tmp_path / "cached_ops"
