"""xdist GPU pinning: each worker gets its own GPU before CUDA initialises."""

import pytest

from fakes import make_checkout
from gpuhil.device import gpu_pinning


def test_controller_publishes_visible_gpus_and_workers_pin_round_robin():
    env = {"CUDA_VISIBLE_DEVICES": "0,1,2,3"}
    assert gpu_pinning.announce(env) == ["0", "1", "2", "3"]
    pins = []
    for worker in ("gw0", "gw1", "gw2", "gw3", "gw4"):
        wenv = dict(env)
        pins.append(gpu_pinning.pin_worker(wenv, worker))
        assert wenv["CUDA_VISIBLE_DEVICES"] == pins[-1]
    assert pins == ["0", "1", "2", "3", "0"]


def test_pinning_keeps_uuids_and_restricted_lists():
    env = {"CUDA_VISIBLE_DEVICES": "GPU-aaaa,GPU-bbbb"}
    gpu_pinning.announce(env)
    assert gpu_pinning.pin_worker(env, "gw1") == "GPU-bbbb"


def test_no_gpus_no_pinning():
    env = {"CUDA_VISIBLE_DEVICES": ""}
    assert gpu_pinning.announce(env) == []
    assert gpu_pinning.pin_worker(env, "gw0") is None and env["CUDA_VISIBLE_DEVICES"] == ""


def test_worker_outside_xdist_is_left_alone():
    env = {"GPUHIL_GPUS": "0,1"}
    assert gpu_pinning.pin_worker(env, None) is None and "CUDA_VISIBLE_DEVICES" not in env


def test_plugin_pins_workers_in_a_real_xdist_session(pytester, monkeypatch):
    pytest.importorskip("xdist")
    make_checkout(pytester.path)
    pytester.makepyfile(test_pin="""
        import os
        def test_pinned(worker_id):
            idx = int(worker_id.removeprefix("gw"))
            assert os.environ["CUDA_VISIBLE_DEVICES"] == ["5", "7"][idx % 2]
    """)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # this test may itself run in a worker
    monkeypatch.delenv("GPUHIL_GPUS", raising=False)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "xdist")
    result.assert_outcomes(passed=1)
