"""Every argmax config a SKU would be handed compiles for that SKU's own target (no GPU needed),
and the compiled kernel stays within the SKU's cluster and shared-memory limits (8 on SM12x).

Grid: each catalog SKU of cc >= 9.0 (sm_90a, sm_100a, sm_103a, sm_120a, sm_121a) x the configs its
catalog row gets from `gpuhil gates`: exactly what its runner would dispatch.
"""

import dataclasses

import pytest

from gpuhil.gating import Requirements, check
from gpuhil.kernels.argmax.spec import ArgmaxConfig, configs

_compiled: dict = {}


def aot_target(sku) -> str:
    return "sm_" + sku.cc.replace(".", "") + "a"


def handed_configs(caps):
    """(config, dtype) of every gate row the SKU runs, rebuilt from the row's details (every field of
    ArgmaxConfig, so a field the row lacks fails here)."""
    fields = [f.name for f in dataclasses.fields(ArgmaxConfig)]
    return sorted({(ArgmaxConfig(**{f: r.details[f] for f in fields}), r.details["dtype"])
                   for r in configs(caps) if check(r.requirements, caps).ok},
                  key=lambda c: (c[1], c[0].cluster_n, c[0].threads, c[0].vec))


@pytest.mark.aot
@pytest.mark.requires(Requirements(needs_gpu=False, needs_dsl=True))
@pytest.mark.skus(where=lambda s: s.arch_family >= 9, ids=lambda s: f"{s.id}-{aot_target(s)}")
def test_every_handed_config_compiles_within_the_skus_limits(sku, catalog_caps, tmp_path):
    from gpuhil.kernels import aot
    from gpuhil.kernels.argmax import cute

    configs = handed_configs(catalog_caps)
    assert configs, f"{sku.id} is handed no argmax config"
    for cfg, dtype in configs:
        key = (cfg, dtype, aot_target(sku))
        if key not in _compiled:
            _compiled[key] = aot.compile_kernel_for_target(cute.build, cute.aot_args, cfg, dtype,
                                                           target=aot_target(sku), keep_dir=tmp_path)
        res = _compiled[key]
        assert res.cluster_shape == (cfg.cluster_n if cfg.cluster_launch else 1, 1, 1), (cfg, res.cluster_shape)
        assert res.cluster_shape[0] <= (sku.max_cluster_size if sku.cluster_launch else 1), (sku.id, cfg)
        assert res.smem_bytes <= sku.smem_optin_bytes, (sku.id, cfg, res.smem_bytes)
        assert res.smem_bytes == cfg.smem_bytes(), "the spec's smem estimate is what gates use: it must be exact"
        ptx = res.ptx_path.read_text()
        if cfg.cluster_launch:
            assert "mapa" in ptx and "mbarrier" in ptx, "the cluster handoff must go through DSMEM"
        if cfg.gmem_split:
            assert "atom" in ptx and "mapa" not in ptx, "a split without clusters hands off through global atomics"
