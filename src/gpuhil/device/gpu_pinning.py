"""Pin each pytest-xdist worker to one GPU, before anything in that worker initialises CUDA.

The controller lists the GPUs it may use (CUDA_VISIBLE_DEVICES, else NVML's count, which does not
initialise CUDA) and hands each worker one through xdist's `workerinput`: the GPU with the fewest
live workers, the first listed on a tie. So with several workers per GPU (gpuhil.workers) the
workers started together spread round-robin, worker i on GPU i mod n, and a worker that replaces a
crashed one takes the GPU that was freed (xdist numbers a replacement on, so `i mod n` of its own id
would pile replacements onto one GPU). The worker restricts its own CUDA_VISIBLE_DEVICES to that GPU.
"""

from __future__ import annotations

from collections.abc import MutableMapping

WORKERINPUT_KEY = "gpuhil_gpu"


def visible_gpus(environ: MutableMapping[str, str]) -> list[str]:
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g for g in listed.split(",") if g.strip()]
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return [str(i) for i in range(pynvml.nvmlDeviceGetCount())]
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no NVML: nothing to pin
        return []


class GpuAllocator:
    """Controller side: which worker holds which GPU."""

    def __init__(self, gpus: list[str]) -> None:
        self.holders: dict[str, set[str]] = {g: set() for g in gpus}

    def take(self, worker: str) -> str | None:
        if not self.holders:
            return None
        gpu = min(self.holders, key=lambda g: (len(self.holders[g]), list(self.holders).index(g)))
        self.holders[gpu].add(worker)
        return gpu

    def release(self, worker: str) -> None:
        for held in self.holders.values():
            held.discard(worker)


def pin_worker(environ: MutableMapping[str, str], gpu: str | None) -> str | None:
    """Worker side: restrict CUDA_VISIBLE_DEVICES to the GPU the controller handed this worker."""
    if gpu:
        environ["CUDA_VISIBLE_DEVICES"] = gpu
    return gpu
