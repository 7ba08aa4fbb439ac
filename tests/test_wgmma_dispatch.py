"""gpuhil-cute-wgmma dispatch on catalog SKUs (no GPU): the config it picks is one its gate allows,
and a forced config the device cannot run is refused before launch, naming the probed feature."""

from types import SimpleNamespace

import pytest

from gpuhil import matrix
from gpuhil.capabilities import Capabilities
from gpuhil.kernels.fp8_grouped_gemm import UnsupportedConfig, prepare_wgmma
from gpuhil.kernels.fp8_grouped_gemm.spec import Tile
from gpuhil.probe import software_fingerprint


def runner_caps(sku_id):
    return Capabilities.from_sku(matrix.load().sku(sku_id), software_fingerprint()).as_runner()


def operands(tokens, groups, n, k):
    """Only shapes matter to the choice: Qwen3-30B-A3B gate_up prefill is (32768, 128, 1536, 2048)."""
    return SimpleNamespace(a=SimpleNamespace(shape=(tokens, k)), b=SimpleNamespace(shape=(groups, n, k)))


QWEN3_PREFILL = operands(32768, 128, 1536, 2048)


def test_h100_pairs_ctas_for_prefill_with_probed_stages():
    cfg = prepare_wgmma(QWEN3_PREFILL, caps=runner_caps("h100"))
    assert (cfg.tile, cfg.cluster_m, cfg.stages) == (Tile(128, 128, 128), 2, 6)


def test_h20_without_cluster_launch_falls_back_to_one_cta():
    assert prepare_wgmma(QWEN3_PREFILL, caps=runner_caps("h20")).cluster_m == 1
    with pytest.raises(UnsupportedConfig, match=r"cluster launch \(CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH\).*probed 0"):
        prepare_wgmma(QWEN3_PREFILL, cluster_m=2, caps=runner_caps("h20"))


@pytest.mark.parametrize("sku_id", ["gb10", "b200", "rtx5090"])
def test_parts_without_sm90a_are_refused_by_feature(sku_id):
    with pytest.raises(UnsupportedConfig, match=r"ISA target: needs sm_90a.*MMA kind: needs wgmma"):
        prepare_wgmma(QWEN3_PREFILL, caps=runner_caps(sku_id))
