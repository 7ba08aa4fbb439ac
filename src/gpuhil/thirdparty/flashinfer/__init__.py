"""FlashInfer's kernels as gpuhil providers, one module per op it covers:

| module | provider | op | FlashInfer API |
|---|---|---|---|
| argmax | flashinfer-topk1 | argmax | top_k(k=1, tie_break=SMALL) |
| fp8_grouped_gemm | flashinfer-cudnn | fp8_grouped_gemm | grouped_mm.grouped_mm_fp8 (cuDNN) |
| nvfp4_quantize | flashinfer | nvfp4_quantize | fp4_quantize |
| nvfp4_grouped_gemm | flashinfer-cudnn | nvfp4_grouped_gemm | grouped_mm.grouped_mm_fp4 (cuDNN) |
| nvfp4_moe_layer | flashinfer-cutlass | nvfp4_moe_layer | fused_moe.cutlass_fused_moe (NVFP4) |

Shared: layouts (gpuhil's operands in FlashInfer's layouts), support (FlashInfer's own support
tables, read lazily), toolkit (the CUDA toolkit its JIT compiles against). flashinfer itself is
imported only when a provider's requirements read its tables or a launch is prepared.
"""

from __future__ import annotations

from .. import FLASHINFER as LIBRARY

__all__ = ["LIBRARY", "providers"]


def providers() -> list:
    from .argmax import TopK1
    from .b12x import B12xMoeLayer
    from .fp8_grouped_gemm import CudnnFp8
    from .nvfp4_grouped_gemm import CudnnFp4
    from .nvfp4_moe_layer import CutlassMoe
    from .nvfp4_quantize import Quantize

    return [TopK1(), CudnnFp8(), Quantize(), CudnnFp4(), CutlassMoe(), B12xMoeLayer()]
