"""quack's NVFP4 quantizer (`quack.blockscaled.to_nvfp4`, blockscaled/quantize.py:403-441) as an
nvfp4_quantize provider, converted to our convention.

It is torch operations, not a GPU kernel: it runs wherever torch's CUDA float8 cast does, with no
arch gate of its own (BlockScaledOperand.quantize calls its torch.compile'd twin,
`to_nvfp4_compiled`, which generates Triton code per shape and caches it outside the run folder;
the eager function is the one whose rule is stated). Its outputs are ours as they are: packed
codes uint8 [rows, K/2] with element 2j in the low nibble (`_pack_uint4`, quantize.py:210) and
linear e4m3 block scales [rows, K/16].

Global scale: ours, g, multiplies (x ~= e2m1 * e4m3 / g, g = 2688 / amax by the recipe); quack's
`per_tensor_scale` divides out (dequant = q * sf * pts, pts = amax / 2688 by
`nvfp4_per_tensor_scale`, quantize.py:398). The conversion is pts = fl32(1 / g). With it quack
computes, per 16-element block with a = max |x|:
    sf = E4M3(clamp(fl(fl(a / 6) / pts), 2^-6, 448)),  r = fl(fl(1 / pts) / sf),  code = E2M1(clamp(x * r, -6, 6))
against ours sf = E4M3(fl(a * fl(g / 6))), r = fl(g / sf) (gpuhil.ops.nvfp4_moe.reference). The
two agree bit for bit when g is a power of two, no block's scale falls below 2^-6 and no block
holds a NaN. They differ (hardware_matrix.yaml known issues, reproduced in
tests/test_quack_nvfp4_convention.py): a block whose scale is below 2^-6, zero blocks included, gets
2^-6 (E4M3_EPS, quantize.py:40, 426-433) where ours keeps the subnormal or zero; a NaN makes its
block's scale NaN (torch.amax propagates it, quantize.py:422) where ours ignores it; and with any
other g the two rounding orders give different codes or scales on some blocks.
"""

from __future__ import annotations

from ...gating import Requirements
from .support import QuackProvider


def per_tensor_scale(global_scale):
    """quack's `per_tensor_scale` for our global scale g: 1 / g in fp32, as a 0-d tensor."""
    return (1.0 / global_scale.float()).reshape(())


def quantize(inputs, out=None):
    """(packed uint8 [rows, K/2], scales float8_e4m3fn [rows, K/16]) of (x [rows, K], g), as the
    torch peer takes and returns them."""
    from quack.blockscaled import to_nvfp4

    x, global_scale = inputs
    packed, scales, _ = to_nvfp4(x, 16, per_tensor_scale(global_scale))
    if out is None:
        return packed, scales
    out[0].copy_(packed)
    out[1].copy_(scales)
    return out


class QuackNvfp4Quantize(QuackProvider):
    name, op, backend = "quack", "nvfp4_quantize", "torch"
    # torch operations on the input's device; importing quack imports the CuTe DSL (quack/__init__.py).
    needs = Requirements(needs_dsl=True)

    def unsupported(self, problem) -> str | None:
        """to_nvfp4 asserts K % 16 (quantize.py:416); it also asserts a contiguous x (quantize.py:417),
        which a shape cannot say: a strided x is refused by quack, never copied by us."""
        return None if problem.k % 16 == 0 else f"quack's to_nvfp4 needs K % 16 == 0, problem has K={problem.k}"

    def launcher(self, caps):
        return quantize
