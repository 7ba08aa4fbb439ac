"""Hardware ceilings measured in the same run as the cases they judge, cached per process, and the
same-work references a case can be set beside: the plainest operation doing the same work (a copy
of the same bytes, a dense GEMM of the same FLOPs), timed the same way in the same run."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .timer import MAX_INPUT_SETS, Timer
from .work import READ, gemm_ceiling

STREAM_BYTES = 1 << 30  # 1 GiB: far past any L2, long enough to hide launch cost


@functools.cache
def copy_gbps(timer: Timer) -> float:
    """Device-to-device copy bandwidth, counting bytes read plus bytes written."""
    import torch

    src = torch.empty(STREAM_BYTES, dtype=torch.uint8, device="cuda").random_()
    dst = torch.empty_like(src)
    t = timer.events(lambda: dst.copy_(src))
    return 2 * STREAM_BYTES / (t.median_us * 1e-6) / 1e9


@functools.cache
def read_gbps(timer: Timer) -> float:
    """Read bandwidth: a sum over 1 GiB of fp32 (16-byte loads, one value written), timed like the
    copy. A read-mostly kernel can pass a copy's rate, which pays for writes too; not this one's."""
    import torch

    src = torch.empty(STREAM_BYTES // 4, dtype=torch.float32, device="cuda").uniform_()
    t = timer.events(src.sum)
    return STREAM_BYTES / (t.median_us * 1e-6) / 1e9


@functools.cache
def launch_us(timer: Timer) -> float:
    """The launch floor: one empty kernel (torch.cuda._sleep(0): one thread that returns at once) per
    call, timed as the cases are, from graph replays. A replay holds as many calls as the most any
    case puts in one, so its own launch weighs no more on the floor than on a case."""
    import torch

    return timer.graph([lambda: torch.cuda._sleep(0)], calls_per_replay=MAX_INPUT_SETS).median_us


GEMM_N = 8192  # square, large enough to run the tensor cores at their sustained rate


def dense_gemm(kind: str, m: int, n: int, k: int) -> Callable[[], object]:
    """A call of a dense [m, k] x [k, n] GEMM through torch on random data, bf16 out: 'bf16' (matmul)
    or 'fp8' (torch._scaled_mm on e4m3, B column-major as it wants, unit scales)."""
    import torch

    if kind == "bf16":
        a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
        out = torch.empty(m, n, device="cuda", dtype=torch.bfloat16)
        return lambda: torch.matmul(a, b, out=out)
    if kind == "fp8":
        a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16).to(torch.float8_e4m3fn)
        b = torch.randn(n, k, device="cuda", dtype=torch.bfloat16).to(torch.float8_e4m3fn)
        one = torch.ones((), device="cuda")
        return lambda: torch._scaled_mm(a, b.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    raise ValueError(f"dense_gemm: kind must be 'bf16' or 'fp8', got {kind!r}")


@functools.cache
def gemm_tflops(timer: Timer, kind: str) -> float:
    """Dense GEMM TFLOP/s through torch on random data, 8192^3: 'bf16' or 'fp8'."""
    n = GEMM_N
    t = timer.events(dense_gemm(kind, n, n, n))
    return 2 * n**3 / (t.median_us * 1e-6) / 1e12


@dataclass(frozen=True)
class SameWork:
    """A reference doing a case's work on the plainest path. The recorder times it (once per `key` and
    process) only where `ceiling` is the ceiling that sets the case's roofline: beside a bytes-bound
    case a copy of its bytes, beside a math-bound one a dense GEMM of its FLOPs."""

    what: str  # as the table names it
    ceiling: str  # work.READ or work.gemm_ceiling(kind)
    key: tuple
    calls: Callable[[], Sequence[Callable[[], object]]]  # built only when timed
    calls_per_replay: int | None = None


def same_size_copy(inputs: Sequence) -> SameWork:
    """A copy of each input's first half onto its second half: the bytes one call reads, moved from the
    same cold rotating sets (half read, half written). It overwrites the inputs' second halves."""
    def calls():
        halves = [x.view(-1)[: x.numel() // 2 * 2].view(2, -1) for x in inputs]
        return [lambda h=h: h[1].copy_(h[0]) for h in halves]

    first = inputs[0]
    return SameWork("copy of the same bytes", READ, ("copy", first.numel() * first.element_size(), len(inputs)), calls)


def same_flops_gemm(kind: str, m: int, n: int, k: int) -> SameWork:
    """The dense GEMM [m, k] x [k, n] (m = every routed token), timed like a grouped GEMM: graph replays
    of 3 calls back to back. The ceiling is measured one GEMM at a time with pauses between samples; a
    run this long draws as much power as the grouped GEMM does, so it shows what the tensor cores
    sustain for this much work under the same power cap."""
    return SameWork(f"dense {kind} GEMM of the same FLOPs", gemm_ceiling(kind), (kind, m, n, k),
                    lambda: [dense_gemm(kind, m, n, k)], calls_per_replay=3)
