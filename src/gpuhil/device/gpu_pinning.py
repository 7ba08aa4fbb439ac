"""Give each pytest-xdist worker its own GPU, before anything in that worker initialises CUDA.

The controller lists the GPUs it may use in $GPUHIL_GPUS (from CUDA_VISIBLE_DEVICES, else NVML's count,
which does not initialise CUDA); workers inherit the environment and worker gwN takes entry N mod count.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

GPUS_ENV = "GPUHIL_GPUS"


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


def announce(environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """Controller side: publish the GPU list for the workers."""
    gpus = visible_gpus(environ)
    if gpus:
        environ[GPUS_ENV] = ",".join(gpus)
    return gpus


def pin_worker(environ: MutableMapping[str, str], worker: str | None) -> str | None:
    """Worker side (worker id 'gwN'): restrict CUDA_VISIBLE_DEVICES to this worker's GPU."""
    gpus = environ.get(GPUS_ENV)
    if not worker or not gpus:
        return None
    listed = gpus.split(",")
    gpu = listed[int(worker.removeprefix("gw")) % len(listed)]
    environ["CUDA_VISIBLE_DEVICES"] = gpu
    return gpu
