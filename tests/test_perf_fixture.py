"""The perf fixture and run ids in real sessions (pytester): a case that crashes, raises or skips never
leaves an `ok` row; rows carry the case's parameters, config, roofline, host time and same-work
reference; `gpuhil bench` runs a suite through that fixture and renders its rows; a reused or unsafe
run id is a usage error; catalog markers select runner lists."""

import os
import textwrap
from pathlib import Path

import io

import pandas as pd
import pytest
import yaml

from fakes import NAMED_PROVIDER, make_checkout
from gpuhil.perf import store
from gpuhil.perf.recorder import NEVER_FINISHED

REPO = Path(__file__).resolve().parents[1]
# Load pandas' parquet machinery now, at collection: pytester unloads modules first imported during a
# test, and importing them again re-registers pyarrow extension types, which pyarrow refuses.
pd.read_parquet(io.BytesIO(store._frame([]).to_parquet()))

# The timer and ceilings need a GPU; everything around them (write-ahead, report hook, merge) does not.
FAKE_TIMER_CONFTEST = textwrap.dedent("""
    pytest_plugins = ("gpuhil.pytest_plugin", "fixtures.perf")

    from gpuhil.perf.recorder import PerfRecorder
    from gpuhil.perf.timer import Timing


    class FakeTimer:
        def graph(self, fns, calls_per_replay=None):
            for fn in fns:
                fn()
            us = getattr(fns[0], "fake_us", 10.0)  # a same-work reference says what it takes
            return Timing(median_us=us, p25_us=us * 0.99, p75_us=us * 1.01, min_us=us * 0.98, n_samples=15,
                          stdrel=0.001, mode="graph", sm_clock_mhz=None, throttled=False, throttle_reasons=())

        def host(self, fns):
            for fn in fns:
                fn()
            return [7.5, 10.0][:len(fns)]  # ours, then the peer's where one is timed beside it


    FAKE = FakeTimer()
    PerfRecorder.timer = property(lambda self: FAKE)
    PerfRecorder.measure_ceilings = lambda self: {"read_gbps": 1000.0, "copy_gbps": 800.0, "launch_us": 2.0,
                                                  "bf16_gemm_tflops": 1.0, "fp8_gemm_tflops": 2.0}
""")

CASES = NAMED_PROVIDER + textwrap.dedent("""
    import os
    import pytest
    from gpuhil.perf.work import Work

    NAMES = ("fine", "raises_before", "raises_after", "crashes", "skips", "forgets")

    @pytest.mark.perf
    @pytest.mark.parametrize("provider", [case(Named(n), None, n, id=n) for n in NAMES])
    def test_case(provider, perf):
        if provider == "raises_before":
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        if provider == "crashes":
            os._exit(3)  # what a segfault or a sticky CUDA error does to a worker
        if provider == "skips":
            pytest.skip("not on this device")
        if provider == "forgets":
            return
        perf.record([lambda: None], provider=provider, work=Work(bytes=1000))
        assert provider != "raises_after", "wrong answer after timing"
""")


@pytest.fixture
def checkout(pytester, monkeypatch):
    make_checkout(pytester.path)
    (pytester.path / "conftest.py").write_text(FAKE_TIMER_CONFTEST)
    (pytester.path / "suites" / "argmax" / "test_perf_cases_demo.py").write_text(CASES)
    # The subprocess imports this checkout's sources and fixtures, wherever pytester runs it.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "src"), str(REPO)]))
    monkeypatch.delenv("GPUHIL_RUN_ID", raising=False)
    return pytester


def test_crashed_raised_and_skipped_cases_never_leave_an_ok_row(checkout):
    res = checkout.path / "res"
    out = checkout.runpytest_subprocess("suites", "--perf", "--results-dir", str(res), "-n", "1", "-p", "no:cacheprovider")
    out.assert_outcomes(passed=2, failed=3, skipped=1)  # the crash is reported as a failure by xdist
    [merged] = res.glob("perf-*.parquet")
    rows = {r["provider"]: r for r in store.read(merged)}
    assert {p: (r["status"], r["error"]) for p, r in rows.items()} == {
        "fine": ("ok", None),
        "raises_before": ("error", "RuntimeError: CUDA error: an illegal memory access was encountered"),
        "raises_after": ("error", "AssertionError: wrong answer after timing"),
        "crashes": ("error", NEVER_FINISHED),
        "forgets": ("error", "the case passed without recording a timing"),
    }  # "skips" left no row: it did not apply here
    assert rows["fine"]["median_us"] == 10.0 and rows["crashes"]["median_us"] is None


