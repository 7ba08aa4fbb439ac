"""What one call of a perf case must do at least, and the roofline that sets against ceilings.

An op's roofline function (gpuhil.ops.<op>.roofline) turns a problem into a Work; the recorder
sets it against the ceilings measured in the same run. The roofline is the longer of two times:
the bytes moved once at the measured copy rate, and the FLOPs at the measured dense GEMM rate of
the math the kernels run. The ceiling that sets it is the row's `ceiling`, so `pct_of_ceiling` is
the case's % of its roofline.
"""

from __future__ import annotations

from dataclasses import dataclass

COPY = "device copy"


def gemm_ceiling(math: str) -> str:
    """The name of the dense GEMM ceiling of `math` ("fp8", "bf16"), as rows spell it."""
    return f"{math} GEMM via torch"


@dataclass(frozen=True)
class Work:
    bytes: int  # moved at least once: inputs read, outputs written
    flops: int = 0  # 2 per multiply-add
    math: str | None = None  # the dense GEMM rate the FLOPs are set against: "fp8" or "bf16"

    def __post_init__(self) -> None:
        if self.flops and self.math not in ("fp8", "bf16"):
            raise ValueError(f"Work: FLOPs need math 'fp8' or 'bf16', got {self.math!r}")


@dataclass(frozen=True)
class Roofline:
    us: float  # the time the measured ceilings allow one call
    ceiling: str  # the ceiling that sets it: COPY or gemm_ceiling(math)
    value: float  # that ceiling's measured rate: GB/s (read + written) or TFLOP/s


def roofline(work: Work, measured: dict[str, float]) -> Roofline:
    """`measured`: copy_gbps and <math>_gemm_tflops, as PerfRecorder.measure_ceilings returns them."""
    copy = measured["copy_gbps"]
    best = Roofline(work.bytes / (copy * 1e3), COPY, copy)
    if work.flops:
        rate = measured[f"{work.math}_gemm_tflops"]
        math_us = work.flops / (rate * 1e6)
        if math_us >= best.us:
            best = Roofline(math_us, gemm_ceiling(work.math), rate)
    return best
