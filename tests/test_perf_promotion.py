"""Baseline promotion: idempotent per run id, and never a file that compare would then refuse."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpuhil.perf import store
from gpuhil.perf.baseline import Baseline, judge
from gpuhil.perf.validate import PerfInputError, check_baseline

REPO = Path(__file__).resolve().parents[1]


def make_row(run_id, case, median, **kw):
    return {"run_id": run_id, "timestamp": "2026-11-22T00:00:00+00:00", "git_sha": "abc", "sku": "h100",
            "fingerprint_id": "fp-a", "suite": "argmax", "case_id": case, "provider": "torch", "median_us": median,
            "p25_us": median * 0.995, "p75_us": median * 1.005, "throttled": False, "throttle_reasons": "",
            "status": "ok", **kw}


def write_run(tmp_path, run_id, medians):
    d = tmp_path / run_id
    for case, med in medians.items():
        store.write_row(d, make_row(run_id, case, med))
    return store.merge(d, run_id)


def gpuhil(*args):
    return subprocess.run([sys.executable, "-m", "gpuhil", *args], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})


def test_promoting_one_run_again_and_again_stores_it_once_and_keeps_the_threshold(tmp_path):
    """A CI retry promotes the same run 4 times: one entry, so the young series keeps its 10 % threshold
    and a run 7 % slower stays SAME (with 4 copies the noise estimate was 0 and the threshold fell to 5 %)."""
    run = write_run(tmp_path, "A", {"a": 10.0, "b": 20.0})
    baselines = tmp_path / "baselines"
    outs = [gpuhil("perf", "baseline", "update", "--from", str(run), "--baseline", str(baselines)) for _ in range(4)]
    assert [r.returncode for r in outs] == [0, 0, 0, 0]
    assert "promoted 2 of 2 rows" in outs[0].stdout
    assert outs[3].stdout.startswith("baseline h100: promoted 0 of 2 rows, 2 already there from run A ")
    series = json.loads((baselines / "h100" / "argmax.json").read_text())["series"]
    assert {k: [e["run_id"] for e in v] for k, v in series.items()} == {"argmax|a|torch": ["A"], "argmax|b|torch": ["A"]}

    slower = write_run(tmp_path, "B", {"a": 10.7, "b": 21.4})
    r = gpuhil("perf", "compare", str(slower), "--baseline", str(baselines), "--gate", "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["counts"]["SAME"] == 2
    assert [v["threshold"] for v in out["verdicts"]] == [pytest.approx(0.10)] * 2


def test_the_same_run_id_with_another_timing_is_refused_and_nothing_is_written(tmp_path):
    base = Baseline(tmp_path / "h100")
    assert base.add_run([make_row("A", "a", 10.0)]) == (1, 0)
    base.save()
    before = (tmp_path / "h100" / "argmax.json").read_bytes()
    again = Baseline(tmp_path / "h100")
    with pytest.raises(PerfInputError, match="series 'argmax|a|torch' already holds run 'A' with median 10.0 us, "
                                             "this row has 12.0 us: a run id is promoted once"):
        again.add_run([make_row("A", "a", 12.0)])
    assert (tmp_path / "h100" / "argmax.json").read_bytes() == before


def test_a_key_that_would_not_round_trip_is_refused_at_promotion(tmp_path):
    """A case id holding '|' used to be promoted under a key the baseline check then refused, so every
    later compare or update of the SKU ended in exit 2."""
    good = write_run(tmp_path, "A", {"a": 10.0})
    baselines = tmp_path / "baselines"
    assert gpuhil("perf", "baseline", "update", "--from", str(good), "--baseline", str(baselines)).returncode == 0
    before = (baselines / "h100" / "argmax.json").read_bytes()
    bad = write_run(tmp_path, "B", {"a": 10.0, "test_x[a|b]": 5.0})
    r = gpuhil("perf", "baseline", "update", "--from", str(bad), "--baseline", str(baselines))
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    assert "column 'case_id' is 'test_x[a|b]' in row" in r.stderr and "'|' separates the parts of a series key" in r.stderr
    assert (baselines / "h100" / "argmax.json").read_bytes() == before
    r = gpuhil("perf", "compare", str(good), "--baseline", str(baselines), "--gate")
    assert r.returncode == 0, r.stderr  # the SKU's baseline still reads


def test_save_checks_each_file_reads_back_before_writing_and_leaves_no_temporary(tmp_path):
    base = Baseline(tmp_path / "h100")
    base.add_run([make_row("A", "a", 10.0)])
    [path] = base.save()
    assert check_baseline(path, path.read_text())  # what save writes, compare reads
    assert sorted(p.name for p in path.parent.iterdir()) == ["argmax.json"]
    base.series["argmax|a|b|torch"] = base.series["argmax|a|torch"]  # a key that cannot be split back
    with pytest.raises(PerfInputError, match="a series key is 'suite|case_id|provider'"):
        base.save()
    assert sorted(p.name for p in path.parent.iterdir()) == ["argmax.json"]
    assert "argmax|a|b|torch" not in path.read_text()


def test_judging_against_a_baseline_promoted_once_matches_promoting_it_again(tmp_path):
    base = Baseline(tmp_path / "h100")
    for _ in range(3):
        base.add_run([make_row("A", "a", 10.0)])
    assert len(base.series["argmax|a|torch"]) == 1
    v = judge(base.series["argmax|a|torch"], make_row("B", "a", 10.7))
    assert (v.verdict, v.threshold) == ("SAME", pytest.approx(0.10))
