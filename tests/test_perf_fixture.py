"""The perf fixture and run ids in real sessions (pytester): a case that crashes, raises or skips never
leaves an `ok` row; a reused or unsafe run id is a usage error; catalog markers select runner lists."""

import os
import textwrap
from pathlib import Path

import io

import pandas as pd
import pytest
import yaml

from fakes import make_checkout
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
        def graph(self, fns):
            for fn in fns:
                fn()
            return Timing(median_us=10.0, p25_us=9.9, p75_us=10.1, min_us=9.8, n_samples=15, stdrel=0.001,
                          mode="graph", sm_clock_mhz=None, throttled=False, throttle_reasons=())


    PerfRecorder.timer = property(lambda self: FakeTimer())
    PerfRecorder.measure_ceilings = lambda self: {"copy_gbps": 1000.0, "bf16_gemm_tflops": 1.0, "fp8_gemm_tflops": 2.0}
""")

CASES = textwrap.dedent("""
    import os
    import pytest
    from gpuhil.gating import Plan, Requirements
    from gpuhil.providers import Provider
    from gpuhil.testing import case

    class Named(Provider):
        op, backend = "argmax", "torch"

        def __init__(self, name):
            self.name = name

        def plan(self, problem, caps):
            return Plan(self.name, requirements=(Requirements(needs_gpu=False),))

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
        perf.record([lambda: None], provider=provider, bytes=1000)
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
    doc["selections"] = {"h100": {"suites": ["argmax"]}, "h20_3e": {"suites": ["gates"]},
                         "b200": {"suites": ["fp8_grouped_gemm"]}}
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
