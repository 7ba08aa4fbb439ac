"""Row-wise argmax over logits [M, N] in CuTe DSL, torch.argmax/torch.max semantics.

Per row: out_val[row] = max (as fp32), out_idx[row] = int64 index of the first
maximum.  NaN counts as the maximum and the first NaN wins; an all -inf row
gives (-inf, 0).

Work split: ``cluster_n`` CTAs per row (grid.x = cluster_n * M, rows in
grid.x so M is not capped at 65535), by default one cluster.  The row's full
16-byte vectors are split into ``cluster_n`` contiguous chunks; each thread
walks its chunk in rounds of ``unroll`` independent vector loads.  A full-width vector is
reduced to its maximum with packed NaN-propagating max instructions and only
the first vector holding the thread's running maximum is remembered; the
element inside it is found once, at the end (re-read from L2).  Then
warp-shuffle and smem reduce to one (value, index) pair per CTA.  CTAs of
rank > 0 push their pair into rank 0's shared memory with ``st.async``
(mapa + mbarrier complete_tx); rank 0 waits on its mbarrier, reduces and
writes.  Without clusters (``handoff="gmem"``) the CTAs of a row are plain
CTAs of the grid: each stores its pair in a global workspace and increments
the row's counter (acq_rel); the one that completes the count reduces the
pairs, writes and resets the counter.  The < vec element tail after the last
full vector is read with scalar loads by the last rank.  With ``pdl`` the
kernel is launched as a programmatic dependent launch: it waits for the
previous kernel's grid right before its first load and lets the next kernel
launch at once.

One row per cluster also for small N: the host picks a small config
(threads=32..128, cluster_n=1) there; packing several rows per CTA would
only pay off for N << 1000 with huge M, which is not the sampling workload.

Vector-alignment rule (host side, see ``pick_vec_ok``): a config with vec > 1
needs data_ptr % 16 == 0 and row stride % vec == 0; otherwise use vec=1.
"""

from __future__ import annotations

import functools

import cuda.bindings.driver as cuda
import cutlass
import cutlass.cute as cute
from cutlass import Float32, Int32, Int64
from cutlass._mlir.dialects import llvm
from cutlass.cutlass_dsl import T
from cutlass.memory import SmemAllocator

from ..compiled import CompiledKernel, compile_kernel, gmem_ptr, null_stream, raw_stream
from .spec import ELEM_BYTES, ArgmaxConfig, dtype_name, pick_vec_ok, row_stride

_SENTINEL = 0x7FFFFFFF  # "no element seen": loses every index tie
_DTYPES = {"bf16": cutlass.BFloat16, "fp16": cutlass.Float16, "fp32": cutlass.Float32}


# ---------------------------------------------------------------------------
# device helpers (traced inline)


def _is_nan(x):
    return x != x


def _scan_update(best, bidx, v, i):
    # Thread-local scan sees indices in increasing order, so strict '>' keeps
    # the first maximum; a NaN replaces anything but an earlier NaN.
    take = (v > best) | (_is_nan(v) & ~_is_nan(best))
    return (
        Float32(cutlass.select_(take, v, best)),
        Int32(cutlass.select_(take, i, bidx)),
    )


def _combine(va, ia, vb, ib):
    # Max under the total order (isnan, value, -index): associative and
    # commutative, so any reduction tree gives torch's answer.
    a_nan = _is_nan(va)
    b_nan = _is_nan(vb)
    earlier = ib < ia
    take = (~a_nan & ((vb > va) | b_nan | ((vb == va) & earlier))) | (a_nan & b_nan & earlier)
    return (
        Float32(cutlass.select_(take, vb, va)),
        Int32(cutlass.select_(take, ib, ia)),
    )


def _warp_argmax(v, i):
    for sh in (16, 8, 4, 2, 1):
        ov = cute.arch.shuffle_sync_bfly(v, offset=sh)
        oi = cute.arch.shuffle_sync_bfly(i, offset=sh)
        v, i = _combine(v, i, ov, oi)
    return v, i


def _write_row(out_val, out_idx, row, v, i):
    # all -inf row: nothing beat the -inf start, torch says index 0
    i = Int32(cutlass.select_(i == _SENTINEL, Int32(0), i))
    out_val[row] = v
    out_idx[row] = Int64(i)


