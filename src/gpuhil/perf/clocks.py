"""SM clock and throttle reasons through NVML, read around each timed case.

A sample taken while the GPU was power- or thermally-capped is invalid, not slow: the verdict
layer needs to know which, so the timer records both.
"""

from __future__ import annotations

from dataclasses import dataclass

# Reasons that mean "the clock was pulled down"; idle, sync boost and app clocks are not throttling.
_THROTTLING = {
    "nvmlClocksEventReasonSwPowerCap": "sw_power_cap",
    "nvmlClocksEventReasonHwSlowdown": "hw_slowdown",
    "nvmlClocksEventReasonSwThermalSlowdown": "sw_thermal",
    "nvmlClocksEventReasonHwThermalSlowdown": "hw_thermal",
    "nvmlClocksEventReasonHwPowerBrakeSlowdown": "hw_power_brake",
}


@dataclass(frozen=True)
class ClockSample:
    sm_clock_mhz: int | None
    reasons: tuple[str, ...]


class ClockWatch:
    """NVML handle for the current CUDA device; every read degrades to None when NVML is absent."""

    def __init__(self, uuid: str | None) -> None:
        self.nv = self.handle = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nv = pynvml
            self.handle = pynvml.nvmlDeviceGetHandleByUUID(uuid) if uuid else pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:  # noqa: BLE001 - no NVML: clocks unknown, timings still valid
            self.nv = None

    def sample(self) -> ClockSample:
        if self.nv is None:
            return ClockSample(None, ())
        try:
            clock = int(self.nv.nvmlDeviceGetClockInfo(self.handle, self.nv.NVML_CLOCK_SM))
            mask = int(self.nv.nvmlDeviceGetCurrentClocksEventReasons(self.handle))
        except Exception:  # noqa: BLE001
            return ClockSample(None, ())
        reasons = tuple(name for attr, name in _THROTTLING.items() if mask & getattr(self.nv, attr, 0))
        return ClockSample(clock, reasons)

    def settle(self, timeout_s: float = 5.0) -> ClockSample:
        """Wait (bounded) for throttling left over from earlier heavy work to clear before timing."""
        import time

        t_end = time.perf_counter() + timeout_s
        s = self.sample()
        while s.reasons and time.perf_counter() < t_end:
            time.sleep(0.1)
            s = self.sample()
        return s
