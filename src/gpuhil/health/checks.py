"""The runner health checks, stated once: what each field reads (an NVML call, or a short kernel), when
its value makes the runner unhealthy, and the verdict over every field of every GPU.

NVML is handed in (the `pynvml` module, or a fake answering like it), with a handle per device, so
every field can be exercised without a GPU. A field the part does not support (NVML raises
NVMLError_NotSupported, or the driver lacks the function) is reported as "not supported" and never
fails the runner; any other NVML error does (a GPU that cannot say it is well is not vouched for).
docs/HEALTH.md documents this table; tests/test_health.py keeps the two in step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

OK, UNHEALTHY, NOT_SUPPORTED, NOT_JUDGED = "ok", "UNHEALTHY", "not supported", "not judged"
STATUSES = (OK, UNHEALTHY, NOT_SUPPORTED, NOT_JUDGED)

# A GPU this close to its slowdown threshold is about to pull its clocks down (at rest it is far cooler).
TEMPERATURE_MARGIN_C = 5
# A device-to-device copy (read + write bytes) below this fraction of the catalog's mem_bw_gbs: memory
# clocks pinned low, a degraded HBM stack or another tenant. Healthy parts reach 0.75-0.9.
COPY_BANDWIDTH_MIN_FRACTION = 0.5

# Clock-event reasons that pin the clock for reasons of the hardware's state. Not sw_power_cap (a
# normal answer to load), idle, sync boost or application clocks.
PINNING_REASONS = {
    "nvmlClocksEventReasonHwSlowdown": "hw_slowdown",
    "nvmlClocksEventReasonHwThermalSlowdown": "hw_thermal",
    "nvmlClocksEventReasonSwThermalSlowdown": "sw_thermal",
    "nvmlClocksEventReasonHwPowerBrakeSlowdown": "hw_power_brake",
}


@dataclass(frozen=True)
class Finding:
    device: str  # "gpu0": the CUDA index as the run sees it (after CUDA_VISIBLE_DEVICES); "runner" for the gate itself
    field: str
    value: str
    status: str  # one of STATUSES
    rule: str  # when the field is unhealthy, as docs/HEALTH.md states it

    @property
    def line(self) -> str:
        return f"{self.device}.{self.field} = {self.value}"


@dataclass(frozen=True)
class Check:
    """One health field: how it is read and when its value is unhealthy."""

    field: str
    reads: str  # the NVML call (or the kernel) behind the value
    rule: str
    read: Callable[[Any, Any], Any]  # (nvml, handle) -> the raw answer
    judge: Callable[[Any], tuple[str, bool]]  # raw answer -> (value as reported, unhealthy?)


def _clock_reasons(nv, handle) -> int:
    try:
        return int(nv.nvmlDeviceGetCurrentClocksEventReasons(handle))
    except nv.NVMLError_FunctionNotFound:  # drivers before the rename answer the older name
        return int(nv.nvmlDeviceGetCurrentClocksThrottleReasons(handle))


def _pinning(nv) -> Callable[[int], tuple[str, bool]]:
    def judge(mask: int) -> tuple[str, bool]:
        on = [name for attr, name in PINNING_REASONS.items() if mask & getattr(nv, attr)]
        return (", ".join(on) if on else "none", bool(on))
    return judge


def _temperature(pair: tuple[int, int]) -> tuple[str, bool]:
    now, slowdown = pair
    return f"{now} C (slowdown at {slowdown} C)", now >= slowdown - TEMPERATURE_MARGIN_C


def nvml_checks(nv) -> tuple[Check, ...]:
    """The NVML fields, in report order; `nv` supplies the constants (pynvml's, or a fake's)."""
    return (
        Check("retired_pages_pending", "nvmlDeviceGetRetiredPagesPendingStatus",
              "pending: pages wait for a reboot to be retired",
              lambda nv, h: nv.nvmlDeviceGetRetiredPagesPendingStatus(h),
              lambda v: ("yes" if v == nv.NVML_FEATURE_ENABLED else "no", v == nv.NVML_FEATURE_ENABLED)),
        Check("remapped_rows_pending", "nvmlDeviceGetRemappedRows (isPending)",
              "pending: a row remap waits for a GPU reset",
              lambda nv, h: nv.nvmlDeviceGetRemappedRows(h)[2], lambda v: ("yes" if v else "no", bool(v))),
        Check("remapped_rows_failed", "nvmlDeviceGetRemappedRows (failureOccurred)",
              "a row remap failed: the memory is out of spare rows",
              lambda nv, h: nv.nvmlDeviceGetRemappedRows(h)[3], lambda v: ("yes" if v else "no", bool(v))),
        Check("ecc_uncorrected_volatile",
              "nvmlDeviceGetTotalEccErrors(NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC)",
              "above 0: uncorrectable memory errors since the driver loaded",
              lambda nv, h: nv.nvmlDeviceGetTotalEccErrors(h, nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                                                           nv.NVML_VOLATILE_ECC),
              lambda v: (str(int(v)), int(v) > 0)),
        Check("clock_pinning_reasons",
              "nvmlDeviceGetCurrentClocksEventReasons (older drivers: ...ClocksThrottleReasons)",
              "any of " + ", ".join(PINNING_REASONS.values()) + ": the clock is held down by the hardware's state",
              _clock_reasons, _pinning(nv)),
        Check("temperature_c",
              "nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU), "
              "nvmlDeviceGetTemperatureThreshold(NVML_TEMPERATURE_THRESHOLD_SLOWDOWN)",
              f"within {TEMPERATURE_MARGIN_C} C of the slowdown threshold, or above it",
              lambda nv, h: (int(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
                             int(nv.nvmlDeviceGetTemperatureThreshold(h, nv.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN))),
              _temperature),
    )


@dataclass(frozen=True)
class KernelField:
    field: str
    reads: str
    rule: str


# The kernel fields (gpuhil.health.kernel measures them); their rules, stated once here.
KNOWN_ANSWER = KernelField(
    "known_answer", "torch matmul of two fixed 1024x1024 small-integer fp32 matrices, and the sum of the product",
    "any entry or the sum differs from the exact answer (computed in fp64 on the CPU)")
COPY_BANDWIDTH = KernelField(
    "copy_bandwidth_gbs", "device-to-device copy of 256 MiB, best of 3 timed rounds (read + write bytes)",
    f"below {COPY_BANDWIDTH_MIN_FRACTION:.0%} of the catalog's mem_bw_gbs for the device's SKU")
KERNEL_FIELDS = {k.field: k for k in (KNOWN_ANSWER, COPY_BANDWIDTH)}


def nvml_findings(nv, handle, device: str) -> list[Finding]:
    """Every NVML field of one GPU."""
    out = []
    for check in nvml_checks(nv):
        try:
            value, sick = check.judge(check.read(nv, handle))
            status = UNHEALTHY if sick else OK
        except (nv.NVMLError_NotSupported, nv.NVMLError_FunctionNotFound):
            value, status = "not supported", NOT_SUPPORTED
        except nv.NVMLError as exc:
            value, status = f"NVML error: {exc}", UNHEALTHY
        out.append(Finding(device, check.field, value, status, check.rule))
    return out


def known_answer_finding(device: str, mismatch: str | None) -> Finding:
    """`mismatch`: None when every entry and the sum were exact, else what differed."""
    return Finding(device, KNOWN_ANSWER.field, "exact" if mismatch is None else mismatch,
                   OK if mismatch is None else UNHEALTHY, KNOWN_ANSWER.rule)


def copy_bandwidth_finding(device: str, measured_gbs: float, catalog_gbs: float | None) -> Finding:
    field, rule = COPY_BANDWIDTH.field, COPY_BANDWIDTH.rule
    if not catalog_gbs:
        return Finding(device, field, f"{measured_gbs:.0f} GB/s (no catalog mem_bw_gbs to judge it against)",
                       NOT_JUDGED, rule)
    share = measured_gbs / catalog_gbs
    return Finding(device, field, f"{measured_gbs:.0f} GB/s ({share:.0%} of the catalog's {catalog_gbs:g})",
                   UNHEALTHY if share < COPY_BANDWIDTH_MIN_FRACTION else OK, rule)


def kernel_error_finding(device: str, field: str, exc: BaseException) -> Finding:
    """A kernel check that raised (a CUDA error, an illegal access): unhealthy, with the error's first line."""
    said = str(exc).strip().splitlines()
    value = f"could not run: {type(exc).__name__}: {said[0] if said else ''}"[:300]
    return Finding(device, field, value, UNHEALTHY, KERNEL_FIELDS[field].rule)


