"""Capabilities from probe, catalog and emulation; the hardware check, availability and the gate."""

import dataclasses

import pytest

from fakes import FakeDriver, FakeNvml
from gpuhil import session as session_mod
from gpuhil.catalog import matrix
from gpuhil.device.capabilities import Capabilities, targets_for
from gpuhil.device.emulate import EmulationRefused, emulate
from gpuhil.device.probe import probe
from gpuhil.gating import Requirements, UnsupportedConfig, availability, check, ensure, gate

MX = matrix.load()


def real_fingerprint(sku_id: str):
    sku = MX.sku(sku_id)
    fp = probe(driver=FakeDriver(sku), nvml=FakeNvml(sku), read_software=False)
    fp.dsl_cuda, fp.cutlass_dsl = "13.1", "4.8.1"
    return fp


def real(sku_id: str) -> Capabilities:
    """The capabilities a real device of this SKU probes to (fake driver answers)."""
    return Capabilities.from_fingerprint(real_fingerprint(sku_id))


def test_emulating_gb10_on_h100_caps_limits_but_keeps_the_isa():
    h100 = real("h100")
    gb10 = emulate(h100, MX.sku("gb10"))
    assert gb10.smem_optin_bytes == 101376
    assert gb10.sm_count == MX.sku("gb10").sm_count
    assert gb10.max_cluster_size == MX.sku("gb10").max_cluster_size
    assert gb10.targets == h100.targets and "sm_90a" in gb10.targets  # sm_90a kernels really run
    assert gb10.mma_kinds == h100.mma_kinds and gb10.arch_family == 9
    assert gb10.emulated_sku == "gb10"
    assert any("ISA stays" in n for n in gb10.emulation_notes)
    assert any("memory" in n for n in gb10.emulation_notes)  # 128 GB unified > 80 GB: kept, and said


def test_emulating_h20_turns_cluster_launch_off():
    h20 = emulate(real("h100"), MX.sku("h20"))
    assert h20.cluster_launch is False and h20.max_cluster_size == 1
    v = check(Requirements(cluster_size=2), h20)
    assert not v.ok and "CLUSTER_LAUNCH" in v.explain() and "probed 0" in v.explain()


@pytest.mark.parametrize("real_id, emulated, phrase", [
    ("h100", "b200", "SMs"),  # 148 SMs on a 132-SM device
    ("l40s", "h100", "opt-in smem"),  # more smem than the device has
    ("l40s", "h20", "opt-in smem"),
    ("a100", "gb10", "cluster launch"),  # a feature the device lacks
])
def test_emulation_refuses_to_raise_a_limit(real_id, emulated, phrase):
    with pytest.raises(EmulationRefused, match=phrase):
        emulate(real(real_id), MX.sku(emulated))


def test_emulation_needs_a_real_device():
    from fakes import NoDriver

    with pytest.raises(EmulationRefused, match="no GPU here"):
        session_mod.build(MX, emulate="gb10", fingerprint=probe(driver=NoDriver(), read_software=False))


def test_a_target_session_decides_like_the_catalog_but_runs_nothing():
    target = session_mod.build(MX, target="gb10", fingerprint=probe(driver=FakeDriver(MX.sku("h100")),
                                                                     nvml=FakeNvml(MX.sku("h100"))))
    caps = target.caps
    assert caps.gpu_present and not target.attached and caps.source == "catalog gb10"
    assert caps == session_mod.catalog_capabilities(MX.sku("gb10"), target.fingerprint)
    assert "sm_121a" in caps.targets and "sm_120f" in caps.targets
    assert check(Requirements(smem_bytes=101376), caps).ok  # the hardware check does not ask "is it here"
    v = target.verdict(Requirements())
    assert not v.ok and "no device here" in v.explain()


def test_an_attached_device_passes_availability_and_a_missing_dsl_fails_it():
    h100 = real("h100")
    assert gate(Requirements(needs_dsl=True), h100, attached=True).ok
    v = availability(Requirements(needs_dsl=True), True, dataclasses.replace(h100, cutlass_dsl=None))
    assert not v.ok and "CuTe DSL" in v.explain()


def test_targets_per_compute_capability():
    assert targets_for("9.0") == {"sm_90", "sm_90a"}
    assert {"sm_100a", "sm_100f"} <= targets_for("10.0")
    assert "sm_100f" in targets_for("10.3") and "sm_103a" in targets_for("10.3")
    assert targets_for("8.0") == {"sm_80"}


@pytest.mark.parametrize("req, caps_id, phrase", [
    (Requirements(cluster_size=32), "h100", "max cluster size"),
    (Requirements(cluster_size=2), "a100", "CLUSTER_LAUNCH"),
    (Requirements(smem_bytes=102400), "gb10", "102400 B, probed 101376 B"),
    (Requirements(targets=frozenset({"sm_90a"})), "gb10", "ISA target"),
    (Requirements(arch_families=frozenset({9})), "b200", "arch family"),
    (Requirements(mma_kind="wgmma"), "rtx5090", "MMA kind"),
    (Requirements(min_cc="8.9"), "a100", "compute capability"),
    (Requirements(min_dsl_cuda="13.0"), "gb10", "DSL payload"),
    (Requirements(torch_ops=frozenset({"_scaled_grouped_mm"})), "gb10", "torch build"),
])
def test_check_names_feature_and_probed_value(req, caps_id, phrase):
    caps = real(caps_id)
    if phrase == "DSL payload":
        caps = dataclasses.replace(caps, dsl_cuda="12.9")
    verdict = check(req, caps)
    assert not verdict.ok and phrase in verdict.explain()
    with pytest.raises(UnsupportedConfig, match="not supported here"):
        ensure("test config", req, caps)


def test_supported_config_passes():
    assert check(Requirements(cluster_size=16, smem_bytes=200_000, targets=frozenset({"sm_90a"}),
                              mma_kind="wgmma", min_dsl_cuda="13.0"), real("h100")).ok
