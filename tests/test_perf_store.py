"""The perf store and the baseline/compare commands, end to end on the CPU with synthetic rows."""

import json
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from gpuhil.perf import store
from gpuhil.perf.baseline import HISTORY, Baseline
from gpuhil.perf.recorder import new_run_id


def make_row(run_id, case, provider, median, *, fp="fp-a", throttled=False):
    return {"run_id": run_id, "timestamp": "2026-11-22T00:00:00+00:00", "git_sha": "abc", "sku": "h100",
            "fingerprint_id": fp, "gpu_name": "NVIDIA H100 80GB HBM3", "cc": "9.0", "sm_count": 132,
            "driver": "580.159.04", "cuda": "13.0", "torch": "2.11.0", "cutlass_dsl": "4.8.1", "dsl_cuda": "13.4",
            "suite": "argmax", "case_id": case, "provider": provider, "median_us": median, "p25_us": median * 0.995,
            "p75_us": median * 1.005, "min_us": median * 0.99, "n_samples": 50, "stdrel": 0.002, "timer_mode": "graph",
            "bytes": 1000, "gbps": 1.0, "ceiling": "device copy", "ceiling_value": 3000.0, "pct_of_ceiling": 50.0,
            "throttled": throttled, "throttle_reasons": "", "status": "throttled" if throttled else "ok"}


def write_run(tmp_path, run_id, medians, **kw):
    d = tmp_path / run_id
    for (case, provider), med in medians.items():
        store.write_row(d, make_row(run_id, case, provider, med, **kw))
    return store.merge(d, run_id)


def test_rows_survive_a_worker_that_dies_and_merge_into_one_file(tmp_path):
    store.write_row(tmp_path, make_row("old", "z", "torch", 9.0))  # an earlier run in the same dir
    store.write_row(tmp_path, make_row("r", "a", "torch", 10.0))
    store.write_row(tmp_path, make_row("r", "b", "torch", 11.0))
    # the worker dies before its next case: what it finished is on disk already
    merged = store.merge(tmp_path, "r")
    df = pd.read_parquet(merged)
    assert sorted(df["case_id"]) == ["a", "b"] and list(df.columns) == list(store.SCHEMA)
    assert len(store.read(merged)) == 2


def test_a_series_has_one_row_file_which_a_later_write_replaces(tmp_path):
    started = {**make_row("r", "a", "torch", 1.0), "status": "error", "error": "started, never finished",
               "median_us": None, "p25_us": None, "p75_us": None}
    first = store.write_row(tmp_path, started)
    assert store.write_row(tmp_path, make_row("r", "a", "torch", 10.0)) == first
    [row] = store.read(store.merge(tmp_path, "r"))
    assert (row["status"], row["median_us"], row["error"]) == ("ok", 10.0, None)


def test_rows_outside_the_schema_are_refused(tmp_path):
    with pytest.raises(ValueError, match="outside the schema"):
        store.write_row(tmp_path, {**make_row("r", "a", "t", 1.0), "speed": 3})


def test_a_reused_run_id_is_refused_not_merged(tmp_path):
    store.claim_run(tmp_path, "nightly")
    store.write_row(tmp_path, make_row("nightly", "a", "torch", 10.0))
    with pytest.raises(store.RunIdTaken, match="run id 'nightly' was already used"):
        store.claim_run(tmp_path, "nightly")
    store.merge(tmp_path, "nightly")
    shutil.rmtree(tmp_path / "rows")  # even with the rows gone, the merged file says the id was used
    with pytest.raises(store.RunIdTaken):
        store.claim_run(tmp_path, "nightly")


def test_fresh_run_ids_are_unique_and_shared_through_the_environment():
    envs = [{} for _ in range(50)]
    made = {new_run_id(env) for env in envs}
    assert len(made) == 50 and all(env["GPUHIL_RUN_ID"] in made for env in envs)
    assert new_run_id({"GPUHIL_RUN_ID": "h100-A"}) == "h100-A"


@pytest.mark.parametrize("value, message", [
    ("", "$GPUHIL_RUN_ID is set but empty"),
    ("../../x", "$GPUHIL_RUN_ID '../../x': not a safe identifier"),
])
def test_a_bad_run_id_from_the_environment_is_a_usage_error(value, message):
    with pytest.raises(pytest.UsageError, match=re.escape(message)):
        new_run_id({"GPUHIL_RUN_ID": value})


