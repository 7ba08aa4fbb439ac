"""gpuhil-cute NVFP4 quantize in CuTe DSL, bit-exact with gpuhil.ops.nvfp4_moe.reference.quantize.

bf16 x [rows, K] (K % 16 == 0, unit column stride, row stride a multiple of 8 elements, 16-byte
aligned; anything else is refused with a ValueError rather than read with narrower loads) and an fp32 global scale g read from device memory (so a CUDA graph replays with a new g)
-> packed uint8 [rows, K/2] (element 2j in the low nibble) and E4M3 scales, linear [rows, K/16] or
swizzled 128x4 tiles (flat rows_pad * cols_pad bytes; the kernel writes the padding as zero, so a
poisoned output buffer ends up fully defined).

One thread per 16-element block: two 16-byte loads, the reference's operation sequence, one 8-byte
store of the codes and one byte store of the scale. Every step that rounds is spelled in PTX with
an explicit rounding mode, so neither fast-math nor a flush-to-zero default can change a bit:
  q = div.rn.f32(g, 6); s = mul.rn.f32(amax, q); sf = cvt.rn.satfinite.e4m3x2.f32 (sm_89+);
  d = cvt e4m3 -> f16 -> f32 (exact); r = d == 0 ? 0 : div.rn.f32(g, d); v = mul.rn.f32(x, r).
Everything else is integer work on the fp32 bit patterns: bf16 -> fp32 is a 16-bit shift, the NaN-
ignoring block maximum compares magnitude bits (finite floats order like their bits), and the E2M1
code counts the reference's thresholds passed by |v|'s bits (a NaN's bits pass them all: code 7,
its sign dropped). The E2M1 conversion is this software path on every target: sm_90 has no
cvt ...e2m1x2, and one path is one thing to prove equal to the reference.
"""

from __future__ import annotations

import cuda.bindings.driver as cuda

import cutlass
import cutlass.cute as cute
from cutlass import Float32, Int32, Int64, Uint8
from cutlass._mlir.dialects import llvm
from cutlass.cutlass_dsl import T

from ...formats.nvfp4 import BLOCK, SWIZZLE_COLS, SWIZZLE_ROWS, e2m1_threshold_bits
from ..compiled import CompiledKernel, compile_kernel, gmem_ptr, null_stream, require, stream_for
from .spec import DEFAULT, MAX_ITEMS, QuantizeConfig, check_layout, output_shapes, work_items

__all__ = ["aot_args", "build", "compile_quantize", "launch", "pointers"]

WORDS = BLOCK // 2  # one 32-bit word holds two bf16: element 2j in the low half (little endian)
_ABS = 0x7FFFFFFF
_INF_BITS = 0x7F800000


# ---------------------------------------------------------------------------
# device helpers (traced inline)


def _as_f32(bits):
    return Float32(llvm.bitcast(T.f32(), Int32(bits).ir_value()))


def _as_i32(x):
    return Int32(llvm.bitcast(T.i32(), Float32(x).ir_value()))


def _ptx_f32(asm: str, *args):
    ops = [Float32(a).ir_value() for a in args]
    return Float32(llvm.inline_asm(T.f32(), ops, asm, "=f" + ",f" * len(args)))


def _div_rn(a, b):
    return _ptx_f32("div.rn.f32 $0, $1, $2;", a, b)


def _mul_rn(a, b):
    return _ptx_f32("mul.rn.f32 $0, $1, $2;", a, b)


def _e4m3_rn_satfinite(s):
    """E4M3 byte of s (low byte of cvt's pair: d[7:0] = convert(b)), zero-extended to 32 bits."""
    return Int32(llvm.inline_asm(
        T.i32(), [Float32(0.0).ir_value(), Float32(s).ir_value()],
        "{\n .reg .b16 p;\n cvt.rn.satfinite.e4m3x2.f32 p, $1, $2;\n cvt.u32.u16 $0, p;\n}", "=r,f,f"))


def _e4m3_to_f32(byte):
    """Exact value of an E4M3 byte: e4m3x2 -> f16x2 (every E4M3 value is an f16), low half -> f32."""
    return Float32(llvm.inline_asm(
        T.f32(), [Int32(byte).ir_value()],
        "{\n .reg .b16 p, lo, hi;\n .reg .b32 h2;\n cvt.u16.u32 p, $1;\n cvt.rn.f16x2.e4m3x2 h2, p;\n"
        " mov.b32 {lo, hi}, h2;\n cvt.f32.f16 $0, lo;\n}", "=f,r"))


def _e2m1_code(v_bits, thresholds):
    """Step 8 on fp32 bits: thresholds passed by |v|, sign bit of v, NaN -> 7."""
    mag = v_bits & _ABS
    code = Int32(0)
    for t_bits, tie_up in thresholds:
        passed = (mag >= t_bits) if tie_up else (mag > t_bits)
        code = code + Int32(cutlass.select_(passed, Int32(1), Int32(0)))
    sign = (v_bits >> 28) & 0x8  # arithmetic shift: bit 31 lands on bit 3 (and above; masked)
    return code | Int32(cutlass.select_(mag > _INF_BITS, Int32(0), sign))