COLUMNS = textwrap.dedent("""
    import pytest
    from gpuhil.perf.ceilings import SameWork
    from gpuhil.perf.work import READ, Work

    CALLS = []


    def copy_ref():
        CALLS.append(1)


    copy_ref.fake_us = 8.0  # what the fake timer reports for it
    WORK = {"small": Work(bytes=5_000_000, flops=1_000_000, math="fp8"),  # 5 us of reads, 0.5 us of fp8 math
            "big": Work(bytes=1_000_000, flops=16_000_000, math="fp8")}  # 1 us of reads, 8 us of fp8 math


    class Launch:
        class config:
            name = "tile128"


    @pytest.mark.perf
    @pytest.mark.parametrize("size", ["small", "big"])
    @pytest.mark.parametrize("provider", ["torch", "ours"])
    def test_columns(provider, size, perf):
        perf.record([lambda: None], provider=provider, work=WORK[size], launch=Launch() if provider == "ours" else None,
                    host=size == "small", host_peer=(lambda: None) if provider == "ours" and size == "small" else None,
                    same_work=SameWork("copy of the same bytes", READ, ("copy", size), lambda: [copy_ref]))
        assert len(CALLS) == 1  # timed once per key and process, and only beside a bytes-bound case
""")


def test_rows_carry_params_config_roofline_host_and_same_work(checkout):
    (checkout.path / "suites" / "argmax" / "test_columns_demo.py").write_text(COLUMNS)
    res = checkout.path / "res"
    out = checkout.runpytest_subprocess("suites/argmax/test_columns_demo.py", "--perf", "--results-dir", str(res),
                                        "-p", "no:cacheprovider")
    out.assert_outcomes(passed=4)
    rows = {(r["provider"], r["params"]): r for r in store.read(res)}
    small, big = '{"size": "small"}', '{"size": "big"}'
    assert set(rows) == {(p, s) for p in ("torch", "ours") for s in (small, big)}
    got = {k: (r["config"], r["ceiling"], r["ceiling_value"], round(r["pct_of_ceiling"], 3), r["host_us"],
               r["host_peer_us"], r["same_work"], r["same_work_us"]) for k, r in rows.items()}
    assert got == {  # 10 us per call; read stream 1000 GB/s and fp8 2 TFLOP/s measured "in the same run"
        ("torch", small): (None, "read stream", 1000.0, 50.0, 7.5, None, "copy of the same bytes", 8.0),
        ("ours", small): ("tile128", "read stream", 1000.0, 50.0, 7.5, 10.0, "copy of the same bytes", 8.0),
        ("torch", big): (None, "fp8 GEMM via torch", 2.0, 80.0, None, None, None, None),
        ("ours", big): ("tile128", "fp8 GEMM via torch", 2.0, 80.0, None, None, None, None),
    }
    assert rows[("ours", big)]["tflops"] == pytest.approx(1.6) and rows[("ours", small)]["gbps"] == pytest.approx(500.0)


BENCH_SUITE = NAMED_PROVIDER + textwrap.dedent("""
    import pytest
    import torch
    from gpuhil.perf.work import Work


    class Launch:
        class config:
            name = "tile128"


    GATED = pytest.mark.skip(reason="requires cluster launch: CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH=0 <probed>")
    CASES = [case(p, None, p, m, id=f"{p.name}-{m}", marks=[GATED] if p.name == "theirs" else [])
             for p in map(Named, ("torch", "ours", "theirs")) for m in (1, 64, 256)]


    @pytest.mark.perf
    @pytest.mark.parametrize("provider, m", CASES)
    def test_bench_demo_perf(provider, m, perf):
        if provider.name == "ours" and m == 256:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 28.00 GiB")
        perf.record([lambda: None], provider=provider.name, work=Work(bytes=5_000_000),
                    launch=Launch() if provider.name == "ours" else None, host=m <= 64)
""")
BENCH_GOALS = textwrap.dedent("""
    schema: 1
    goals:
      - {id: demo-host, suite: argmax, provider: ours, params: {m: "<=64"}, metric: host_us, max: 5,
         reason: a host goal this fake cannot meet}
      - {id: demo-vs-torch, suite: argmax, provider: ours, metric: vs_peer, peer: torch, min: 1.0, reason: parity}
""")


