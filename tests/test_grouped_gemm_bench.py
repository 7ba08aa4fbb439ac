"""The grouped-GEMM benchmark's roofline and goal lines, on the CPU (the timings come from `gpuhil bench
grouped-gemm` on a GPU)."""

import pytest

from gpuhil.ops.fp8_grouped_gemm.bench import GemmRow, bytes_once, goals, roofline, table
from gpuhil.ops.moe import GroupedGemmProblem


def test_bytes_count_only_experts_that_received_tokens():
    p = GroupedGemmProblem("x", n=256, k=512, tokens=(3, 0, 5, 0))
    # activations 8x512 fp8, two experts' 256x512 fp8 weights, fp32 scales, 8x256 bf16 output
    assert bytes_once(p) == 8 * 512 + 2 * 256 * 512 + 4 * 8 + 4 * 2 * 256 + 2 * 8 * 256


def test_roofline_names_the_bound_that_sets_it():
    decode = GroupedGemmProblem("decode", n=1536, k=2048, tokens=(4,) * 128)  # weights dominate: bytes
    prefill = GroupedGemmProblem("prefill", n=1536, k=2048, tokens=(2048,) * 16)  # math dominates
    us, bound = roofline(decode, fp8_tflops=1300.0, copy_gbps=3000.0)
    assert bound == "bytes" and us == pytest.approx(bytes_once(decode) / 3000e9 * 1e6)
    us, bound = roofline(prefill, fp8_tflops=1300.0, copy_gbps=3000.0)
    assert bound == "fp8 math" and us == pytest.approx(prefill.flops / 1300e12 * 1e6)


def row(problem, provider, us, vs_torch=None, pct=0.0, host=None):
    return GemmRow(problem, provider, "-", us, 1.0, vs_torch, 50.0, False, us * pct / 100, "bytes", pct, host)


def test_goal_lines():
    lines = goals([row("qwen3-30b-a3b-down-prefill-uniform", "gpuhil-cute-wgmma", 100.0, 1.5, pct=63.0),
                   row("mixtral-8x7b-down-prefill-uniform", "gpuhil-cute-wgmma", 100.0, 1.5, pct=91.0),
                   row("qwen3-30b-a3b-down-decode-uniform", "torch", 30.0, host=9.0),
                   row("qwen3-30b-a3b-down-decode-uniform", "gpuhil-cute-wgmma", 20.0, 1.5, host=12.0),
                   row("qwen3-30b-a3b-down-decode-uniform", "gpuhil-cute-warp", 28.0, 1.07, host=210.0)])
    assert lines == [
        "MISS qwen3-30b-a3b-down-prefill-uniform gpuhil-cute-wgmma: 63.0 % of roofline 63.0 us (bytes) (goal >= 90 %)",
        "MET  mixtral-8x7b-down-prefill-uniform gpuhil-cute-wgmma: 91.0 % of roofline 91.0 us (bytes) (goal >= 90 %)",
        "MET  qwen3-30b-a3b-down-decode-uniform gpuhil-cute-wgmma: 1.50x torch (goal >= 1.25x)",
        "MET  host qwen3-30b-a3b-down-decode-uniform gpuhil-cute-wgmma: 12.0 us per call without graphs (goal <= 15 us)",
        "MISS host qwen3-30b-a3b-down-decode-uniform gpuhil-cute-warp: 210.0 us per call without graphs (goal <= 15 us)",
    ]


def test_table_shows_roofline_and_host_columns():
    text = table([row("p-decode", "gpuhil-cute-wgmma", 20.0, 1.5, pct=40.0, host=12.0)],
                 {"fp8_tflops": 1300.0, "copy_gbps": 3000.0})
    assert "roofline us (bound)" in text and "| 8.0 (bytes) | 40.0 | 12.0 |" in text


def test_a_decode_goal_past_the_roofline_is_ceil_with_its_numbers():
    lines = goals([row("deepseek-v3-down-decode-uniform", "torch", 110.0, pct=91.5),
                   row("deepseek-v3-down-decode-uniform", "gpuhil-cute-wgmma", 100.0, 1.10, pct=96.6),
                   row("qwen3-30b-a3b-gate_up-decode-uniform", "torch", 115.0, pct=76.6),
                   row("qwen3-30b-a3b-gate_up-decode-uniform", "gpuhil-cute-wgmma", 100.0, 1.15, pct=88.4)])
    assert lines == [
        "CEIL deepseek-v3-down-decode-uniform gpuhil-cute-wgmma: 1.10x torch (goal >= 1.25x; 1.25x needs 114.4 % "
        "of the roofline, torch is at 91.5 %, ours 96.6 %)",
        "MISS qwen3-30b-a3b-gate_up-decode-uniform gpuhil-cute-wgmma: 1.15x torch (goal >= 1.25x; 1.25x needs 95.8 % "
        "of the roofline, torch is at 76.6 %, ours 88.4 %)",
    ]


def test_a_math_bound_prefill_goal_past_what_a_dense_gemm_sustains_is_ceil():
    """The dense FP8 GEMM of the same FLOPs, run the same way, sets what the tensor cores sustain in
    that run: a miss is CEIL only where that GEMM itself stays below the goal's share of the roofline."""
    def math_row(problem, us, pct, dense_us):
        return GemmRow(problem, "gpuhil-cute-wgmma", "-", us, 1.0, 1.3, pct, True, us * pct / 100, "fp8 math", pct,
                       None, dense_us)

    lines = goals([math_row("mixtral-8x7b-gate_up-prefill-uniform", 1000.0, 85.0, 960.0),  # dense 88.5 %
                   math_row("mixtral-8x7b-down-prefill-uniform", 1000.0, 85.0, 900.0),  # dense 94.4 %
                   math_row("deepseek-v3-down-prefill-uniform", 1000.0, 92.0, 1000.0)])
    assert lines == [
        "CEIL mixtral-8x7b-gate_up-prefill-uniform gpuhil-cute-wgmma: 85.0 % of roofline 850.0 us (fp8 math) "
        "(goal >= 90 %; a dense FP8 GEMM of the same FLOPs reaches 88.5 % in this run, ours is 96.0 % of its rate)",
        "MISS mixtral-8x7b-down-prefill-uniform gpuhil-cute-wgmma: 85.0 % of roofline 850.0 us (fp8 math) "
        "(goal >= 90 %; a dense FP8 GEMM of the same FLOPs reaches 94.4 % in this run, ours is 90.0 % of its rate)",
        "MET  deepseek-v3-down-prefill-uniform gpuhil-cute-wgmma: 92.0 % of roofline 920.0 us (fp8 math) "
        "(goal >= 90 %; a dense FP8 GEMM of the same FLOPs reaches 92.0 % in this run, ours is 100.0 % of its rate)",
    ]
