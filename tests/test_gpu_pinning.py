"""xdist GPU pinning: each worker gets its GPU before CUDA initialises; several workers per GPU spread
round-robin (worker i on GPU i mod n); a replacement worker takes the GPU its crashed predecessor freed."""

import pytest

from fakes import make_checkout
from gpuhil.device import gpu_pinning


def test_workers_spread_over_the_gpus_and_a_replacement_takes_the_freed_one():
    alloc = gpu_pinning.GpuAllocator(["0", "1", "2"])
    assert [alloc.take(w) for w in ("gw0", "gw1", "gw2", "gw3")] == ["0", "1", "2", "0"]
    alloc.release("gw1")  # gw1 crashed
    assert alloc.take("gw4") == "1"


def test_several_workers_per_gpu_go_round_robin_and_replacements_refill_the_freed_gpu():
    alloc = gpu_pinning.GpuAllocator(["0", "1"])
    started = {f"gw{i}": alloc.take(f"gw{i}") for i in range(8)}
    assert started == {f"gw{i}": str(i % 2) for i in range(8)}
    alloc.release("gw3")  # two workers on GPU 1 crash; xdist numbers their replacements on
    alloc.release("gw5")
    assert [alloc.take("gw8"), alloc.take("gw9")] == ["1", "1"]  # not 8 mod 2 and 9 mod 2
    assert sorted(len(h) for h in alloc.holders.values()) == [4, 4]


def test_uuids_and_restricted_lists_are_kept():
    assert gpu_pinning.visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-aaaa,GPU-bbbb"}) == ["GPU-aaaa", "GPU-bbbb"]
    env = {}
    assert gpu_pinning.pin_worker(env, "GPU-bbbb") == "GPU-bbbb" and env["CUDA_VISIBLE_DEVICES"] == "GPU-bbbb"


def test_no_gpus_no_pinning():
    assert gpu_pinning.visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    alloc = gpu_pinning.GpuAllocator([])
    assert alloc.take("gw0") is None
    env = {"CUDA_VISIBLE_DEVICES": ""}
    assert gpu_pinning.pin_worker(env, None) is None and env["CUDA_VISIBLE_DEVICES"] == ""


def test_plugin_pins_workers_in_a_real_xdist_session(pytester, monkeypatch):
    pytest.importorskip("xdist")
    make_checkout(pytester.path)
    pytester.makepyfile(test_pin="""
        import os
        def test_pinned(worker_id):
            assert os.environ["CUDA_VISIBLE_DEVICES"] in ("5", "7")

        def test_each_worker_its_own(worker_id):
            idx = int(worker_id.removeprefix("gw"))
            assert os.environ["CUDA_VISIBLE_DEVICES"] == ["5", "7"][idx % 2]
    """)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # this test may itself run in a worker
    result = pytester.runpytest_subprocess("-n", "2", "-p", "xdist")
    result.assert_outcomes(passed=2)


def test_four_workers_share_two_gpus_in_a_real_xdist_session(pytester, monkeypatch):
    pytest.importorskip("xdist")
    make_checkout(pytester.path)
    pins = pytester.mkdir("pins")
    pytester.makepyfile(test_pin=f"""
        import os, pathlib, time
        import pytest

        @pytest.mark.parametrize("i", range(8))
        def test_pinned(i, worker_id):
            time.sleep(0.2)  # every worker gets tests
            (pathlib.Path({str(pins)!r}) / worker_id).write_text(os.environ["CUDA_VISIBLE_DEVICES"])
    """)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    result = pytester.runpytest_subprocess("-n", "4", "-p", "xdist")
    result.assert_outcomes(passed=8)
    pinned = {p.name: p.read_text() for p in pins.iterdir()}
    assert pinned == {f"gw{i}": ["5", "7"][i % 2] for i in range(4)}, pinned