def test_bench_runs_a_suite_through_the_perf_fixture_and_renders_its_rows(checkout, capsys):
    """The GPU path of `gpuhil bench` on a fake timer: pytest in a subprocess, each row printed as it
    lands, a skipped case a line with the gate's reason, a case that runs out of device memory a
    SKIP with the failed allocation (no traceback, no error row), and the table and goal verdicts
    come from the rows."""
    import argparse

    from gpuhil.perf import bench, goals

    (checkout.path / "suites" / "argmax" / "test_bench_demo_perf.py").write_text(BENCH_SUITE)
    (checkout.path / "goals.yaml").write_text(BENCH_GOALS)
    res = checkout.path / "res"
    args = argparse.Namespace(suite="argmax", results_dir=str(res), emulate_sku=None, matrix=None,
                              k="bench_demo", peer="torch", gate=True)
    session = type("S", (), {"fingerprint": type("F", (), {"summary": lambda self: "a fake GPU"})()})()
    code = bench.run(args, checkout.path, session, goals.load(checkout.path / "goals.yaml"))
    out = capsys.readouterr().out
    assert code == 1  # demo-host misses: the gate fails
    measured = [ln for ln in out.splitlines() if ln.startswith(("  measured", "  ERROR"))]
    assert len(measured) == 5 and not any("ERROR" in ln or "m=256" in ln and "ours" in ln for ln in measured)
    assert "| m=64 | ours | tile128 | 10.00 | 1.00x | 500 GB/s | 5.00 (read stream) | 50.0 |  | 7.5 | ok |" in out
    assert ("SKIP    test_bench_demo_perf[ours-256]: out of device memory past the gate's estimate "
            "(torch.OutOfMemoryError): one allocation of 28.00 GiB failed; free memory unknown after it") in out
    assert ("SKIP    test_bench_demo_perf[theirs-1]: requires cluster launch: CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH=0 "
            "<probed>") in out
    assert "Traceback" not in out and "OutOfMemoryError: CUDA" not in out
    goal_lines = out[out.index("goals:"):].splitlines()
    assert goal_lines[1:5] == ["MISS    demo-host ours m=1: host_us 7.50 (goal <= 5)",  # in the table's order
                               "MISS    demo-host ours m=64: host_us 7.50 (goal <= 5)",
                               "MET     demo-vs-torch ours m=1: vs_peer 1.00 (goal >= 1)",
                               "MET     demo-vs-torch ours m=64: vs_peer 1.00 (goal >= 1)"]
    assert "gate: fail (2 MISS)" in out
    assert len(store.read(res)) == 5 and (res / "junit.xml").is_file() and (res / "pytest.log").is_file()


def test_a_reused_run_id_is_refused(checkout, monkeypatch):
    monkeypatch.setenv("GPUHIL_RUN_ID", "nightly")
    res = checkout.path / "res"
    first = checkout.runpytest_subprocess("suites", "--perf", "--results-dir", str(res), "-k", "fine", "-p", "no:cacheprovider")
    first.assert_outcomes(passed=1, deselected=5)
    again = checkout.runpytest_subprocess("suites", "--perf", "--results-dir", str(res), "-k", "fine", "-p", "no:cacheprovider")
    assert again.ret == pytest.ExitCode.USAGE_ERROR
    again.stderr.fnmatch_lines([f"ERROR: gpuhil: run id 'nightly' was already used in {res} ({res}/rows/nightly exists): "
                                "unset GPUHIL_RUN_ID for a fresh id, or give another --results-dir"])
    assert len(store.read(res)) == 1  # the first run's file, untouched


