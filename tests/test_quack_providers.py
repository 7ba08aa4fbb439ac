"""quack's providers under our gates, on the CPU: each op lists its quack provider, the gate judges a
device by the features quack's own dispatch and default configs need (so an H20 without cluster
launch, a Hopper capped at a GB10's shared memory and a Hopper asked for FP4 are refused naming the
feature and the probed value), the shape limits quack asserts skip with their reason, and planning,
checking and preparing a launch import nothing of quack (its import needs triton, which a CPU
machine lacks: quack is imported at the first launch).
"""

import dataclasses
import sys
from types import SimpleNamespace

import pytest
import torch

from gpuhil.device.emulate import emulate
from gpuhil.gating import UnsupportedConfig, check
from gpuhil.ops import op, provider, providers_for
from gpuhil.ops.argmax.problems import ArgmaxProblem
from gpuhil.ops.moe import GroupedGemmProblem, uniform
from gpuhil.ops.nvfp4_moe.problems import QuantizeProblem
from gpuhil.thirdparty import QUACK

QUACK_OPS = {"argmax": "quack-topk1", "fp8_grouped_gemm": "quack", "nvfp4_quantize": "quack",
             "nvfp4_grouped_gemm": "quack"}
FP8 = GroupedGemmProblem("qwen3-down-decode", 2048, 768, uniform(512, 128))


def verdict(op_name, problem, caps):
    reqs = provider(op_name, QUACK_OPS[op_name]).requirements_for(problem, caps)
    return [check(r, caps) for r in reqs][0]


def with_quack(caps):
    """Capabilities of a process where quack is installed (it is not in every CPU environment)."""
    return dataclasses.replace(caps, libraries=((QUACK.dist, QUACK.pin),))


def test_every_op_quack_covers_lists_its_provider_with_quacks_version():
    for op_name, name in QUACK_OPS.items():
        (found,) = [p for p in providers_for(op_name) if p.name == name]
        assert found.origin.startswith(f"{QUACK.dist} ") and found.library is QUACK
        assert found.requirements.libraries == {QUACK.dist}


def test_an_h20_without_cluster_launch_cannot_run_quacks_default_gemm_config(sku_caps, catalog_sku):
    assert verdict("fp8_grouped_gemm", FP8, sku_caps("h100")).ok
    refused = verdict("fp8_grouped_gemm", FP8, sku_caps("h20"))
    assert ("cluster launch (CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH): needs 1 for cluster size 2, probed 0"
            in refused.explain())
    assert not verdict("fp8_grouped_gemm", FP8, emulate(sku_caps("h100"), catalog_sku("h20"))).ok


@pytest.fixture
def catalog_sku(gpuhil_session):
    return gpuhil_session.matrix.sku


def test_a_hopper_capped_at_a_gb10s_shared_memory_cannot_hold_quacks_sm90_pipeline(sku_caps, catalog_sku):
    """quack sizes SM90 stages to the arch's 232448 B whatever the device opts in to."""
    capped = emulate(sku_caps("h100"), catalog_sku("gb10"))
    assert "opt-in smem per block (MAX_SHARED_MEMORY_PER_BLOCK_OPTIN): needs 232448 B, probed 101376 B" in \
        verdict("fp8_grouped_gemm", FP8, capped).explain()
    assert verdict("fp8_grouped_gemm", FP8, sku_caps("gb10")).ok  # the SM120 class fits 101376 B


def test_quacks_fp4_gemm_is_blackwell_only_and_clusters_large_shapes_on_sm100(sku_caps):
    small = GroupedGemmProblem("decode", 4096, 7168, uniform(64, 8))
    large = GroupedGemmProblem("prefill", 4096, 7168, uniform(4096, 8))
    hopper = verdict("nvfp4_grouped_gemm", small, sku_caps("h100"))
    assert "arch family (cc major): needs one of 10/11/12, probed 9" in hopper.explain()
    gemm = provider("nvfp4_grouped_gemm", "quack")
    assert [r.cluster_size for r in gemm.requirements_for(small, sku_caps("b200"))] == [1]
    assert [r.cluster_size for r in gemm.requirements_for(large, sku_caps("b200"))] == [2]
    assert [r.cluster_size for r in gemm.requirements_for(large, sku_caps("gb10"))] == [1]


