"""gpuhil-cute-wgmma dispatch on catalog SKUs (no GPU): the config it picks is one its gate allows,
and a forced config the device cannot run is refused before launch, naming the probed feature."""

import pytest

from gpuhil.catalog import matrix
from gpuhil.device.probe import software_fingerprint
from gpuhil.kernels.fp8_grouped_gemm import UnsupportedConfig, plan_wgmma
from gpuhil.kernels.fp8_grouped_gemm.spec_warp import Tile
from gpuhil.session import catalog_capabilities


def caps_of(sku_id):
    return catalog_capabilities(matrix.load().sku(sku_id), software_fingerprint())


QWEN3_PREFILL = (32768, 128, 1536, 2048)  # Qwen3-30B-A3B gate_up prefill: routed tokens, experts, N, K


def test_h100_pairs_ctas_for_prefill_with_probed_stages():
    cfg = plan_wgmma(*QWEN3_PREFILL, caps_of("h100"))
    assert (cfg.tile, cfg.cluster_m, cfg.stages, cfg.pingpong) == (Tile(128, 128, 128), 2, 6, True)


def test_h20_without_cluster_launch_falls_back_to_one_cta():
    assert plan_wgmma(*QWEN3_PREFILL, caps_of("h20")).cluster_m == 1
    with pytest.raises(UnsupportedConfig, match=r"cluster launch \(CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH\).*probed 0"):
        plan_wgmma(*QWEN3_PREFILL, caps_of("h20"), cluster_m=2)


@pytest.mark.parametrize("sku_id", ["gb10", "b200", "rtx5090"])
def test_parts_without_sm90a_are_refused_by_feature(sku_id):
    with pytest.raises(UnsupportedConfig, match=r"ISA target: needs sm_90a.*MMA kind: needs wgmma"):
        plan_wgmma(*QWEN3_PREFILL, caps_of(sku_id))
