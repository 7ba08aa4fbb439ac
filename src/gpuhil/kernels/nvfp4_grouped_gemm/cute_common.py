"""Device-side pieces both NVFP4 grouped-GEMM kernels share (trace-time helpers, CuTe DSL).

* the group's gmem views and their cp.async ring: packed E2M1 rows and E4M3 scale rows of A and B,
  one stage per k-tile, K tail by a shifted first k-tile whose masked chunks stay zero;
* the epilogue: alpha in fp32, one bf16 rounding, staged through smem, 16-byte predicated stores.

Grid = (ceil(N / tile_n), ceil(T / tile_m) + G): ceil(T/tile_m) + G bounds sum_g ceil(m_g/tile_m),
so the grid needs only host-known T and G (CUDA-graph capturable); CTAs past the real tile count
exit. N tiles are the fast grid axis, so the CTAs sharing one A tile run together and an expert's B
stays in L2 across its m-tiles.
"""

from __future__ import annotations

import cutlass
import cutlass.cute as cute
from cutlass import BFloat16, Int32, Uint8

CHUNK = 16  # bytes per cp.async of packed codes
SF_CHUNK = 4  # bytes per cp.async of scales: K % 64 == 0 makes each scale row whole 4-byte chunks
SF_VEC = 16  # K elements per scale


def k_tiled(m, rows, tile_rows: int, row_tile, per_tile: int, shift):
    """(tile_rows, per_tile, k-tiles) view of the row-major (rows, per row) gmem tensor `m` and its
    coordinates, the K origin moved by `shift` (<= 0) so that k-tile 0 is the partial one."""
    g = cute.local_tile(m, (tile_rows, per_tile), (row_tile, None))
    c = cute.local_tile(cute.make_identity_tensor((rows, cute.size(m, mode=[1]))), (tile_rows, per_tile),
                        (row_tile, None))
    g = cute.domain_offset((0, shift, 0), g)
    return cute.make_tensor(g.iterator.align(SF_CHUNK), g.layout), cute.domain_offset((0, shift, 0), c)


