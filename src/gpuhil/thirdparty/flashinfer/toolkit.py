"""The CUDA toolkit FlashInfer's JIT compiles against, checked before its first compile.

FlashInfer takes the toolkit root from CUDA_HOME or CUDA_PATH, else from the folder above the `nvcc`
that `which` finds (flashinfer/jit/cpp_ext.py:48-64, `get_cuda_path`), and compiles against
`<root>/include` (cpp_ext.py:136-153). Its wheel ships CUTLASS, CCCL and its own headers but not the
toolkit's, and some modules include toolkit libraries' headers: the top-k module curand.h
(topk.cu:17 -> include/flashinfer/sampling.cuh:20), the NVFP4 quantize and CUTLASS MoE modules
cublasLt.h and cublas_v2.h (csrc/nv_internal/include/tensorrt_llm/common/cudaUtils.h:19-20).

Where nvcc on PATH is a wrapper outside the toolkit (a script in /usr/local/bin), that guess is a
folder without those headers, and the compile fails deep in a ninja log, or finds another
toolkit's headers. So a provider asks FlashInfer which root it resolved and refuses, naming the
root, the missing headers and what to set, before anything compiles. A run needs CUDA_HOME set to
the toolkit's root (the folder holding bin/nvcc and include/) unless the nvcc on PATH sits in it.
"""

from __future__ import annotations

from pathlib import Path

from ..provider import LibraryNotUsable

CURAND = ("curand.h",)
CUBLAS = ("cublasLt.h", "cublas_v2.h")


def include_dir(root: Path) -> Path:
    """Where FlashInfer's compile finds the toolkit headers: <root>/include, or the compiler's own
    /usr/include when the root is /usr (FlashInfer drops that -I then: cpp_ext.py:149-151)."""
    return Path("/usr/include") if root == Path("/usr") else root / "include"


def require_headers(headers: tuple[str, ...], module: str) -> Path:
    """The toolkit root FlashInfer resolved, if its include folder has `headers`; else LibraryNotUsable."""
    from flashinfer.jit.cpp_ext import get_cuda_path

    root = Path(get_cuda_path())
    missing = [h for h in headers if not (include_dir(root) / h).is_file()]
    if missing:
        raise LibraryNotUsable(
            f"FlashInfer's JIT of its {module} module compiles against the CUDA toolkit it resolved at {root} "
            f"(CUDA_HOME, else CUDA_PATH, else the folder above the nvcc on PATH), whose {include_dir(root)} "
            f"lacks {', '.join(missing)}: set CUDA_HOME to the toolkit's root (the folder with bin/nvcc and "
            f"include/{missing[0]})")
    return root
