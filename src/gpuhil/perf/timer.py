"""The one timer of gpuhil's benchmarks and perf cases.

- CUDA events around the work, on the device's own clock.
- Cold L2: a flush buffer of at least twice the probed L2 is overwritten before each sample (events
  mode), or the caller rotates among input sets larger than that (graph mode, for microsecond kernels
  where a launch from Python would cost more than the kernel).
- Warm-up by time, then samples until the median's relative standard error settles below `rel_tol`
  (0.5 %) or a cap is hit.
- NVML SM clock and throttle reasons before and after: a throttled case is marked, not hidden.
- Host time per call without graphs, of several callables interleaved sample by sample (ours, the
  peer's, ours, ...), so a burst of CPU interference lands on both sides of a ratio.
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
MAX_INPUT_SETS = 512  # the most input sets (so calls per replay) a case rotates through


def cold_input_sets(l2_bytes: int | None, nbytes: int, cap: int = MAX_INPUT_SETS) -> int:
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


def interleaved_host_us(fns: Sequence[Callable[[], object]], *, calls: int, repeats: int,
                        clock: Callable[[], float], sync: Callable[[], object]) -> list[float]:
    """Host time per call of each of `fns` in us: a sample is the time to enqueue `calls` launches of one
    of them (fewer than the launch queue holds, so the CPU never waits on the GPU), then `sync` outside
    the sample. Samples go round-robin, fns[0], fns[1], ..., fns[0], ..., `repeats` each; each gets the
    median of its own.

    Interleaved because interference on a shared CPU comes in bursts of a few milliseconds (a 16-element
    torch add_ measured 6.3 us and then 60 us per call within a second, the thread on the CPU
    throughout): a burst then slows the samples of both sides, not one side's whole measurement, and
    fifteen repeats, as for GPU samples, keep one burst from setting a median."""
    for fn in fns:
        fn()
    sync()
    xs: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, samples in zip(fns, xs):
            t0 = clock()
            for _ in range(calls):
                fn()
            samples.append((clock() - t0) / calls * 1e6)
            sync()
    return [statistics.median(s) for s in xs]


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

    def host(self, fns: Sequence[Callable[[], object]], calls: int = 200, repeats: int = 15) -> list[float]:
        """Host time per call of each of `fns` in us, no graph (interleaved_host_us): what a caller that
        does not capture graphs pays on the CPU for each call, ours beside the peer's in one run."""
        return interleaved_host_us(fns, calls=calls, repeats=repeats, clock=time.perf_counter,
                                   sync=self.torch.cuda.synchronize)

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
