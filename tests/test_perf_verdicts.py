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
