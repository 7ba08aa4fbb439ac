"""The flashinfer-b12x provider hands FlashInfer gpuhil's layer in FlashInfer's conventions: checked on
the CPU by FlashInfer's own fp32 oracle of its NVFP4 fused MoE (b12x.moe._shared.kernels.reference.
moe_reference_f32, the definition its kernel tests compare with) on the experts its prepare_weights
builds from the provider's operands, against gpuhil's reference layer on the same inputs.

Measured with this layer: the FC1 halves left in gpuhil's [gate; up] order put the two 25 % apart, the
weight global scale passed as g instead of 1/g 586 %; the translation right, they agree to fp32
rounding. The shape pads both swizzle dimensions (rows to 128, scale columns to 4) and routes unevenly.
FlashInfer's MoE package imports triton: where this interpreter has none, the check runs in a
subprocess with the unpack seed002_probe keeps under build/.
"""

import json
import os
import subprocess
import sys

import pytest

from gpuhil.gating import Requirements
from seed002_probe import REPO, triton_path

CHILD = r'''
import json, sys, types
import torch
from b12x.moe import fused_moe
from b12x.moe._shared.kernels.reference import moe_reference_f32
from gpuhil.ops.nvfp4_moe import reference as R
from gpuhil.thirdparty.flashinfer.b12x import flashinfer_operands, weight_plan

experts, hidden, inter, top_k, tokens = 6, 192, 80, 2, 7  # w2 rows 192 -> 256, w2 scale columns 5 -> 8
g = torch.Generator().manual_seed(2)
w13 = R.NVFP4Experts.quantize(torch.randn(experts, 2 * inter, hidden, generator=g) * hidden ** -0.5)
w2 = R.NVFP4Experts.quantize(torch.randn(experts, hidden, inter, generator=g) * inter ** -0.5)
# Hidden states on the NVFP4 grid of a power-of-two input scale, a +-6 in every block: both quantizers
# give back the same codes and scales whatever their rounding order (an E2M1 tie such as 1.75 is
# computed as 1.75 by a division and 1.7499998 by gpuhil's multiplication, so random inputs differ
# there by a convention, not by the operands).
g_in = torch.tensor([64.0])
codes = torch.randint(0, 16, (tokens, hidden), generator=g)
codes[:, ::16] = 7 + 8 * torch.randint(0, 2, (tokens, hidden // 16), generator=g)
scales = torch.randint(0x30, 0x50, (tokens, hidden // 16), generator=g).to(torch.uint8).view(torch.float8_e4m3fn)
hidden_states = (R.block_products(R.pack_codes(codes.to(torch.uint8)), scales) / g_in).to(torch.bfloat16)
logits = torch.randn(tokens, experts, generator=g) - 2.0 * torch.arange(experts)  # skewed: few experts take most
g_mid = R.intermediate_amax_scale(hidden_states, logits, w13, top_k, input_global_scale=g_in)
inputs = types.SimpleNamespace(hidden=hidden_states, router_logits=logits, w13=w13, w2=w2, top_k=top_k,
                               input_global_scale=g_in, intermediate_global_scale=g_mid)
prepared = fused_moe.prepare_weights(plan=weight_plan(fused_moe, inputs), params_dtype=torch.bfloat16,
                                     **flashinfer_operands(inputs))
weights, ids = R.route(logits, top_k)
theirs = moe_reference_f32(hidden_states, prepared.w1_fp4, prepared.w1_blockscale, prepared.w1_alphas,
                           prepared.w2_fp4, prepared.w2_blockscale, prepared.w2_alphas, prepared.a1_gscale,
                           prepared.a2_gscale, ids, weights, experts, hidden, inter).double()
ours = R.moe_layer(hidden_states, logits, w13, w2, top_k, input_global_scale=g_in,
                   intermediate_global_scale=g_mid).double()
print("RESULT " + json.dumps({"relative_error": ((theirs - ours).norm() / ours.norm()).item(),
                              "experts_routed": len(ids.unique())}))
'''


@pytest.mark.requires(Requirements(needs_gpu=False, needs_dsl=True, libraries=frozenset({"flashinfer-python"})))
def test_flashinfer_computes_gpuhils_layer_from_the_providers_operands():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), *triton_path(), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, f"the check died (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    got = json.loads(lines[-1][len("RESULT "):])
    assert got["experts_routed"] > 1, got
    assert got["relative_error"] < 1e-5, got
