"""`gpuhil bench` on a CPU machine: the table rendered from a run's perf rows (a fake parquet), the
gate, and every refusal as one line with exit 2."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench_rows import argmax, gemm
from gpuhil.perf import bench, store
from gpuhil.perf.table import render

REPO = Path(__file__).resolve().parents[1]


def gpuhil(*args, cwd=REPO):
    """The command on a machine without a visible GPU, wherever the test runs."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-m", "gpuhil", *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env=env)


def run_dir(tmp_path, rows):
    d = tmp_path / "results"
    d.mkdir()
    store._frame(rows).to_parquet(d / f"perf-{rows[0]['run_id']}.parquet", index=False)
    return d


ARGMAX = [argmax("gpuhil-cute", 64, 151936, 21.0, 62.9, config="t256v8c8", host=8.25, host_peer=7.5, same_work_us=16.0),
          argmax("torch", 64, 151936, 40.0, 33.0, host=6.0, same_work_us=16.0),
          argmax("gpuhil-cute", 1, 151936, 2.9, 72.4, ceiling="launch floor", config="t256v8c1", host=9.0, host_peer=9.5),
          argmax("torch", 1, 151936, 9.5, 18.9, ceiling="launch floor", host=6.0),
          argmax("gpuhil-cute", 256, 151936, None, status="error", error="torch.OutOfMemoryError: CUDA out of memory")]


def test_the_table_sets_each_provider_beside_its_peer_and_the_roofline():
    lines = render(ARGMAX).splitlines()
    assert lines[0] == ("| case | provider | config | median us | vs torch | rate | roofline us (ceiling) | % of roofline "
                        "| same-work us (% of roofline) | host us/call | status |")
    body = [ln.split(" | ")[:2] for ln in lines[2:]]
    assert body == [["| m=1 n=151936", "torch"], ["| m=1 n=151936", "gpuhil-cute"], ["| m=64 n=151936", "torch"],
                    ["| m=64 n=151936", "gpuhil-cute"], ["| m=256 n=151936", "gpuhil-cute"]]  # peer first, M in order
    # ours 21 us at 62.9 %: roofline 13.21 us; the same bytes copied in 16 us reach 82.6 % of it; host 1.10x torch's
    assert lines[5] == ("| m=64 n=151936 | gpuhil-cute | t256v8c8 | 21.00 | 1.90x | 2013 GB/s | 13.21 (read stream) | 62.9 "
                        "| 16.00 (82.6 %, copy of the same bytes) | 8.2 (1.10x peer) | ok |")
    # M=1: the launch floor (2.10 us) sets the roofline, not the bytes
    assert lines[3].startswith("| m=1 n=151936 | gpuhil-cute | t256v8c1 | 2.90 | 3.28x | ")
    assert lines[3].endswith(" | 2.10 (launch floor) | 72.4 |  | 9.0 (0.95x peer) | ok |")
    assert lines[6].endswith("| - |  |  |  |  |  |  |  | ERROR: torch.OutOfMemoryError: CUDA out of memory |")


def test_a_math_bound_row_shows_its_tflops_and_throttling():
    text = render([gemm("gpuhil-cute-wgmma", "mixtral-8x7b-down-prefill-uniform", 726.5, 91.6, ceiling="fp8 GEMM via torch",
                        config="128x256x128c2s4", status="throttled")])
    assert "| mixtral-8x7b-down-prefill-uniform | gpuhil-cute-wgmma | 128x256x128c2s4 | 726.50 |  |" in text
    assert "| 1282 TFLOP/s | 665.47 (fp8 GEMM via torch) | 91.6 |" in text and text.endswith("| throttled (sw_power_cap) |")