def test_baseline_keeps_a_bounded_history_and_restarts_on_a_new_fingerprint(tmp_path):
    base = Baseline(tmp_path / "h100")
    for i in range(HISTORY + 5):
        base.add_run([make_row(f"r{i}", "a", "torch", 10.0 + i * 0.01)])
    assert len(base.history(make_row("x", "a", "torch", 1))) == HISTORY
    base.add_run([make_row("new", "a", "torch", 9.0, fp="fp-b"), make_row("t", "b", "torch", 9.0, throttled=True)])
    hist = base.history(make_row("x", "a", "torch", 1))
    assert [e.fingerprint_id for e in hist] == ["fp-b"]
    assert base.history(make_row("x", "b", "torch", 1)) == []  # throttled rows are never promoted
    base.save()
    assert len(Baseline(tmp_path / "h100").history(make_row("x", "a", "torch", 1))) == 1


def gpuhil(*args):
    return subprocess.run([sys.executable, "-m", "gpuhil", *args], capture_output=True, text=True, timeout=300)


def test_update_compare_and_gate_exit_codes(tmp_path):
    cases = {("a", "torch"): 10.0, ("a", "gpuhil-cute"): 5.0, ("b", "gpuhil-cute-canary"): 7.0}
    first = write_run(tmp_path, "A", cases)
    baselines = tmp_path / "baselines"
    assert gpuhil("perf", "baseline", "update", "--from", str(first), "--baseline", str(baselines)).returncode == 0
    assert (baselines / "h100" / "argmax.json").exists()

    again = write_run(tmp_path, "A2", {k: v * 1.01 for k, v in cases.items()})
    r = gpuhil("perf", "compare", str(again), "--baseline", str(baselines), "--gate", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["counts"]["SAME"] == 3

    planted = write_run(tmp_path, "P", {**cases, ("b", "gpuhil-cute-canary"): 7.0 * 1.2})
    r = gpuhil("perf", "compare", str(planted), "--baseline", str(baselines), "--gate", "--json")
    verdicts = {v["series"]: v["verdict"] for v in json.loads(r.stdout)["verdicts"]}
    assert r.returncode == 1
    assert verdicts == {"argmax|a|torch": "SAME", "argmax|a|gpuhil-cute": "SAME", "argmax|b|gpuhil-cute-canary": "SLOW"}
    assert gpuhil("perf", "compare", str(planted), "--baseline", str(baselines)).returncode == 0  # no --gate

    text = gpuhil("perf", "compare", str(planted), "--baseline", str(baselines)).stdout
    assert "| argmax / b / gpuhil-cute-canary | SLOW | 7.00 | 8.40 | 1.200 | 10.0% |" in text


def test_compare_without_perf_rows_is_a_clear_error(tmp_path):
    r = gpuhil("perf", "compare", str(tmp_path))
    assert r.returncode == 2 and "was the run made with --perf?" in r.stderr


def test_missing_and_errored_series_fail_the_gate(tmp_path):
    cases = {("a", "torch"): 10.0, ("b", "torch"): 7.0, ("c", "torch"): 5.0}
    baselines = tmp_path / "baselines"
    assert gpuhil("perf", "baseline", "update", "--from", str(write_run(tmp_path, "A", cases)),
                  "--baseline", str(baselines)).returncode == 0
    partial = write_run(tmp_path, "B", {("a", "torch"): 10.0, ("b", "torch"): 7.0})  # c crashed before its row
    r = gpuhil("perf", "compare", str(partial), "--baseline", str(baselines), "--gate", "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 1 and out["gate"] == "fail" and out["counts"]["MISSING"] == 1
    assert [v for v in out["verdicts"] if v["verdict"] == "MISSING"] == [{
        "series": "argmax|c|torch", "verdict": "MISSING", "baseline_us": 5.0, "current_us": None, "ratio": None,
        "threshold": None, "note": f"in {baselines / 'h100' / 'argmax.json'}, no row in this run"}]
    r = gpuhil("perf", "compare", str(partial), "--baseline", str(baselines / "h100"), "--gate", "--allow-missing")
    assert r.returncode == 0, r.stdout + r.stderr  # the SKU folder works as --baseline too
    assert r.stdout.splitlines()[-2:] == ["summary: 2 SAME, 1 MISSING", "gate: pass"]

    d = tmp_path / "C"
    for (case, provider), med in cases.items():
        store.write_row(d, make_row("C", case, provider, med))
    store.write_row(d, {**make_row("C", "c", "torch", 5.0), "status": "error", "error": "AssertionError: boom"})
    errored = store.merge(d, "C")
    r = gpuhil("perf", "compare", str(errored), "--baseline", str(baselines), "--gate", "--allow-missing")
    assert r.returncode == 1
    assert "| argmax / c / torch | ERROR |  |  |  |  | AssertionError: boom |" in r.stdout
    assert r.stdout.splitlines()[-1] == "gate: fail (1 ERROR)"
    assert gpuhil("perf", "baseline", "update", "--from", str(errored), "--baseline", str(baselines)).stdout.startswith(
        "baseline h100: promoted 2 of 3 rows")  # the errored row never enters the baseline
