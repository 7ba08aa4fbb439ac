"""Seed 002 on the CPU: which CuTe DSL native payload is active, what it lowers the SM12x block-scaled
MMA to, and whether the gates (the known issue's `when`, gpuhil's native kernel gated on a payload of
CUDA >= 13) refuse what breaks. The probe and how a payload is picked: seed002_probe.py.

What happens (asserted below, for sm_121a and sm_120a): the field release 4.5.0 with its CUDA 12.9
payload emits the internal ``_mma.block_scale.scale_vec::4X.m16n8k64...`` and its ptxas stops with
"Unexpected instruction types specified for '_mma'" (the field failure, verbatim); 4.5.0 with CUDA
13.1 emits the public ``mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4...``; the next release,
4.5.1, already emits the public spelling from its CUDA 12.9 payload and assembles it (PTX ISA 8.8,
bundled ptxas 12.9). So the known issue holds for a DSL older than 4.5.1 with a payload below 13,
exactly. 4.8.1 (the project's) emits the public spelling from both payloads; gpuhil's native-kernel
gate still refuses its CUDA 12.9 payload: conservative, as no SM12x part has run that payload's
cubin for us yet (test_the_native_kernel_under_each_payload_of_the_installed_dsl pins it).
"""

import pytest

from gpuhil.gating import Requirements
from seed002_probe import Dsl, installed_payloads, known_issue_applies, native_gate_refuses, probe, sku_running

PUBLIC = "kind::mxf4nvf4"
SEED_002_PTXAS = "Unexpected instruction types specified for '_mma'"
TARGETS = ("sm_121a", "sm_120a")


def field_release(version: str, payload: str, wheel: str) -> Dsl:
    return Dsl(payload, version, payload, (f"nvidia-cutlass-dsl=={version}", f"{wheel}=={version}"))


# 4.5.x wrote every payload to the same paths: libs-base carried CUDA 12.9, libs-cu13 CUDA 13.1.
# Each with the one MMA opcode its PTX holds.
FIELD_RELEASES = (
    (field_release("4.5.0", "12.9", "nvidia-cutlass-dsl-libs-base"),
     "_mma.block_scale.scale_vec::4X.m16n8k64.row.col.f32.e2m1.e2m1.f32.ue4m3"),
    (field_release("4.5.0", "13.1", "nvidia-cutlass-dsl-libs-cu13"),
     "mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4.block_scale.scale_vec::4X.f32.e2m1.e2m1.f32.ue4m3"),
    (field_release("4.5.1", "12.9", "nvidia-cutlass-dsl-libs-base"),
     "mma.sync.aligned.kind::mxf4nvf4.block_scale.scale_vec::4X.m16n8k64.row.col.f32.e2m1.e2m1.f32.ue4m3"),
)
DSL_ONLY = pytest.mark.requires(Requirements(needs_gpu=False, needs_dsl=True))
BOTH_PAYLOADS = pytest.mark.skipif(not {"12", "13"} <= installed_payloads(),
                                   reason="needs both CuTe DSL payloads installed side by side (libs-cu12 and "
                                          f"libs-cu13), found cu{sorted(installed_payloads())}")


@pytest.mark.aot
@DSL_ONLY
@BOTH_PAYLOADS
def test_the_installed_dsl_loads_the_payload_the_driver_allows(tmp_path):
    cuda12 = probe(Dsl("12.9"), ["one-mma"], "sm_121a", tmp_path)
    cuda13 = probe(Dsl("13.0"), ["one-mma"], "sm_121a", tmp_path)
    assert (cuda12["payload"], cuda12["payload_so"].split(".")[1]) == ("12.9", "cu12"), cuda12
    assert cuda13["payload"].startswith("13.") and cuda13["payload_so"].split(".")[1] == "cu13", cuda13
    # the one-MMA kernel that reproduces seed 002 on the field release compiles from both payloads here
    for got in (cuda12["kernels"]["one-mma"], cuda13["kernels"]["one-mma"]):
        assert got["ok"] and len(got["mma"]) == 1 and PUBLIC in got["mma"][0], got


@pytest.mark.aot
@DSL_ONLY
@BOTH_PAYLOADS
@pytest.mark.parametrize("driver", ["12.9", "13.0"])
def test_the_native_kernel_under_each_payload_of_the_installed_dsl(driver, tmp_path):
    """gpuhil's native kernel for sm_121a: the public spelling from either payload, assembled by
    that payload's own ptxas (the CUDA 12.9 one at PTX ISA 8.8); its gate refuses the 12.9 payload
    all the same (the conservative part, pinned here so a change to it is seen)."""
    report = probe(Dsl(driver), ["gpuhil-native"], "sm_121a", tmp_path)
    got = report["kernels"]["gpuhil-native"]
    assert got["ok"], got.get("error", "")[-2000:]
    assert len(got["mma"]) == 1 and PUBLIC in got["mma"][0] and not got["mma"][0].startswith("_"), got
    assert got["ptxas"].split(".")[0] == report["payload"].split(".")[0], got
    if report["payload"].startswith("12."):
        assert got["ptx_isa"] == "8.8", got
    caps = sku_running("sm_121a", report["dsl"], report["payload"])
    assert native_gate_refuses(caps) == (not report["payload"].startswith("13."))
    assert not known_issue_applies(caps)


@pytest.mark.aot
@DSL_ONLY
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dsl,opcode", FIELD_RELEASES, ids=[d.id for d, _ in FIELD_RELEASES])
def test_the_field_release_reproduces_seed_002_and_the_gates_refuse_exactly_that(dsl, opcode, target, tmp_path):
    report = probe(dsl, ["one-mma"], target, tmp_path)
    got = report["kernels"]["one-mma"]
    assert (report["dsl"], report["payload"]) == (dsl.release, dsl.label), report
    assert got["mma"] == [opcode], got
    if opcode.startswith("_"):
        assert not got["ok"] and SEED_002_PTXAS in got["error"], got
    else:
        assert got["ok"], got.get("error", "")[-2000:]
    caps = sku_running(target, report["dsl"], report["payload"])
    assert known_issue_applies(caps) == (not got["ok"])
    assert native_gate_refuses(caps) or got["ok"]  # never dispatched where it fails