def test_quacks_own_shape_limits_skip_with_their_reason():
    topk = provider("argmax", "quack-topk1")
    accepted = [p for p in op("argmax").problems() if not topk.unsupported(p)]
    assert {p.n for p in accepted} == {4096}
    assert any(p.tier == "default" for p in accepted)  # the provider runs in the default tier
    assert "N a power of two and N <= 4096" in topk.unsupported(ArgmaxProblem(1, 151936, "bf16"))
    fp8 = provider("fp8_grouped_gemm", "quack")
    assert "K % 16 and N % 8" in fp8.unsupported(GroupedGemmProblem("x", 200, 1000, (3,)))
    assert "K % 32" in provider("nvfp4_grouped_gemm", "quack").unsupported(GroupedGemmProblem("x", 64, 48, (3,)))
    assert "K % 16" in provider("nvfp4_quantize", "quack").unsupported(QuantizeProblem("x", 4, 40))
    for op_name in ("fp8_grouped_gemm", "nvfp4_quantize", "nvfp4_grouped_gemm"):
        prov = provider(op_name, "quack")
        assert [p.name for p in op(op_name).problems() if prov.unsupported(p)] == [], op_name


META = {
    "argmax": lambda: torch.empty(4, 4096, dtype=torch.bfloat16, device="meta"),
    "fp8_grouped_gemm": lambda: None,
    "nvfp4_quantize": lambda: (torch.empty(4, 64, dtype=torch.bfloat16, device="meta"), torch.empty(1, device="meta")),
    "nvfp4_grouped_gemm": lambda: None,
}


@pytest.mark.parametrize("op_name,sku", [*((name, "b200") for name in QUACK_OPS), ("fp8_grouped_gemm", "h100")])
def test_preparing_a_launch_imports_nothing_of_quack(op_name, sku, sku_caps):
    """On an H100 too, where the FP8 GEMM pins its own config (a quack GemmConfig, built at the launch)."""
    assert not [m for m in sys.modules if m == "quack" or m.startswith("quack.")]
    caps = with_quack(sku_caps(sku))
    launch = provider(op_name, QUACK_OPS[op_name]).prepare(META[op_name](), caps)
    assert callable(launch) and launch.config is None
    assert not [m for m in sys.modules if m == "quack" or m.startswith("quack.")]


def test_dispatch_refuses_before_quack_where_the_gate_does(sku_caps):
    with pytest.raises(UnsupportedConfig, match=r"cluster launch .* probed 0"):
        provider("fp8_grouped_gemm", "quack").prepare(None, with_quack(sku_caps("h20")))
    with pytest.raises(UnsupportedConfig, match=r"arch family .* probed 9"):
        provider("nvfp4_grouped_gemm", "quack").prepare(None, with_quack(sku_caps("h100")))


def test_each_nvfp4_launch_checks_the_cluster_its_shape_gets(sku_caps):
    """quack's block-scaled config for M >= 512 and N >= 128 on SM100 is a cluster of 2: a launch
    of that shape where clusters cannot launch is refused before quack is imported."""
    caps = dataclasses.replace(with_quack(sku_caps("b200")), cluster_launch=False, max_cluster_size=1)
    launch = provider("nvfp4_grouped_gemm", "quack").prepare(None, caps)
    meta = lambda *shape: torch.empty(*shape, dtype=torch.uint8, device="meta")  # noqa: E731
    ops = SimpleNamespace(a=meta(4096, 3584), b=meta(8, 4096, 3584))
    with pytest.raises(UnsupportedConfig, match=r"cluster launch .* cluster size 2, probed 0"):
        launch(ops)
    assert "quack" not in sys.modules
