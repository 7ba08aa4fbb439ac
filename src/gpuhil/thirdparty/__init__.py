"""Other projects' kernels under gpuhil's gates: one folder per library (its providers, one module per
op it covers) and one registry line below.

The registry is plain data (`Library` records): the probe reads it to put each library's installed
version into the fingerprint, and `gpuhil.ops.providers_for` loads each library's providers through
its `providers` path, after gpuhil's own and before those registered through the entry point. A
library that is not installed still lists its providers: their cases skip naming the extra to install.
"""

from __future__ import annotations

from .library import Library

FLASHINFER = Library("flashinfer-python", "flashinfer", fact="flashinfer", extra="flashinfer", pin="0.7.2.post1",
                     providers="gpuhil.thirdparty.flashinfer:providers", jit=("nvcc",),
                     cache_env="FLASHINFER_WORKSPACE_BASE")
QUACK = Library("quack-kernels", "quack", fact="quack", extra="quack", pin="0.6.5",
                providers="gpuhil.thirdparty.quack:providers", cache_env="QUACK_CACHE_DIR")

# A serving team's own kernels: each entry point of this group names a callable returning Providers.
ENTRY_POINT_GROUP = "gpuhil.providers"

# The registry: one line per library.
LIBRARIES: tuple[Library, ...] = (FLASHINFER, QUACK)

__all__ = ["ENTRY_POINT_GROUP", "FLASHINFER", "LIBRARIES", "QUACK", "Library", "cache_env"]


def cache_env(root, environ) -> dict[str, str]:
    """Each library's compile-cache variable pointed under `root` (one folder per library), where the
    environment does not set it already: a runner's caches stay in one place it names."""
    return {lib.cache_env: str(root / lib.module) for lib in LIBRARIES if lib.cache_env and lib.cache_env not in environ}
