"""Gate decisions per catalog SKU, on the CPU: no config is ever handed to a SKU past its limits.

The grid is every catalog SKU x every registered kernel config, because a decision table that is
wrong for one SKU is exactly the bug class gpuhil exists for.
"""

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
        cluster = row.get("cluster_n", 1)
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
