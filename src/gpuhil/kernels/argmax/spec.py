"""Argmax kernel configs, their Requirements and the config selector (pure Python, no DSL import;
the kernels.contract vocabulary: configs, choose, requirements, unsupported).

Selection is a pure function of (M, N, dtype, Capabilities): the same inputs give the same config
on a GPU, under emulation and in `gpuhil gates` on a CPU, so a decision can be explained anywhere.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

from ...device.capabilities import Capabilities
from ...gating import ConfigRow, Requirements
from ...versions import version_at_least

ELEM_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}
_TORCH_NAMES = {"torch.bfloat16": "bf16", "torch.float16": "fp16", "torch.float32": "fp32"}
DTYPES = tuple(ELEM_BYTES)
# Vocabulary sizes of the models gpuhil serves (Llama 3, Qwen, Gemma, ...) and round powers of two.
VOCAB_SIZES = (4096, 32000, 32768, 128256, 151936, 152064, 201088, 262144)
FORCEABLE_CLUSTERS = (1, 2, 4, 8, 16)
FORCEABLE_SPLITS = (2, 4, 8, 16)
MAX_SPLIT_N = 16  # CTAs per row handing off through global memory (the last one reduces in one thread)
HANDOFFS = ("dsmem", "gmem")
MIN_ELEMS_PER_CTA = 8192  # below this a CTA spends more time on the cluster handoff than on loads
UNROLLS = (2, 4, 8)
PDL_MIN_CC = "9.0"  # griddepcontrol and the programmatic-serialization launch attribute


@dataclass(frozen=True)
class ArgmaxConfig:
    threads: int
    vec: int  # elements per vector load (16 bytes / element size for full-width loads)
    cluster_n: int  # CTAs sharing a row: one cluster, or a split through global memory (handoff)
    unroll: int = 4  # vector loads a thread issues per round (one memory round trip each round)
    # Programmatic dependent launch (sm_90+): the next kernel of the stream launches while this one
    # runs, and this one waits for its predecessor's grid only right before its first load.
    pdl: bool = False
    # How the cluster_n CTAs of a row combine their partial results: "dsmem" within a thread-block
    # cluster (sm_90+ with cluster launch), "gmem" through a global workspace and a per-row counter
    # (any device, e.g. one without cluster launch): the CTA that completes the count reduces.
    handoff: str = "dsmem"

    def __post_init__(self):
        if self.threads % 32 or not 32 <= self.threads <= 1024:
            raise ValueError(f"threads must be a multiple of 32 in 32..1024, got {self.threads}")
        if self.vec not in (1, 2, 4, 8):
            raise ValueError(f"vec must be 1, 2, 4 or 8, got {self.vec}")
        if self.cluster_n < 1 or self.cluster_n & (self.cluster_n - 1):
            raise ValueError(f"cluster_n must be a power of two >= 1, got {self.cluster_n}")
        if self.unroll not in UNROLLS:
            raise ValueError(f"unroll must be one of {UNROLLS}, got {self.unroll}")
        if self.handoff not in HANDOFFS:
            raise ValueError(f"handoff must be one of {HANDOFFS}, got {self.handoff!r}")
        if self.gmem_split and self.cluster_n > MAX_SPLIT_N:
            raise ValueError(f"a split through global memory takes at most {MAX_SPLIT_N} CTAs, got {self.cluster_n}")

    @property
    def cluster_launch(self) -> bool:
        return self.cluster_n > 1 and self.handoff == "dsmem"

    @property
    def gmem_split(self) -> bool:
        return self.cluster_n > 1 and self.handoff == "gmem"

    def workspace_words(self, m: int) -> int:
        """int32 words of global workspace a launch over m rows needs: a counter per row, then a
        (value bits, index) pair per CTA. The kernel leaves every counter at zero again."""
        return m * (1 + 2 * self.cluster_n) if self.gmem_split else 0

    @property
    def name(self) -> str:
        split = "s" if self.gmem_split else "c"
        return f"t{self.threads}v{self.vec}{split}{self.cluster_n}u{self.unroll}{'p' if self.pdl else ''}"

    def smem_bytes(self) -> int:
        """Shared memory per CTA: warp partials (+ cluster partials and an mbarrier)."""
        b = 8 * (self.threads // 32)
        if self.cluster_launch:
            b = -(-b // 8) * 8 + 8 * self.cluster_n + 8
        return b

    def check_vec(self, dtype: str) -> None:
        if self.vec * ELEM_BYTES[dtype] > 16:
            raise ValueError(f"vec={self.vec} exceeds a 16-byte load for {dtype}")


class ArgmaxShape(NamedTuple):
    """What the spec reads of a problem, as `prepare` takes it off the logits."""

    m: int
    n: int
    dtype: str


@functools.cache  # on the launch path: a dict hit after the first call per dtype
def dtype_name(torch_dtype) -> str:
    try:
        return _TORCH_NAMES[str(torch_dtype)]
    except KeyError:
        raise TypeError(f"argmax: logits dtype {torch_dtype} is not supported (bf16, fp16, fp32)") from None


def row_stride(logits) -> int:
    """The row stride the kernel is given: 0 for a single row, whose stride is never used."""
    return logits.stride(0) if logits.shape[0] > 1 else 0


def pick_vec_ok(data_ptr: int, row_stride: int, elem_bytes: int, vec: int) -> bool:
    """Whether a vec-wide config may be used: every row start must be vec*elem_bytes aligned."""
    return vec == 1 or (data_ptr % (vec * elem_bytes) == 0 and row_stride % vec == 0)


def requirements(config: ArgmaxConfig) -> Requirements:
    if not config.cluster_launch and not config.pdl:
        return Requirements(min_cc="8.0", smem_bytes=config.smem_bytes(), needs_dsl=True)
    # Clusters, DSMEM (mapa, st.async), mbarrier tx-counts and griddepcontrol are sm_90+.
    return Requirements(min_cc=PDL_MIN_CC, cluster_size=config.cluster_n if config.cluster_launch else 1,
                        smem_bytes=config.smem_bytes(), needs_dsl=True)


def unsupported(problem) -> str | None:
    """Every M x N is taken, in the dtypes the kernel is built for."""
    if problem.dtype not in ELEM_BYTES:
        return f"argmax: dtype {problem.dtype} is not supported ({', '.join(DTYPES)})"
    return None if problem.m > 0 and problem.n > 0 else f"argmax: empty logits [{problem.m}, {problem.n}]"


def choose(problem, caps: Capabilities, *, vec_ok: bool = True, cluster_n: int | None = None,
           split_n: int | None = None) -> ArgmaxConfig:
    """The config for one launch over `problem` (m, n, dtype). `cluster_n` forces a split over a cluster, `split_n` one through
    global memory (the caller checks it is supported).

    Up to one CTA per SM (M <= SMs, the sampling sizes): split a row as far as the SMs, the probed
    cluster limit (MAX_SPLIT_N through global memory where clusters are absent) and MIN_ELEMS_PER_CTA
    allow, with 512 threads of 4 loads each where the chunk has that much work, and launch with PDL
    where the device has it. These grids are latency-bound: the fewest rounds of loads per CTA and
    an overlapped launch win (H100, M=64 N=151936 bf16: t512 c2 u4 with PDL 9.4 us, t256 c8 u4
    10.1 us, t256 c8 u4 with PDL 11.9 us; M=1: t512 c16 u4 with PDL 2.3 us, without PDL 3.4 us;
    docs/PERF.md). More rows than SMs: one CTA per row, sized to the row, several per SM; no PDL,
    whose early-launched CTAs would take SM slots from this grid's later CTAs and leave the next
    grid's CTAs unevenly placed.
    """
    m, n = problem.m, problem.n
    vec = 16 // ELEM_BYTES[problem.dtype] if vec_ok else 1
    sms = caps.sm_count or 1
    if split_n is not None:
        cluster_n, handoff = split_n, "gmem"
    elif cluster_n is not None:
        handoff = "dsmem"
    else:
        # The same split either way; without cluster launch (H20, pre-Hopper) through global memory.
        clusters = caps.cluster_launch and caps.max_cluster_size > 1
        limit, handoff = (caps.max_cluster_size, "dsmem") if clusters else (MAX_SPLIT_N, "gmem")
        cluster_n = 1
        while cluster_n * 2 <= limit and m * cluster_n * 2 <= sms and n // (cluster_n * 2) >= MIN_ELEMS_PER_CTA:
            cluster_n *= 2
    per_cta = n // cluster_n
    unroll = 4
    if m * cluster_n <= sms:
        threads = 64
        while threads < 512 and threads * unroll * vec < per_cta:
            threads *= 2
        pdl = caps.cc is not None and version_at_least(caps.cc, PDL_MIN_CC)
    else:
        threads = 64 if per_cta <= 2048 else 128 if per_cta <= 16384 or m * cluster_n >= 4 * sms else 256
        pdl = False
    return ArgmaxConfig(threads=threads, vec=vec, cluster_n=cluster_n, unroll=unroll, pdl=pdl,
                        handoff=handoff if cluster_n > 1 else "dsmem")


def _config_details(cfg: ArgmaxConfig) -> dict:
    """What a gate row says about a config; "cluster" is the launch's real cluster shape (a split
    through global memory launches none)."""
    return {"cluster_n": cfg.cluster_n, "threads": cfg.threads, "vec": cfg.vec, "unroll": cfg.unroll, "pdl": cfg.pdl,
            "handoff": cfg.handoff, "cluster": [cfg.cluster_n if cfg.cluster_launch else 1, 1],
            "smem_bytes": cfg.smem_bytes()}


def configs(caps: Capabilities):
    """The configs a device gets for the suite's vocab sizes, and every forceable cluster and split."""
    for dtype in DTYPES:
        for n in VOCAB_SIZES:
            for m in (1, 64):
                cfg = choose(ArgmaxShape(m, n, dtype), caps)
                yield ConfigRow("argmax", f"auto M={m} N={n} {dtype}", requirements(cfg),
                                {"M": m, "N": n, "dtype": dtype, **_config_details(cfg), "forced": False})
    forced = [(f"forced cluster_n={c}", {"cluster_n": c}) for c in FORCEABLE_CLUSTERS]
    forced += [(f"forced split_n={c}", {"split_n": c}) for c in FORCEABLE_SPLITS]
    for label, option in forced:
        cfg = choose(ArgmaxShape(1, 151936, "bf16"), caps, **option)
        yield ConfigRow("argmax", f"{label} N=151936 bf16", requirements(cfg),
                        {"M": 1, "N": 151936, "dtype": "bf16", **_config_details(cfg), "forced": True})
