"""How gpuhil sees the team's kernels: one Provider per kernel, with its requirements stated once.

gpuhil imports this module only to list providers (the `gpuhil.providers` entry point); the kernel
module is imported when a case runs.
"""

from __future__ import annotations

from gpuhil.gating import Requirements
from gpuhil.thirdparty import Library
from gpuhil.thirdparty.provider import LibraryProvider

# The library record gives the gate its "installed?" check and known issues the fact
# `library:team-kernels` (its version).
TEAM_KERNELS = Library("team-kernels", "team_kernels", fact="library:team-kernels", extra=None, pin="1.0.0",
                       providers="team_kernels.gpuhil_providers:providers")


class TeamArgmax(LibraryProvider):
    name, op, backend, library = "team-argmax", "argmax", "torch", TEAM_KERNELS
    # What the kernel needs of a device, stated once: the team deploys it on Hopper and newer (cc 9.0).
    needs = Requirements(min_cc="9.0")

    def unsupported(self, problem) -> str | None:
        return None if problem.dtype in ("bf16", "fp32") else f"dtype {problem.dtype}: bf16 and fp32 only"

    def launcher(self, caps, **options):
        from team_kernels import two_pass_argmax

        return lambda logits, out: two_pass_argmax(logits, out)


def providers() -> list:
    return [TeamArgmax()]
