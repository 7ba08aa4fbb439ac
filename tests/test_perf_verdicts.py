"""Noise-aware verdicts on synthetic series: what the perf gate must and must not call a regression."""

import random

import pytest

from gpuhil.perf.baseline import FLOOR, Entry, judge

FP = "fp-a"


def history(medians, fp=FP):
    return [Entry(f"run{i}", "2026-11-22T00:00:00", fp, "sha", m, m * 0.99, m * 1.01) for i, m in enumerate(medians)]


def row(median, *, fp=FP, throttled=False, spread=0.01, status=None):
    return {"suite": "argmax", "case_id": "c", "provider": "p", "fingerprint_id": fp, "median_us": median,
            "p25_us": median * (1 - spread / 2), "p75_us": median * (1 + spread / 2), "throttled": throttled,
            "throttle_reasons": "sw_power_cap" if throttled else "", "status": status or ("throttled" if throttled else "ok")}


STEADY = [10.0, 10.1, 9.9, 10.05, 9.95, 10.02, 9.98]


def test_a_20_percent_step_is_slow():
    v = judge(history(STEADY), row(12.0))
    assert v.verdict == "SLOW" and v.ratio == pytest.approx(1.2, rel=0.01) and v.threshold == FLOOR


def test_noise_within_the_series_mad_is_same():
    rnd = random.Random(7)
    noisy = [10 * (1 + rnd.gauss(0, 0.03)) for _ in range(15)]  # 3 % run-to-run noise: threshold widens
    v = judge(history(noisy), row(10 * 1.08))
    assert v.verdict == "SAME" and v.threshold > 0.08


def test_a_20_percent_speedup_is_fast():
    assert judge(history(STEADY), row(8.0)).verdict == "FAST"


def test_throttled_cases_are_invalid_never_slow():
    assert judge(history(STEADY), row(20.0, throttled=True)).verdict == "INVALID"


def test_errored_cases_are_error_with_their_reason_never_a_timing():
    r = {**row(20.0, status="error"), "error": "RuntimeError: CUDA error: an illegal memory access was encountered"}
    v = judge(history(STEADY), r)
    assert (v.verdict, v.current_us, v.ratio, v.note) == ("ERROR", None, None, r["error"])


def test_a_bimodal_series_is_ambiguous_not_slow():
    bimodal = [10.0, 10.0, 12.0, 10.0, 12.0, 10.0, 12.1, 10.0]
    v = judge(history(bimodal), row(12.0))
    assert v.verdict == "AMBG" and "bimodal" in v.note


def test_a_new_fingerprint_starts_a_new_epoch():
    v = judge(history(STEADY, fp="driver-580"), row(14.0, fp="driver-590"))
    assert v.verdict == "EPOCH" and "new baseline epoch" in v.note


def test_only_the_current_epoch_is_compared():
    mixed = history([20.0, 20.0, 20.0], fp="old") + history(STEADY)
    assert judge(mixed, row(10.0)).verdict == "SAME"


def test_a_series_without_baseline_is_new():
    assert judge([], row(10.0)).verdict == "NEW"


def test_a_young_series_assumes_run_to_run_noise():
    young = history([15.10])  # one baseline run: its spread across runs is unknown yet
    assert judge(young, row(16.28)).verdict == "SAME"  # +7.8 %, seen between two A/A runs on an H100
    assert judge(young, row(18.2)).verdict == "SLOW"  # +20 %
    assert judge(young, row(16.28)).threshold == pytest.approx(0.10)


def test_a_noisy_current_run_widens_its_own_threshold():
    v = judge(history(STEADY), row(11.5, spread=0.2))  # IQR of 20 %: 15 % is inside what it can tell
    assert v.verdict == "SAME"


@pytest.mark.parametrize("change, note", [
    ({"median_us": 0.0}, "not a measurement: median_us is 0.0: a timing must be a positive number"),
    ({"median_us": -5.0, "p25_us": -5.1, "p75_us": -4.9}, "not a measurement: median_us is -5.0: a timing must be a positive number"),
    ({"median_us": float("nan")}, "not a measurement: median_us is nan: a timing must be a positive number"),
    ({"median_us": None}, "not a measurement: median_us is None: a timing must be a positive number"),
    ({"median_us": float("inf")}, "not a measurement: median_us is inf: a timing must be a positive number"),
    ({"median_us": "10"}, "not a measurement: median_us is '10': a timing must be a positive number"),
    ({"p25_us": 12.0, "p75_us": 10.5}, "not a measurement: p25_us 12.0, median_us 10.0, p75_us 10.5 are out of order (p25 <= median <= p75)"),
    ({"status": "done"}, "not a measurement: status 'done'"),
    ({"status": None}, "not a measurement: status None"),
])
def test_a_value_that_is_not_a_measurement_is_error_never_a_crash_or_fast(change, note):
    """judge survives any value: a zero median divided by, a negative one read as 'FAST, -204 %'."""
    v = judge(history(STEADY), {**row(10.0), **change})
    assert (v.verdict, v.ratio, v.note) == ("ERROR", None, note)


def test_history_entries_that_are_not_measurements_are_left_out():
    bad = [Entry("z", "t", FP, "sha", 0.0, 0.0, 0.0), Entry("y", "t", FP, "sha", -3.0, -3.1, -2.9)]
    v = judge(history(STEADY) + bad, row(10.0))
    assert v.verdict == "SAME" and v.baseline_us == pytest.approx(10.0, rel=0.01)
    assert judge(bad, row(10.0)).verdict == "NEW"
