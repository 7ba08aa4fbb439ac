"""Probe with faked driver answers: every catalog SKU reads back as itself, and nothing ever raises."""

import json
import subprocess
import sys

import pytest

from fakes import FakeDriver, FakeNvml, NoDriver
from gpuhil.catalog import matrix
from gpuhil.device import probe as probe_mod
from gpuhil.device.capabilities import Capabilities
from gpuhil.device.probe import probe

MX = matrix.load()


# Each probed field and the driver attribute it must come from.
ATTRIBUTE_OF = {
    "sm_count": "CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT",
    "smem_optin_bytes": "CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN",
    "smem_per_sm_bytes": "CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR",
    "l2_bytes": "CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE",
}


def test_each_field_is_read_from_its_own_driver_attribute():
    """The driver answers a distinct number per attribute, unlike any catalog row: a field read from
    the wrong attribute (the per-SM smem for the opt-in limit, say) shows as the wrong number."""
    drv = FakeDriver(MX.sku("h100"))
    drv.attrs.update({attr: 4096 * (i + 3) for i, attr in enumerate(ATTRIBUTE_OF.values())})
    drv.attrs.update({"CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR": 12, "CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR": 1})
    fp = probe(driver=drv, nvml=FakeNvml(MX.sku("h100")), read_software=False)
    assert {f: getattr(fp, f) for f in ATTRIBUTE_OF} == {f: drv.attrs[a] for f, a in ATTRIBUTE_OF.items()}
    assert (fp.cc, fp.arch_family) == ("12.1", 12)
    for field, attr in ATTRIBUTE_OF.items():
        assert attr.removeprefix("CU_DEVICE_ATTRIBUTE_") in fp.how_read[field], (field, fp.how_read[field])


@pytest.mark.parametrize("sku", MX.skus.values(), ids=lambda s: s.id)
def test_every_catalog_sku_is_matched_from_what_its_driver_reports(sku):
    """The catalog match (PCI device id first, exact driver name second, cc) finds each SKU's own row."""
    fp = probe(driver=FakeDriver(sku), nvml=FakeNvml(sku), read_software=False)
    assert fp.gpu_present and not fp.synthetic
    assert MX.match(fp.name, fp.pci_device_id, fp.cc) == sku


def test_h20_without_cluster_launch_never_probes_cluster_size():
    drv = FakeDriver(MX.sku("h20"))
    fp = probe(driver=drv, nvml=FakeNvml(MX.sku("h20")), read_software=False)
    assert fp.cluster_launch is False and fp.max_cluster_size == 1
    assert drv.cluster_probe_calls == 0
    assert "CLUSTER_LAUNCH is 0" in fp.how_read["max_cluster_size"]
    assert Capabilities.from_fingerprint(fp).cluster_launch is False


def test_gb10_opt_in_smem_comes_from_the_driver_attribute():
    fp = probe(driver=FakeDriver(MX.sku("gb10")), nvml=FakeNvml(MX.sku("gb10")), read_software=False)
    assert fp.smem_optin_bytes == 101376
    assert "MAX_SHARED_MEMORY_PER_BLOCK_OPTIN" in fp.how_read["smem_optin_bytes"]


def test_resident_clusters_are_probed_and_bound_the_persistent_grid():
    """cuOccupancyMaxActiveClusters, not sm_count / size: an H100 runs 30 clusters of 4 full-SM CTAs
    at once, not 33 (a cluster must fit one GPC); an emulated SKU's SM count still caps it."""
    import dataclasses

    fp = probe(driver=FakeDriver(MX.sku("h100")), nvml=FakeNvml(MX.sku("h100")), read_software=False)
    assert fp.resident_clusters == {"2": 66, "4": 33}  # the fake answers sm_count / size
    assert "cuOccupancyMaxActiveClusters" in fp.how_read["resident_clusters"]
    fp.resident_clusters = {"2": 66, "4": 30}
    caps = Capabilities.from_fingerprint(fp)
    assert (caps.resident_clusters(2), caps.resident_clusters(4), caps.resident_clusters(1)) == (66, 30, 132)
    assert dataclasses.replace(caps, sm_count=78).resident_clusters(4) == 19
    h20 = probe(driver=FakeDriver(MX.sku("h20")), nvml=FakeNvml(MX.sku("h20")), read_software=False)
    assert h20.resident_clusters == {} and "resident_clusters" not in h20.how_read


