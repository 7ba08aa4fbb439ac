"""Seed 000: a CuTe DSL argmax launched clusters on an H20 (sm_90, no cluster launch) and died with
CUDA_ERROR_INVALID_CLUSTER_SIZE (912) at N=151936. gpuhil decides clusters from the probed
CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH and max cluster size, so:

- the selector picks cluster_n 1 wherever cluster launch is absent (H20 catalog row, or an H100 run
  with --emulate-sku h20) and the result is exact;
- a forced cluster the device cannot launch raises UnsupportedConfig before any launch, naming the
  attribute and its probed value, never CUDA error 912;
- dispatch and the test gate agree, because both call requirements.check.
"""

import pytest
import torch

from gpuhil import matrix
from gpuhil.capabilities import Capabilities
from gpuhil.kernels import argmax
from gpuhil.kernels.argmax.spec import FORCEABLE_CLUSTERS, requirements, select_config
from gpuhil.probe import software_fingerprint
from gpuhil.references.argmax import reference_argmax
from gpuhil.requirements import Requirements, UnsupportedConfig, check

N_QWEN3 = 151936
MX = matrix.active()  # the session's catalog (--matrix)


def catalog(sku_id: str) -> Capabilities:
    return Capabilities.from_sku(MX.sku(sku_id), software_fingerprint())


@pytest.mark.parametrize("m", [1, 2, 7, 64, 256])
def test_h20_catalog_row_gets_cluster_1(m):
    assert select_config(m, N_QWEN3, "bf16", catalog("h20")).cluster_n == 1


@pytest.mark.parametrize("m", [1, 64])
def test_h100_catalog_row_splits_large_vocab_over_a_cluster(m):
    assert select_config(m, N_QWEN3, "bf16", catalog("h100")).cluster_n > 1


@pytest.mark.parametrize("sku_id", [s.id for s in MX.skus.values()])
def test_no_sku_is_handed_a_cluster_it_cannot_launch(sku_id):
    sku = MX.sku(sku_id)
    for m in (1, 7, 64, 256, 1024):
        cfg = select_config(m, N_QWEN3, "bf16", catalog(sku_id))
        assert cfg.cluster_n <= (sku.max_cluster_size if sku.cluster_launch else 1)
        assert cfg.smem_bytes() <= sku.smem_optin_bytes


@pytest.mark.gpu
@pytest.mark.requires(Requirements(min_cc="8.0", needs_dsl=True))
@pytest.mark.parametrize("m", [1, 64])
def test_selected_config_runs_exactly_within_the_probed_limits(m, capabilities, rng):
    """Under --emulate-sku h20 this is seed 000's exact case, and it must pass with cluster_n 1."""
    cfg = select_config(m, N_QWEN3, "bf16", capabilities)
    if not capabilities.cluster_launch:
        assert cfg.cluster_n == 1
    logits = torch.randn(m, N_QWEN3, generator=rng).to(torch.bfloat16).cuda()
    vals, idx = argmax.argmax(logits)
    ref_vals, ref_idx = reference_argmax(logits)
    assert torch.equal(idx.cpu(), ref_idx) and torch.equal(vals.cpu(), ref_vals)


@pytest.mark.gpu
@pytest.mark.requires(Requirements(min_cc="8.0", needs_dsl=True))
@pytest.mark.parametrize("cluster_n", [*FORCEABLE_CLUSTERS, 32])
def test_dispatch_agrees_with_the_gate_for_forced_clusters(cluster_n, capabilities, rng):
    """A forced config runs exactly when `check` allows it, and is refused before launch otherwise."""
    logits = torch.randn(2, N_QWEN3, generator=rng).to(torch.bfloat16).cuda()
    verdict = check(requirements(select_config(2, N_QWEN3, "bf16", capabilities, cluster_n=cluster_n)), capabilities)
    if verdict.ok:
        vals, idx = argmax.argmax(logits, cluster_n=cluster_n)
        assert torch.equal(idx.cpu(), reference_argmax(logits)[1])
        return
    with pytest.raises(UnsupportedConfig) as err:
        argmax.argmax(logits, cluster_n=cluster_n)
    message = str(err.value)
    if not capabilities.cluster_launch:
        assert "CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH" in message and "probed 0" in message
    else:
        assert f"needs {cluster_n}, probed {capabilities.max_cluster_size}" in message
    assert "912" not in message
    torch.cuda.synchronize()  # nothing was launched, so nothing can fault later
