"""The one timer of gpuhil's benchmarks and perf cases.

- CUDA events around the work, on the device's own clock.
- Cold L2: a flush buffer of at least twice the probed L2 is overwritten before each sample (events
  mode), or the caller rotates among input sets larger than that (graph mode, for microsecond kernels
  where a launch from Python would cost more than the kernel).
- Warm-up by time, then samples until the median's relative standard error settles below `rel_tol`
  (0.5 %) or a cap is hit.
- NVML SM clock and throttle reasons before and after: a throttled case is marked, not hidden.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .clocks import ClockWatch


@dataclass(frozen=True)
class Timing:
    median_us: float
    p25_us: float
    p75_us: float
    min_us: float
    n_samples: int
    stdrel: float  # relative standard error of the median
    mode: str  # "events" or "graph"
    sm_clock_mhz: int | None
    throttled: bool
    throttle_reasons: tuple[str, ...]


REPLAY_TARGET_US = 2000.0  # a replay this long makes its ~10 us launch cost < 1 % of a sample
UNKNOWN_L2_BYTES = 64 << 20  # larger than any L2 shipped so far: flushing too much is only slower


def cold_input_sets(l2_bytes: int | None, nbytes: int, cap: int = 512) -> int:
    """How many distinct input sets of `nbytes` a graph-mode case rotates through so that together
    they exceed twice the L2, making every call read cold data (at least 2, at most `cap`)."""
    return max(2, min(cap, math.ceil(2 * (l2_bytes or UNKNOWN_L2_BYTES) / nbytes)))


def replay_calls(call_us: float, most: int = 50) -> int:
    """Calls per graph replay for a call of `call_us`: about REPLAY_TARGET_US of work, 1 to `most`."""
    return max(1, min(most, math.ceil(REPLAY_TARGET_US / max(call_us, 1e-3))))


def _quantile(sorted_xs: list[float], q: float) -> float:
    pos = q * (len(sorted_xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def _median_stdrel(xs: list[float]) -> float:
    # Standard error of the median ~ 1.2533 sigma / sqrt(n) (normal approximation), sigma from the IQR.
    s = sorted(xs)
    sigma = (_quantile(s, 0.75) - _quantile(s, 0.25)) / 1.349
    return 1.2533 * sigma / math.sqrt(len(xs)) / statistics.median(xs)


class Timer:
    def __init__(self, *, l2_bytes: int | None, uuid: str | None = None, warmup_s: float = 0.1, rel_tol: float = 0.005,
                 min_samples: int = 15, max_samples: int = 300, max_seconds: float = 2.0) -> None:
        import torch

        self.torch = torch
        # Twice the L2, so nothing the timed work touched before survives the flush.
        self.flush_buf = torch.empty(2 * (l2_bytes or UNKNOWN_L2_BYTES), dtype=torch.uint8, device="cuda")
        self.clocks = ClockWatch(uuid)
        self.warmup_s, self.rel_tol = warmup_s, rel_tol
        self.min_samples, self.max_samples, self.max_seconds = min_samples, max_samples, max_seconds

    def _sample_loop(self, one_sample: Callable[[], float]) -> tuple[list[float], tuple]:
        before = self.clocks.sample()
        xs: list[float] = []
        t_end = time.perf_counter() + self.max_seconds
        while len(xs) < self.max_samples:
            xs.append(one_sample())
            if len(xs) >= self.min_samples and (_median_stdrel(xs) < self.rel_tol or time.perf_counter() > t_end):
                break
        after = self.clocks.sample()
        return xs, (before, after)

    def _warm(self, *fns: Callable[[], object]) -> None:
        """Run the work (round-robin over input sets) for warmup_s, at least three rounds."""
        t_end = time.perf_counter() + self.warmup_s
        rounds = 0
        while rounds < 3 or time.perf_counter() < t_end:
            for fn in fns:
                fn()
            rounds += 1
            self.torch.cuda.synchronize()

    def events(self, fn: Callable[[], object]) -> Timing:
        """Time `fn` with a cold L2 before every sample."""
        torch = self.torch
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        self._warm(fn)

        def one() -> float:
            self.flush_buf.bitwise_not_()  # a write of the whole buffer evicts whatever fn read before
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) * 1e3

        xs, clocks = self._sample_loop(one)
        return self._timing(xs, "events", clocks)

    def _call_us(self, fns: Sequence[Callable[[], object]]) -> float:
        """One warm call's time, launch gaps included (an upper bound, good enough to size replays)."""
        torch = self.torch
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for fn in fns:
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1e3 / len(fns)

    def graph(self, fns: Sequence[Callable[[], object]], calls_per_replay: int | None = None) -> Timing:
        """Time one call of `fns[i]` (rotating, so inputs are cold when their total exceeds L2) from a
        CUDA graph replay, which removes launch gaps from microsecond kernels. By default a replay holds
        about REPLAY_TARGET_US of work (at most 50 calls): enough to amortize the replay's own launch
        for microsecond kernels, without making a 40 ms call take 2 s per sample."""
        torch = self.torch
        self._warm(*fns)
        if calls_per_replay is None:
            calls_per_replay = replay_calls(self._call_us(fns))
        calls_per_replay = max(calls_per_replay, len(fns))  # every input set once per replay
        graph = torch.cuda.CUDAGraph()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            with torch.cuda.graph(graph, stream=stream):
                for i in range(calls_per_replay):
                    fns[i % len(fns)]()
        torch.cuda.current_stream().wait_stream(stream)
        graph.replay()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def one() -> float:
            start.record()
            graph.replay()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) * 1e3 / calls_per_replay

        xs, clocks = self._sample_loop(one)
        return self._timing(xs, "graph", clocks)

    def host(self, fn: Callable[[], object], calls: int = 200, repeats: int = 15) -> float:
        """Host time per call of `fn` in us, no graph: the time to enqueue `calls` launches (fewer than
        the launch queue holds, so the CPU never waits on the GPU), median of `repeats`. This is what a
        caller that does not capture graphs pays on the CPU for each call.

        Fifteen repeats, as for GPU samples: on a shared CPU, interference comes in bursts of a few
        milliseconds (a 16-element torch add_ measured 6.3 us and then 60 us per call within a second,
        the thread on the CPU throughout), so with five repeats one burst could set the median."""
        torch = self.torch
        fn()
        torch.cuda.synchronize()
        xs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            xs.append((time.perf_counter() - t0) / calls * 1e6)
            torch.cuda.synchronize()
        return statistics.median(xs)

    def _timing(self, xs: list[float], mode: str, clocks) -> Timing:
        s = sorted(xs)
        before, after = clocks
        reasons = tuple(sorted(set(before.reasons) | set(after.reasons)))
        known = [c.sm_clock_mhz for c in clocks if c.sm_clock_mhz]
        return Timing(
            median_us=statistics.median(s), p25_us=_quantile(s, 0.25), p75_us=_quantile(s, 0.75), min_us=s[0],
            n_samples=len(s), stdrel=_median_stdrel(s) if len(s) > 1 else float("inf"), mode=mode,
            sm_clock_mhz=min(known) if known else None, throttled=bool(reasons), throttle_reasons=reasons,
        )
