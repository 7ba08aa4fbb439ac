"""Provider registry: the implementations a suite sweeps (torch, gpuhil's own kernels, third parties).

Third parties register through the entry-point group `gpuhil.providers`; each entry point names a
callable returning one `Provider` or a list. A provider that cannot be imported here is still listed,
with the import error, so its cases skip with that reason instead of vanishing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata

from .kernels.fp8_grouped_gemm.spec import TARGETS as WARP_GEMM_TARGETS
from .kernels.fp8_grouped_gemm.spec_wgmma import TARGETS as WGMMA_GEMM_TARGETS
from .requirements import Requirements

ENTRY_POINT_GROUP = "gpuhil.providers"
# The portable kernel is offered only on the targets it is compiled and checked for in CI.
WARP_GEMM_REQUIREMENTS = Requirements(targets=frozenset(WARP_GEMM_TARGETS), mma_kind="mma_sync_fp8", needs_dsl=True)
WGMMA_GEMM_REQUIREMENTS = Requirements(targets=frozenset(WGMMA_GEMM_TARGETS), mma_kind="wgmma", needs_dsl=True)


@dataclass(frozen=True)
class Provider:
    name: str
    op: str  # "argmax", "fp8_grouped_gemm", ...
    target: str  # "module:function" implementing the op; imported on first use
    requirements: Requirements = field(default_factory=Requirements)
    origin: str = "gpuhil"  # "gpuhil", or the distribution that registered it
    backend: str = ""  # e.g. "cutlass-cpp", "cute-dsl", "torch": what known issues key on
    shape_check: str | None = None  # "module:function" (problem) -> why this shape is unsupported, or None
    problem_requirements: str | None = None  # "module:function" (problem) -> what dispatch will need for it

    def load(self) -> Callable:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def unsupported(self, problem) -> str | None:
        """Why this provider does not take this problem shape (its own documented limits), or None."""
        if self.shape_check is None:
            return None
        module, _, attr = self.shape_check.partition(":")
        return getattr(importlib.import_module(module), attr)(problem)

    def requirements_for(self, problem) -> list[Requirements]:
        """Everything a case of this problem needs: the provider's own Requirements and, where the
        provider says so, those of the config its dispatch will choose for the problem."""
        if self.problem_requirements is None:
            return [self.requirements]
        module, _, attr = self.problem_requirements.partition(":")
        return [self.requirements, getattr(importlib.import_module(module), attr)(problem)]

    def unavailable(self) -> str | None:
        """Why this provider cannot be imported here, or None."""
        module = self.target.partition(":")[0]
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - a missing native library is as absent as a missing module
            return f"provider {self.name} ({self.origin}) is not importable: {type(exc).__name__}: {exc}"
        return None

    def __str__(self) -> str:
        return self.name


BUILTIN: tuple[Provider, ...] = (
    Provider("torch", "argmax", "gpuhil.references.argmax:torch_argmax", Requirements(), backend="torch"),
    Provider("gpuhil-cute", "argmax", "gpuhil.kernels.argmax:argmax",
             Requirements(min_cc="8.0", needs_dsl=True), backend="cute-dsl"),
    Provider("torch", "fp8_grouped_gemm", "gpuhil.kernels.fp8_grouped_gemm.torch_peer:torch_grouped_gemm",
             Requirements(torch_ops=frozenset({"_scaled_grouped_mm"})), backend="torch",
             shape_check="gpuhil.kernels.fp8_grouped_gemm.torch_peer:unsupported_reason"),
    Provider("gpuhil-cute-warp", "fp8_grouped_gemm", "gpuhil.kernels.fp8_grouped_gemm:grouped_gemm",
             WARP_GEMM_REQUIREMENTS, backend="cute-dsl",
             shape_check="gpuhil.kernels.fp8_grouped_gemm.spec:unsupported_reason",
             problem_requirements="gpuhil.kernels.fp8_grouped_gemm.spec:problem_requirements"),
    Provider("gpuhil-cute-wgmma", "fp8_grouped_gemm", "gpuhil.kernels.fp8_grouped_gemm:grouped_gemm_wgmma",
             WGMMA_GEMM_REQUIREMENTS, backend="cute-dsl",
             shape_check="gpuhil.kernels.fp8_grouped_gemm.spec_wgmma:unsupported_reason",
             problem_requirements="gpuhil.kernels.fp8_grouped_gemm.spec_wgmma:problem_requirements"),
)


def third_party() -> list[Provider]:
    found: list[Provider] = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            made = ep.load()()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not fatal
            found.append(_broken(ep, exc))
            continue
        found.extend(made if isinstance(made, (list, tuple)) else [made])
    return found


def _broken(ep, exc: Exception) -> Provider:
    # Keeps the provider visible with a target that fails to import, so its cases skip with the reason.
    return Provider(ep.name, "*", f"gpuhil_unloadable_provider_{ep.name.replace('-', '_')}:missing",
                    origin=f"entry point {ep.value} ({type(exc).__name__}: {exc})")


def for_op(op: str) -> list[Provider]:
    return [p for p in (*BUILTIN, *third_party()) if p.op in (op, "*")]
