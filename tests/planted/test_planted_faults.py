"""Planted faults (deselected unless `--plant-faults` names them, see fixtures/faults.py).

Each must fail exactly its own test, with its cause in the report, while every other test of the run
passes: the process crashing (segfault), a sticky CUDA error (a write through a bad pointer), a kernel
that never ends and a host that sleeps (both cut by the timeout, the worker ended and replaced).
"""

import time

import pytest

from fixtures import faults
from gpuhil.gating import Requirements

ON_GPU = pytest.mark.requires(Requirements())


@pytest.mark.planted("segfault")
def test_planted_segfault():
    faults.segfault()


@pytest.mark.planted("bad-pointer")
@ON_GPU
def test_planted_bad_pointer_write():
    import torch

    faults.store_through_bad_pointer()
    torch.cuda.synchronize()


@pytest.mark.planted("spin")
@pytest.mark.timeout(20)
@ON_GPU
def test_planted_spinning_kernel():
    import torch

    flag = faults.spin_forever()
    torch.cuda.synchronize()  # waits on the kernel forever; the watchdog cuts it
    del flag


@pytest.mark.planted("sleep")
@pytest.mark.timeout(5)
def test_planted_host_sleep():
    time.sleep(600)
