"""Launching a warp-level grouped GEMM: the grid the group scan expects (from the host function)
and the checked, packed launch on torch operands (from Python)."""

from __future__ import annotations

from ..compiled import CompiledKernel, raw_stream
from ..tiles import check_grouped_grid_rows


def launch_over_tiles(kernel, T, N, G, tile_m: int, tile_n: int, threads: int, smem_bytes: int, stream) -> None:
    """Launch `kernel` (a @cute.kernel's call, inside a host function) on grid
    (ceil(N / tile_n), ceil(T / tile_m) + G). ceil(T/tile_m) + G bounds sum_g ceil(m_g/tile_m), so
    host-known T and G size the grid (no device->host sync, CUDA-graph capturable); CTAs past the
    real tile count exit (schedule.find_group). N tiles are the fast axis, so the CTAs sharing one
    A tile run together (A is streamed from DRAM about once) and an expert's B stays in L2 across
    its m-tiles."""
    grid_n = (N + (tile_n - 1)) // tile_n
    grid_m = (T + (tile_m - 1)) // tile_m + G
    kernel.launch(grid=[grid_n, grid_m, 1], block=[threads, 1, 1], smem=smem_bytes, stream=stream)


def launch_checked(compiled: CompiledKernel, addresses: tuple, sizes: tuple[int, int, int, int], device_index: int,
                   stream=None) -> None:
    """Launch on checked operands: their addresses in the host function's pointer order, (T, N, K, G)
    and the device they share (its current stream by default). A grid past CUDA's grid.y limit is
    refused before launch; an empty problem launches nothing. No host sync, no allocation."""
    T, N, K, G = sizes
    check_grouped_grid_rows(compiled.config.tile.m, T, G)
    if T == 0:
        return
    compiled.launch(*addresses, T, N, K, G, raw_stream(device_index, stream))
