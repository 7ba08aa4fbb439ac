"""Goals as data: the shipped file, refusals of a malformed one (one line naming file and field), and
verdicts judged on rows with the baselines' own check of unusable rows."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench_rows import argmax, gemm
from gpuhil.perf import goals
from gpuhil.perf.baseline import unusable
from gpuhil.perf.validate import PerfInputError

REPO = Path(__file__).resolve().parents[1]
SHIPPED = goals.load(REPO / "baselines" / "goals.yaml")


def by_id(goal_id):
    return next(g for g in SHIPPED if g.id == goal_id)


def test_the_shipped_goals_are_the_benches_constants_with_reasons():
    got = {g.id: (g.suite, g.provider, g.metric, g.min if g.min is not None else g.max, g.peer) for g in SHIPPED}
    assert got == {
        "argmax-batched-read-rate": ("argmax", "gpuhil-cute", "pct_of_roofline", 85.0, None),
        "argmax-single-token-latency": ("argmax", "gpuhil-cute", "median_us", 3.0, None),
        "argmax-single-token-launch-floor": ("argmax", "gpuhil-cute", "pct_of_roofline", 70.0, None),
        "argmax-host-vs-torch": ("argmax", "gpuhil-cute", "host_ratio", 1.0, None),
        "argmax-faster-than-torch": ("argmax", "gpuhil-cute", "vs_peer", 1.0, "torch"),
        "grouped-gemm-prefill-roofline": ("fp8_grouped_gemm", "gpuhil-cute-wgmma", "pct_of_roofline", 90.0, None),
        "grouped-gemm-decode-vs-torch": ("fp8_grouped_gemm", "gpuhil-cute-wgmma", "vs_peer", 1.25, "torch"),
        "grouped-gemm-host-vs-torch": ("fp8_grouped_gemm", "gpuhil-*", "host_ratio", 1.0, None),
        "nvfp4-grouped-gemm-prefill-vs-dense-bf16": ("nvfp4_moe", "gpuhil-*", "pct_of_same_work", 60.0, None),
        "nvfp4-decode-byte-roofline": ("nvfp4_moe", "gpuhil-*", "pct_of_roofline", 70.0, None),
        "nvfp4-layer-vs-torch": ("nvfp4_moe", "gpuhil-*", "vs_peer", 5.0, "torch"),
    }
    assert all(len(g.reason) > 40 for g in SHIPPED)


def test_params_select_by_glob_and_numeric_bound():
    batched = by_id("argmax-batched-read-rate")  # m: ">=64", n: "151936"
    assert [batched.selects(argmax("gpuhil-cute", m, n, 10.0)) for m, n in ((64, 151936), (256, 151936), (7, 151936),
                                                                            (256, 32000))] == [True, True, False, False]
    assert not batched.selects(argmax("torch", 64, 151936, 10.0))
    prefill = by_id("grouped-gemm-prefill-roofline")
    assert prefill.selects(gemm("gpuhil-cute-wgmma", "qwen3-30b-a3b-down-prefill-uniform", 1.0, 1.0))
    assert not prefill.selects(gemm("gpuhil-cute-wgmma", "qwen3-30b-a3b-down-decode-uniform", 1.0, 1.0))


def judged(goal_id, rows):
    return [(v.verdict, None if v.value is None else round(v.value, 2), v.note) for v in goals.judge([by_id(goal_id)], rows)]


def test_argmax_goals_met_missed_and_at_the_read_ceiling():
    rows = [argmax("torch", 64, 151936, 40.0, 30.0), argmax("gpuhil-cute", 64, 151936, 21.0, 62.9),
            argmax("torch", 1024, 262144, 99.0, 99.0), argmax("gpuhil-cute", 1024, 262144, 100.0, 98.0),  # torch at ceiling
            argmax("torch", 1024, 32000, 95.0, 76.0), argmax("gpuhil-cute", 1024, 32000, 100.0, 72.2),
            argmax("torch", 1, 151936, 9.5, 18.9, ceiling="launch floor", host=6.0),
            argmax("gpuhil-cute", 1, 151936, 2.8, 64.3, ceiling="launch floor", host=22.0, host_peer=20.0)]
    assert judged("argmax-batched-read-rate", rows) == [("MISS", 62.9, "")]
    assert judged("argmax-single-token-latency", rows) == [("MET", 2.8, "")]
    assert judged("argmax-single-token-launch-floor", rows) == [("MISS", 64.3, "")]
    # 22 us against torch's 20 timed beside it: 1.1x, a miss however fast or slow the CPU was
    assert judged("argmax-host-vs-torch", rows) == [
        ("INVALID", None, "the row has no host time beside its peer's"), ("MISS", 1.1, "")]
    assert judged("argmax-faster-than-torch", rows) == [
        ("MET", 1.9, ""),
        ("CEIL", 0.99, "1x needs 99.0 % of the roofline, torch is at 99.0 %, this row 98.0 %"),  # past 97 %
        ("MISS", 0.95, "1x needs 76.0 % of the roofline, torch is at 76.0 %, this row 72.2 %"),
        ("MET", 3.39, "")]


def test_the_host_goal_is_a_ratio_to_the_peer_timed_beside_it(tmp_path):
    """The shipped host goals bound ours over torch's host time (max 1.0), not an absolute time; a file
    may state such a goal, only with a max; a row whose peer's host time is missing is not judged."""
    assert {g.id: (g.metric, g.max, g.min) for g in SHIPPED if g.metric.startswith("host")} == {
        "argmax-host-vs-torch": ("host_ratio", 1.0, None), "grouped-gemm-host-vs-torch": ("host_ratio", 1.0, None)}
    assert "shared CPU" in by_id("argmax-host-vs-torch").reason
    f = tmp_path / "goals.yaml"
    f.write_text("goals:\n  - {id: h, suite: argmax, metric: host_ratio, max: 0.9, reason: why}\n")
    [goal] = goals.load(f)
    rows = [argmax("gpuhil-cute", 1, 151936, 2.8, host=9.0, host_peer=12.0),  # 0.75x: slow CPU on both sides
            argmax("gpuhil-cute", 64, 151936, 9.0, host=4.6, host_peer=5.0),  # 0.92x: fast CPU, still a miss
            argmax("gpuhil-cute", 7, 151936, 3.0, host=4.0)]
    assert [(v.verdict, round(v.value, 2) if v.value else None) for v in goals.judge([goal], rows)] == [
        ("MET", 0.75), ("MISS", 0.92), ("INVALID", None)]
    f.write_text("goals:\n  - {id: h, suite: argmax, metric: host_ratio, min: 1, reason: why}\n")
    with pytest.raises(PerfInputError, match="metric 'host_ratio' takes field 'max'"):
        goals.load(f)


