"""Reproduction of known issue flashinfer-fp4-quantize-sm90-writes-nothing (hardware_matrix.yaml).

FlashInfer 0.7.2.post1 builds its fp4_quantize module for sm_90 but compiles the kernel's body only
for __CUDA_ARCH__ >= 1000 (csrc/nv_internal/tensorrt_llm/kernels/quantization.cuh:236), so on a
Hopper GPU the call returns the torch.empty buffers it allocated without writing them. Gated by the
FlashInfer quantize provider's own requirements narrowed to arch family 9 (a `requires` marker):
elsewhere it skips naming what is missing.

x = 6.0 everywhere with g = 1 quantizes to scale 1.0 (0x38) and codes +6 (0x77 a byte), whatever the
rounding details; the cache allocator is first handed blocks of the outputs' sizes filled with 0xA5,
which fp4_quantize's two torch.empty calls then get back. The test asserts the outputs are not the
quantization: that is the bug. When it fails, the bug is fixed: retire the known issue.
"""

import dataclasses

import pytest
import torch

from gpuhil.ops import provider

QUANTIZE = provider("nvfp4_quantize", "flashinfer")
ROWS, K = 128, 256
MARKER = 0xA5


@pytest.mark.gpu
@pytest.mark.requires(lambda caps: dataclasses.replace(QUANTIZE.requirements, arch_families=frozenset({9})))
def test_fp4_quantize_on_sm90_returns_outputs_it_never_wrote(record_property):
    import flashinfer

    x = torch.full((ROWS, K), 6.0, dtype=torch.bfloat16, device="cuda")
    g = torch.ones(1, device="cuda")
    primed = [torch.full((n,), MARKER, dtype=torch.uint8, device="cuda") for n in (ROWS * K // 2, ROWS * K // 16)]
    del primed  # freed blocks of exactly the sizes fp4_quantize allocates next
    packed, scales = flashinfer.fp4_quantize(x, g, sf_vec_size=16, is_sf_swizzled_layout=False, nvfp4_4over6=None)
    torch.cuda.synchronize()
    quantized = bool((packed == 0x77).all() and (scales.view(torch.uint8) == 0x38).all())
    record_property("code_bytes_still_primed", (packed == MARKER).float().mean().item())
    assert not quantized, ("fp4_quantize now quantizes on sm_90: the bug looks fixed, retire known issue "
                           "flashinfer-fp4-quantize-sm90-writes-nothing")
