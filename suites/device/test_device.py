"""The device itself, on the GPU: the probe agrees with the catalog, and what it reports really runs."""

import pytest
import torch

from gpuhil.gating import Requirements
from gpuhil.kernels.cluster_reduce import spec

ON_GPU = pytest.mark.requires(Requirements())
pytestmark = pytest.mark.gpu


@ON_GPU
def test_probed_device_matches_its_catalog_row(gpuhil_session):
    """Drift check: a catalog row that disagrees with the probe is a catalog bug (the probe wins)."""
    fp, sku = gpuhil_session.fingerprint, gpuhil_session.sku
    assert sku is not None, (f"{fp.name} (PCI {fp.pci_device_id}, cc {fp.cc}) matches no catalog row: "
                             "add it to hardware_matrix.yaml (README: Adding a SKU)")
    assert gpuhil_session.drift == ()


@ON_GPU
def test_probe_reads_every_device_field(fingerprint):
    missing = [f for f in ("name", "uuid", "pci_device_id", "cc", "sm_count", "smem_optin_bytes", "l2_bytes",
                           "mem_bytes", "mem_bus_width_bits", "mem_clock_mhz", "sm_clock_max_mhz",
                           "cluster_launch", "max_cluster_size", "driver_version") if getattr(fingerprint, f) is None]
    assert not missing, {f: fingerprint.errors.get(f) for f in missing}


@ON_GPU
def test_torch_agrees_with_the_driver_probe(fingerprint):
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    assert (props.major, props.minor) == tuple(int(x) for x in fingerprint.cc.split("."))
    assert props.multi_processor_count == fingerprint.sm_count
    assert props.L2_cache_size == fingerprint.l2_bytes


@pytest.mark.parametrize("cluster_n", [
    pytest.param(n, marks=pytest.mark.requires(spec.requirements(n))) for n in spec.CLUSTER_SIZES])
def test_cluster_reduce_runs_at_every_offered_cluster_size(cluster_n, rng, capabilities):
    """A cluster size the probe offers must really launch and reduce through DSMEM."""
    from gpuhil.kernels import cluster_reduce

    x = torch.randn(1 << 20, generator=rng).cuda()
    out = cluster_reduce.run(x, cluster_n, caps=capabilities)
    # fp32 recursive summation: |error| <= (terms per thread + tree depth) * 2^-24 * sum|x|.
    terms = x.numel() // (spec.THREADS * cluster_n) + 64
    bound = terms * 2.0**-24 * x.abs().double().sum().item()
    assert abs(out[0].double().item() - x.double().sum().item()) <= bound