# ---------------------------------------------------------------------------


def build(config: QuantizeConfig, layout: str):
    """The @cute.jit host function for (config, layout).

    Host signature: ``(x_ptr, g_ptr, packed_ptr, sf_ptr, rows, k, ld_words, stream)``: typed
    pointers (x as 32-bit words, g fp32, packed as 32-bit words, sf bytes), rows/k Int32, ld_words
    Int64 = x's row stride in 32-bit words (a multiple of 4).
    """
    swizzled = check_layout(layout) == "swizzled"
    threads = config.threads
    thresholds = e2m1_threshold_bits()

    def _scale_grid(rows, kb):
        """(columns, rows) of the scale grid the threads cover: padded to 128x4 tiles when swizzled."""
        if cutlass.const_expr(swizzled):
            return ((kb + (SWIZZLE_COLS - 1)) // SWIZZLE_COLS * SWIZZLE_COLS,
                    (rows + (SWIZZLE_ROWS - 1)) // SWIZZLE_ROWS * SWIZZLE_ROWS)
        return kb, rows

    def quantize_block(x_ptr, g_ptr, packed_ptr, sf_out, rows, k16, ld_words, row, col, sf_off):
        """The reference's sequence for block (row, col). Traced inline by plain Python (not the DSL
        preprocessor): its loops unroll at trace time and its one choice is a select."""
        # [rows, K/2] words, one (1, 8)-word tile per block; the layout carries the 16-byte
        # alignment (base 16 B, row stride a multiple of 4 words, 32 B per block) to the loads
        x_words = cute.make_tensor(x_ptr, cute.make_layout((rows, k16 // 2), stride=(cute.assume(ld_words, divby=4), 1)))
        words = cute.zipped_divide(x_words, (1, WORDS))[(None, (row, col))].load()
        g = cute.make_tensor(g_ptr, cute.make_layout(1))[0]

        # 2. block maximum of |x| over non-NaN values, on magnitude bits
        bits = []
        amax = Int32(0)
        for j in range(WORDS):
            w = Int32(words[j])
            for b in (w << 16, w & Int32(-65536)):  # element 2j, then 2j + 1, as fp32 bits
                bits.append(b)
                mag = b & _ABS
                mag = Int32(cutlass.select_(mag > _INF_BITS, Int32(0), mag))
                amax = Int32(cutlass.select_(mag > amax, mag, amax))

        q = _div_rn(g, Float32(6.0))  # 1.
        s = _mul_rn(_as_f32(amax), q)  # 3.
        sf = _e4m3_rn_satfinite(s)  # 4.
        d = _e4m3_to_f32(sf)  # 5.
        r = Float32(cutlass.select_(d == Float32(0.0), Float32(0.0), _div_rn(g, d)))  # 6. (g / 0 discarded)

        codes = cute.make_rmem_tensor(cute.make_layout(2), Int32)
        for half in range(2):
            word = Int32(0)
            for i in range(8):
                v = _mul_rn(_as_f32(bits[half * 8 + i]), r)  # 7.
                word = word | (_e2m1_code(_as_i32(v), thresholds) << (4 * i))  # 8.
            codes[half] = word
        # [rows, K/8] words of packed codes, two (8 bytes) per block; a 64-bit row stride, as rows * K/8
        # may pass 2^31 words
        packed_ld = cute.assume(Int64(k16 // 8), divby=2)
        packed = cute.make_tensor(packed_ptr, cute.make_layout((rows, k16 // 8), stride=(packed_ld, 1)))
        cute.zipped_divide(packed, (1, 2))[(None, (row, col))].store(codes.load())
        sf_out[sf_off] = Uint8(sf)

    @cute.kernel
    def quantize_kernel(x_ptr: cute.Pointer, g_ptr: cute.Pointer, packed_ptr: cute.Pointer, sf_ptr: cute.Pointer,
                        rows: Int32, k: Int32, ld_words: Int64):
        tidx, _, _ = cute.arch.thread_idx()
        bidx, _, _ = cute.arch.block_idx()
        k16 = cute.assume(k, divby=BLOCK)
        kb = k16 // BLOCK
        cols, n_rows = _scale_grid(rows, kb)
        item = bidx * threads + tidx
        row = item // cols
        col = item - row * cols
        sf_out = cute.make_tensor(sf_ptr, cute.make_layout(n_rows * cols))
        if row < n_rows:
            if cutlass.const_expr(swizzled):
                tile = (row // SWIZZLE_ROWS) * (cols // SWIZZLE_COLS) + col // SWIZZLE_COLS
                sf_off = tile * 512 + (row % 32) * 16 + (row % SWIZZLE_ROWS) // 32 * 4 + col % SWIZZLE_COLS
                if row < rows and col < kb:
                    quantize_block(x_ptr, g_ptr, packed_ptr, sf_out, rows, k16, ld_words, row, col, sf_off)
                else:
                    sf_out[sf_off] = Uint8(0)  # padding of the 128x4 tiles
            else:
                quantize_block(x_ptr, g_ptr, packed_ptr, sf_out, rows, k16, ld_words, row, col, item)

    @cute.jit
    def quantize_host(x_ptr: cute.Pointer, g_ptr: cute.Pointer, packed_ptr: cute.Pointer, sf_ptr: cute.Pointer,
                      rows: Int32, k: Int32, ld_words: Int64, stream: cuda.CUstream):
        cols, n_rows = _scale_grid(rows, k // BLOCK)
        items = n_rows * cols
        quantize_kernel(x_ptr, g_ptr, packed_ptr, sf_ptr, rows, k, ld_words).launch(
            grid=[(items + (threads - 1)) // threads, 1, 1], block=[threads, 1, 1], stream=stream)

    return quantize_host


def pointers(x: int = 0, g: int = 0, packed: int = 0, sf: int = 0) -> tuple:
    """Typed gmem pointers; all zero: compile-time stand-ins."""
    return (gmem_ptr(Int32, x, 16), gmem_ptr(Float32, g, 4), gmem_ptr(Int32, packed, 8), gmem_ptr(Uint8, sf, 1))


def aot_args(config: QuantizeConfig = DEFAULT, layout: str = "linear"):
    """Compile-time stand-ins for build(config, layout)'s host function (no GPU)."""
    return (*pointers(), Int32(1), Int32(BLOCK), Int64(4), null_stream())


def compile_quantize(config: QuantizeConfig = DEFAULT, layout: str = "linear", target: str | None = None) -> CompiledKernel:
    """Compiled for (config, layout), valid for every rows, K and row stride (see kernels.compiled)."""
    return compile_kernel(build, aot_args, config, layout, target)


def check_operands(layout: str, x, global_scale, packed_out, scales_out) -> tuple[int, int, int]:
    """Host-side checks of the torch operands; returns (rows, k, row stride in elements)."""
    import torch

    require(x.dim() == 2, f"x: expected a 2-D [rows, K] tensor, got shape {tuple(x.shape)}")
    rows, k = x.shape
    require(x.dtype == torch.bfloat16, f"x: expected torch.bfloat16, got {x.dtype}")
    require(x.is_cuda, "x: expected a CUDA tensor")
    require(k % BLOCK == 0 and k > 0, f"x: K must be a positive multiple of {BLOCK}, got {k}")
    require(x.stride(1) == 1, f"x: expected unit column stride, got strides {x.stride()}")
    ld = x.stride(0) if rows > 1 else k
    require(ld % 8 == 0 and ld >= k, f"x: row stride must be >= K and a multiple of 8 elements (16 bytes), got {ld}")
    require(x.data_ptr() % 16 == 0, "x: data pointer must be 16-byte aligned")
    require(global_scale.dtype == torch.float32 and global_scale.numel() == 1 and global_scale.device == x.device,
             f"global_scale: expected one fp32 element on {x.device}, got {global_scale.dtype} x{global_scale.numel()} "
             f"on {global_scale.device}")
    require(packed_out.dtype == torch.uint8 and tuple(packed_out.shape) == output_shapes(rows, k, layout)[0]
             and packed_out.is_contiguous() and packed_out.device == x.device,
             f"packed_out: expected contiguous torch.uint8 {(rows, k // 2)} on {x.device}, got {packed_out.dtype} "
             f"{tuple(packed_out.shape)} on {packed_out.device}")
    require(packed_out.data_ptr() % 8 == 0, "packed_out: data pointer must be 8-byte aligned")
    want = output_shapes(rows, k, layout)[1]
    require(scales_out.dtype in (torch.float8_e4m3fn, torch.uint8) and tuple(scales_out.shape) == want
             and scales_out.is_contiguous() and scales_out.device == x.device,
             f"scales_out: expected contiguous float8_e4m3fn or uint8 {want} ({layout}) on {x.device}, got "
             f"{scales_out.dtype} {tuple(scales_out.shape)} on {scales_out.device}")
    require(work_items(rows, k, layout) <= MAX_ITEMS,
             f"x: {rows} x {k} needs {work_items(rows, k, layout)} threads, past the int32 index limit {MAX_ITEMS}")
    return rows, k, ld


def launch(compiled: CompiledKernel, x, global_scale, packed_out, scales_out, stream=None) -> None:
    """Quantize x into packed_out / scales_out on `stream` (default: torch's current stream).
    No host sync, no allocation: CUDA-graph capturable."""
    rows, k, ld = check_operands(compiled.variant, x, global_scale, packed_out, scales_out)
    if rows == 0:
        return
    stream = stream_for(x.device, stream)
    compiled(*pointers(x.data_ptr(), global_scale.data_ptr(), packed_out.data_ptr(), scales_out.data_ptr()),
                rows, k, ld // 2, stream)
