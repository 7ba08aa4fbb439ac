"""Seed 000: a CuTe DSL argmax launched clusters on an H20 (sm_90, no cluster launch) and died with
CUDA_ERROR_INVALID_CLUSTER_SIZE (912) at N=151936. gpuhil decides clusters from the probed
CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH and max cluster size, so:

- the selector never launches a cluster where cluster launch is absent (H20 catalog row, or an H100
  run with --emulate-sku h20): a large vocab row is split through global memory instead, and the
  result is exact;
- a forced cluster the device cannot launch raises UnsupportedConfig before any launch, naming the
  attribute and its probed value, never CUDA error 912;
- dispatch and the test gate agree, because both read the kernel's plan.
"""

import pytest
import torch

from gpuhil.gating import UnsupportedConfig, check
from gpuhil.kernels.argmax import ArgmaxShape, plan
from gpuhil.kernels.argmax.spec import FORCEABLE_CLUSTERS, requirements
from gpuhil.ops import provider
from gpuhil.ops.argmax.problems import ArgmaxProblem
from gpuhil.ops.argmax.reference import reference_argmax
from gpuhil.testing import case

N_QWEN3 = 151936
CUTE = provider("argmax", "gpuhil-cute")


@pytest.mark.parametrize("m", [1, 2, 7, 64, 256])
def test_h20_catalog_row_gets_no_cluster_launch(m, sku_caps):
    cfg = plan(ArgmaxShape(m, N_QWEN3, "bf16"), sku_caps("h20")).config
    assert not cfg.cluster_launch and requirements(cfg).cluster_size == 1
    assert cfg.gmem_split == (m * 2 <= sku_caps("h20").sm_count)  # split only where the SMs are not all busy


@pytest.mark.parametrize("m", [1, 64])
def test_h100_catalog_row_splits_large_vocab_over_a_cluster(m, sku_caps):
    assert plan(ArgmaxShape(m, N_QWEN3, "bf16"), sku_caps("h100")).config.cluster_n > 1


def test_no_sku_is_handed_a_cluster_it_cannot_launch(sku, catalog_caps):
    for m in (1, 7, 64, 256, 1024):
        cfg = plan(ArgmaxShape(m, N_QWEN3, "bf16"), catalog_caps).config
        assert not cfg.cluster_launch or (sku.cluster_launch and cfg.cluster_n <= sku.max_cluster_size)
        assert cfg.smem_bytes() <= sku.smem_optin_bytes


@pytest.mark.gpu
@pytest.mark.parametrize("m", [case(CUTE, ArgmaxProblem(m, N_QWEN3, "bf16"), m, id=str(m)) for m in (1, 64)])
def test_selected_config_runs_exactly_within_the_probed_limits(m, capabilities, rng):
    """Under --emulate-sku h20 this is seed 000's exact case, and it must pass without a cluster: the
    launch that runs is the one whose config is asserted on."""
    logits = torch.randn(m, N_QWEN3, generator=rng).to(torch.bfloat16).cuda()
    launch = CUTE.prepare(logits, capabilities)
    if not capabilities.cluster_launch:
        assert not launch.config.cluster_launch
    else:
        assert launch.config.cluster_n <= capabilities.max_cluster_size
    vals, idx = launch(logits)
    ref_vals, ref_idx = reference_argmax(logits)
    assert torch.equal(idx.cpu(), ref_idx) and torch.equal(vals.cpu(), ref_vals)


@pytest.mark.gpu
@pytest.mark.requires(lambda caps: CUTE.requirements_for(ArgmaxProblem(2, N_QWEN3, "bf16"), caps))
@pytest.mark.parametrize("cluster_n", [*FORCEABLE_CLUSTERS, 32])
def test_dispatch_agrees_with_the_gate_for_forced_clusters(cluster_n, capabilities, rng):
    """A forced config runs exactly when `check` allows it, and is refused before launch otherwise."""
    logits = torch.randn(2, N_QWEN3, generator=rng).to(torch.bfloat16).cuda()
    (req,) = plan(ArgmaxShape(2, N_QWEN3, "bf16"), capabilities, cluster_n=cluster_n).requirements
    verdict = check(req, capabilities)
    if verdict.ok:
        launch = CUTE.prepare(logits, capabilities, cluster_n=cluster_n)
        assert launch.config.cluster_n == cluster_n
        assert torch.equal(launch(logits)[1].cpu(), reference_argmax(logits)[1])
        return
    with pytest.raises(UnsupportedConfig) as err:
        CUTE.prepare(logits, capabilities, cluster_n=cluster_n)
    message = str(err.value)
    if not capabilities.cluster_launch:
        assert "CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH" in message and "probed 0" in message
    else:
        assert f"needs {cluster_n}, probed {capabilities.max_cluster_size}" in message
    assert "912" not in message
    torch.cuda.synchronize()  # nothing was launched, so nothing can fault later