def test_bench_from_a_run_prints_the_table_goals_and_gate(tmp_path):
    d = run_dir(tmp_path, ARGMAX)
    r = gpuhil("bench", "--from", str(d), "--gate")
    assert r.returncode == 1 and r.stderr == "", r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "device: NVIDIA H100 80GB HBM3 (SKU h100, fingerprint " + ARGMAX[0]["fingerprint_id"] + \
        "), run 20261122T030000-4242"
    assert out[1] == "ceilings: launch floor 1.80 us, read stream 3200 GB/s (measured in this run unless published)"
    assert "MISS    argmax-batched-read-rate gpuhil-cute m=64 n=151936: pct_of_roofline 62.90 (goal >= 85)" in out
    assert "MISS    argmax-host-vs-torch gpuhil-cute m=64 n=151936: host_ratio 1.10 (goal <= 1)" in out
    assert "MET     argmax-single-token-latency gpuhil-cute m=1 n=151936: median_us 2.90 (goal <= 3)" in out
    assert "ERROR   argmax-faster-than-torch gpuhil-cute m=256 n=151936: (goal >= 1); torch.OutOfMemoryError: " \
           "CUDA out of memory" in out
    assert out[-1] == "gate: fail (2 MISS, 2 ERROR)"
    assert gpuhil("bench", "--from", str(d)).returncode == 0  # without --gate the bench only reports


def test_bench_gate_passes_when_every_goal_is_met(tmp_path):
    d = run_dir(tmp_path, [argmax("gpuhil-cute", 1, 151936, 2.9, 72.4, ceiling="launch floor", host=9.0, host_peer=9.5),
                           argmax("torch", 1, 151936, 9.5, 18.9, ceiling="launch floor")])
    r = gpuhil("bench", "--from", str(d), "--gate")
    assert (r.returncode, r.stdout.splitlines()[-1]) == (0, "gate: pass"), r.stdout


def test_rows_of_an_older_schema_render_by_their_case_id(tmp_path):
    old = {k: v for k, v in argmax("gpuhil-cute", 64, 151936, 21.0, 62.9).items()
           if k not in ("params", "config", "host_us", "host_peer_us", "same_work", "same_work_us")}
    d = tmp_path / "old"
    d.mkdir()
    store._frame([old]).to_parquet(d / "perf-x.parquet", index=False)
    r = gpuhil("bench", "--from", str(d))
    assert r.returncode == 0 and "| gpuhil-cute-64-151936 | gpuhil-cute | - | 21.00 |" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("args, line", [
    (["bench", "argmax"], "gpuhil bench: needs a GPU; the probe found none ("),
    (["bench", "nope"], "gpuhil bench: no suite 'nope' in {repo}/suites (have: argmax, device, fp8_grouped_gemm, gates, "
                        "nvfp4_moe)"),
    (["bench"], "gpuhil bench: name a suite to run (e.g. argmax), or give --from RESULTS to render a run"),
    (["bench", "--from", "{tmp}/none"], "gpuhil bench: {tmp}/none: no such file or directory"),
    (["bench", "fp8_grouped_gemm", "--from", "{run}"], "gpuhil bench: --from {run}: no row of suite 'fp8_grouped_gemm'"),
    (["bench", "argmax", "--goals", "{tmp}/none.yaml"], "gpuhil bench: {tmp}/none.yaml: no such file"),
])
def test_every_refusal_is_one_line_and_exit_2(tmp_path, args, line):
    d = run_dir(tmp_path, ARGMAX)
    fill = {"repo": REPO, "tmp": tmp_path, "run": d}
    r = gpuhil(*[a.format(**fill) for a in args])
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(line.format(**fill)), r.stderr


def test_a_bench_writes_only_a_new_or_empty_results_folder(tmp_path):
    used = run_dir(tmp_path, ARGMAX)
    with pytest.raises(bench.BenchRefused, match="not empty; a bench writes a new or empty folder"):
        bench.fresh_results_dir(str(used), REPO, "argmax")
    assert bench.fresh_results_dir(str(tmp_path / "new" / "dir"), REPO, "argmax").is_dir()
    default = bench.fresh_results_dir(None, tmp_path, "argmax")
    assert default.parent == tmp_path / "results" and default.name.startswith("bench-") and default.name.endswith("-argmax")


def test_the_bench_runs_the_suites_perf_cases_through_the_perf_fixture():
    cmd = bench.pytest_command("argmax", Path("/r"), emulate="h20", keyword="M64")
    assert cmd[1:9] == ["-m", "pytest", "suites/argmax", "-m", "perf", "--perf", "--results-dir=/r", "--junitxml=/r/junit.xml"]
    assert cmd[-4:] == ["--emulate-sku", "h20", "-k", "M64"] and "-n" in cmd and cmd[cmd.index("-n") + 1] == "1"
