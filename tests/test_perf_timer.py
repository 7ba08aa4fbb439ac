"""Timer statistics and the argmax benchmark's report, on the CPU (the GPU side runs in `gpuhil bench`)."""

import statistics

import pytest

from gpuhil.ops.argmax.bench import ArgmaxRow, goals, table
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


def row(m, n, pct, speedup, selected=True, us=10.0, host=None, same=None):
    return ArgmaxRow(m, n, "bf16", "t256v8c8" + (" (selected)" if selected else ""), us, us * speedup,
                     speedup, pct * 30, pct, False, host, None if host is None else 6.0, same)


def test_goals_name_each_miss_with_its_number():
    lines = goals([row(64, 151936, 62.9, 2.3), row(256, 151936, 86.4, 1.8), row(1, 4096, 0.2, 0.9),
                   row(1, 151936, 1.0, 2.2, us=4.46), row(2, 151936, 1.0, 2.0, us=2.9, host=21.5)])
    assert "MISS M=64 N=151936 bf16: 62.9 % of copy (goal >= 85 %)" in lines
    assert "MET  M=256 N=151936 bf16: 86.4 % of copy (goal >= 85 %)" in lines
    assert any(line.startswith("MISS M=1 N=4096") and "0.90x" in line for line in lines)
    assert "MISS M=1 N=151936 bf16: 4.46 us (goal <= 3.0 us)" in lines
    assert "MISS host M=2 N=151936 bf16: 21.5 us per call without graphs (torch.argmax 6.0; goal <= 15 us)" in lines
    assert not any(line.startswith("MET  faster") for line in lines)


def test_goals_met_read_met():
    lines = goals([row(1, 151936, 1.0, 3.0, us=2.8, host=9.0), row(1024, 151936, 90.0, 1.5)])
    assert lines == ["MET  M=1 N=151936 bf16: 2.80 us (goal <= 3.0 us)",
                     "MET  host M=1 N=151936 bf16: 9.0 us per call without graphs (torch.argmax 6.0; goal <= 15 us)",
                     "MET  M=1024 N=151936 bf16: 90.0 % of copy (goal >= 85 %)",
                     "MET  faster than torch.argmax at every M <= 1024 measured"]


def test_a_loss_to_torch_at_the_copy_ceiling_is_named_as_such():
    lines = goals([row(1024, 262144, 99.0, 0.99), row(1024, 32000, 80.0, 0.95)])
    assert "CEIL M=1024 N=262144 bf16: 0.99x torch.argmax, both at the copy ceiling (ours 99.0 %, torch 100.0 %)" in lines
    assert "MISS M=1024 N=32000 bf16: 0.95x torch.argmax (goal > 1.0x)" in lines
    assert not any(line.startswith("MET  faster") for line in lines)
    assert goals([row(1024, 262144, 99.0, 0.99), row(64, 151936, 70.0, 2.5)])[-1] == \
        "MET  faster than torch.argmax at every M <= 1024 measured but 1 where both run at the copy ceiling"


def test_sweep_rows_do_not_count_towards_goals():
    assert goals([row(64, 151936, 10.0, 0.5, selected=False)]) == []


def test_table_has_peer_and_ceiling_columns():
    text = table([row(64, 151936, 62.9, 2.3, host=8.25)], 3002.0)
    assert "torch.argmax us" in text and "% of copy (3002 GB/s)" in text and "| 64 | 151936 |" in text
    assert text.endswith("| 8.2 / 6.0 |  |")  # host us per call, ours / torch; no same-size copy timed
    assert table([row(64, 151936, 62.9, 2.3, same=9.5)], 3002.0).endswith("|  | 9.50 |")


def test_same_size_copy_is_reported_beside_the_goal():
    # ours 10 us at 60 % of copy: the same bytes copied in 8 us would be 75 % of copy
    lines = goals([row(64, 151936, 60.0, 2.0, us=10.0, same=8.0)])
    assert "INFO M=64 N=151936 bf16: a copy of the same bytes takes 8.00 us (75.0 % of copy), ours 10.00 us" in lines


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
