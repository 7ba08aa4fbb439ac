"""How many pytest-xdist workers `gpuhil run` starts: from the GPUs, the host's cores and memory, and
the probed GPU memory.

Most of a run's time is host work: a CuTe DSL compile (single-threaded: MLIR passes, then ptxas) per
kernel config, building inputs and references. One worker per GPU leaves all but one core idle, so
several workers share each GPU (gpuhil.device.gpu_pinning spreads them: worker i on GPU i mod n, a
replacement on the GPU its predecessor freed). How many is the least of what the cores, the host's
memory and the GPUs allow, never fewer than one per GPU (what a run started before) and at least
one (the controller must outlive a test that kills its process). `gpuhil run --workers N` overrides it.

The host's facts are read once, by the runner (`read_host`), and passed in; `count` is pure.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

GIB = 1 << 30

# Two cores per worker. The compile is single-threaded, but a worker is more than its compile: torch's
# host work (inputs, CPU references), the CUDA driver's threads and ptxas compete for the same cores,
# and the xdist controller (every report passes through it; it writes junit.xml) needs a core of its
# own. At one core per worker compiles would be slowed by all of that; at two, 16 cores run 8 compiles.
CORES_PER_WORKER = 2
# A CuTe DSL compile peaks at about 1-2 GiB of host memory; the worker around it (torch with its CUDA
# libraries, the DSL's MLIR libraries, the test's host tensors) holds about 1 GiB more. Memory is the
# bound that must hold: a worker killed by the OOM killer costs its test and the run's time.
HOST_MEM_PER_WORKER = 3 * GIB
# Workers sharing one GPU are separate CUDA contexts, time-sliced (no MPS): their kernels do not run
# at once, so past the point where the GPU is kept busy more workers add only context switches and
# contexts (about 0.5 GiB of device memory each). Numerics cases spend most of their time on the host
# (compiles, references), so several keep the GPU fed; 8 bounds it.
WORKERS_PER_GPU = 8
# Device memory per worker: our numerics cases use at most a few GiB, plus the context and what
# torch's caching allocator keeps after a case; 8 GiB leaves room for the largest. On an 80 GiB or
# larger GPU WORKERS_PER_GPU binds first; a 24 GiB card gets 3.
GPU_MEM_PER_WORKER = 8 * GIB


@dataclass(frozen=True)
class Host:
    cores: int  # the cores this process may use (affinity, cgroup quota)
    mem_bytes: int | None  # memory available to it now (None: unknown)


@dataclass(frozen=True)
class WorkerCount:
    n: int
    why: str  # how n was decided, for the run report

    def __str__(self) -> str:
        return f"{self.n} worker{'s' if self.n != 1 else ''} ({self.why})"


def count(host: Host, gpus: int, gpu_mem_bytes: int | None, override: int | None = None) -> WorkerCount:
    """Workers for the run's tests: `gpus` GPUs attached to the session (0 for a CPU run: gates, AOT
    compiles, host checks), `gpu_mem_bytes` the probed memory of one (None: not read)."""
    if override is not None:
        return WorkerCount(override, f"--workers {override}")
    bounds = [(host.cores // CORES_PER_WORKER, f"{host.cores} cores / {CORES_PER_WORKER} per worker")]
    if host.mem_bytes is not None:
        bounds.append((host.mem_bytes // HOST_MEM_PER_WORKER,
                       f"{_gib(host.mem_bytes)} GiB host memory available / {_gib(HOST_MEM_PER_WORKER)} GiB per worker"))
    if gpus:
        per_gpu, per_gpu_why = WORKERS_PER_GPU, f"{WORKERS_PER_GPU} per GPU"
        if gpu_mem_bytes:
            by_mem = gpu_mem_bytes // GPU_MEM_PER_WORKER
            if by_mem < per_gpu:
                per_gpu = by_mem
                per_gpu_why = f"{_gib(gpu_mem_bytes)} GiB GPU memory / {_gib(GPU_MEM_PER_WORKER)} GiB per worker"
        bounds.append((gpus * per_gpu, f"{gpus} GPU{'s' if gpus != 1 else ''} x {per_gpu_why}"))
    least = min(b for b, _ in bounds)
    n = max(1, gpus, least)
    why = "least of: " + ", ".join(f"{text} = {b}" for b, text in bounds)
    if n > least:
        why += f"; raised to {'one per GPU' if gpus > 1 else 'one'}"
    return WorkerCount(n, why)


def threads_per_worker(cores: int, workers: int) -> int:
    """CPU threads for torch's host ops in each worker (OMP_NUM_THREADS): every worker starting one
    per core would put `workers` threads on each core."""
    return max(1, cores // max(1, workers))


def read_host(proc: Path = Path("/proc"), cgroup: Path = Path("/sys/fs/cgroup"),
              affinity: int | None = None) -> Host:
    """This host as a run may use it: the cores of this process's affinity mask within a cgroup v2
    CPU quota, and MemAvailable within a cgroup v2 memory limit. Unreadable limits are no limits."""
    cores = affinity if affinity is not None else len(os.sched_getaffinity(0))
    quota = _cgroup_cpu_quota(cgroup)
    if quota is not None:
        cores = min(cores, quota)
    mems = [m for m in (_meminfo_available(proc), _cgroup_mem_left(cgroup)) if m is not None]
    return Host(max(1, cores), min(mems) if mems else None)


def _meminfo_available(proc: Path) -> int | None:
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_cpu_quota(cgroup: Path) -> int | None:
    """cpu.max `QUOTA PERIOD` as whole cores (rounded up), None for `max` or no cgroup v2."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def _cgroup_mem_left(cgroup: Path) -> int | None:
    """memory.max less memory.current, None for `max` or no cgroup v2."""
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((cgroup / "memory.current").read_text().strip()))
    except (OSError, ValueError):
        return None


def _gib(n: int) -> str:
    return f"{n / GIB:.0f}" if n >= 10 * GIB else f"{n / GIB:.1f}".removesuffix(".0")
