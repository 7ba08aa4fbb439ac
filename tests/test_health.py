"""Runner health (CPU): each unhealthy NVML answer gives its one line and an unhealthy verdict, a field
the part does not support is said and passes, the kernel fields judge what they measured, the child
process the runner asks is read (or its failure is unhealthy), and docs/HEALTH.md states the table."""

import json
import os
import re
import stat
import sys
from pathlib import Path

import pynvml
import pytest
import torch

from fakes import HealthNvml, gpuhil
from gpuhil.health import checks, gate, kernel
from gpuhil.health.checks import NOT_JUDGED, NOT_SUPPORTED, OK, UNHEALTHY, HealthReport

REPO = Path(__file__).resolve().parents[1]
NVML_FIELDS = [c.field for c in checks.nvml_checks(pynvml)]


def nvml_report(nv) -> HealthReport:
    return gate.check_gpus(nv, ["GPU-0"], kernels=None)


def test_a_healthy_gpu_passes_every_field_and_asks_nvml_what_the_table_says():
    nv = HealthNvml()
    report = nvml_report(nv)
    assert [f.field for f in report.findings] == NVML_FIELDS
    assert {f.status for f in report.findings} == {OK} and report.healthy and report.state == "healthy"
    assert report.summary() == f"healthy ({len(NVML_FIELDS)} fields)"
    asked = {call[0]: call[1:] for call in nv.asked}
    assert asked["nvmlDeviceGetHandleByUUID"] == ("GPU-0",)
    assert asked["nvmlDeviceGetTotalEccErrors"] == ("handle", pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                                                     pynvml.NVML_VOLATILE_ECC)
    assert asked["nvmlDeviceGetTemperature"] == ("handle", pynvml.NVML_TEMPERATURE_GPU)
    assert asked["nvmlDeviceGetTemperatureThreshold"] == ("handle", pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN)


@pytest.mark.parametrize("answers, line", [
    ({"nvmlDeviceGetRetiredPagesPendingStatus": pynvml.NVML_FEATURE_ENABLED}, "gpu0.retired_pages_pending = yes"),
    ({"nvmlDeviceGetRemappedRows": (0, 1, 1, 0)}, "gpu0.remapped_rows_pending = yes"),
    ({"nvmlDeviceGetRemappedRows": (0, 3, 0, 1)}, "gpu0.remapped_rows_failed = yes"),
    ({"nvmlDeviceGetTotalEccErrors": 2}, "gpu0.ecc_uncorrected_volatile = 2"),
    ({"nvmlDeviceGetCurrentClocksEventReasons": pynvml.nvmlClocksEventReasonHwSlowdown},
     "gpu0.clock_pinning_reasons = hw_slowdown"),
    ({"nvmlDeviceGetCurrentClocksEventReasons": pynvml.nvmlClocksEventReasonHwThermalSlowdown
      | pynvml.nvmlClocksEventReasonSwPowerCap}, "gpu0.clock_pinning_reasons = hw_thermal"),
    ({"nvmlDeviceGetCurrentClocksEventReasons": pynvml.nvmlClocksEventReasonSwThermalSlowdown},
     "gpu0.clock_pinning_reasons = sw_thermal"),
    ({"nvmlDeviceGetCurrentClocksEventReasons": pynvml.nvmlClocksEventReasonHwPowerBrakeSlowdown},
     "gpu0.clock_pinning_reasons = hw_power_brake"),
    ({"nvmlDeviceGetTemperature": 82}, "gpu0.temperature_c = 82 C (slowdown at 87 C)"),
    ({"nvmlDeviceGetTemperature": 95}, "gpu0.temperature_c = 95 C (slowdown at 87 C)"),
])
def test_each_unhealthy_field_gives_its_one_line_and_the_verdict(answers, line):
    report = nvml_report(HealthNvml(**answers))
    assert [f.line for f in report.unhealthy] == [line]
    assert not report.healthy and report.state == "unhealthy" and report.summary() == line


def test_power_cap_idle_and_a_temperature_below_the_margin_are_healthy():
    cool_enough = 87 - checks.TEMPERATURE_MARGIN_C - 1
    report = nvml_report(HealthNvml(nvmlDeviceGetCurrentClocksEventReasons=pynvml.nvmlClocksEventReasonSwPowerCap
                                    | pynvml.nvmlClocksEventReasonGpuIdle | pynvml.nvmlClocksEventReasonSyncBoost,
                                    nvmlDeviceGetTemperature=cool_enough))
    assert report.healthy, report.summary()


