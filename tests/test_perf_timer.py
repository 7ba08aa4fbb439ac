"""Timer statistics on the CPU (the GPU side runs in the perf suites)."""

import statistics

import pytest

from gpuhil.perf.timer import _median_stdrel, _quantile


def test_quantiles_interpolate():
    xs = [1.0, 2.0, 3.0, 4.0]
    assert _quantile(xs, 0.0) == 1.0 and _quantile(xs, 1.0) == 4.0
    assert _quantile(xs, 0.5) == pytest.approx(2.5)


def test_median_standard_error_shrinks_with_samples():
    few = [10.0, 10.2, 9.8, 10.1, 9.9]
    many = few * 40
    assert _median_stdrel(many) < _median_stdrel(few)
    assert _median_stdrel([5.0] * 10) == 0.0
    # A 1 % IQR at 200 samples is well inside the 0.5 % settling rule.
    noisy = [100 + (i % 7 - 3) * 0.4 for i in range(200)]
    assert _median_stdrel(noisy) < 0.005 and statistics.median(noisy) == pytest.approx(100, abs=0.5)


def test_cold_input_sets_exceed_twice_the_l2():
    from gpuhil.perf.timer import cold_input_sets

    l2 = 50 * 2**20
    assert cold_input_sets(l2, 151936 * 2) * 151936 * 2 >= 2 * l2  # M=1 Qwen3 logits: many sets
    assert cold_input_sets(l2, 1 << 30) == 2  # already far past the L2: two sets still alternate
    assert cold_input_sets(l2, 1) == 512  # capped
    assert cold_input_sets(None, 1 << 20) == 128  # unknown L2: assume a large one


def test_a_replay_holds_about_two_ms_of_work():
    from gpuhil.perf.timer import replay_calls

    assert replay_calls(5.0) == 50  # microsecond kernels: 50 calls amortize the replay's launch
    assert replay_calls(100.0) == 20
    assert replay_calls(40_000.0) == 1  # a 40 ms torch peer call: one per sample, not 2 s per sample
    assert replay_calls(0.0) == 50
