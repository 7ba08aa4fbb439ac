"""What one call of a perf case must do at least, and the roofline that sets against ceilings.

An op's roofline function (gpuhil.ops.<op>.roofline) turns a problem into a Work; the recorder
sets it against the ceilings measured in the same run (perf/ceilings.py) and the device's datasheet.
The roofline is the longest of three times, each a bound no call can beat:
- the bytes moved once at the read-stream rate (the faster of a sum over 1 GiB, which reads, and a
  1 GiB copy, which reads and writes: a read-mostly kernel can pass a copy's rate), or at the
  datasheet's memory bandwidth where nothing measured is higher: a well-pipelined kernel can read
  faster than torch's sum does (an H100 ran our FP8 decode GEMM at 103 % of it), never faster than
  the memory's peak;
- the FLOPs at the dense GEMM rate of the math the kernels run: torch's GEMM measured in the run, or
  the datasheet's peak where that is higher (a grouped GEMM ran at 111 % of torch's 8192^3 GEMM);
- the launch floor: one empty kernel per call, timed from graph replays as the cases are, which
  bounds a small problem that moves too few bytes for bandwidth to matter.
The ceiling that sets it is the row's `ceiling`, so `pct_of_ceiling` is the case's % of its roofline.
A case above 100 % means a ceiling did not bound it: `above_roofline` says so, and the row is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

READ = "read stream"
DATASHEET_BW = "datasheet bandwidth"
LAUNCH = "launch floor"
DATASHEET = "datasheet"  # ends the name of every ceiling read from the catalog, not measured


def gemm_ceiling(math: str) -> str:
    """The name of the dense GEMM ceiling of `math` ("fp8", "bf16"), as rows spell it."""
    return f"{math} GEMM via torch"


def datasheet_peak(math: str) -> str:
    """The name of the datasheet's dense `math` peak when it sets a roofline."""
    return f"{math} peak, datasheet"


def unit(ceiling: str) -> str:
    """The unit of a ceiling's value as rows carry it."""
    return "GB/s" if ceiling in (READ, DATASHEET_BW) else "us" if ceiling == LAUNCH else "TFLOP/s"


def measured(ceiling: str) -> bool:
    """Whether a ceiling was measured in the run (else it is the datasheet's figure)."""
    return not ceiling.endswith(DATASHEET) and ceiling != DATASHEET_BW


@dataclass(frozen=True)
class Datasheet:
    """The device's published peaks (the catalog SKU's), bounds no kernel can pass; None: not published."""

    mem_bw_gbs: float | None = None
    tflops: dict[str, float] | None = None  # math ("fp8", "bf16") -> dense TFLOP/s


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
    ceiling: str  # the ceiling that sets it: READ, gemm_ceiling(math) or LAUNCH
    value: float  # that ceiling's measured value: GB/s (bytes read), TFLOP/s, or the floor in us
    throughput: str  # READ or gemm_ceiling(math): the rate that binds when launch cost is left out


def roofline(work: Work, ceilings: dict[str, float], datasheet: Datasheet | None = None) -> Roofline:
    """`ceilings`: read_gbps, copy_gbps, launch_us and <math>_gemm_tflops, as
    PerfRecorder.measure_ceilings returns them; `datasheet`: the device's peaks, where known."""
    sheet = datasheet or Datasheet()
    read, read_name = max(ceilings["read_gbps"], ceilings["copy_gbps"]), READ
    if sheet.mem_bw_gbs and sheet.mem_bw_gbs > read:
        read, read_name = sheet.mem_bw_gbs, DATASHEET_BW
    best = Roofline(work.bytes / (read * 1e3), read_name, read, READ)
    if work.flops:
        rate, name = ceilings[f"{work.math}_gemm_tflops"], gemm_ceiling(work.math)
        peak = (sheet.tflops or {}).get(work.math)
        if peak and peak > rate:
            rate, name = peak, datasheet_peak(work.math)
        math_us = work.flops / (rate * 1e6)
        if math_us >= best.us:
            best = Roofline(math_us, name, rate, gemm_ceiling(work.math))
    floor = ceilings["launch_us"]
    if floor > best.us:
        best = Roofline(floor, LAUNCH, floor, best.throughput)
    return best


def above_roofline(pct_of_ceiling: float, roof: Roofline) -> str | None:
    """The sanity check of a timed case: None when it is within its roofline, else the one line that
    says it is not (the timing, the work count or the ceiling is wrong, so no % of it means anything)."""
    if pct_of_ceiling <= 100:
        return None
    where = "measured in this run" if measured(roof.ceiling) else "the device's published peak"
    return (f"above its roofline: {pct_of_ceiling:.1f} % of the {roof.ceiling} ({roof.value:.4g} {unit(roof.ceiling)} "
            f"{where}); the case does less work than it declares, reads warm data, or the ceiling "
            "does not bound it")
