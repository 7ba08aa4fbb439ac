"""Gate decisions per catalog SKU, on the CPU: no config is ever handed to a SKU past its limits, and
`gpuhil gates`, a `--target-sku` session and dispatch make the same choice for the same SKU (that a
case's gate is what dispatch builds: test_plan_is_dispatch.py).

The grid is every catalog SKU x every registered kernel config, because a decision table that is
wrong for one SKU is exactly the bug class gpuhil exists for.
"""

import dataclasses
import math

import pytest

from gpuhil import session as session_mod
from gpuhil.gating import UnsupportedConfig, check
from gpuhil.kernels import argmax
from gpuhil.kernels.argmax.spec import ArgmaxConfig
from gpuhil.kernels.fp8_grouped_gemm import spec_wgmma
from gpuhil.ops import provider
from gpuhil.ops.fp8_grouped_gemm.problems import layer_problems
from gpuhil.report.gates import decision_table


def test_supported_configs_fit_the_sku(sku, catalog_caps):
    for row in decision_table(catalog_caps):
        # "cluster" is the launch's cluster shape; argmax's cluster_n can also be a split without one
        cluster = math.prod(row["cluster"]) if "cluster" in row else row.get("cluster_n") or 1
        if row["supported"]:
            assert cluster == 1 or (sku.cluster_launch and cluster <= sku.max_cluster_size), row
            assert row.get("smem_bytes", 0) <= sku.smem_optin_bytes, row


def test_cluster_configs_follow_cluster_launch(sku, catalog_caps):
    rows = [r for r in decision_table(catalog_caps) if r["kernel"] == "cluster_reduce"]
    offered = {r["cluster_n"] for r in rows if r["supported"]}
    if not sku.cluster_launch or sku.arch_family < 9:
        assert offered <= {1}
    else:
        assert offered == {n for n in (1, 2, 4, 8, 16) if n <= sku.max_cluster_size}


def test_wgmma_gemm_is_offered_only_where_sm90a_code_runs(sku, catalog_caps):
    """Blackwell (sm_100a/103a) and SM12x cannot run wgmma: the refusal must say so, by feature."""
    rows = [r for r in decision_table(catalog_caps) if r["config"].startswith("gpuhil-cute-wgmma")]
    assert len(rows) == 28  # 4 tiles x clusters (1,1), (2,1), (1,2), (2,2), cooperative; ping-pong for three tiles
    for row in rows:
        if "sm_90a" not in catalog_caps.targets:
            assert not row["supported"]
            assert any(r.startswith("ISA target: needs sm_90a") for r in row["reasons"]), row
            assert any(r.startswith("MMA kind: needs wgmma") for r in row["reasons"]), row
        elif row["cluster"] != [1, 1] and not sku.cluster_launch:
            size = row["cluster"][0] * row["cluster"][1]
            assert row["reasons"] == [
                f"cluster launch (CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH): needs 1 for cluster size {size}, probed 0"]
        else:
            assert row["supported"], row
            assert row["stages"] >= 2 and row["smem_bytes"] <= sku.smem_optin_bytes


@pytest.mark.skus(where=lambda s: s.cc == "9.0")
def test_wgmma_gemm_choice_is_a_config_the_sku_runs(sku, catalog_caps):
    """The per-shape choice falls back to cluster (1,1) where cluster launch is absent (H20), so
    dispatch never picks a config its own gate refuses."""
    for p in layer_problems():
        tile, cluster_m, pingpong, cluster_n = spec_wgmma.schedule(p.n, p.k, p.total_tokens / p.groups, catalog_caps)
        cfg = spec_wgmma.config_for(tile, cluster_m, catalog_caps, pingpong, cluster_n)
        assert cfg is not None and check(spec_wgmma.requirements(cfg), catalog_caps).ok, (p.name, cfg)
        if not sku.cluster_launch:
            assert cfg.cluster_size == 1


def test_gates_target_session_and_dispatch_choose_alike(sku, catalog_caps, gpuhil_session):
    """`gpuhil gates --target-sku` (catalog capabilities) and a `--target-sku` session decide on the same
    capabilities, and what the table says a kernel picks (argmax's rows, the wgmma rows' `chosen_for`)
    is what its dispatch plans there, refused where the table refuses it."""
    target = session_mod.build(gpuhil_session.matrix, target=sku.id, fingerprint=gpuhil_session.fingerprint)
    assert target.caps == catalog_caps and not target.attached
    table = decision_table(target.caps)
    for row in (r for r in table if r["kernel"] == "argmax" and not r["forced"]):
        plan = argmax.plan(argmax.ArgmaxShape(row["M"], row["N"], row["dtype"]), target.caps)
        assert plan.config == ArgmaxConfig(**{f.name: row[f.name] for f in dataclasses.fields(ArgmaxConfig)}), row
    problems = {p.name.removesuffix("-uniform"): p for p in layer_problems() if p.name.endswith("uniform")}
    wgmma_rows = [r for r in table if r["config"].startswith("gpuhil-cute-wgmma")]
    assert sorted(n for r in wgmma_rows for n in r["chosen_for"]) == sorted(problems)  # each shape: one row
    wgmma = provider("fp8_grouped_gemm", "gpuhil-cute-wgmma")
    for row in wgmma_rows:
        for name in row["chosen_for"]:
            plan = wgmma.plan(problems[name], target.caps)
            if row["supported"]:
                cfg = plan.ensure(target.caps)
                assert (cfg.tile.name, [cfg.cluster_m, cfg.cluster_n], cfg.pingpong, cfg.stages) == \
                    (row["tile"], row["cluster"], row["pingpong"], row["stages"])
            else:
                with pytest.raises(UnsupportedConfig):
                    plan.ensure(target.caps)