def row_tiled_copy(atom, threads: int, rows: int, row_elems: int, vec: int):
    """Threads laid row-major over a (rows, row_elems) tile, `vec` elements each. Returns the copy
    and how many threads take part (fewer than `threads` when the tile has fewer chunks)."""
    per_row = row_elems // vec
    used = min(threads, rows * per_row)
    thr = cute.make_layout((used // per_row, per_row), stride=(per_row, 1))
    return cute.make_tiled_copy_tv(atom, thr, cute.make_layout((1, vec))), used


def c_smem_layout(tile_m: int, tile_n: int):
    # bf16 rows of 64 elements (128 B) per atom, 16-byte chunks XOR row: conflict-free both ways
    atom = cute.make_composed_layout(cute.make_swizzle(3, 3, 3), 0, cute.make_layout((8, 64), stride=(64, 1)))
    return cute.tile_to_shape(atom, (tile_m, tile_n), (0, 1))


class Ring:
    """The cp.async ring of one operand (A or B of this CTA): packed codes and scale bytes of a
    (rows, k-tile) tile per stage, rows past `valid_rows` not loaded (they only feed accumulator
    rows or columns that are never stored).

    g_codes/c_codes: (rows, codes per k-tile, k-tiles) gmem view and its coordinates, the K origin
    shifted so k-tile 0 is the partial one (coordinates < 0 are masked); g_sf/c_sf likewise for the
    (rows, K/16 per k-tile, k-tiles) scale bytes; s_codes/s_sf: (rows, per k-tile, stages) smem.
    `code_type` is the element type of the code views (bytes, or Float4E2M1FN), `codes_per_chunk`
    how many of them one 16-byte cp.async moves."""

    def __init__(self, g_codes, c_codes, s_codes, g_sf, c_sf, s_sf, valid_rows, tidx, threads, code_type,
                 codes_per_chunk, sf_type):
        rows, codes_per_tile = cute.size(s_codes, mode=[0]), cute.size(s_codes, mode=[1])
        sf_per_tile = cute.size(s_sf, mode=[1])
        code_atom = cute.make_copy_atom(
            cute.nvgpu.cpasync.CopyG2SOp(cache_mode=cute.nvgpu.LoadCacheMode.GLOBAL), code_type,
            num_bits_per_copy=CHUNK * 8)
        sf_atom = cute.make_copy_atom(cute.nvgpu.cpasync.CopyG2SOp(), sf_type, num_bits_per_copy=SF_CHUNK * 8)
        self.copy_c, used_c = row_tiled_copy(code_atom, threads, rows, codes_per_tile, codes_per_chunk)
        self.copy_s, used_s = row_tiled_copy(sf_atom, threads, rows, sf_per_tile, SF_CHUNK)
        # a tile with fewer 4-byte scale chunks than threads leaves the rest idle
        self.active_c = cutlass.Boolean(True) if used_c == threads else tidx < used_c
        self.active_s = cutlass.Boolean(True) if used_s == threads else tidx < used_s
        thr_c, thr_s = self.copy_c.get_slice(tidx % used_c), self.copy_s.get_slice(tidx % used_s)
        self.gC, self.sC, self.cC = thr_c.partition_S(g_codes), thr_c.partition_D(s_codes), thr_c.partition_S(c_codes)
        self.gS, self.sS, self.cS = thr_s.partition_S(g_sf), thr_s.partition_D(s_sf), thr_s.partition_S(c_sf)
        # stage 0 as plain bytes (it is the first rows * bytes-per-row of the ring, whatever the
        # swizzle), split like the code copies, for zeroing (a sub-byte tensor cannot be filled)
        stage0 = cute.make_tensor(cute.make_ptr(Uint8, s_codes.iterator.toint(), cute.AddressSpace.smem,
                                                assumed_align=CHUNK),
                                  cute.make_layout((rows, codes_per_tile * CHUNK // codes_per_chunk),
                                                   stride=(codes_per_tile * CHUNK // codes_per_chunk, 1)))
        byte_copy, used_z = row_tiled_copy(cute.make_copy_atom(cute.nvgpu.CopyUniversalOp(), Uint8,
                                                               num_bits_per_copy=CHUNK * 8),
                                           threads, rows, codes_per_tile * CHUNK // codes_per_chunk, CHUNK)
        self.zero_c = byte_copy.get_slice(tidx % used_z).partition_D(stage0)
        # per-row flags for full k-tiles; per-(row, chunk) flags for the partial first one
        self.pC, self.pC0 = _preds(self.gC, self.cC, valid_rows, self.active_c)
        self.pS, self.pS0 = _preds(self.gS, self.cS, valid_rows, self.active_s)

    def zero_first_stage(self) -> None:
        """Stage 0 receives the partial first k-tile: zero codes (and zero scales) where K < 0."""
        self.zero_c.fill(0)
        self.sS[None, None, None, 0].fill(0)

    def load_first(self) -> None:
        cute.copy(self.copy_c, self.gC[None, None, None, 0], self.sC[None, None, None, 0], pred=self.pC0)
        cute.copy(self.copy_s, self.gS[None, None, None, 0], self.sS[None, None, None, 0], pred=self.pS0)


def load_stage(ring: Ring, k, stage) -> None:
    """Issue the cp.async copies of k-tile `k` (a full one) into ring slot `stage`. A function, not a
    method: the DSL would treat a method call inside a runtime loop as mutating the ring."""
    cute.copy(ring.copy_c, ring.gC[None, None, None, k], ring.sC[None, None, None, stage], pred=ring.pC)
    cute.copy(ring.copy_s, ring.gS[None, None, None, k], ring.sS[None, None, None, stage], pred=ring.pS)


def _preds(part, coords, valid_rows, active):
    n_m, n_k = cute.size(part, mode=[1]), cute.size(part, mode=[2])
    rows = cute.make_rmem_tensor(cute.make_layout((1, n_m, n_k), stride=(n_m, 1, 0)), cutlass.Boolean)
    first = cute.make_rmem_tensor(cute.make_layout((1, n_m, n_k), stride=(n_m * n_k, 1, n_m)), cutlass.Boolean)
    for i in range(n_m):
        rows[0, i, 0] = active & (coords[0, i, 0, 0][0] < valid_rows)
        for kk in range(n_k):
            first[0, i, kk] = rows[0, i, 0] & (coords[0, i, kk, 0][1] >= 0)
    return rows, first


@cute.jit
def store_epilogue(acc, alpha, tiled_mma, tidx: Int32, sC, gC, cC, m_rows: Int32, N: Int32,
                   threads: cutlass.Constexpr, tile_n: cutlass.Constexpr):
    """acc * alpha in fp32, rounded to bf16 once, staged through `sC` (smem the mainloop no longer
    reads; the caller has synchronised), then 16-byte stores of the rows and columns in range."""
    thr_mma = tiled_mma.get_slice(tidx)
    for i in cutlass.range_constexpr(cute.size(acc)):
        acc[i] = acc[i] * alpha
    out_frag = cute.make_fragment_like(acc, BFloat16)
    out_frag.store(acc.load().to(BFloat16))
    cute.autovec_copy(out_frag, thr_mma.partition_C(sC))
    cute.arch.sync_threads()
    st_atom = cute.make_copy_atom(cute.nvgpu.CopyUniversalOp(), BFloat16, num_bits_per_copy=128)
    copy_out, _ = row_tiled_copy(st_atom, threads, cute.size(sC, mode=[0]), tile_n, 8)
    thr_c = copy_out.get_slice(tidx)
    tOsC = thr_c.partition_S(sC)
    tOgC = thr_c.partition_D(gC)
    tOcC = thr_c.partition_S(cC)
    tOrC = cute.make_fragment_like(tOsC)
    cute.autovec_copy(tOsC, tOrC)
    for i in cutlass.range_constexpr(cute.size(tOrC, mode=[1])):
        for j in cutlass.range_constexpr(cute.size(tOrC, mode=[2])):
            r, c = tOcC[0, i, j]
            if r < m_rows and c < N:
                cute.copy(copy_out, tOrC[None, i, j], tOgC[None, i, j])
