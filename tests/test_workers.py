"""How many xdist workers a run starts: the least of what the cores, the host's memory and the GPUs
allow, never fewer than one per GPU; --workers overrides it; the host's limits are read with its cgroup."""

import pytest

from gpuhil import workers
from gpuhil.workers import GIB, Host, count

H200_MEM = 143_771_533_312  # what cuDeviceTotalMem reads on an H200


@pytest.mark.parametrize("host, gpus, gpu_mem, n, binding", [
    (Host(16, 120 * GIB), 1, H200_MEM, 8, "1 GPU x 8 per GPU = 8"),  # the H200 runner: cores and the GPU cap agree
    (Host(16, 120 * GIB), 1, 24 * GIB, 3, "24 GiB GPU memory / 8 GiB per worker = 3"),  # a small card
    (Host(2, 20 * GIB), 0, None, 1, "2 cores / 2 per worker = 1"),  # this CPU machine
    (Host(64, 200 * GIB), 0, None, 32, "64 cores / 2 per worker = 32"),  # CPU run: no GPU bound
    (Host(32, 40 * GIB), 0, None, 13, "40 GiB host memory available / 3 GiB per worker = 13"),
    (Host(128, 1000 * GIB), 8, H200_MEM, 64, "8 GPUs x 8 per GPU = 64"),
    (Host(8, 500 * GIB), 8, H200_MEM, 8, "raised to one per GPU"),  # never fewer than one per GPU
    (Host(1, None), 0, None, 1, "raised to one"),  # memory unknown: cores alone; at least one
])
def test_the_count_is_the_least_bound_and_says_which(host, gpus, gpu_mem, n, binding):
    got = count(host, gpus, gpu_mem)
    assert got.n == n and binding in got.why, got


def test_every_bound_is_named_with_its_numbers():
    got = count(Host(16, 120 * GIB), 1, H200_MEM)
    assert str(got) == ("8 workers (least of: 16 cores / 2 per worker = 8, 120 GiB host memory available / "
                        "3 GiB per worker = 40, 1 GPU x 8 per GPU = 8)")


def test_the_override_wins_and_says_so():
    assert str(count(Host(16, 120 * GIB), 1, H200_MEM, override=3)) == "3 workers (--workers 3)"
    assert count(Host(2, 1 * GIB), 0, None, override=12).n == 12  # an override is taken as given


def test_threads_per_worker_share_the_cores():
    assert [workers.threads_per_worker(16, w) for w in (1, 8, 16, 32)] == [16, 2, 1, 1]


def _host_files(tmp_path, meminfo_kb=None, cpu_max=None, mem_max=None, mem_current=None):
    proc, cg = tmp_path / "proc", tmp_path / "cgroup"
    proc.mkdir()
    cg.mkdir()
    if meminfo_kb is not None:
        (proc / "meminfo").write_text(f"MemTotal:       99999999 kB\nMemFree:  1 kB\nMemAvailable:   {meminfo_kb} kB\n")
    for name, value in (("cpu.max", cpu_max), ("memory.max", mem_max), ("memory.current", mem_current)):
        if value is not None:
            (cg / name).write_text(f"{value}\n")
    return proc, cg


def test_read_host_takes_memavailable_and_the_affinity_without_a_cgroup_limit(tmp_path):
    proc, cg = _host_files(tmp_path, meminfo_kb=24 * 1024 * 1024, cpu_max="max 100000", mem_max="max")
    assert workers.read_host(proc, cg, affinity=16) == Host(16, 24 * GIB)


def test_read_host_keeps_within_the_cgroups_quota_and_memory_limit(tmp_path):
    proc, cg = _host_files(tmp_path, meminfo_kb=120 * 1024 * 1024, cpu_max="350000 100000",
                           mem_max=str(16 * GIB), mem_current=str(4 * GIB))
    assert workers.read_host(proc, cg, affinity=16) == Host(4, 12 * GIB)  # 3.5 cores round up


def test_read_host_without_readable_limits_has_unknown_memory(tmp_path):
    proc, cg = _host_files(tmp_path)
    assert workers.read_host(proc, cg, affinity=6) == Host(6, None)
    (cg / "cpu.max").write_text("garbage\n")
    assert workers.read_host(proc, cg, affinity=6).cores == 6


def test_read_host_reads_this_machine():
    host = workers.read_host()
    assert host.cores >= 1 and (host.mem_bytes is None or host.mem_bytes > 0)
