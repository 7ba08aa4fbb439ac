"""The cp.async ring mainloop of the warp-level grouped GEMMs: a ``stages``-deep ring of k-tiles in
shared memory, filled by 16-byte (codes) or 4-byte (block scales) cp.async, one barrier a k-tile.

Each operand part (the codes of A, the scales of A, the codes of B, ...) is a `Stream`: its
(rows, per k-tile, k-tiles) gmem view, that view's coordinates and its (rows, per k-tile, stages)
smem ring. The K tail is handled by shifting the K origin so the FIRST k-tile is the partial one
(`k_tiled`): its chunks at K < 0 are not loaded and stay zero (stage 0 is zeroed before the
prologue), every later k-tile is full. Rows past the group (or N) are not loaded either: they only
feed accumulator rows or columns that are never stored.

`fill_ring` zeroes stage 0 and issues k-tiles 0 .. stages-2; `run_ring` then, per k-tile, waits for
it, refills the slot read one k-tile ago and hands the landed slot to the kernel's `compute`.
"""

from __future__ import annotations

import cutlass
import cutlass.cute as cute
from cutlass import Int32, Uint8

CHUNK = 16  # bytes per cp.async of codes (the widest cp.async, and .cg's only size)


def row_tiled_copy(atom, threads: int, rows: int, row_elems: int, vec: int):
    """Threads laid row-major over a (rows, row_elems) tile, `vec` elements each. Returns the copy
    and how many threads take part (fewer than `threads` when the tile has fewer chunks)."""
    per_row = row_elems // vec
    used = min(threads, rows * per_row)
    thr = cute.make_layout((used // per_row, per_row), stride=(per_row, 1))
    return cute.make_tiled_copy_tv(atom, thr, cute.make_layout((1, vec))), used


def linear_ring_layout(rows: int, per_tile: int, stages: int):
    """(rows, per k-tile, stages), row-major within a stage, stages one after another."""
    return cute.make_layout((rows, per_tile, stages), stride=(per_tile, 1, rows * per_tile))


def k_tiled(m, rows, tile_rows: int, row_tile, per_tile: int, shift, align: int):
    """(tile_rows, per_tile, k-tiles) view of the row-major (rows, per row) gmem tensor `m`, aligned
    to `align` bytes, and its coordinates; the K origin moved by `shift` (<= 0) so that k-tile 0 is
    the partial one."""
    g = cute.local_tile(m, (tile_rows, per_tile), (row_tile, None))
    c = cute.local_tile(cute.make_identity_tensor((rows, cute.size(m, mode=[1]))), (tile_rows, per_tile),
                        (row_tile, None))
    g = cute.domain_offset((0, shift, 0), g)
    return cute.make_tensor(g.iterator.align(align), g.layout), cute.domain_offset((0, shift, 0), c)


def _thread_slice(copy, tidx, used: int, threads: int):
    return copy.get_slice(tidx if used == threads else tidx % used)


class Stream:
    """One operand part's cp.async ring, partitioned for thread `tidx`: `chunk_bytes` per copy
    (16: cp.async.cg, L2 only; 4: cp.async.ca), rows past `valid_rows` masked."""

    def __init__(self, g, c, s, valid_rows, tidx, threads: int, chunk_bytes: int):
        rows, per_tile = cute.size(s, mode=[0]), cute.size(s, mode=[1])
        per_chunk = chunk_bytes * 8 // s.element_type.width
        op = cute.nvgpu.cpasync.CopyG2SOp(
            cache_mode=cute.nvgpu.LoadCacheMode.GLOBAL) if chunk_bytes == CHUNK else cute.nvgpu.cpasync.CopyG2SOp()
        atom = cute.make_copy_atom(op, s.element_type, num_bits_per_copy=chunk_bytes * 8)
        self.copy, used = row_tiled_copy(atom, threads, rows, per_tile, per_chunk)
        # A tile with fewer chunks than threads (scales of 64 rows x 64 K) leaves the rest idle. An
        # idle thread is sliced onto a working thread's chunk, so it must issue no copy at all: the
        # DSL lowers a false predicate to cp.async with src-size 0, a ZERO FILL of that same chunk,
        # racing the real load (the dequant kernel's 64-column k-64 tiles lost whole scale blocks
        # to it). fill_ring and run_ring branch on `active` instead.
        self.active = cutlass.Boolean(True) if used == threads else tidx < used
        thr = _thread_slice(self.copy, tidx, used, threads)
        self.g, self.s, self.c = thr.partition_S(g), thr.partition_D(s), thr.partition_S(c)
        # stage 0 as plain bytes (the first rows * row bytes of the ring, whatever its swizzle),
        # split into the same chunks, for zeroing (a sub-byte tensor cannot be filled)
        row_bytes = per_tile // per_chunk * chunk_bytes
        stage0 = cute.make_tensor(cute.make_ptr(Uint8, s.iterator.toint(), cute.AddressSpace.smem,
                                                assumed_align=chunk_bytes),
                                  cute.make_layout((rows, row_bytes), stride=(row_bytes, 1)))
        zero_atom = cute.make_copy_atom(cute.nvgpu.CopyUniversalOp(), Uint8, num_bits_per_copy=chunk_bytes * 8)
        zero_copy, used_z = row_tiled_copy(zero_atom, threads, rows, row_bytes, chunk_bytes)
        self.zero = _thread_slice(zero_copy, tidx, used_z, threads).partition_D(stage0)
        # per-row flags for full k-tiles; per-(row, chunk) flags for the partial first one
        self.p_rows, self.p_first = _preds(self.g, self.c, valid_rows)


def _preds(part, coords, valid_rows):
    n_m, n_k = cute.size(part, mode=[1]), cute.size(part, mode=[2])
    rows = cute.make_rmem_tensor(cute.make_layout((1, n_m, n_k), stride=(n_m, 1, 0)), cutlass.Boolean)
    first = cute.make_rmem_tensor(cute.make_layout((1, n_m, n_k), stride=(n_m * n_k, 1, n_m)), cutlass.Boolean)
    for i in range(n_m):
        rows[0, i, 0] = coords[0, i, 0, 0][0] < valid_rows
        for kk in range(n_k):
            first[0, i, kk] = rows[0, i, 0] & (coords[0, i, kk, 0][1] >= 0)
    return rows, first


def load_stage(stream: Stream, k, stage) -> None:
    """Issue the cp.async copies of full k-tile `k` into ring slot `stage` (callers skip it where
    `stream.active` is false). A function, not a method: the DSL would treat a method call inside a
    runtime loop as mutating the stream."""
    cute.copy(stream.copy, stream.g[None, None, None, k], stream.s[None, None, None, stage], pred=stream.p_rows)


@cute.jit
def fill_ring(streams: list, k_tiles: Int32, stages: cutlass.Constexpr):
    """Zero stage 0 (it gets the partial first k-tile), then issue k-tiles 0 .. stages-2, one
    commit group each (an empty group past the last k-tile keeps the wait counts uniform)."""
    for i in cutlass.range_constexpr(len(streams)):
        streams[i].zero.fill(0)
    cute.arch.sync_threads()
    for i in cutlass.range_constexpr(len(streams)):
        st = streams[i]
        if st.active:
            cute.copy(st.copy, st.g[None, None, None, 0], st.s[None, None, None, 0], pred=st.p_first)
    cute.arch.cp_async_commit_group()
    for s in cutlass.range_constexpr(1, stages - 1):
        if s < k_tiles:
            for i in cutlass.range_constexpr(len(streams)):
                if streams[i].active:
                    load_stage(streams[i], s, s)
        cute.arch.cp_async_commit_group()


@cute.jit
def run_ring(streams: list, k_tiles: Int32, stages: cutlass.Constexpr, compute):
    """The mainloop: for each k-tile, wait until it has landed, refill the slot `compute` read one
    k-tile ago with k-tile kt + stages - 1, then `compute(slot)`. Returns with every copy landed and
    every warp past its last read, so the ring may be reused (the epilogue's staging tile)."""
    read_stage = Int32(0)
    write_stage = Int32(stages - 1)
    for kt in cutlass.range(k_tiles):
        # tile kt landed (<= stages-2 newer groups in flight) and every warp is done reading the
        # slot refilled next (and whatever else `compute` read last k-tile)
        cute.arch.cp_async_wait_group(stages - 2)
        cute.arch.sync_threads()
        nxt = kt + stages - 1
        if nxt < k_tiles:
            for i in cutlass.range_constexpr(len(streams)):
                if streams[i].active:
                    load_stage(streams[i], nxt, write_stage)
        cute.arch.cp_async_commit_group()
        compute(read_stage)
        write_stage = read_stage
        read_stage = read_stage + 1
        if read_stage == stages:
            read_stage = Int32(0)
    cute.arch.cp_async_wait_group(0)
    cute.arch.sync_threads()