@dataclass(frozen=True)
class HealthReport:
    """Every finding of one check of the runner; `not_checked` says why there are none (no GPU, --no-health)."""

    findings: tuple[Finding, ...] = ()
    not_checked: str | None = None

    @property
    def unhealthy(self) -> list[Finding]:
        return [f for f in self.findings if f.status == UNHEALTHY]

    @property
    def healthy(self) -> bool:
        return not self.unhealthy

    @property
    def state(self) -> str:
        """For the run record: healthy, unhealthy or not checked."""
        return "not checked" if self.not_checked else "healthy" if self.healthy else "unhealthy"

    def summary(self) -> str:
        """One line: every unhealthy field, else what was checked."""
        if self.not_checked:
            return f"not checked: {self.not_checked}"
        if self.unhealthy:
            return "; ".join(f.line for f in self.unhealthy)
        unsupported = [f"{f.device}.{f.field}" for f in self.findings if f.status == NOT_SUPPORTED]
        return (f"healthy ({len(self.findings)} fields"
                + (f"; not supported: {', '.join(unsupported)}" if unsupported else "") + ")")

    def to_dict(self) -> dict:
        return {"state": self.state, "not_checked": self.not_checked, "findings": [asdict(f) for f in self.findings]}

    @classmethod
    def from_dict(cls, doc: dict) -> "HealthReport":
        """What `gpuhil health --json` printed; KeyError/TypeError/ValueError when it is not that."""
        findings = tuple(Finding(**{k: str(f[k]) for k in ("device", "field", "value", "status", "rule")})
                         for f in doc["findings"])
        if any(f.status not in STATUSES for f in findings):
            raise ValueError("unknown finding status")
        return cls(findings, doc["not_checked"])


def markdown_table(report: HealthReport) -> list[str]:
    """The findings as a markdown table (nothing when none were made)."""
    if not report.findings:
        return []
    out = ["| device | field | value | status | unhealthy when |", "|---|---|---|---|---|"]
    cell = lambda s: s.replace("|", "\\|")  # noqa: E731
    out += [f"| {f.device} | {f.field} | {cell(f.value)} | {f.status} | {cell(f.rule)} |" for f in report.findings]
    return out
