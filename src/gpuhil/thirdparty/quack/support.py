"""What quack's own code asks of a device, stated once with its source, and the provider base its
op modules share. Pure Python: nothing here imports quack.

Sources are file:line in the quack-kernels 0.6.5 wheel (the `quack/` package; the same files as
the v0.6.4 tag on GitHub). quack picks its kernel class by the compute capability's major
(`cute_dsl_utils.get_device_capacity`, which a QUACK_ARCH variable overrides) and, called with
`tuned=False`, the per-arch default config; a config launched with a cluster needs cluster launch,
and the stage count fills the arch's shared memory as the CuTe DSL's table states it. So the
requirements of one of its GEMMs on a device follow from that device's family alone (and for the
block-scaled one, from M and N too), and an H20 (no cluster launch) or an emulated GB10 (99 KiB of
shared memory on a Hopper) is refused by our gate before quack would fail at launch.
"""

from __future__ import annotations

import dataclasses

from ...gating import Plan
from .. import QUACK
from ..provider import LibraryProvider

# The GPUs its README supports: "H100, B200/B300, or RTX 50 GPU" (sm_90, sm_100/103, sm_120/121;
# https://github.com/Dao-AILab/quack#requirements). Kernels without an arch table of their own
# (topk) are held to this.
README_FAMILIES = frozenset({9, 10, 12})
# GEMM kernel classes by cc major: epilogue/frontend.py:204 and gemm.py:93-100 map 8 -> SM80,
# 9 -> SM90, 10 and 11 -> SM100, 12 -> SM120; the SM80 class is F16/BF16 only (its MMA is
# MmaF16BF16Op, gemm_sm80.py:126), so FP8 runs on 9, 10, 11 and 12 (SM90 requires k-major FP8
# operands, gemm_sm90.py:2275).
FP8_GEMM_FAMILIES = frozenset({9, 10, 11, 12})
# Block-scaled (NVFP4) GEMM: "Blockscaled GEMM requires SM100/SM110/SM120",
# gemm_tvm_ffi_utils.py:111. Hopper has none.
BLOCKSCALED_FAMILIES = frozenset({10, 11, 12})
# Shared memory the GEMM pipelines are sized to fill: gemm_sm90.py:464, gemm_sm100.py:565 and
# gemm_sm120.py:403 read cutlass.utils.get_smem_capacity_in_bytes(f"sm_{arch}"), which is
# 232448 B for sm_90/100/103/110 and 101376 B for sm_120/121 (nvidia-cutlass-dsl 4.8.1).
GEMM_SMEM_BYTES = {9: 232448, 10: 232448, 11: 232448, 12: 101376}


def default_gemm_cluster(family: int | None) -> int:
    """The cluster of quack's untuned default config (gemm_config.py:331-372): 2 CTAs along M on
    SM90 (128x192 ping-pong) and SM100/110 (256x256, 2-CTA MMA), none on SM120."""
    return 2 if family in (9, 10, 11) else 1


def blockscaled_cluster(family: int | None, m: int, n: int) -> int:
    """The cluster of quack's untuned block-scaled config (gemm_config.py:288-307): SM100/110 take
    a 256-row tile on a cluster of 2 when M >= 512 and N >= 128, else 128x128 alone; SM120 never."""
    return 2 if family in (10, 11) and m >= 512 and n >= 128 else 1


def gemm_needs(family: int | None, cluster: int) -> dict:
    """Requirements fields of a quack GEMM config on a device of this family."""
    return {"cluster_size": cluster, "smem_bytes": GEMM_SMEM_BYTES.get(family, 0)}


class QuackProvider(LibraryProvider):
    """A quack kernel under our gate. `config_needs(problem, caps)` adds what the config quack's
    own default picks there needs (cluster, shared memory) to `needs`."""

    library = QUACK
    backend = "cute-dsl"
    # quack refuses with host asserts and ValueErrors, and TVM-FFI rejects an operand whose
    # strides or alignment the compiled signature does not take.
    refusals = (AssertionError,)
    refusal_text = (r"Invalid \S+\.(?:strides|shape|data)|expected to be divisible|does not support|"
                    r"not supported yet|requires SM|must be (?:k|n)-major|is \(total_m")

    def config_needs(self, problem, caps) -> dict:
        return {}

    def plan(self, problem, caps, **options) -> Plan:
        plan = super().plan(problem, caps, **options)
        extra = self.config_needs(problem, caps)
        if not extra:
            return plan
        return dataclasses.replace(plan, requirements=tuple(dataclasses.replace(r, **extra)
                                                            for r in plan.requirements))