def _f32_bits(x):
    return Int32(llvm.bitcast(T.i32(), x.ir_value()))


def _bits_f32(x):
    return Float32(llvm.bitcast(T.f32(), x.ir_value()))


_PACKED_MAX = {"bf16": "max.NaN.bf16x2", "fp16": "max.NaN.f16x2"}


def _max2(a, b, dtype):
    # Two lanes of 16-bit values at once; NaN-propagating like torch's max (sm_80+).
    return Int32(llvm.inline_asm(T.i32(), [a.ir_value(), b.ir_value()], f"{_PACKED_MAX[dtype]} $0, $1, $2;",
                                 "=r,r,r", has_side_effects=False, is_align_stack=False,
                                 asm_dialect=llvm.AsmDialect.AD_ATT))


def _half(word, high: bool, dtype):
    """One 16-bit lane of `word` as fp32 (the low lane holds the lower element index)."""
    if dtype == "bf16":  # bf16 is the top half of an fp32: place it there, no conversion needed
        return _bits_f32(word & Int32(-65536) if high else word << 16)
    lane = "h" if high else "l"
    return Float32(llvm.inline_asm(T.f32(), [word.ir_value()],
                                   f"{{ .reg .b16 l, h; mov.b32 {{l, h}}, $1; cvt.f32.f16 $0, {lane}; }}",
                                   "=f,r", has_side_effects=False, is_align_stack=False,
                                   asm_dialect=llvm.AsmDialect.AD_ATT))