@pytest.mark.parametrize("call, field", [
    ("nvmlDeviceGetRetiredPagesPendingStatus", "retired_pages_pending"),
    ("nvmlDeviceGetTotalEccErrors", "ecc_uncorrected_volatile"),
    ("nvmlDeviceGetTemperatureThreshold", "temperature_c"),
])
def test_a_field_the_part_does_not_support_is_said_and_passes(call, field):
    nv = HealthNvml()
    nv.answers[call] = nv.error("NVML_ERROR_NOT_SUPPORTED")
    report = nvml_report(nv)
    assert {f.field: (f.value, f.status) for f in report.findings}[field] == ("not supported", NOT_SUPPORTED)
    assert report.healthy and f"not supported: gpu0.{field}" in report.summary()


def test_a_part_without_memory_error_reporting_like_gb10_is_healthy():
    nv = HealthNvml()
    for call in ("nvmlDeviceGetRetiredPagesPendingStatus", "nvmlDeviceGetRemappedRows", "nvmlDeviceGetTotalEccErrors"):
        nv.answers[call] = nv.error("NVML_ERROR_NOT_SUPPORTED")
    report = nvml_report(nv)
    assert report.healthy and sum(f.status == NOT_SUPPORTED for f in report.findings) == 4


def test_an_older_driver_answers_the_throttle_reasons_instead():
    nv = HealthNvml(nvmlDeviceGetCurrentClocksThrottleReasons=pynvml.nvmlClocksThrottleReasonHwSlowdown)
    nv.answers["nvmlDeviceGetCurrentClocksEventReasons"] = nv.error("NVML_ERROR_FUNCTION_NOT_FOUND")
    assert nvml_report(nv).summary() == "gpu0.clock_pinning_reasons = hw_slowdown"


def test_any_other_nvml_error_is_unhealthy():
    nv = HealthNvml()
    nv.answers["nvmlDeviceGetTemperature"] = nv.error("NVML_ERROR_GPU_IS_LOST")
    assert nvml_report(nv).summary() == "gpu0.temperature_c = NVML error: GPU is lost"
    nv = HealthNvml()
    nv.answers["nvmlDeviceGetHandleByUUID"] = nv.error("NVML_ERROR_GPU_IS_LOST")
    assert nvml_report(nv).summary() == "gpu0.nvml_handle = NVML error: GPU is lost"


def test_without_nvml_its_fields_are_not_supported_and_every_gpu_is_named():
    report = gate.check_gpus(None, ["GPU-0", "GPU-1"], kernels=None)
    assert [(f.device, f.field, f.status) for f in report.findings] == [
        ("gpu0", "nvml", NOT_SUPPORTED), ("gpu1", "nvml", NOT_SUPPORTED)]
    assert report.healthy


def test_the_second_gpu_is_named_in_its_line():
    calls = []

    def kernels(index, label):
        calls.append((index, label))
        return [checks.copy_bandwidth_finding(label, 3000.0 if index == 0 else 900.0, 3350)]

    report = gate.check_gpus(HealthNvml(), ["GPU-0", "GPU-1"], kernels)
    assert calls == [(0, "gpu0"), (1, "gpu1")]
    assert report.summary() == "gpu1.copy_bandwidth_gbs = 900 GB/s (27% of the catalog's 3350)"


@pytest.mark.parametrize("measured, catalog, status, value", [
    (2900.0, 3350, OK, "2900 GB/s (87% of the catalog's 3350)"),
    (1600.0, 3350, UNHEALTHY, "1600 GB/s (48% of the catalog's 3350)"),
    (1600.0, None, NOT_JUDGED, "1600 GB/s (no catalog mem_bw_gbs to judge it against)"),
])
def test_the_copy_bandwidth_is_judged_against_the_stated_fraction_of_the_catalog(measured, catalog, status, value):
    f = checks.copy_bandwidth_finding("gpu0", measured, catalog)
    assert (f.status, f.value) == (status, value)
    assert f"{checks.COPY_BANDWIDTH_MIN_FRACTION:.0%}" in f.rule


