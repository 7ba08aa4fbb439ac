"""Seed 002 with FlashInfer's own kernels: flashinfer-python's B12x NVFP4 fused MoE (the top-level
`b12x` package, flashinfer/experimental/b12x) compiled on the CPU for sm_121a (GB10) and sm_120a
(RTX 5090) through its own kernel factories (`_get_micro_kernel`, `_get_dynamic_kernel` of
b12x.moe.fused_moe._impl: fake pointers and tensors, the stream its offline compile workers also
pass), for the smallest served layer (Qwen3-30B-A3B: 128 experts, hidden 2048, intermediate 768,
top-8) at the decode batches where FlashInfer's own policy picks each kernel: 1 token (8 routed
rows: the direct "micro" kernel) and 8 tokens (64 routed rows: the "dynamic" kernel). Under the DSL
FlashInfer's `b12x` extra pins (4.7.1) with each payload in its own environment, and under the
project's (4.8.1) with its loader told a CUDA 12.9 or 13.0 driver. The probe: seed002_probe.py.

What flashinfer-python 0.7.2.post1 does (asserted below, both targets):
* the micro kernel holds no MMA instruction at all: it decodes E2M1 to f16 and accumulates f16x2
  dot products in fp32, so no payload can break it the way seed 002 broke the field kernel;
* the dynamic kernel issues the block-scaled MMA through CuTe's MmaMXF4NVF4Op atom, which every
  probed payload lowers to inline PTX in the public spelling
  ``mma.sync.aligned.kind::mxf4nvf4.block_scale.scale_vec::4X.m16n8k64.row.col.f32.e2m1.e2m1.f32.ue4m3``,
  and that payload's own ptxas assembles it: 4.7.1 CUDA 12.9 at PTX ISA 8.8 (ptxas 12.9), 4.7.1
  CUDA 13.3 at 9.3 (ptxas 13.3), 4.8.1 CUDA 12.9 at 8.8 (ptxas 12.9), 4.8.1 CUDA 13.4 at 9.4
  (ptxas 13.4). No ptxas rejection: the `_mma.block_scale` lowering is DSL 4.5.0's alone
  (test_seed002_payload.py), and FlashInfer's own gate (b12x._lib.gating, MIN_CUTLASS_DSL 4.6.0)
  refuses 4.5.0 whichever payload it carries.
So the known issue (DSL < 4.5.1 with a payload below 13) applies to none of these combinations,
and FlashInfer refuses the one where it would. gpuhil's native kernel, gated on a payload >= 13, is
refused under both CUDA 12.9 payloads though FlashInfer's kernel assembles there: that gate is
conservative (no SM12x part has run a CUDA 12.9 cubin of this MMA for us yet), pinned here.
"""

from importlib import metadata

import pytest
from packaging.requirements import Requirement

from gpuhil.gating import Requirements
from gpuhil.ops.nvfp4_moe.problems import LAYERS
from seed002_probe import Dsl, installed_payloads, known_issue_applies, native_gate_refuses, probe, sku_of, sku_running

LIBRARY = "flashinfer-python"
PUBLIC = "mma.sync.aligned.kind::mxf4nvf4.block_scale.scale_vec::4X.m16n8k64.row.col.f32.e2m1.e2m1.f32.ue4m3"
TARGETS = ("sm_121a", "sm_120a")
QWEN3 = next(layer for layer in LAYERS if layer.name == "qwen3-30b-a3b")
# The release FlashInfer's own gate refuses, as test_seed002_payload.py unpacks it (one payload each).
FIELD_RELEASES = (Dsl("12.9", "4.5.0", "12.9", ("nvidia-cutlass-dsl==4.5.0", "nvidia-cutlass-dsl-libs-base==4.5.0")),
                  Dsl("13.1", "4.5.0", "13.1", ("nvidia-cutlass-dsl==4.5.0", "nvidia-cutlass-dsl-libs-cu13==4.5.0")))


