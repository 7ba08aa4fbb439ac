"""CPU-only AOT test: compile the cluster_reduce demo kernel for each target, no GPU needed; the
compiled kernel's shared memory and cluster are exactly what its Requirements say."""

import pytest

pytest.importorskip("cutlass")

from gpuhil.kernels import aot  # noqa: E402
from gpuhil.kernels.cluster_reduce import cute as cluster_reduce, spec  # noqa: E402

TARGETS = ["sm_90a", "sm_100a", "sm_120a", "sm_121a"]


@pytest.mark.aot
@pytest.mark.parametrize("cluster_n", [1, 2, 4, 8])
def test_cluster_reduce_all_targets(tmp_path, cluster_n):
    fn = cluster_reduce.build(cluster_n)
    for target in TARGETS:  # same fn, several targets in one process
        res = aot.compile_for_target(fn, *cluster_reduce.aot_args(cluster_n), target=target, keep_dir=tmp_path)
        ptx = res.ptx_path.read_text()
        assert f".target {target}" in ptx
        assert res.cubin_path.exists() and res.cubin_path.stat().st_size > 0
        assert res.cubin_path.read_bytes()[:4] == b"\x7fELF"
        assert res.smem_bytes == spec.requirements(cluster_n).smem_bytes, "the gate's byte count must be exact"
        assert res.cluster_shape == (cluster_n, 1, 1)
        assert res.kernel_name in ptx
        if cluster_n > 1:
            assert "mapa" in ptx and "barrier.cluster" in ptx


@pytest.mark.aot
@pytest.mark.parametrize("bad", ["sm90a", "90a", "sm_90x", "", "compute_90a"])
def test_bad_target_rejected(bad):
    fn = cluster_reduce.build(1)
    with pytest.raises(ValueError, match="target"):
        aot.compile_for_target(fn, *cluster_reduce.aot_args(1), target=bad)
