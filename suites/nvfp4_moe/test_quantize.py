"""gpuhil's NVFP4 quantize kernel, bit-exact against gpuhil.ops.nvfp4_moe.reference.quantize (run on
the CPU): packed codes and scale bytes must be identical, in both scale layouts.

Why this grid: K from one block to Qwen3 / DeepSeek hidden sizes, K/16 not a multiple of 4 (the
swizzle pads scale columns) and rows not a multiple of 128 (it pads rows); rows whose magnitudes span
8 decades so block scales cover most of E4M3, subnormals included; the global scale from the
recipe and an arbitrary one. Special blocks hit each rounding rule and the non-finite policy.
Every output is written over two different poisons: an unwritten byte cannot match the reference
both times, and the swizzle padding must come out zero.
The last two tests hold every nvfp4_quantize provider (linear scales) to the same reference.
"""

import pytest
import torch

from gpuhil.kernels.nvfp4_quant.spec import DEFAULT, LAYOUTS, output_shapes, requirements
from gpuhil.ops import providers_for
from gpuhil.ops.nvfp4_moe import reference as R
from gpuhil.ops.nvfp4_moe.problems import QuantizeProblem, quantize_problems
from gpuhil.testing import case

REQ = requirements(DEFAULT)
POISONS = (0x5A, 0xA5)
SHAPES = [(1, 16), (7, 80), (129, 80), (64, 2048), (300, 4096), (1000, 7168)]


def run_kernel(x, g, layout):
    """(packed, scale bytes) from the kernel, once per poison; both runs must agree."""
    from gpuhil.kernels import nvfp4_quant

    results = []
    for poison in POISONS:
        packed_shape, scale_shape = output_shapes(x.shape[0], x.shape[1], layout)
        packed = torch.full(packed_shape, poison, dtype=torch.uint8, device="cuda")
        scales = torch.full(scale_shape, poison, dtype=torch.uint8, device="cuda").view(torch.float8_e4m3fn)
        nvfp4_quant.quantize(x, g, layout=layout, out=(packed, scales))
        torch.cuda.synchronize()
        results.append((packed.cpu(), scales.view(torch.uint8).cpu()))
    return results


def assert_bit_exact(x, g, layout, what=""):
    """x: bf16 CUDA [rows, K] (any row stride), g: fp32 CUDA [1]."""
    want_packed, want_scales = R.quantize(x.cpu(), g.cpu())
    want_scales = (R.swizzle_scales(want_scales) if layout == "swizzled" else want_scales).view(torch.uint8)
    for poison, (packed, scales) in zip(POISONS, run_kernel(x, g, layout)):
        bad = (packed != want_packed).nonzero()
        assert bad.numel() == 0, (f"{what}: {bad.shape[0]} packed bytes differ (poison {poison:#x}), first at "
                                  f"{bad[0].tolist()}: got {packed[tuple(bad[0])]:#04x}, want {want_packed[tuple(bad[0])]:#04x}")
        bad = (scales != want_scales).nonzero()
        assert bad.numel() == 0, (f"{what}: {bad.shape[0]} scale bytes differ (poison {poison:#x}), first at "
                                  f"{bad[0].tolist()}: got {scales[tuple(bad[0])]:#04x}, want {want_scales[tuple(bad[0])]:#04x}")


def spread_rows(rows, k, rng):
    """Normal data with each row scaled by 10^u, u uniform in [-4, 4]."""
    x = torch.randn(rows, k, generator=rng) * 10 ** (8 * torch.rand(rows, 1, generator=rng) - 4)
    return x.to(torch.bfloat16)


@pytest.mark.gpu
@pytest.mark.requires(REQ)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("rows, k", SHAPES)
def test_random_data(rows, k, layout, rng):
    x = spread_rows(rows, k, rng).cuda()
    assert_bit_exact(x, R.global_scale(x).cuda(), layout, "recipe global scale")
    g = torch.rand(1, generator=rng) * 1e4 + 1e-3
    assert_bit_exact(x, g.cuda(), layout, f"global scale {g.item()}")


def bf16_step(t: torch.Tensor, steps: int) -> torch.Tensor:
    """The bf16 value `steps` representable values from t (away from zero for steps > 0)."""
    return (t.to(torch.bfloat16).view(torch.int16) + steps).view(torch.bfloat16).float()


