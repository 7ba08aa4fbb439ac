"""Gate decisions per catalog SKU, on the CPU: no config is ever handed to a SKU past its limits.

The grid is every catalog SKU x every registered kernel config, because a decision table that is
wrong for one SKU is exactly the bug class gpuhil exists for.
"""

import math

import pytest

from gpuhil import matrix
from gpuhil.capabilities import Capabilities
from gpuhil.gates import decision_table
from gpuhil.probe import software_fingerprint

MX = matrix.active()  # the session's catalog (--matrix)
SKUS = [pytest.param(s, id=s.id) for s in MX.skus.values()]


def catalog_caps(sku):
    """The SKU's catalog row with this machine's software (CuTe DSL, torch), as `gpuhil gates` reasons."""
    return Capabilities.from_sku(sku, software_fingerprint())


@pytest.mark.parametrize("sku", SKUS)
def test_supported_configs_fit_the_sku(sku):
    caps = catalog_caps(sku)
    for row in decision_table(caps):
        cluster = row.get("cluster_n") or math.prod(row.get("cluster", [1]))
        if row["supported"]:
            assert cluster == 1 or (sku.cluster_launch and cluster <= sku.max_cluster_size), row
            assert row.get("smem_bytes", 0) <= sku.smem_optin_bytes, row
        else:
            assert row["reasons"], f"refused without a reason: {row}"


@pytest.mark.parametrize("sku", SKUS)
def test_cluster_configs_follow_cluster_launch(sku):
    rows = [r for r in decision_table(catalog_caps(sku)) if r["kernel"] == "cluster_reduce"]
    offered = {r["cluster_n"] for r in rows if r["supported"]}
    if not sku.cluster_launch or sku.arch_family < 9:
        assert offered <= {1}
    else:
        assert offered == {n for n in (1, 2, 4, 8, 16) if n <= sku.max_cluster_size}


@pytest.mark.parametrize("sku", SKUS)
def test_wgmma_gemm_is_offered_only_where_sm90a_code_runs(sku):
    """Blackwell (sm_100a/103a) and SM12x cannot run wgmma: the refusal must say so, by feature."""
    caps = catalog_caps(sku)
    rows = [r for r in decision_table(caps) if r["config"].startswith("gpuhil-cute-wgmma")]
    assert len(rows) == 6  # 3 tiles x cluster (1,1), (2,1)
    for row in rows:
        if "sm_90a" not in caps.targets:
            assert not row["supported"]
            assert any(r.startswith("ISA target: needs sm_90a") for r in row["reasons"]), row
            assert any(r.startswith("MMA kind: needs wgmma") for r in row["reasons"]), row
        elif row["cluster"] == [2, 1] and not sku.cluster_launch:
            assert row["reasons"] == [
                "cluster launch (CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH): needs 1 for cluster size 2, probed 0"]
        else:
            assert row["supported"], row
            assert row["stages"] >= 2 and row["smem_bytes"] <= sku.smem_optin_bytes


@pytest.mark.parametrize("sku", [s for s in SKUS if "sm_90a" in catalog_caps(s.values[0]).targets])
def test_wgmma_gemm_choice_is_a_config_the_sku_runs(sku):
    """The per-shape choice falls back to cluster (1,1) where cluster launch is absent (H20), so
    dispatch never picks a config its own gate refuses."""
    from gpuhil.kernels.fp8_grouped_gemm import spec_wgmma
    from gpuhil.problems import layer_problems
    from gpuhil.requirements import check

    caps = catalog_caps(sku).as_runner()
    for p in layer_problems():
        tile, cluster_m = spec_wgmma.choose(p.n, p.total_tokens / p.groups, caps)
        cfg = spec_wgmma.config_for(tile, cluster_m, caps)
        assert cfg is not None and check(spec_wgmma.requirements(cfg), caps).ok, (p.name, tile.name, cluster_m)
        if not sku.cluster_launch:
            assert cluster_m == 1
