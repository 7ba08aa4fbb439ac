"""The decision table: every kernel config an op offers, checked against a device's capabilities.

Specs return plain rows (gating.ConfigRow); this wraps each with the verdict of `gating.check`, the
predicate dispatch uses, so `gpuhil gates` explains on a CPU machine what each SKU would run.
"""

from __future__ import annotations

from typing import Any

from ..device.capabilities import Capabilities
from ..gating import check
from ..kernels.cluster_reduce import spec as cluster_reduce_spec
from ..ops import OPS


def decision_table(caps: Capabilities) -> list[dict[str, Any]]:
    rows = []
    sources = [cluster_reduce_spec.configs(caps), *(op.gate_rows(caps) for op in OPS if op.gate_rows)]
    for source in sources:
        for row in source:
            verdict = check(row.requirements, caps)
            rows.append({
                "kernel": row.kernel, "config": row.config, "supported": verdict.ok,
                "reasons": [str(r) for r in verdict.reasons], "requirements": row.requirements.describe(),
                **row.details,
            })
    return rows