def special_blocks(rng) -> dict[str, torch.Tensor]:
    """Rows of four 16-element blocks, each built to exercise one rule (see the reference docstring)."""
    base = torch.randn(8, 64, generator=rng)
    ties = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0])
    tie_rows = torch.zeros(6, 64)
    tie_rows[:, ::16] = 6.0  # with g = 1 each block's scale is exactly 1: v == x hits the ties exactly
    for i, vals in enumerate([ties, bf16_step(ties, 1), bf16_step(ties, -1)]):
        tie_rows[2 * i, 1:8], tie_rows[2 * i + 1, 1:8] = vals, -vals
        tie_rows[2 * i, 17:24], tie_rows[2 * i + 1, 17:24] = -vals, vals
    rows = {"every E2M1 tie and its bf16 neighbours, both signs": tie_rows}
    z = base.clone()
    z[0] = 0.0
    z[1] = -0.0
    z[2, :16] = 0.0
    z[3, 48:] = -0.0
    rows["zero blocks, +0 and -0"] = z
    e = base.clone() * 0.01
    e[:, 0], e[:, 31], e[:, 32], e[:, 63] = 7.5, -7.5, -300.0, 0.2
    rows["block maximum at the first and last element"] = e
    n = base.clone()
    n[0, 3] = n[1, 17] = float("nan")
    n[2, 32:48] = float("nan")
    n[3, 5], n[4, 21], n[5, 40], n[5, 41] = float("inf"), float("-inf"), float("inf"), float("nan")
    n[6, :2] = torch.tensor([float("-nan"), float("-inf")])
    rows["NaN and inf"] = n
    rows["bf16 subnormals"] = torch.randn(8, 64, generator=rng) * 2.0**-130
    rows["small blocks: subnormal and underflowing scales"] = base * torch.logspace(-5, -1, 8).unsqueeze(-1)
    sat = base.clone()
    sat[:, 7] = 6.36  # with g = 1: s = 1.06 rounds down to 1, v = 6.36 saturates
    rows["saturation after the scale rounds down"] = sat
    return {k: v.to(torch.bfloat16) for k, v in rows.items()}


@pytest.mark.gpu
@pytest.mark.requires(REQ)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("g", [1.0, 2.0**-7, 448.0, 1e38], ids=["g1", "g2^-7", "g448", "g1e38"])
def test_special_blocks(g, layout, rng):
    """g = 1 makes the tie rows exact ties; 2^-7 pushes small blocks' scales into E4M3 subnormals and
    underflow; 1e38 (past the recipe's cap) lifts a block of bf16 subnormals to a normal scale (a
    flush-to-zero anywhere would leave it 0) and sends r = g / d past fp32, so inf and NaN must
    propagate identically too."""
    for name, x in special_blocks(rng).items():
        assert_bit_exact(x.cuda(), torch.tensor([g], device="cuda"), layout, name)


@pytest.mark.gpu
@pytest.mark.requires(REQ)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("view", ["row stride K + 64", "row stride K + 8, column offset 8", "every other row"])
def test_strided_rows(view, layout, rng):
    rows, k = 130, 1024
    storage = spread_rows(2 * rows, k + 64, rng).cuda()
    x = {"row stride K + 64": storage[:rows, :k],
         "row stride K + 8, column offset 8": storage[:rows, : k + 16][:, 8 : k + 8],
         "every other row": storage[::2, :k]}[view]
    assert x.stride(0) != k
    assert_bit_exact(x, R.global_scale(x).cuda(), layout, view)


@pytest.mark.gpu
@pytest.mark.requires(REQ)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_cuda_graph_replay_reads_the_new_global_scale(layout, rng, capabilities):
    """Capture once; each replay sees new data and a new global scale through the same pointers. The
    session's capabilities are passed: without them the call would probe the device, which a capture
    does not allow."""
    from gpuhil.kernels import nvfp4_quant

    x = spread_rows(256, 2048, rng).cuda()
    g = torch.ones(1, device="cuda")
    packed_shape, scale_shape = output_shapes(256, 2048, layout)
    packed = torch.empty(packed_shape, dtype=torch.uint8, device="cuda")
    scales = torch.empty(scale_shape, dtype=torch.float8_e4m3fn, device="cuda")
    nvfp4_quant.quantize(x, g, layout=layout, caps=capabilities, out=(packed, scales))  # compile outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        nvfp4_quant.quantize(x, g, layout=layout, caps=capabilities, out=(packed, scales))
    for _ in range(3):
        x.copy_(spread_rows(256, 2048, rng))
        g.copy_(R.global_scale(x))
        packed.fill_(0x5A)
        scales.view(torch.uint8).fill_(0x5A)
        graph.replay()
        torch.cuda.synchronize()
        want_packed, want_scales = R.quantize(x.cpu(), g.cpu())
        want_scales = R.swizzle_scales(want_scales) if layout == "swizzled" else want_scales
        assert torch.equal(packed.cpu(), want_packed)
        assert torch.equal(scales.view(torch.uint8).cpu(), want_scales.view(torch.uint8))