def installed(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def b12x_dsl_pin() -> str:
    """The nvidia-cutlass-dsl release FlashInfer's `b12x` extra pins, read from its metadata."""
    for line in metadata.requires(LIBRARY) or ():
        req = Requirement(line)
        pins = [s.version for s in req.specifier if s.operator == "=="]
        if req.name == "nvidia-cutlass-dsl" and pins and req.marker and req.marker.evaluate({"extra": "b12x"}):
            return pins[0]
    raise AssertionError(f"{LIBRARY} {installed(LIBRARY)} no longer pins nvidia-cutlass-dsl in its b12x extra")


def pinned(cuda: str) -> Dsl:
    """FlashInfer's pinned DSL with the CUDA `cuda` payload alone (driver: that payload's)."""
    v = b12x_dsl_pin()
    return Dsl({"12": "12.9", "13": "13.0"}[cuda], v, f"cu{cuda}",
               tuple(f"{w}=={v}" for w in ("nvidia-cutlass-dsl", "nvidia-cutlass-dsl-libs-base",
                                          "nvidia-cutlass-dsl-libs-core", f"nvidia-cutlass-dsl-libs-cu{cuda}")))


# Parameters name the DSL; the Dsl itself is built in the test (the pin is read from FlashInfer's metadata).
DSLS = {"flashinfer-pin-cu12": lambda: pinned("12"), "flashinfer-pin-cu13": lambda: pinned("13"),
        "installed-driver12.9": lambda: Dsl("12.9"), "installed-driver13.0": lambda: Dsl("13.0")}
# The DSL and FlashInfer on this machine, no GPU: absent, the case skips naming what to install.
DSL_AND_FLASHINFER = pytest.mark.requires(Requirements(needs_gpu=False, needs_dsl=True, libraries=frozenset({LIBRARY})))


@pytest.mark.aot
@DSL_AND_FLASHINFER
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("which", [
    pytest.param(w, marks=pytest.mark.skip(reason=f"the installed DSL carries payloads cu{sorted(installed_payloads())}, "
                                                  f"not the CUDA {w[-4:]} one this case loads"))
    if w.startswith("installed") and w[-4:-2] not in installed_payloads() else w for w in DSLS])
def test_flashinfer_b12x_moe_compiles_the_public_mma_under_each_payload(which, target, tmp_path):
    dsl = DSLS[which]()
    layer = (QWEN3.experts, QWEN3.hidden, QWEN3.inter, QWEN3.top_k)
    report = probe(dsl, ["b12x-micro", "b12x-dynamic"], target, tmp_path, layer=layer,
                   sm_count=sku_of(target).sm_count)
    assert report["dsl"] == (dsl.release or installed("nvidia-cutlass-dsl")), report
    assert report["payload"].split(".")[0] == dsl.driver.split(".")[0], report
    micro, dynamic = report["kernels"]["b12x-micro"], report["kernels"]["b12x-dynamic"]
    assert micro["ok"] and micro["policy_backend"] == "micro" and micro["mma"] == [], micro
    assert dynamic["ok"], dynamic.get("error", "")[-2000:]
    assert dynamic["policy_backend"] == "dynamic" and dynamic["mma"] == [PUBLIC] and dynamic["mma_inline_asm"], dynamic
    for got in (micro, dynamic):
        assert got["ptxas"].split(".")[0] == report["payload"].split(".")[0], got
        if report["payload"] == "12.9":
            assert got["ptx_isa"] == "8.8", got

    caps = sku_running(target, report["dsl"], report["payload"])
    assert not known_issue_applies(caps)  # it compiled: the known issue must not claim otherwise
    assert native_gate_refuses(caps) == report["payload"].startswith("12.")  # conservative, see above


@pytest.mark.aot
@DSL_AND_FLASHINFER
@pytest.mark.parametrize("dsl", FIELD_RELEASES, ids=lambda d: d.id)
def test_flashinfer_b12x_refuses_the_field_release_itself(dsl, tmp_path):
    """Where seed 002 fails (DSL 4.5.0 with CUDA 12.9) FlashInfer's own gate already says no, for
    both of 4.5.0's payloads; the known issue applies to exactly the CUDA 12.9 one."""
    report = probe(dsl, ["b12x-gate"], "sm_121a", tmp_path)
    gate = report["kernels"]["b12x-gate"]
    assert (report["dsl"], report["payload"]) == (dsl.release, dsl.label), report
    assert gate == {"min_dsl": "4.6.0", "dsl_seen": dsl.release, "dsl_ok": False}, gate
    assert known_issue_applies(sku_running("sm_121a", report["dsl"], report["payload"])) == (dsl.label == "12.9")
