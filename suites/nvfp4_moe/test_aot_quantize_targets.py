"""The NVFP4 quantize kernel compiles for every target it is offered on (sm_90a, sm_100a, sm_120a,
sm_121a) with no GPU, takes the shared memory and cluster its spec states, and its PTX spells each
rounding step of the reference's sequence explicitly: IEEE division and multiplication (div.rn /
mul.rn, nothing approximate, no flush-to-zero, no FMA contraction) and the satfinite E4M3 cvt.

Bit-exactness itself needs a GPU: suites/nvfp4_moe/test_quantize.py.
"""

import re

import pytest

from gpuhil.kernels.nvfp4_quant.spec import DEFAULT, LAYOUTS, TARGETS, requirements, smem_bytes
from gpuhil.gating import Requirements


@pytest.mark.aot
@pytest.mark.requires(Requirements(needs_gpu=False, needs_dsl=True))
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("target", TARGETS)
def test_compiles_for_target_with_exact_rounding_steps(target, layout, tmp_path):
    from gpuhil.kernels import aot
    from gpuhil.kernels.nvfp4_quant import cute

    res = aot.compile_kernel_for_target(cute.build, cute.aot_args, DEFAULT, layout, target=target, keep_dir=tmp_path)
    assert res.smem_bytes == smem_bytes(DEFAULT) == requirements(DEFAULT).smem_bytes
    assert res.cluster_shape == (1, 1, 1)
    ptx = res.ptx_path.read_text()
    # q = g / 6 and r = g / d: IEEE division; s = a * q and the 16 v = x * r: IEEE multiplication
    assert len(re.findall(r"\bdiv\.rn\.f32\b", ptx)) == 2, "expected exactly the two divisions of the sequence"
    assert len(re.findall(r"\bmul\.rn\.f32\b", ptx)) == 17
    for bad in (r"\bdiv\.(approx|full)\b", r"\brcp\.approx\b", r"\.ftz\b", r"\bfma\.", r"\bmad\.[a-z]*\.?f32\b"):
        assert not re.search(bad, ptx), f"{bad} in the PTX would make the kernel differ from the reference"
    assert "cvt.rn.satfinite.e4m3x2.f32" in ptx and "cvt.rn.f16x2.e4m3x2" in ptx
    # two 16-byte loads of the block, one 8-byte store of its codes, one byte for its scale
    assert len(re.findall(r"\bld\.global\.v4\.b32\b", ptx)) == 2
    assert len(re.findall(r"\bst\.global\.v2\.b32\b", ptx)) == 1
    assert len(re.findall(r"\bst\.global\.b8\b", ptx)) == (2 if layout == "swizzled" else 1), "scale, + padding"