@pytest.mark.gpu
@pytest.mark.requires(REQ)
def test_operand_checks_name_the_operand():
    from gpuhil.kernels import nvfp4_quant

    g = torch.ones(1, device="cuda")
    x = torch.zeros(4, 64, dtype=torch.bfloat16, device="cuda")
    packed = torch.empty(4, 32, dtype=torch.uint8, device="cuda")
    scales = torch.empty(4, 4, dtype=torch.float8_e4m3fn, device="cuda")
    cases = {
        "x: expected torch.bfloat16": {"x": x.float()},
        "x: K must be": {"x": torch.zeros(4, 40, dtype=torch.bfloat16, device="cuda")},
        "x: row stride": {"x": torch.zeros(4, 68, dtype=torch.bfloat16, device="cuda")[:, :64]},
        "x: data pointer": {"x": torch.zeros(4 * 64 + 1, dtype=torch.bfloat16, device="cuda")[1:].view(4, 64)},
        "global_scale": {"g": torch.ones(2, device="cuda")},
        "packed_out": {"out": (torch.empty(4, 31, dtype=torch.uint8, device="cuda"), scales)},
        "scales_out": {"out": (packed, torch.empty(4, 3, dtype=torch.float8_e4m3fn, device="cuda"))},
    }
    for message, override in cases.items():
        args = {"x": x, "g": g, "out": (packed, scales)} | override
        with pytest.raises(ValueError, match=message):
            nvfp4_quant.quantize(args["x"], args["g"], out=args["out"])


# -- every nvfp4_quantize provider (gpuhil's kernel, torch, third parties): linear scales ----------

def provider_mismatch(provider, x, g, caps) -> str | None:
    """How the provider's (packed, linear scales) differ from the reference, over both poisons;
    None when bit-exact. x: bf16 CUDA [rows, K], g: fp32 CUDA [1]."""
    want_packed, want_scales = R.quantize(x.cpu(), g.cpu())
    launch = provider.prepare((x, g), caps)
    for poison in POISONS:
        packed = torch.full((x.shape[0], x.shape[1] // 2), poison, dtype=torch.uint8, device="cuda")
        scales = torch.full((x.shape[0], x.shape[1] // 16), poison, dtype=torch.uint8, device="cuda")
        launch((x, g), (packed, scales.view(torch.float8_e4m3fn)))
        torch.cuda.synchronize()
        for what, got, want in (("packed", packed.cpu(), want_packed),
                                ("scale", scales.cpu(), want_scales.view(torch.uint8))):
            bad = (got != want).nonzero()
            if bad.numel():
                at = tuple(bad[0].tolist())
                return (f"{bad.shape[0]} {what} bytes differ (poison {poison:#x}), first at {list(at)}: "
                        f"got {int(got[at]):#04x}, want {int(want[at]):#04x}")
    return None


@pytest.mark.gpu
@pytest.mark.parametrize("global_scale", ["recipe", "power-of-two"])
@pytest.mark.parametrize("provider, problem", [case(p, q, p, q, id=f"{p.name}-{q.name}")
                                               for p in providers_for("nvfp4_quantize") for q in quantize_problems()])
def test_every_provider_on_activations(provider, problem, global_scale, rng, capabilities):
    """The layers' activations: rows spread over two decades (every block scale a normal E4M3),
    with the recipe's global scale and with that scale rounded down to a power of two (then g / 6,
    1 / g and g / scale are exact rescalings, so a provider that divides by 1 / g, or multiplies by
    1 / 6, must still give the reference's bits)."""
    spread = 10 ** (2 * torch.rand(problem.rows, 1, generator=rng) - 1)
    x = (torch.randn(problem.rows, problem.k, generator=rng) * spread).to(torch.bfloat16)
    g = R.global_scale(x)
    if global_scale == "power-of-two":
        g = torch.exp2(torch.floor(torch.log2(g)))
    mismatch = provider_mismatch(provider, x.cuda(), g.cuda(), capabilities)
    assert mismatch is None, f"global scale {g.item()}: {mismatch}"


SPECIAL_PROBLEM = QuantizeProblem("special-blocks", 8, 64)


@pytest.mark.gpu
@pytest.mark.parametrize("provider", [case(p, SPECIAL_PROBLEM, p, id=p.name) for p in providers_for("nvfp4_quantize")])
def test_every_provider_on_special_blocks(provider, rng, capabilities):
    """test_special_blocks' rows and global scales; every rule a provider breaks is listed."""
    failures = []
    for g in (1.0, 2.0**-7, 448.0, 1e38):
        for name, x in special_blocks(rng).items():
            mismatch = provider_mismatch(provider, x.cuda(), torch.tensor([g], device="cuda"), capabilities)
            if mismatch:
                failures.append(f"{name} at g={g:g}: {mismatch}")
    assert not failures, "\n".join(failures)