def test_probed_cluster_size_wins_over_the_catalog():
    fp = probe(driver=FakeDriver(MX.sku("h100"), cluster_probe=8), nvml=FakeNvml(MX.sku("h100")), read_software=False)
    assert fp.max_cluster_size == 8


@pytest.mark.parametrize("payload", ["12.9", "13.1"])
def test_dsl_payload_version_is_reported(monkeypatch, payload):
    monkeypatch.setattr(probe_mod, "_version", lambda dist: "4.8.1" if dist == "nvidia-cutlass-dsl" else "3.6.0")
    monkeypatch.setattr(probe_mod, "_dsl_payload", lambda: payload)
    fp = probe(driver=FakeDriver(MX.sku("gb10")), nvml=FakeNvml(MX.sku("gb10")))
    assert fp.dsl_cuda == payload and fp.cutlass_dsl == "4.8.1"
    assert "cutlass.CUDA_VERSION" in fp.how_read["dsl_cuda"]
    assert Capabilities.from_fingerprint(fp).facts()["dsl_cuda"] == payload


def test_no_driver_means_no_gpu_and_no_exception():
    fp = probe(driver=NoDriver())
    assert fp.gpu_present is False
    assert "CUDA_ERROR_NO_DEVICE" in fp.errors["gpu"]
    assert fp.python and fp.cpu_arch  # software fields are still read


def test_broken_nvml_reading_is_an_error_entry_not_a_crash():
    class BrokenNvml(FakeNvml):
        def ecc_enabled(self, uuid):
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")

    sku = MX.sku("h100")
    fp = probe(driver=FakeDriver(sku), nvml=BrokenNvml(sku), read_software=False)
    assert fp.ecc_enabled is None and "NOT_SUPPORTED" in fp.errors["ecc_enabled"]
    assert fp.peak_dram_gbs == pytest.approx(2 * 2619e6 * 5120 / 8 / 1e9, rel=1e-3)


def test_fingerprint_id_is_stable_and_tracks_perf_fields():
    sku = MX.sku("h100")
    a = probe(driver=FakeDriver(sku), nvml=FakeNvml(sku), read_software=False)
    b = probe(driver=FakeDriver(sku), nvml=FakeNvml(sku), read_software=False)
    assert a.fingerprint_id == b.fingerprint_id
    b.driver_version = "999.0"
    assert a.fingerprint_id != b.fingerprint_id
    b.driver_version, b.uuid = a.driver_version, "GPU-other"  # another board of the same kind: same series
    assert a.fingerprint_id == b.fingerprint_id


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gpuhil", *args], capture_output=True, text=True, timeout=300)


def _cuda_devices() -> int:
    """An independent count: torch's, where it has a CUDA build and a driver; else none."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def test_cli_probe_json_on_this_machine_exits_zero():
    r = _cli("probe", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["gpu_present"] is (_cuda_devices() > 0), d.get("errors")
    assert d["fingerprint_id"] and "Traceback" not in r.stderr
    if not d["gpu_present"]:
        assert d["errors"]["gpu"], "no GPU must come with the reason the driver gave"


@pytest.mark.parametrize("sku_id, smem, launch", [("gb10", 101376, True), ("h20", None, False)])
def test_cli_probe_sku_prints_the_catalog_fingerprint(sku_id, smem, launch):
    r = _cli("probe", "--target-sku", sku_id, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["synthetic"] is True and d["cluster_launch"] is launch
    if smem:
        assert d["smem_optin_bytes"] == smem


def test_cli_probe_unknown_sku_names_the_catalog():
    r = _cli("probe", "--target-sku", "h999")
    assert r.returncode == 2 and "unknown SKU 'h999'" in r.stderr and "h100" in r.stderr
