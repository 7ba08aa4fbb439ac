"""Argmax over vocabulary logits, every provider, exact against a float64 CPU reference.

Why this grid: N are the vocab sizes of served models (Llama 2 32000, Llama 3 128256, Qwen 151936 /
152064, Gemma 262144, ...) plus powers of two, because a cluster split that is right for one N can
leave a tail wrong for another; M runs from single-token decode (1, 2, 7: odd sizes catch row
indexing) to batched sampling (64, 256, 1024). Each problem's tier is declared with it
(gpuhil.ops.argmax.problems); `--tier full` runs the whole product.
Contract: exact value and index, first index on ties, NaN is the maximum (first NaN wins).
"""

import pytest
import torch

from gpuhil.kernels.argmax.spec import DTYPES, FORCEABLE_CLUSTERS, FORCEABLE_SPLITS
from gpuhil.ops import provider, providers_for
from gpuhil.ops.argmax.operands import TORCH_DTYPES, random_logits
from gpuhil.ops.argmax.problems import ArgmaxProblem, problems
from gpuhil.ops.argmax.reference import reference_argmax
from gpuhil.testing import case

POISON_VALUE, POISON_INDEX = -12345.0, -1


def implementations():
    """(provider, forced split option, id): every provider as its dispatch runs it, and gpuhil-cute at
    every forceable cluster size and split through global memory, because a split that is right for
    one size can be wrong for another (the global one runs on every GPU; devices without clusters
    get it from dispatch)."""
    for p in providers_for("argmax"):
        yield p, None, p.name
        if p.name == "gpuhil-cute":
            for c in FORCEABLE_CLUSTERS:
                yield p, {"cluster_n": c}, f"{p.name}-cluster{c}"
            for c in FORCEABLE_SPLITS:
                yield p, {"split_n": c}, f"{p.name}-split{c}"


def impl_case(problem: ArgmaxProblem, impl, *values, id: str):
    """A param gated on the config the provider's dispatch picks for `problem` (or the forced split)."""
    prov, split, _ = impl
    return case(prov, problem, *values, prov, split, id=id, **(split or {}))


IMPLS = list(implementations())


def grid():
    """Every problem, as dispatch runs it and forced (each tiered for that)."""
    for own, forced in zip(problems(), problems(forced=True)):
        for impl in IMPLS:
            p = own if impl[1] is None else forced
            yield impl_case(p, impl, p.m, p.n, p.dtype, id=f"M{p.m}-N{p.n}-{p.dtype}-{impl[2]}")


def run(provider, logits, split, caps):
    """Poisoned outputs first: an unwritten row fails on index -1."""
    m = logits.shape[0]
    vals = torch.full((m,), POISON_VALUE, dtype=torch.float32, device=logits.device)
    idx = torch.full((m,), POISON_INDEX, dtype=torch.int64, device=logits.device)
    provider(logits, caps, out=(vals, idx), **(split or {}))
    torch.cuda.synchronize()
    return vals.cpu(), idx.cpu()


def assert_exact(logits, vals, idx):
    ref_vals, ref_idx = reference_argmax(logits)
    assert (idx != POISON_INDEX).all(), f"rows left unwritten: {(idx == POISON_INDEX).nonzero().flatten()[:8].tolist()}"
    bad = (idx != ref_idx).nonzero().flatten()
    assert bad.numel() == 0, f"{bad.numel()} rows differ, first {bad[:4].tolist()}: got {idx[bad[:4]].tolist()}, want {ref_idx[bad[:4]].tolist()}"
    torch.testing.assert_close(vals, ref_vals, rtol=0, atol=0, equal_nan=True)


@pytest.mark.gpu
@pytest.mark.parametrize("m, n, dtype, provider, split", list(grid()))
def test_random_logits(m, n, dtype, provider, split, rng, capabilities):
    logits = random_logits(ArgmaxProblem(m, n, dtype), rng)
    assert_exact(logits, *run(provider, logits, split, capabilities))


