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


def logits(m, n=151936):
    return torch.zeros(m, n, dtype=torch.bfloat16)


def outputs(m):
    return torch.empty(m, dtype=torch.float32), torch.empty(m, dtype=torch.int64)


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
    ws = torch.zeros(SPLIT.workspace_words(4), dtype=torch.int32)
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