def test_a_row_a_baseline_may_not_judge_is_not_judged_against_a_goal_either():
    oom = argmax("gpuhil-cute", 64, 151936, None, status="error", error="torch.OutOfMemoryError: CUDA out of memory")
    hot = argmax("gpuhil-cute", 256, 151936, 20.0, 99.0, status="throttled")
    for r in (oom, hot):
        [v] = goals.judge([by_id("argmax-batched-read-rate")], [r])
        assert (v.verdict, v.note) == (unusable(r).verdict, unusable(r).note)
    assert [v.verdict for v in goals.judge([by_id("argmax-batched-read-rate")], [oom, hot])] == ["ERROR", "INVALID"]
    assert goals.gate_fails(goals.judge([by_id("argmax-batched-read-rate")], [oom, hot])) == {"ERROR": 1}


def test_a_peer_that_did_not_run_makes_the_ratio_invalid():
    rows = [argmax("torch", 64, 151936, None, status="error", error="RuntimeError: boom"),
            argmax("gpuhil-cute", 64, 151936, 21.0, 62.9), argmax("gpuhil-cute", 256, 151936, 60.0, 80.0)]
    assert judged("argmax-faster-than-torch", rows) == [
        ("INVALID", None, "peer 'torch' is ERROR: RuntimeError: boom"),
        ("INVALID", None, "no row of peer 'torch' for this problem")]


def test_a_goal_no_row_matches_is_none_and_goals_of_other_suites_are_left_out():
    rows = [argmax("gpuhil-cute", 7, 151936, 5.0, 20.0)]
    got = {(v.goal.id, v.verdict) for v in goals.judge(SHIPPED, rows)}
    assert ("argmax-batched-read-rate", "NONE") in got and not any(gid.startswith("grouped") for gid, _ in got)
    assert goals.gate_fails(goals.judge(SHIPPED, rows)) == {}


GOOD = {"id": "g", "suite": "argmax", "metric": "median_us", "max": 3, "reason": "why"}