def special_rows(n: int, dtype: torch.dtype, rng: torch.Generator) -> dict[str, torch.Tensor]:
    """Rows built to break a reduction: each names the rule it checks."""
    base = torch.randn(8, n, generator=rng)
    rows = {}
    rows["ties: many equal maxima, first wins"] = torch.randint(-2, 3, (8, n), generator=rng).float()
    rows["all equal: index 0"] = torch.full((8, n), 3.0)
    t = base.clone(); t[:, 0] = 100.0
    rows["max at index 0"] = t
    t = base.clone(); t[:, -1] = 100.0
    rows["max at index N-1 (the tail)"] = t
    t = base.clone(); t[:, n // 3] = float("nan"); t[:, 2 * n // 3] = float("nan"); t[:, -1] = float("inf")
    rows["NaN is the maximum, first NaN wins, even over +inf"] = t
    t = base.clone(); t[:, n // 2] = float("inf"); t[:, n // 2 + 1] = float("inf")
    rows["+inf twice: first"] = t
    rows["all -inf: index 0"] = torch.full((8, n), float("-inf"))
    t = torch.full((8, n), float("-inf")); t[:, -1] = -1e30 if dtype == torch.float32 else -60000.0
    rows["-inf everywhere but the last element"] = t
    t = base.clone(); t[torch.arange(8), torch.randint(0, n, (8,), generator=rng)] = 50.0
    rows["one spike per row at a random place"] = t
    return {k: v.to(dtype) for k, v in rows.items()}


SPECIAL_NS = (32000, 151936, 262144 + 3)  # 262147: not a multiple of any vector width or cluster size


@pytest.mark.gpu
@pytest.mark.parametrize("n, dtype, provider, split", [
    impl_case(ArgmaxProblem(8, n, dtype), impl, n, dtype, id=f"{impl[2]}-{n}-{dtype}")
    for impl in IMPLS for n in SPECIAL_NS for dtype in DTYPES])
def test_special_values(n, dtype, provider, split, rng, capabilities):
    for name, rows in special_rows(n, TORCH_DTYPES[dtype], rng).items():
        logits = rows.cuda()
        try:
            assert_exact(logits, *run(provider, logits, split, capabilities))
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


LAYOUTS = ["row stride > N (aligned)", "row stride > N (odd)", "view at offset 1"]


@pytest.mark.gpu
@pytest.mark.parametrize("layout, provider, split", [
    impl_case(ArgmaxProblem(64, 151936, "bf16"), impl, layout, id=f"{impl[2]}-{layout}") for impl in IMPLS for layout in LAYOUTS])
def test_strided_rows(layout, provider, split, rng, capabilities):
    n = 151936
    storage = torch.randn(64, n + 24, generator=rng).to(torch.bfloat16).cuda()
    logits = {"row stride > N (aligned)": storage[:, :n],
              "row stride > N (odd)": storage[:, :n + 5][:, 3:n + 3],
              "view at offset 1": storage[:, 1:n + 1]}[layout]
    assert logits.stride(0) != n
    assert_exact(logits, *run(provider, logits, split, capabilities))


GRAPH_PROBLEM = ArgmaxProblem(64, 151936, "bf16")


@pytest.mark.gpu
@pytest.mark.requires(lambda caps: provider("argmax", "gpuhil-cute").requirements_for(GRAPH_PROBLEM, caps))
def test_launch_is_cuda_graph_capturable(rng, capabilities):
    """Capture once, replay on new data: the replay sees the new logits and writes fresh results."""
    logits = torch.randn(GRAPH_PROBLEM.m, GRAPH_PROBLEM.n, generator=rng).to(torch.bfloat16).cuda()
    vals = torch.empty(64, device="cuda")
    idx = torch.empty(64, dtype=torch.int64, device="cuda")
    launch = provider("argmax", "gpuhil-cute").prepare(logits, capabilities)  # compile and check outside the capture
    launch(logits, (vals, idx))
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        launch(logits, (vals, idx))
    for _ in range(3):
        logits.copy_(torch.randn(64, 151936, generator=rng).to(torch.bfloat16))
        vals.fill_(POISON_VALUE)
        idx.fill_(POISON_INDEX)
        graph.replay()
        torch.cuda.synchronize()
        assert_exact(logits, vals.cpu(), idx.cpu())


@pytest.mark.gpu
@pytest.mark.parametrize("n, provider, split", [
    impl_case(ArgmaxProblem(1, n, "bf16"), impl, n, id=f"{impl[2]}-{n}") for impl in IMPLS for n in (151937, 32001, 7)])
def test_single_row_of_odd_length(n, provider, split, rng, capabilities):
    """A single row takes full-width vector loads whatever its length: the scalar tail must be read."""
    logits = torch.randn(1, n, generator=rng).to(torch.bfloat16)
    logits[0, -1] = 100.0  # the maximum sits in the tail
    logits = logits.cuda()
    assert_exact(logits, *run(provider, logits, split, capabilities))
