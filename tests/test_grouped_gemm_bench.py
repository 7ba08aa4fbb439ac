"""The grouped GEMM's roofline math and its goals as data, judged on rows (CPU; the timings come
from the perf suite on a GPU)."""

from pathlib import Path

import pytest

from bench_rows import gemm
from gpuhil.ops.fp8_grouped_gemm.roofline import bytes_once, roofline as gemm_roofline
from gpuhil.ops.moe import GroupedGemmProblem
from gpuhil.perf import goals
from gpuhil.perf.work import READ, gemm_ceiling, roofline

GOALS = goals.load(Path(__file__).resolve().parents[1] / "baselines" / "goals.yaml")
MEASURED = {"read_gbps": 3200.0, "copy_gbps": 3000.0, "launch_us": 1.5, "fp8_gemm_tflops": 1300.0, "bf16_gemm_tflops": 650.0}


def test_bytes_count_only_experts_that_received_tokens():
    p = GroupedGemmProblem("x", n=256, k=512, tokens=(3, 0, 5, 0))
    # activations 8x512 fp8, two experts' 256x512 fp8 weights, fp32 scales, 8x256 bf16 output
    assert bytes_once(p) == 8 * 512 + 2 * 256 * 512 + 4 * 8 + 4 * 2 * 256 + 2 * 8 * 256


def test_the_roofline_is_set_by_the_ceiling_that_allows_the_longer_time():
    decode = GroupedGemmProblem("decode", n=1536, k=2048, tokens=(4,) * 128)  # weights dominate: bytes
    prefill = GroupedGemmProblem("prefill", n=1536, k=2048, tokens=(2048,) * 16)  # math dominates
    r = roofline(gemm_roofline(decode), MEASURED)
    assert (r.ceiling, r.value) == (READ, 3200.0) and r.us == pytest.approx(bytes_once(decode) / 3200e9 * 1e6)
    r = roofline(gemm_roofline(prefill), MEASURED)
    assert (r.ceiling, r.value) == (gemm_ceiling("fp8"), 1300.0) and r.us == pytest.approx(prefill.flops / 1300e12 * 1e6)


def verdicts(rows, goal_id):
    [goal] = [g for g in GOALS if g.id == goal_id]
    return [(v.verdict, None if v.value is None else round(v.value, 3)) for v in goals.judge([goal], rows)]


def test_prefill_goal_is_ceil_only_where_a_dense_gemm_of_the_same_flops_misses_it_too():
    """A math-bound prefill row below 90 % of roofline is CEIL when the dense FP8 GEMM of the same
    FLOPs, timed the same way in the same run, reaches less than 90 % itself; else MISS."""
    rows = [gemm("gpuhil-cute-wgmma", "mixtral-8x7b-gate_up-prefill-uniform", 1000.0, 85.0, ceiling="fp8 GEMM via torch",
                 same_work_us=960.0),  # dense reaches 850/960 = 88.5 %
            gemm("gpuhil-cute-wgmma", "mixtral-8x7b-down-prefill-uniform", 1000.0, 85.0, ceiling="fp8 GEMM via torch",
                 same_work_us=900.0),  # dense reaches 94.4 %
            gemm("gpuhil-cute-wgmma", "deepseek-v3-down-prefill-uniform", 1000.0, 92.0, ceiling="fp8 GEMM via torch"),
            gemm("gpuhil-cute-warp", "deepseek-v3-down-prefill-uniform", 3000.0, 30.0, ceiling="fp8 GEMM via torch")]
    assert verdicts(rows, "grouped-gemm-prefill-roofline") == [("CEIL", 85.0), ("MISS", 85.0), ("MET", 92.0)]
    [ceil] = [v for v in goals.judge(GOALS, rows) if v.verdict == "CEIL"]
    assert ceil.note == "a dense fp8 GEMM of the same FLOPs reaches 88.5 % in this run, this row 96.0 % of its rate"


def test_decode_goal_against_torch_is_ceil_where_it_would_pass_the_roofline():
    rows = [gemm("torch", "deepseek-v3-down-decode-uniform", 110.0, 91.5),
            gemm("gpuhil-cute-wgmma", "deepseek-v3-down-decode-uniform", 100.0, 96.6),  # 1.25x needs 114 %
            gemm("torch", "qwen3-30b-a3b-gate_up-decode-uniform", 115.0, 76.6),
            gemm("gpuhil-cute-wgmma", "qwen3-30b-a3b-gate_up-decode-uniform", 100.0, 88.4),  # needs 95.8 %: a miss
            gemm("torch", "mixtral-8x7b-down-decode-uniform", 150.0, 40.0),
            gemm("gpuhil-cute-wgmma", "mixtral-8x7b-down-decode-uniform", 100.0, 60.0)]
    assert verdicts(rows, "grouped-gemm-decode-vs-torch") == [("CEIL", 1.1), ("MISS", 1.15), ("MET", 1.5)]


def test_host_goal_covers_both_gpuhil_providers_at_decode_only():
    rows = [gemm("torch", "qwen3-30b-a3b-down-decode-uniform", 30.0, 50.0, host=40.0),
            gemm("gpuhil-cute-wgmma", "qwen3-30b-a3b-down-decode-uniform", 20.0, 70.0, host=12.0, host_peer=36.0),
            gemm("gpuhil-cute-warp", "qwen3-30b-a3b-down-decode-uniform", 28.0, 60.0, host=210.0, host_peer=42.0),
            gemm("gpuhil-cute-warp", "qwen3-30b-a3b-down-prefill-uniform", 280.0, 60.0)]
    assert verdicts(rows, "grouped-gemm-host-vs-torch") == [("MET", 0.333), ("MISS", 5.0)]
