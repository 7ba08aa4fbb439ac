"""The argmax host side on the CPU: the workspace a split through global memory needs, and the launch
checks that guard it. The kernel itself runs in suites/argmax on a GPU."""

import pytest

pytest.importorskip("cutlass")  # the launch module imports the DSL

import torch  # noqa: E402

from gpuhil.kernels import argmax  # noqa: E402
from gpuhil.kernels.argmax import cute  # noqa: E402
from gpuhil.kernels.argmax.spec import ArgmaxConfig  # noqa: E402
from gpuhil.kernels.compiled import CompiledKernel  # noqa: E402

SPLIT = ArgmaxConfig(512, 8, 8, 4, handoff="gmem")
CLUSTER = ArgmaxConfig(512, 8, 8, 4)


class RecordingKernel(CompiledKernel):
    """A compiled kernel whose launch records its raw arguments instead of running."""

    def launch(self, *raw):
        self.calls.append(raw)


def kernel(config):
    k = RecordingKernel(config, "bf16", None, fn=None)
    object.__setattr__(k, "calls", [])
    return k


class OnGpu0(torch.Tensor):
    """A host tensor that reports device index 0: the launch checks pass it as a CUDA operand, and
    the recording kernel never dereferences its address."""

    def get_device(self):
        return 0


def logits(m, n=151936):
    return torch.zeros(m, n, dtype=torch.bfloat16).as_subclass(OnGpu0)


def outputs(m):
    return (torch.empty(m, dtype=torch.float32).as_subclass(OnGpu0),
            torch.empty(m, dtype=torch.int64).as_subclass(OnGpu0))


def workspace(config, m):
    return torch.zeros(config.workspace_words(m), dtype=torch.int32).as_subclass(OnGpu0)


def test_workspace_holds_a_counter_per_row_and_a_pair_per_cta():
    assert SPLIT.workspace_words(64) == 64 * (1 + 2 * 8)
    assert CLUSTER.workspace_words(64) == 0 and not CLUSTER.gmem_split and CLUSTER.cluster_launch


def test_launcher_makes_a_zeroed_workspace_and_grows_it_for_more_rows(monkeypatch):
    launcher = argmax._Launcher(logits(2), SPLIT)
    assert launcher.workspace.dtype == torch.int32 and launcher.workspace.numel() == SPLIT.workspace_words(2)
    assert not launcher.workspace.any()
    seen = []
    launcher._launch = lambda compiled, x, val, idx, workspace: seen.append(workspace.numel())
    launcher(None, logits(2), outputs(2))
    launcher(None, logits(7), outputs(7))
    assert seen == [SPLIT.workspace_words(2), SPLIT.workspace_words(7)]
    assert argmax._Launcher(logits(2), CLUSTER).workspace is None  # clusters hand off in shared memory


def test_a_split_launch_passes_the_workspace_and_refuses_a_short_one():
    k = kernel(SPLIT)
    x, (val, idx) = logits(4), outputs(4)
    ws = workspace(SPLIT, 4)
    cute.launch(k, x, val, idx, workspace=ws, stream=7)
    assert k.calls == [(x.data_ptr(), val.data_ptr(), idx.data_ptr(), ws.data_ptr(), 4, 151936, 151936, 7)]
    for bad in (None, ws[:-1], ws.to(torch.int64)):
        with pytest.raises(ValueError, match="needs an int32 workspace of 68 zeroed words for M=4"):
            cute.launch(k, x, val, idx, workspace=bad, stream=7)


def test_a_cluster_launch_passes_no_workspace():
    k = kernel(CLUSTER)
    x, (val, idx) = logits(1), outputs(1)
    cute.launch(k, x, val, idx, stream=0)
    assert k.calls[0][3] == 0 and k.calls[0][6] == 0  # no workspace; a single row's stride is unused


def test_an_operand_off_the_logits_device_is_refused_by_name_before_launch():
    """Each of these would hand the kernel a host address (a fault that takes the process's CUDA
    context with it) if it reached the launch."""
    k = kernel(SPLIT)
    x, (val, idx), ws = logits(4), outputs(4), workspace(SPLIT, 4)
    host_val, host_idx = torch.empty(4, dtype=torch.float32), torch.empty(4, dtype=torch.int64)
    cases = {
        "logits must be a CUDA tensor, got cpu": (x.as_subclass(torch.Tensor), val, idx, ws),
        "out_val must be on cuda:0 like the logits, got cpu": (x, host_val, idx, ws),
        "out_idx must be on cuda:0 like the logits, got cpu": (x, val, host_idx, ws),
        "the workspace must be on cuda:0 like the logits, got cpu": (x, val, idx, ws.as_subclass(torch.Tensor)),
    }
    for message, operands in cases.items():
        with pytest.raises(ValueError, match=message):
            cute.launch(k, *operands[:3], workspace=operands[3], stream=7)
    assert k.calls == []
