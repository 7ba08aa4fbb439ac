"""Change-point detection on synthetic series: steps found at the right run, noise left alone, epoch
changes labelled as such; invalid and emulated rows kept out of native series."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from gpuhil.history.changepoints import MIN_EFFECT, detect, epoch_boundaries, noise, segment
from gpuhil.history.series import SOFTWARE, Point, build
from gpuhil.perf.store import SCHEMA

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def points(values, *, torch=None, fingerprints=None):
    out = []
    for i, v in enumerate(values):
        t = torch[i] if torch else "2.11.0"
        fp = fingerprints[i] if fingerprints else f"fp-{t}"
        sw = tuple((f, {"torch": t}.get(f, "x")) for f in SOFTWARE)
        out.append(Point(f"run{i:03d}", (T0 + dt.timedelta(days=i)).isoformat(), f"{i:040x}", fp, sw,
                         float(v), float(v) * 0.99, float(v) * 1.01))
    return out


def noisy(n, rel, seed, *, dist="normal"):
    rng = np.random.default_rng(seed)
    e = rng.normal(0, rel, n) if dist == "normal" else rng.standard_t(3, n) * rel / np.sqrt(3)
    return 10.0 * np.exp(e)


@pytest.mark.parametrize("seed", range(10))
def test_a_15_percent_step_after_30_noisy_runs_is_found_at_run_30(seed):
    v = noisy(45, 0.02, seed)  # 2 % run-to-run noise, as A/A runs on one GPU show
    v[30:] *= 1.15
    (cp,) = detect(points(v))
    assert cp.index == 30 and cp.kind == "regression"
    assert (cp.before.run_id, cp.after.run_id) == ("run029", "run030")
    assert cp.commit_range == f"{29:040x}"[:12] + ".." + f"{30:040x}"[:12]
    assert cp.ratio == pytest.approx(1.15, abs=0.03)  # medians of 30 and 15 runs at 2 % noise: a few tenths of a %


def test_an_improvement_is_told_from_a_regression():
    v = noisy(40, 0.02, 7)
    v[25:] *= 0.85
    (cp,) = detect(points(v))
    assert (cp.index, cp.kind) == (25, "improvement") and cp.ratio == pytest.approx(0.85, abs=0.03)


@pytest.mark.parametrize("dist, rel, seeds, allowed", [
    ("normal", 0.02, 100, 0), ("student-t3", 0.03, 60, 0),
    # At 5 % noise the 5 % floor is one sigma: 1 false step in 3000 seeds was measured (a 5.1 % "step");
    # allowing 2 in 100 bounds the rate without making these fixed seeds the definition of correct.
    ("normal", 0.05, 100, 2),
])
def test_noise_alone_gives_no_change_point(dist, rel, seeds, allowed):
    found = [s for s in range(seeds) if detect(points(noisy(60, rel, 1000 + s, dist=dist)))]
    assert len(found) <= allowed, f"false positives at seeds {found} of {seeds}"


def test_a_small_but_real_shift_is_below_the_floor_and_not_reported():
    v = noisy(60, 0.002, 3)
    v[30:] *= 1.03  # 15 sigma, but under the 5 % floor nobody acts on
    assert MIN_EFFECT == 0.05
    assert segment(list(v)) == [] and segment(list(v), min_effect=0.01) == [30]


def test_a_step_two_runs_before_the_end_is_already_found():
    v = noisy(30, 0.01, 11)
    v[28:] *= 1.2
    (cp,) = detect(points(v))
    assert (cp.index, cp.kind) == (28, "regression")


def test_an_epoch_change_is_labelled_as_such_not_as_a_regression():
    v = noisy(40, 0.02, 5)
    v[20:] *= 1.12
    torch = ["2.11.0"] * 20 + ["2.12.0"] * 20
    (cp,) = detect(points(v, torch=torch))
    assert (cp.index, cp.kind) == (20, "epoch")
    assert cp.fingerprint_change == (("torch", "2.11.0", "2.12.0"),)
    assert "epoch change (torch 2.11.0 -> 2.12.0)" in cp.describe()


def test_a_step_one_run_off_a_fingerprint_change_is_that_change():
    v = noisy(40, 0.02, 6)
    v[21:] *= 1.12  # the new driver's first night still ran warm caches, say: the step shows a run late
    (cp,) = detect(points(v, torch=["2.11.0"] * 20 + ["2.12.0"] * 20))
    assert (cp.index, cp.kind) == (20, "epoch")


def test_a_regression_after_an_epoch_stays_a_regression():
    v = noisy(60, 0.02, 8)
    v[20:] *= 1.12
    v[45:] *= 1.15
    cps = detect(points(v, torch=["2.11.0"] * 20 + ["2.12.0"] * 40))
    assert [(c.index, c.kind) for c in cps] == [(20, "epoch"), (45, "regression")]
    assert cps[1].ratio == pytest.approx(1.15, abs=0.03)


def test_a_device_fingerprint_change_without_a_step_is_a_boundary_only():
    pts = points(noisy(30, 0.02, 9), fingerprints=["fp-a"] * 15 + ["fp-b"] * 15)
    assert detect(pts) == [] and epoch_boundaries(pts) == [15]


def test_noise_estimate_ignores_the_step():
    z = np.log(noisy(60, 0.02, 2))
    stepped = z.copy()
    stepped[30:] += np.log(1.5)
    assert noise(list(stepped)) == pytest.approx(noise(list(z)), rel=0.15)
    assert noise(list(z)) == pytest.approx(0.02, rel=0.35)


def frame(rows):
    return pd.DataFrame([{k: r.get(k) for k in SCHEMA} for r in rows], columns=list(SCHEMA)).astype(SCHEMA)


def row(run, median, *, emulated=None, status="ok", throttled=False):
    return {"run_id": run, "sku": "h100", "emulated_sku": emulated, "suite": "argmax", "case_id": "c", "provider": "p",
            "median_us": median, "p25_us": median, "p75_us": median, "fingerprint_id": "fp", "status": status,
            "throttled": throttled, "throttle_reasons": "sw_power_cap" if throttled else "", "git_sha": "abc",
            "timestamp": "2026-01-01T00:00:00+00:00"}


def test_throttled_and_failed_rows_are_invalid_points_never_detected():
    runs = pd.DataFrame({"sku": "h100", "run_id": [f"r{i:02d}" for i in range(30)], "machine": "h100",
                         "timestamp": [(T0 + dt.timedelta(days=i)).isoformat() for i in range(30)]})
    values = noisy(30, 0.01, 4)
    rows = [row(f"r{i:02d}", float(v)) for i, v in enumerate(values)]
    for i in range(20, 30, 3):  # slow, but throttled: not evidence of a regression
        rows[i] = row(f"r{i:02d}", float(values[i]) * 1.4, status="throttled", throttled=True)
    rows[25] = row("r25", float("nan"), status="error")
    (s,) = build(frame(rows), runs)
    assert len(s.invalid) == 5 and len(s.points) == 25
    assert {p.why_invalid for p in s.invalid} == {"sw_power_cap", "error"}
    assert detect(s.points) == []


def test_emulated_rows_are_a_separate_series():
    runs = pd.DataFrame({"sku": "h100", "run_id": ["n1", "e1"], "machine": ["h100", "h100-as-h20"],
                         "timestamp": [T0.isoformat(), (T0 + dt.timedelta(hours=1)).isoformat()]})
    series = build(frame([row("n1", 5.0), row("e1", 9.0, emulated="h20")]), runs)
    assert [(s.machine, s.emulated_sku, [p.median_us for p in s.points]) for s in series] == \
        [("h100", None, [5.0]), ("h100-as-h20", "h20", [9.0])]


def test_a_series_without_valid_points_has_no_change_points():
    """Seen on the H100: a series throttled in every run reaches detection with no valid point."""
    assert detect([]) == []