@pytest.mark.parametrize("text, message", [
    ("goals: [", "{f}: not valid YAML (line 1 column 9: expected the node content, but found '<stream end>')"),
    ("- 1", "{f}: missing field 'goals' (a list of goals; see gpuhil.perf.goals)"),
    ("goals: []\nextra: 1", "{f}: unknown top-level field 'extra' (fields: schema, goals)"),
    ("schema: 2\ngoals: []", "{f}: field 'schema' is 2; this gpuhil reads schema 1"),
    ("goals: {a: 1}", "{f}: field 'goals' must be a list"),
    ("goals: [3]", "{f}: goals[0]: expected a mapping with fields id, suite, provider, test, params, metric, min, max, "
                   "peer, ceil, ceil_pct, reason"),
    ({**GOOD, "metric": "pct"}, "{f}: goal 'g' (goals[0]): field 'metric' is 'pct', expected one of pct_of_roofline, "
                                "pct_of_same_work, vs_peer, median_us, host_us, host_ratio"),
    ({**GOOD, "max": -1}, "{f}: goal 'g' (goals[0]): field 'max' must be a positive number, got -1"),
    ({**GOOD, "max": True}, "{f}: goal 'g' (goals[0]): field 'max' must be a positive number, got True"),
    ({k: v for k, v in GOOD.items() if k != "max"} | {"min": 3},
     "{f}: goal 'g' (goals[0]): metric 'median_us' takes field 'max' (and not the other bound)"),
    ({k: v for k, v in GOOD.items() if k != "reason"}, "{f}: goal 'g' (goals[0]): missing field 'reason'"),
    ({**GOOD, "reason": ""}, "{f}: goal 'g' (goals[0]): field 'reason' must be a non-empty string, got ''"),
    ({**GOOD, "peer": "torch"}, "{f}: goal 'g' (goals[0]): field 'peer' only goes with metric 'vs_peer'"),
    ({**GOOD, "metric": "vs_peer", "min": 1, "max": None} | {},
     "{f}: goal 'g' (goals[0]): metric 'vs_peer' takes field 'min' (and not the other bound)"),
    ({**GOOD, "ceil": "same_work"}, "{f}: goal 'g' (goals[0]): field 'ceil' is 'same_work'; 'same_work' goes with "
                                    "metric 'pct_of_roofline'; 'peer_share' goes with metric 'vs_peer'"),
    ({**GOOD, "ceil_pct": 97}, "{f}: goal 'g' (goals[0]): field 'ceil_pct' only goes with ceil 'peer_share'"),
    ({**GOOD, "params": {"m": []}}, "{f}: goal 'g' (goals[0]): field 'params.m' must be a glob, a bound (>=N) or a "
                                    "non-empty list of them"),
    ({**GOOD, "provder": "x"}, "{f}: goal 'g' (goals[0]): unknown field 'provder' (fields: id, suite, provider, test, "
                               "params, metric, min, max, peer, ceil, ceil_pct, reason)"),
])
def test_a_malformed_goals_file_is_one_line_naming_file_and_field(tmp_path, text, message):
    import yaml

    f = tmp_path / "goals.yaml"
    f.write_text(text if isinstance(text, str) else yaml.safe_dump({"schema": 1, "goals": [text]}))
    with pytest.raises(PerfInputError) as exc:
        goals.load(f)
    assert str(exc.value) == message.format(f=f)


def test_a_repeated_goal_id_is_refused(tmp_path):
    f = tmp_path / "goals.yaml"
    f.write_text(textwrap.dedent("""
        goals:
          - {id: g, suite: argmax, metric: median_us, max: 3, reason: why}
          - {id: g, suite: argmax, metric: host_us, max: 15, reason: why}
    """))
    with pytest.raises(PerfInputError, match=r"goal 'g' \(goals\[1\]\): field 'id' repeats goal 'g'"):
        goals.load(f)


def test_gpuhil_bench_refuses_a_malformed_goals_file_before_anything_runs(tmp_path):
    f = tmp_path / "goals.yaml"
    f.write_text("goals:\n  - {id: g, suite: argmax, metric: median_us, min: 3, reason: why}\n")
    r = subprocess.run([sys.executable, "-m", "gpuhil", "bench", "argmax", "--goals", str(f)], capture_output=True,
                       text=True, cwd=REPO)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"gpuhil bench: {f}: goal 'g' (goals[0]): metric 'median_us' takes field 'max' (and not the other bound)\n"