def _element(words, k: int, dtype):
    """Element k of a 16-byte vector held as four 32-bit words, as fp32."""
    if dtype == "fp32":
        return _bits_f32(words[k])
    return _half(words[k // 2], k % 2 == 1, dtype)


def _vector_max(words, dtype):
    """NaN-propagating maximum of a 16-byte vector (four 32-bit words) as fp32."""
    if dtype == "fp32":
        f = [_bits_f32(words[k]) for k in range(4)]
        return cute.arch.fmax(cute.arch.fmax(f[0], f[1], nan=True), cute.arch.fmax(f[2], f[3], nan=True), nan=True)
    m = _max2(_max2(words[0], words[1], dtype), _max2(words[2], words[3], dtype), dtype)
    return cute.arch.fmax(_half(m, False, dtype), _half(m, True, dtype), nan=True)


def _round_vectors(base, end, threads: int, unroll: int):
    """A thread's vectors in one round: base + u * threads, a load past the chunk clamped to its last
    vector. It re-reads a (value, index) pair another thread scans anyway (ties go to the lower
    index, so a duplicate changes nothing), and a thread's indices never decrease (the first maximum
    still wins). One memory round trip per round."""
    return [cutlass.min(base + u * threads, end - 1) for u in range(unroll)]


# ---------------------------------------------------------------------------


def build(config: ArgmaxConfig, dtype: str):
    """Return the @cute.jit host function for (config, dtype).

    Host signature: ``(x_ptr, val_ptr, idx_ptr, ws_ptr, m, n, ld, stream)`` with
    raw pointers (ints at call time; ws_ptr the int32 workspace of a split
    through global memory, unused otherwise), m/n Int32, ld Int64 row stride in
    elements (64-bit so row * ld cannot overflow for > 2^31-element inputs).
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    config.check_vec(dtype)
    threads, vec, cn, unroll, pdl = config.threads, config.vec, config.cluster_n, config.unroll, config.pdl
    dsmem, gmem = config.cluster_launch, config.gmem_split
    packed = vec * ELEM_BYTES[dtype] == 16  # full-width vectors take the packed-max scan
    num_warps = threads // 32
    step = threads * unroll

    @cute.kernel
    def argmax_kernel(X: cute.Tensor, out_val: cute.Tensor, out_idx: cute.Tensor, WS: cute.Tensor):
        tidx, _, _ = cute.arch.thread_idx()
        bidx, _, _ = cute.arch.block_idx()
        warp = cute.arch.warp_idx()
        lane = cute.arch.lane_idx()
        row = bidx // cn
        rank = bidx % cn  # == %cluster_ctarank when a cluster is (cn,1,1) along x

        if cutlass.const_expr(pdl):
            # Let the next kernel of the stream launch now: it waits in griddepcontrol.wait for this
            # grid to finish, so only its launch latency overlaps this kernel's work.
            cute.arch.griddepcontrol_launch_dependents()
        smem = SmemAllocator()
        warp_v = smem.allocate_tensor(Float32, cute.make_layout(num_warps), byte_alignment=16)
        warp_i = smem.allocate_tensor(Int32, cute.make_layout(num_warps), byte_alignment=16)
        if cutlass.const_expr(dsmem):
            # one 8-byte slot (value bits, index) per rank; Int64 keeps slots 8B-aligned for st.async
            parts = smem.allocate_tensor(Int64, cute.make_layout(cn), byte_alignment=16)
            parts32 = cute.make_tensor(cute.recast_ptr(parts.iterator, dtype=Int32), cute.make_layout(2 * cn))
            mbar = smem.allocate_tensor(Int64, cute.make_layout(1), byte_alignment=8)
            if tidx == 0:
                if rank == 0:
                    cute.arch.mbarrier_init(mbar.iterator, 1)
                    cute.arch.mbarrier_init_fence()
                    # our own arrival + the bytes the cn-1 peers will st.async in
                    cute.arch.mbarrier_arrive_and_expect_tx(mbar.iterator, (cn - 1) * 8)
            # Peers may only signal rank 0's mbarrier after its init is visible:
            # arrive now, wait right before the remote store (overlaps the loads).
            cute.arch.cluster_arrive_relaxed()

        n = cute.size(X, mode=[1])
        xrow = X[row, None]
        xv = cute.zipped_divide(xrow, (vec,))  # ((vec), (ceil(n/vec)))
        nvec = n // vec
        per = (nvec + (cn - 1)) // cn
        v0 = rank * per
        v1 = cutlass.min(v0 + per, nvec)
        nloc = cutlass.max(v1 - v0, 0)
        rounds = (nloc + (step - 1)) // step

        if cutlass.const_expr(pdl):
            cute.arch.griddepcontrol_wait()  # the logits are the previous kernel's output
        best = Float32(-float("inf"))
        bi = Int32(_SENTINEL)
        # Every round issues all `unroll` loads before scanning, the last one too (_round_vectors).
        if cutlass.const_expr(packed):
            # 16-byte vectors: reduce each to its maximum with packed NaN-propagating max (about two
            # instructions per element instead of ten), remember only the first vector holding the
            # thread's maximum, and find the element inside it once, after the loop.
            words = cute.zipped_divide(
                cute.make_tensor(cute.recast_ptr(xrow.iterator, dtype=Int32), cute.make_layout(nvec * 4)), (4,))
            bj = Int32(_SENTINEL)
            for it in cutlass.range(rounds):
                js = _round_vectors(v0 + it * step + tidx, v1, threads, unroll)
                chunks = [words[(None, js[u])].load() for u in range(unroll)]
                for u in cutlass.range_constexpr(unroll):
                    vmax = _vector_max(chunks[u], dtype)
                    # vmax > best, or a first NaN: "not <=" is true for a NaN vmax, and a NaN best
                    # (already the maximum) is never replaced.
                    take = ~(vmax <= best) & ~_is_nan(best)
                    bj = Int32(cutlass.select_(take, js[u], bj))
                    best = Float32(cutlass.select_(take, vmax, best))
            if bj != _SENTINEL:
                # The vector was read moments ago, so this load hits L2; scan it backwards so the
                # first matching element (first maximum, or first NaN) is the one kept.
                w = words[(None, bj)].load()
                best_nan = _is_nan(best)
                found_v = best
                found_k = Int32(0)
                for k in cutlass.range_constexpr(vec - 1, -1, -1):
                    e = _element(w, k, dtype)
                    hit = (e == best) | (best_nan & _is_nan(e))
                    found_v = Float32(cutlass.select_(hit, e, found_v))
                    found_k = Int32(cutlass.select_(hit, Int32(k), found_k))
                best = found_v
                bi = bj * vec + found_k
        else:
            for it in cutlass.range(rounds):
                js = _round_vectors(v0 + it * step + tidx, v1, threads, unroll)
                chunks = [xv[(None, js[u])].load().to(Float32) for u in range(unroll)]
                for u in cutlass.range_constexpr(unroll):
                    for k in cutlass.range_constexpr(vec):
                        best, bi = _scan_update(best, bi, chunks[u][k], js[u] * vec + k)
        if cutlass.const_expr(vec > 1):
            t = nvec * vec + tidx
            if rank == cn - 1 and t < n:
                best, bi = _scan_update(best, bi, xrow[t].to(Float32), t)

        best, bi = _warp_argmax(best, bi)
        if lane == 0:
            warp_v[warp] = best
            warp_i[warp] = bi
        cute.arch.sync_threads()

        if warp == 0:
            v = Float32(-float("inf"))
            i = Int32(_SENTINEL)
            if lane < num_warps:
                v = warp_v[lane]
                i = warp_i[lane]
            v, i = _warp_argmax(v, i)
            if cutlass.const_expr(dsmem):
                cute.arch.cluster_wait()
                if rank != 0:
                    if lane == 0:
                        cute.arch.store_async_dsmem(
                            cute.recast_ptr(parts.iterator + rank, dtype=Int32),
                            (_f32_bits(v), i),
                            mbar.iterator,
                            0,
                        )
                else:
                    # data of the st.async stores is visible once the phase completes
                    cute.arch.mbarrier_wait(mbar.iterator, 0)
                    pv = v
                    pi = i
                    if lane > 0 and lane < cn:
                        pv = _bits_f32(parts32[2 * lane])
                        pi = parts32[2 * lane + 1]
                    elif lane >= cn:
                        pv = Float32(-float("inf"))
                        pi = Int32(_SENTINEL)
                    v, i = _warp_argmax(pv, pi)
            if cutlass.const_expr(gmem):
                if lane == 0:
                    # Partials through global memory: the CTA whose increment completes the row's
                    # count reduces them. acq_rel on the counter orders each CTA's partial before
                    # its increment and the last CTA's loads after every increment.
                    m_rows = cute.size(X, mode=[0])
                    mine = m_rows + 2 * (row * cn + rank)  # pairs start after the M counters
                    WS[mine] = _f32_bits(v)
                    WS[mine + 1] = i
                    done = cute.arch.atomic_add(WS.iterator + row, Int32(1), sem="acq_rel", scope="gpu")
                    if done == cn - 1:
                        rv = Float32(-float("inf"))
                        ri = Int32(_SENTINEL)
                        for r in cutlass.range_constexpr(cn):
                            pair = WS.iterator + (m_rows + 2 * (row * cn + r))
                            pv = _bits_f32(cute.arch.load(pair, Int32, sem="relaxed", scope="gpu"))
                            pi = cute.arch.load(pair + 1, Int32, sem="relaxed", scope="gpu")
                            rv, ri = _combine(rv, ri, pv, pi)
                        WS[row] = Int32(0)  # ready for the next launch
                        _write_row(out_val, out_idx, row, rv, ri)
            elif lane == 0 and rank == 0:
                _write_row(out_val, out_idx, row, v, i)
        if cutlass.const_expr(dsmem):
            if warp != 0:
                cute.arch.cluster_wait()  # every thread that arrived also waits

    @cute.jit
    def argmax_host(
        x_ptr: cute.Pointer,
        val_ptr: cute.Pointer,
        idx_ptr: cute.Pointer,
        ws_ptr: cute.Pointer,
        m: Int32,
        n: Int32,
        ld: Int64,
        stream: cuda.CUstream,
    ):
        # The host guarantees ld % vec == 0 (see pick_vec_ok); telling the
        # compiler lets every row start keep the 16-byte pointer alignment.
        ld_a = cute.assume(ld, divby=vec)
        X = cute.make_tensor(x_ptr, cute.make_layout((m, n), stride=(ld_a, 1)))
        V = cute.make_tensor(val_ptr, cute.make_layout(m))
        I = cute.make_tensor(idx_ptr, cute.make_layout(m))
        WS = cute.make_tensor(ws_ptr, cute.make_layout(m * (1 + 2 * cn)))  # read only by gmem splits
        if cutlass.const_expr(dsmem):
            argmax_kernel(X, V, I, WS).launch(
                grid=[m * cn, 1, 1], block=[threads, 1, 1], cluster=[cn, 1, 1], stream=stream, use_pdl=pdl
            )
        else:
            argmax_kernel(X, V, I, WS).launch(grid=[m * cn, 1, 1], block=[threads, 1, 1], stream=stream, use_pdl=pdl)

    return argmax_host


def _pointers(config: ArgmaxConfig, dtype: str, x: int = 0, val: int = 0, idx: int = 0, ws: int = 0):
    return (gmem_ptr(_DTYPES[dtype], x, config.vec * ELEM_BYTES[dtype]), gmem_ptr(Float32, val, 4),
            gmem_ptr(Int64, idx, 8), gmem_ptr(Int32, ws, 4))


def aot_args(config: ArgmaxConfig, dtype: str):
    """Compile-time stand-ins for ``build(config, dtype)``'s host function (no GPU)."""
    return (*_pointers(config, dtype), Int32(1), Int32(1), Int64(config.vec), null_stream())


def host_args(config: ArgmaxConfig, dtype: str, x: int, val: int, idx: int, ws: int, m: int, n: int, ld: int,
              stream: int):
    """The host function's DSL arguments for raw values (the generic, first-call path)."""
    return (*_pointers(config, dtype, x, val, idx, ws), m, n, ld, cuda.CUstream(stream))


def compile_argmax(config: ArgmaxConfig, dtype: str, target: str | None = None) -> CompiledKernel:
    """Compiled for (config, dtype), valid for every M, N and row stride (see kernels.compiled)."""
    return compile_kernel(build, aot_args, config, dtype, target, host_args=host_args)


@functools.cache
def _torch_dtypes() -> tuple[object, object, object]:
    import torch

    return torch.float32, torch.int64, torch.int32


def launch(compiled: CompiledKernel, logits, out_val, out_idx, workspace=None, stream=None) -> None:
    """Launch on torch CUDA tensors; graph-capturable (no sync, no allocation).

    logits [M, N] (unit column stride, any row stride); out_val float32 [M];
    out_idx int64 [M]; workspace: for a split through global memory, int32
    with at least config.workspace_words(M) elements, zero before the first
    launch (every launch leaves it zero again), used by one stream at a time.
    The checks below run on every call, so they only read metadata (dtypes
    compared as objects, names cached per dtype) and format a message only
    when one fails.
    """
    m, n = logits.shape
    ld = row_stride(logits)
    cfg = compiled.config
    f32, i64, i32 = _torch_dtypes()
    if n == 0 or m == 0:
        raise ValueError("argmax of an empty row is undefined")
    if n > 1 and logits.stride(1) != 1:
        raise ValueError("logits must have unit column stride")
    if dtype_name(logits.dtype) != compiled.variant:
        raise ValueError(f"logits dtype {logits.dtype} does not match compiled {compiled.variant}")
    if out_val.dtype != f32 or out_idx.dtype != i64:
        raise ValueError("out_val must be float32 and out_idx int64")
    if out_val.numel() < m or out_idx.numel() < m or out_val.stride(0) != 1 or out_idx.stride(0) != 1:
        raise ValueError("out_val/out_idx must be contiguous with at least M elements")
    device = logits.get_device()  # -1 off the GPU: the kernel would fault on a host address
    if device < 0:
        raise ValueError(f"logits must be a CUDA tensor, got {logits.device}")
    if out_val.get_device() != device or out_idx.get_device() != device:
        name, wrong = ("out_val", out_val) if out_val.get_device() != device else ("out_idx", out_idx)
        raise ValueError(f"{name} must be on cuda:{device} like the logits, got {wrong.device}")
    ptr = logits.data_ptr()
    if cfg.vec > 1 and not pick_vec_ok(ptr, ld, ELEM_BYTES[compiled.variant], cfg.vec):
        raise ValueError(f"vec={cfg.vec} needs a {cfg.vec * ELEM_BYTES[compiled.variant]}B-aligned base and row stride % vec == 0; use a vec=1 config")
    if n >= 2**31 or m * cfg.cluster_n >= 2**31:
        raise ValueError("N and M * cluster_n must fit in int32")
    ws = 0
    if cfg.gmem_split:
        if workspace is None or workspace.dtype != i32 or workspace.numel() < cfg.workspace_words(m):
            raise ValueError(f"{cfg.name} needs an int32 workspace of {cfg.workspace_words(m)} zeroed words for M={m}")
        if workspace.get_device() != device:
            raise ValueError(f"the workspace must be on cuda:{device} like the logits, got {workspace.device}")
        ws = workspace.data_ptr()
    compiled.launch(ptr, out_val.data_ptr(), out_idx.data_ptr(), ws, m, n, ld, raw_stream(device, stream))
