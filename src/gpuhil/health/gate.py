"""Checking the GPUs of this machine, and `gpuhil run`'s way of asking.

`check_gpus` makes every finding of gpuhil.health.checks for each GPU it is given, with the NVML
module and the kernel checks handed in. `check_this_machine` wires the real ones: the CUDA driver's
devices (as CUDA_VISIBLE_DEVICES leaves them), pynvml, torch. `ask` is how the runner checks: it runs
`gpuhil health --json` as a child process, so the runner itself never holds a CUDA context beside its
tests, and a GPU that hangs or kills the check is caught by its timeout or exit status.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Callable, Sequence

from .checks import (COPY_BANDWIDTH, KNOWN_ANSWER, NOT_SUPPORTED, UNHEALTHY, Finding, HealthReport,
                     copy_bandwidth_finding, kernel_error_finding, known_answer_finding, nvml_findings)

# field -> how the check's child process failed, when it gave no report
GATE_FIELD = "health_check"
GATE_RULE = "`gpuhil health --json` did not report: it crashed, hung or printed something else"
TIMEOUT_S = 300  # CUDA start, torch import and both kernels take seconds; a hung GPU takes forever

KernelChecks = Callable[[int, str], list[Finding]]  # (CUDA index, device label) -> findings


def device_label(index: int) -> str:
    return f"gpu{index}"


def check_gpus(nv, uuids: Sequence[str], kernels: KernelChecks | None) -> HealthReport:
    """Every health field of each GPU (`uuids`, in CUDA order). `nv`: pynvml or a fake, initialised;
    None when NVML could not start (its fields are then not supported here); `kernels`: the kernel
    checks, None to leave them out."""
    findings: list[Finding] = []
    for index, uuid in enumerate(uuids):
        label = device_label(index)
        if nv is None:
            findings.append(Finding(label, "nvml", "NVML unavailable", NOT_SUPPORTED, "NVML cannot start"))
        else:
            try:
                handle = nv.nvmlDeviceGetHandleByUUID(uuid)
            except nv.NVMLError as exc:
                findings.append(Finding(label, "nvml_handle", f"NVML error: {exc}", UNHEALTHY,
                                        f"NVML cannot open the device by its UUID ({uuid})"))
            else:
                findings += nvml_findings(nv, handle, label)
        if kernels is not None:
            findings += kernels(index, label)
    return HealthReport(tuple(findings))


def torch_kernel_checks(catalog_gbs: float | None) -> KernelChecks:
    """The kernel checks on torch's CUDA devices; a check that raises is unhealthy, never a traceback."""
    def run(index: int, label: str) -> list[Finding]:
        from . import kernel  # torch: only where a GPU is checked

        device = kernel.torch.device("cuda", index)
        out = []
        try:
            out.append(known_answer_finding(label, kernel.known_answer_mismatch(device)))
        except Exception as exc:  # noqa: BLE001 - a CUDA error is a finding about this GPU
            out.append(kernel_error_finding(label, KNOWN_ANSWER.field, exc))
        try:
            out.append(copy_bandwidth_finding(label, kernel.copy_bandwidth_gbs(device), catalog_gbs))
        except Exception as exc:  # noqa: BLE001
            out.append(kernel_error_finding(label, COPY_BANDWIDTH.field, exc))
        return out
    return run


def check_this_machine(catalog_gbs: float | None, *, kernels: bool = True) -> HealthReport:
    """Every GPU the CUDA driver shows this process; no GPU is said, not failed."""
    from ..device.probe import CudaDriver

    try:
        driver = CudaDriver()
        uuids = [driver.uuid(i) for i in range(driver.device_count())]
    except Exception as exc:  # noqa: BLE001 - no cuda-python, no driver, no device
        return HealthReport(not_checked=f"no GPU ({type(exc).__name__}: {str(exc).strip()[:200]})")
    if not uuids:
        return HealthReport(not_checked="no GPU (the CUDA driver reports none)")
    nv = None
    try:
        import pynvml  # nvidia-ml-py

        pynvml.nvmlInit()
        nv = pynvml
    except Exception:  # noqa: BLE001 - its fields are reported as not supported here
        pass
    try:
        return check_gpus(nv, uuids, torch_kernel_checks(catalog_gbs) if kernels else None)
    finally:
        if nv is not None:
            nv.nvmlShutdown()


def gate_failure(detail: str) -> HealthReport:
    return HealthReport((Finding("runner", GATE_FIELD, detail[:300], UNHEALTHY, GATE_RULE),))


def ask(python: str, matrix: Path, catalog_gbs: float | None, cwd: Path, env: dict[str, str],
        timeout_s: float = TIMEOUT_S) -> HealthReport:
    """`gpuhil health --json` in a child process, as the runner asks before and after its tests."""
    cmd = [python, "-m", "gpuhil", "--matrix", str(matrix), "health", "--json"]
    if catalog_gbs:
        cmd += ["--mem-bw-gbs", f"{catalog_gbs:g}"]
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s,
                              start_new_session=True)
    except subprocess.TimeoutExpired:
        return gate_failure(f"timed out after {timeout_s:g} s")
    try:
        return HealthReport.from_dict(json.loads(done.stdout))
    except (ValueError, KeyError, TypeError):
        said = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return gate_failure(f"exit {done.returncode}" + (f": {said[-1].strip()}" if said else ""))