@pytest.mark.parametrize("value, message", [
    ("", "ERROR: gpuhil: $GPUHIL_RUN_ID is set but empty: unset it or give it a value"),
    ("../../x", "ERROR: gpuhil: $GPUHIL_RUN_ID '../../x': not a safe identifier (letters, digits, '_', '.', '-', "
                "starting with a letter or digit, at most 64, no '..')"),
])
def test_an_unsafe_or_empty_run_id_is_a_usage_error(pytester, monkeypatch, value, message):
    make_checkout(pytester.path)
    monkeypatch.setenv("GPUHIL_RUN_ID", value)
    out = pytester.runpytest("--perf", "--results-dir", str(pytester.path / "res"))
    assert out.ret == pytest.ExitCode.USAGE_ERROR
    out.stderr.fnmatch_lines([message])
    assert not any((pytester.path / "res").rglob("*.parquet"))


def test_an_empty_seed_is_a_usage_error(pytester, monkeypatch):
    make_checkout(pytester.path)
    (pytester.path / "conftest.py").write_text('pytest_plugins = ("gpuhil.pytest_plugin", "fixtures.rng")\n')
    monkeypatch.setenv("GPUHIL_SEED", "")
    out = pytester.runpytest()
    assert out.ret == pytest.ExitCode.USAGE_ERROR
    out.stderr.fnmatch_lines(["ERROR: gpuhil: $GPUHIL_SEED is set but empty: unset it or give it a value"])
    monkeypatch.setenv("GPUHIL_SEED", "12ab")
    pytester.runpytest().stderr.fnmatch_lines(["ERROR: gpuhil: $GPUHIL_SEED='12ab' is not an integer"])


def test_catalog_markers_select_the_runners_lists(pytester):
    """`pytest -m hopper` collects what the Hopper runners run (every SKU the catalog tags hopper), nothing else."""
    doc = yaml.safe_load((REPO / "hardware_matrix.yaml").read_text())
    doc["selection_defaults"] = {"opt_in": ["argmax", "gates", "fp8_grouped_gemm"]}
    doc["selections"] = {"h100": {"extras": ["argmax"]}, "h20_3e": {"extras": ["gates"]},
                         "b200": {"extras": ["fp8_grouped_gemm"]}}
    doc["known_issues"] = []
    make_checkout(pytester.path, yaml.safe_dump(doc, sort_keys=False))
    for suite in ("argmax", "gates", "fp8_grouped_gemm"):
        (pytester.path / "suites" / suite / f"test_{suite}_list_demo.py").write_text("def test_case():\n    pass\n")
    hopper = [sku["id"] for sku in doc["skus"] if "hopper" in sku.get("markers", [])]
    assert {"h100", "h200", "h200_nvl", "h20", "h20_3e"} <= set(hopper)
    out = pytester.runpytest("-m", "hopper", "--collect-only", "-q")
    out.stdout.fnmatch_lines(["suites/argmax/test_argmax_list_demo.py::test_case",
                              "suites/gates/test_gates_list_demo.py::test_case", "2/3 tests collected*"])
    out = pytester.runpytest("-m", "no_cluster", "--collect-only", "-q")  # H20-3e's tag, not H100's
    out.stdout.fnmatch_lines(["suites/gates/test_gates_list_demo.py::test_case", "1/3 tests collected*"])


def test_a_row_replaced_while_the_bench_reads_it_is_printed_once(tmp_path, monkeypatch):
    """The bench prints rows as they land. A case's provisional row is replaced by its timed one while
    the watcher may be reading it: the watcher must not take the stamp of one file and the content of
    the other, or the timed row comes back on the next poll (a row printed twice)."""
    from gpuhil.perf import bench

    base = {"run_id": "r1", "suite": "argmax", "case_id": "m1", "provider": "ours"}
    store.write_row(tmp_path, {**base, "status": "error", "error": NEVER_FINISHED})
    real_read, replaced = pd.read_parquet, []

    def read_as_the_row_is_replaced(source, *args, **kwargs):
        if not replaced:  # the timed row lands between the watcher's look at the file and its read
            replaced.append(store.write_row(tmp_path, {**base, "status": "ok", "median_us": 2.0}))
        return real_read(source, *args, **kwargs)

    monkeypatch.setattr(pd, "read_parquet", read_as_the_row_is_replaced)
    watcher = bench.RowWatcher(tmp_path, "r1")
    seen = [row["status"] for _ in range(3) for row in watcher.new()]
    assert replaced and seen == ["ok"]
