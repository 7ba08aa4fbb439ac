"""argmax as FlashInfer's top-1 (provider `flashinfer-topk1`): `flashinfer.top_k(logits, 1,
tie_break=TopKTieBreak.SMALL)`, copied into gpuhil's (values fp32 [M], indices int64 [M]).

FlashInfer has no argmax outside its experimental b12x package; top-k with the smaller-index
tie-break is the exact one (its sampling paths draw among ties). top_k allocates its outputs
([M, 1] in the logits' dtype, int64 indices) on every call; the copy into gpuhil's buffers is exact.

Which kernel runs, and what it needs. No support metadata is attached to top_k, so the requirements
are read off its code. Its Python dispatch (flashinfer/topk.py:978-1003), for k = 1 with a tie-break:
- `cub` (CUB's DeviceBatchedTopK) where `can_use_cub_topk` holds, N <= 2^21 and, with a tie-break,
  cc major >= 9 (topk.py:661-667; CUB's tie-break configurations are SM 9.0+, csrc/cub_topk.cu:17-21),
  and `is_cub_topk_beneficial` holds for an eager call: M < 128 or N <= 8192, or 16-bit logits with
  N >= 131072 and M < 256 (bf16: M <= 256) (topk.py:728-739). Needs cc >= 9.0.
- `radix` otherwise. With a tie-break only its FilteredTopK kernel runs, which takes 128 KiB of
  dynamic shared memory and returns cudaErrorNotSupported where the device has less
  (include/flashinfer/topk.cuh:2561-2563, 3592-3601, 3763-3766). Needs 131072 B of opt-in shared
  memory per block (FlashInfer reads the per-SM maximum, which exceeds the per-block opt-in by the
  1 KiB the driver reserves, so the two agree on every part) and cc >= 7.5 (FlashInfer's floor,
  flashinfer/jit/core.py:122-142). So an SM12x part (99 KiB) runs only the CUB shapes.
CUB's tie-breaking top-k is its cluster backend: it sizes clusters at run time from
cudaOccupancyMaxPotentialClusterSize and launches through cudaLaunchKernelEx with a cluster
dimension every time (flashinfer/data/cccl/cub/cub/device/dispatch/dispatch_batched_topk.cuh:238-263,
626-631). Whether a part without cluster launch (an H20) accepts that launch is not known here, and
`--emulate-sku h20` cannot show it (CUB reads the real device): no cluster requirement is stated.
A CUDA-graph capture moves rows of M >= 128 to CUB from N >= 65536 (16-bit) or 32768 (fp32)
(topk.py:714-718); the plan is the eager call's, so under a capture (the perf set) a device may run
CUB where the plan named the radix kernel, never the reverse on cc >= 9.0.

Contract. gpuhil's argmax is the first index of the maximum, NaN the maximum. Both kernels compare
keys made from the bit patterns (negative: every bit flipped, else the sign bit flipped;
include/flashinfer/topk_common.cuh:35-39 and the 16-bit traits below it, CUB's radix traits alike)
and SMALL keeps the smaller index of equal keys (topk.cuh:2833-2836, cub_topk.cu:359-362). So a
positive NaN ranks above +inf and the first of equal NaNs wins, as the contract says. Two inputs
break it, and the suite's rows hold neither (their NaNs are positive, their zeros +0.0): a NaN with
the sign bit set ranks below -inf, and +0.0 ranks above -0.0 (a row whose maximum is zero gets the
first +0.0, not the first zero).

Layout. The CUB path reads row-strided views (last dimension contiguous, rows not overlapping:
cub_topk.cu:449-453, 749); the radix path checks the input is contiguous (csrc/topk.cu:47,
CHECK_INPUT) and raises "input must be contiguous" on a view. That refusal is not hidden by a copy:
it fails as a gate disagreement. The suite's strided rows (M = 64) go to CUB.

Build: every backend is in FlashInfer's one JIT module `topk`, whose build takes longer than a case
may run; the launch is refused naming the command that builds it unless it is built (prebuilt.py).

Environment: FLASHINFER_TOPK_ALGO (cub, clusters, default in Python; filtered, multi_cta in C++,
topk.cuh:3604-3611) forces a backend; the plan assumes it unset.
"""

from __future__ import annotations

import dataclasses

import torch

from ...gating import Plan, Requirements
from ...ops.argmax.problems import ArgmaxProblem
from ..provider import LibraryProvider
from .. import FLASHINFER as LIBRARY
from . import prebuilt, toolkit

CUB_MAX_N = 1 << 21  # DeviceBatchedTopK's segment limit (topk.py:661, cub_topk.cu:52)
FILTERED_TOPK_SMEM_BYTES = 2 * 16 * 1024 * 4  # two 16K-index int buffers (topk.cuh:2561-2563)

BACKENDS = {
    "cub": Requirements(min_cc="9.0"),
    "radix": Requirements(min_cc="7.5", smem_bytes=FILTERED_TOPK_SMEM_BYTES),
}


def chosen_backend(problem: ArgmaxProblem, cc: str | None) -> str:
    """The kernel top_k's eager dispatch picks for argmax of `problem` on a device of `cc`."""
    major = int(cc.split(".")[0]) if cc else 0
    if major < 9 or problem.n > CUB_MAX_N:
        return "radix"
    if problem.m < 128 or problem.n <= 8192:
        return "cub"
    wide_16bit = problem.dtype != "fp32" and problem.n >= 131072
    return "cub" if wide_16bit and (problem.m < 256 or (problem.dtype == "bf16" and problem.m <= 256)) else "radix"


class TopK1(LibraryProvider):
    name, op, backend, library = "flashinfer-topk1", "argmax", "cuda-cpp", LIBRARY
    needs = Requirements(min_cc="7.5")  # FlashInfer's floor; a problem's plan adds its backend's (BACKENDS)
    refusal_text = r"must be contiguous|error code operation not supported"

    def plan(self, problem, caps, **options) -> Plan:
        if options:
            raise ValueError(f"{self.name} takes no options, got {sorted(options)}")
        if problem is None:
            return super().plan(problem, caps)
        chosen = chosen_backend(problem, caps.cc)
        req = BACKENDS[chosen]
        needs = dataclasses.replace(self.requirements, min_cc=req.min_cc, smem_bytes=req.smem_bytes)
        return Plan(f"{self.name} {problem.name} ({chosen})", requirements=(needs,))

    def prepare(self, logits, caps, **options):
        self.plan(ArgmaxProblem.of(logits), caps, **options).ensure(caps)
        return super().prepare(logits, caps, **options)

    def launcher(self, caps, **options):
        import flashinfer
        from flashinfer.topk import TopKTieBreak

        toolkit.require_headers(toolkit.CURAND, "top-k")
        # top_k builds FlashInfer's `topk` module on its first call: longer than a case may run (prebuilt.py).
        prebuilt.require_built("topk")

        def argmax(logits, out=None):
            m = logits.shape[0]
            vals, idx = out if out is not None else (torch.empty(m, dtype=torch.float32, device=logits.device),
                                                     torch.empty(m, dtype=torch.int64, device=logits.device))
            top_vals, top_idx = flashinfer.top_k(logits, 1, tie_break=TopKTieBreak.SMALL)
            vals.copy_(top_vals[:, 0])
            idx.copy_(top_idx[:, 0])
            return vals, idx
        return argmax

