"""FP8 grouped GEMM (MoE experts): problems, scale recipes, reference, torch peer, providers, roofline."""

from __future__ import annotations

from ...kernels.fp8_grouped_gemm import spec_warp, spec_wgmma
from ..op import Op
from .problems import adversarial_problems, layer_problems
from .providers import PROVIDERS
from .reference import reference
from .roofline import roofline


def gate_rows(caps):
    """Both kernels' configs for a device; each wgmma row also names the MoE problems whose dispatch
    picks it there (`chosen_for`), so a SKU's table shows what its runner would really launch."""
    yield from spec_warp.configs(caps)
    chosen: dict[tuple, list[str]] = {}
    for p in layer_problems():
        if p.name.endswith("uniform"):
            c = spec_wgmma.schedule(p.n, p.k, p.tokens_per_group, caps)
            key = (c.tile.name, c.cluster_m, c.cluster_n, c.pingpong)
            chosen.setdefault(key, []).append(p.name.removesuffix("-uniform"))
    for row in spec_wgmma.configs(caps):
        d = row.details
        row.details["chosen_for"] = chosen.get((d["tile"], *d["cluster"], d["pingpong"]), [])
        yield row


def problems():
    return [*adversarial_problems(), *layer_problems()]


OPS = (Op("fp8_grouped_gemm", "fp8_grouped_gemm", problems, reference, PROVIDERS, gate_rows=gate_rows,
            roofline=roofline),)
