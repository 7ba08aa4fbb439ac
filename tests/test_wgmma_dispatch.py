"""gpuhil-cute-wgmma dispatch on catalog SKUs (no GPU): the config it picks is one its gate allows and
the one the H100 sweep found fastest, and a forced config the device cannot run is refused before
launch, naming the probed feature."""

import dataclasses

import pytest

from gpuhil.catalog import matrix
from gpuhil.device.probe import software_fingerprint
from gpuhil.kernels.fp8_grouped_gemm import WGMMA, GroupedShape, UnsupportedConfig, plan, spec_wgmma
from gpuhil.kernels.fp8_grouped_gemm.spec_warp import Tile
from gpuhil.kernels.fp8_grouped_gemm.spec_wgmma import WgmmaConfig
from gpuhil.ops.fp8_grouped_gemm.problems import layer_problems
from gpuhil.session import catalog_capabilities


def caps_of(sku_id):
    return catalog_capabilities(matrix.load().sku(sku_id), software_fingerprint())


QWEN3_PREFILL = (32768, 128, 1536, 2048)  # Qwen3-30B-A3B gate_up prefill: routed tokens, experts, N, K


def plan_wgmma(tokens, groups, n, k, caps, **forced):
    """What dispatch compiles for this shape: the plan's config, or its refusal."""
    return plan(GroupedShape.of(tokens, groups, n, k), caps, kernel=WGMMA, **forced).ensure(caps)


def test_h100_pairs_ctas_for_prefill_with_probed_stages():
    cfg = plan_wgmma(*QWEN3_PREFILL, caps_of("h100"))
    assert (cfg.tile, cfg.cluster_m, cfg.stages, cfg.pingpong) == (Tile(128, 128, 128), 2, 6, True)


@pytest.mark.parametrize("forced", [{"cluster_m": 2}, {"cluster_n": 2}, {"cluster_m": 2, "cluster_n": 2}])
def test_h20_without_cluster_launch_falls_back_to_one_cta(forced):
    assert plan_wgmma(*QWEN3_PREFILL, caps_of("h20")).cluster_size == 1
    with pytest.raises(UnsupportedConfig, match=r"cluster launch \(CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH\).*probed 0"):
        plan_wgmma(*QWEN3_PREFILL, caps_of("h20"), **forced)


def test_forcing_one_cluster_dimension_leaves_the_other_at_one():
    cfg = plan_wgmma(*QWEN3_PREFILL, caps_of("h100"), cluster_n=2)
    assert (cfg.cluster_m, cfg.cluster_n, cfg.name) == (1, 2, "128x128x128c1x2s6pp")


@pytest.mark.parametrize("sku_id", ["gb10", "b200", "rtx5090"])
def test_parts_without_sm90a_are_refused_by_feature(sku_id):
    with pytest.raises(UnsupportedConfig, match=r"ISA target: needs sm_90a.*MMA kind: needs wgmma"):
        plan_wgmma(*QWEN3_PREFILL, caps_of(sku_id))


def _choices(sku_id):
    caps = caps_of(sku_id)
    return {p.name.removesuffix("-uniform"): spec_wgmma.schedule(p.n, p.k, p.tokens_per_group, caps)
            for p in layer_problems() if p.name.endswith("uniform")}


def test_h100_choices_are_the_sweeps_winners():
    """The per-shape picks docs/PERF.md's sweeps measured fastest (decode: within 2 % of it, one rule
    for every decode shape). (tile, cluster_m, pingpong, cluster_n)."""
    square, wide, narrow = Tile(128, 128, 128), Tile(128, 256, 128), Tile(64, 128, 256)
    got = _choices("h100")
    assert all(got[name] == (narrow, 1, True, 1) for name in got if name.endswith("decode"))
    assert got["qwen3-30b-a3b-down-prefill"] == (square, 2, True, 1)  # K 768: a quad gains nothing
    assert got["qwen3-30b-a3b-gate_up-prefill"] == (square, 2, True, 2)  # K 2048: a quad shares A and B
    assert got["mixtral-8x7b-gate_up-prefill"] == (square, 2, True, 1)  # 1024 tokens per expert: math-bound
    assert got["mixtral-8x7b-down-prefill"] == (wide, 2, False, 1)  # K 14336: operand reuse wins
    assert got["deepseek-v3-gate_up-prefill"] == (narrow, 2, True, 2)  # K 7168: a quad shares A and B
    assert got["deepseek-v3-down-prefill"] == (narrow, 2, True, 1)  # K 2048: a pair


def test_the_128x128_quad_covers_bytes_bound_prefill_only():
    """Its bounds, from either side: 256-511 tokens per expert, K >= SQUARE_QUAD_MIN_K."""
    caps = caps_of("h100")

    def cluster_n(tokens_per_group, k):
        return spec_wgmma.schedule(2048, k, tokens_per_group, caps).cluster_n

    k = spec_wgmma.SQUARE_QUAD_MIN_K
    assert cluster_n(256, k) == cluster_n(spec_wgmma.SQUARE_QUAD_MAX_TOKENS - 1, k) == 2
    assert cluster_n(spec_wgmma.SQUARE_QUAD_MAX_TOKENS, k) == cluster_n(256, k - 16) == 1


def test_where_two_wide_k_stages_do_not_fit_the_narrow_tile_takes_128_bytes_of_k():
    """64x128x256 needs 103424 B for two stages; an sm_90a part with GB10's 99 KiB (as under
    `--emulate-sku gb10`) still gets a 64-row tile for decode, with stages that fit."""
    small = dataclasses.replace(caps_of("h100"), smem_optin_bytes=101376)
    assert spec_wgmma.smem_bytes(Tile(64, 128, 256), 2) > 101376
    cfg = plan_wgmma(512, 128, 1536, 2048, small)  # Qwen3-30B-A3B gate_up decode
    assert (cfg.tile, cfg.stages, cfg.stream_b) == (Tile(64, 128, 128), 3, True)
    assert plan_wgmma(512, 128, 1536, 2048, caps_of("h100")).tile == Tile(64, 128, 256)


def test_h20_choices_keep_the_schedule_on_one_cta():
    got = _choices("h20")
    assert all(c.cluster_m == c.cluster_n == 1 for c in got.values())
    assert got["deepseek-v3-down-prefill"] == (Tile(128, 128, 128), 1, True, 1)  # no pair to cover 128 rows
    assert got["mixtral-8x7b-down-prefill"] == (Tile(128, 256, 128), 1, False, 1)


def test_a_pingpong_tile_must_fit_one_warpgroups_registers():
    with pytest.raises(ValueError, match="ping-pong tile 128x256x128: 256 accumulators per thread, at most 128"):
        WgmmaConfig(Tile(128, 256, 128), 1, 4, pingpong=True)
    assert WgmmaConfig(Tile(64, 256, 128), 2, 5, pingpong=True).name == "64x256x128c2s5pp"
    assert WgmmaConfig(Tile(64, 128, 256), 2, 4, True, cluster_n=2).name == "64x128x256c2x2s4pp"