def test_the_known_answer_is_exact_where_fp32_is_exact_and_a_wrong_entry_is_found(monkeypatch):
    a, b = kernel.fixed_operands()
    assert float((a.abs().max() * b.abs().max() * a.shape[1])) < 2 ** 24  # every partial sum exact in fp32
    assert kernel.known_answer_mismatch(torch.device("cpu")) is None
    assert checks.known_answer_finding("gpu0", None).status == OK

    real = torch.Tensor.__matmul__

    def off_by_one(x, y):  # a product with one wrong entry, as a failing GPU might give
        out = real(x, y)
        if out.dtype == torch.float32:
            out[3, 5] += 1
        return out

    monkeypatch.setattr(torch.Tensor, "__matmul__", off_by_one)
    said = kernel.known_answer_mismatch(torch.device("cpu"))
    assert said.startswith("1 of 1048576 entries differ (C[3,5] = ")
    assert checks.known_answer_finding("gpu0", said).status == UNHEALTHY


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the kernels run")
def test_a_kernel_check_that_cannot_run_is_unhealthy_not_a_traceback():
    findings = gate.torch_kernel_checks(3350)(0, "gpu0")
    assert [(f.field, f.status) for f in findings] == [("known_answer", UNHEALTHY), ("copy_bandwidth_gbs", UNHEALTHY)]
    assert all(f.value.startswith("could not run: ") for f in findings)


def test_the_report_round_trips_through_json():
    report = gate.check_gpus(HealthNvml(nvmlDeviceGetTotalEccErrors=4), ["GPU-0"], kernels=None)
    back = HealthReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert back == report and back.summary() == "gpu0.ecc_uncorrected_volatile = 4"
    with pytest.raises(ValueError):
        HealthReport.from_dict({**report.to_dict(), "findings": [{**report.to_dict()["findings"][0], "status": "meh"}]})


def fake_python(tmp_path, body: str) -> str:
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.mark.parametrize("body, summary", [
    ("echo 'Segmentation fault' >&2; exit 139", "runner.health_check = exit 139: Segmentation fault"),
    ("echo not json", "runner.health_check = exit 0"),
    ("sleep 30", "runner.health_check = timed out after 1 s"),
])
def test_a_check_process_that_gives_no_report_is_unhealthy(tmp_path, body, summary):
    report = gate.ask(fake_python(tmp_path, body), REPO / "hardware_matrix.yaml", 3350, tmp_path, {}, timeout_s=1)
    assert report.summary() == summary


def test_the_runner_reads_what_gpuhil_health_prints(tmp_path):
    doc = gate.check_gpus(HealthNvml(nvmlDeviceGetRemappedRows=(0, 0, 0, 1)), ["GPU-0"], None).to_dict()
    (tmp_path / "printed.json").write_text(json.dumps(doc))
    python = fake_python(tmp_path, f"cat {tmp_path / 'printed.json'}; exit 2")
    assert gate.ask(python, REPO / "hardware_matrix.yaml", None, tmp_path, {}).summary() == \
        "gpu0.remapped_rows_failed = yes"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the real check runs (docs/HEALTH.md)")
def test_without_a_gpu_gpuhil_health_says_so_and_passes(tmp_path):
    r = gpuhil("health", cwd=REPO)
    assert r.returncode == 0 and r.stdout.startswith("runner health: not checked: no GPU"), r.stdout + r.stderr
    report = gate.ask(sys.executable, REPO / "hardware_matrix.yaml", 3350, REPO, dict(os.environ))
    assert report.healthy and report.state == "not checked" and report.not_checked.startswith("no GPU")


def test_gpuhil_health_refuses_a_bandwidth_that_is_not_one(tmp_path):
    r = gpuhil("health", "--mem-bw-gbs", "fast", cwd=tmp_path)
    assert r.returncode == 2 and "--mem-bw-gbs: 'fast': a bandwidth in GB/s, above 0" in r.stderr


def test_the_docs_state_every_field_its_call_and_its_rule():
    rows = {}
    for line in (REPO / "docs/HEALTH.md").read_text().splitlines():
        m = re.match(r"\| `(\w+)` \| (.+?) \| (.+?) \|$", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    stated = {c.field: (f"`{c.reads}`", c.rule) for c in checks.nvml_checks(pynvml)}
    stated |= {k.field: (k.reads, k.rule) for k in checks.KERNEL_FIELDS.values()}
    assert rows == stated
