"""The one identifier rule and the empty-value checks, alone and where the command line applies them."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gpuhil import ids
from gpuhil.catalog.matrix import RESERVED_MARKERS

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("value", ["h100", "h20_3e", "20261122T101500-4242-a1b2c3", "h100-A", "fp8_grouped_gemm",
                                   "v1.2", "x" * 64])
def test_safe_ids(value):
    assert ids.check_id(value, "id") == value


@pytest.mark.parametrize("value, problem", [
    ("", "empty"), ("  ", "empty"), ("../../x", "not a safe identifier"), ("..", "not a safe identifier"),
    ("a..b", "not a safe identifier"), ("a/b", "not a safe identifier"), ("a\\b", "not a safe identifier"),
    (".hidden", "not a safe identifier"), ("-rf", "not a safe identifier"), ("x" * 65, "not a safe identifier"),
    ("h100\n", "not a safe identifier"), ("h 100", "not a safe identifier"), (7, "not a string (int)"),
])
def test_unsafe_ids(value, problem):
    with pytest.raises(ids.InvalidValue, match="^" + re.escape(f"run id {value!r}: {problem}")):
        ids.check_id(value, "run id")


def test_marker_names_are_a_lower_case_subset_and_never_reserved():
    assert ids.marker_problem("h20_3e") is None
    assert "not a marker name" in ids.marker_problem("h20-3e")  # `-m` would read it as h20 minus 3e
    assert "not a marker name" in ids.marker_problem("H100")
    for name in ("skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings", "timeout", "gpu", "aot",
                 "perf", "slow", "requires", "skus", "known_issue", "sm90", "sm121", "and", "or", "not"):
        assert ids.marker_problem(name, RESERVED_MARKERS) == "shadows a marker pytest or gpuhil already defines"


def test_empty_values():
    assert ids.option_value(None, "--emulate-sku") is None  # not given
    assert ids.option_value("gb10", "--emulate-sku") == "gb10"
    with pytest.raises(ids.InvalidValue, match=r"^--emulate-sku: empty value"):
        ids.option_value("", "--emulate-sku")
    assert ids.env_value("GPUHIL_X", {}) is None
    with pytest.raises(ids.InvalidValue, match=r"^\$GPUHIL_X is set but empty"):
        ids.env_value("GPUHIL_X", {"GPUHIL_X": " "})
    with pytest.raises(ids.InvalidValue, match=r"^\$GPUHIL_RUN_ID '\.\./x': not a safe identifier"):
        ids.env_id("GPUHIL_RUN_ID", {"GPUHIL_RUN_ID": "../x"})


def gpuhil(*args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    return subprocess.run([sys.executable, "-m", "gpuhil", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("args, usage, message", [
    (["probe", "--target-sku", ""], "usage: gpuhil probe", "gpuhil probe: error: argument --target-sku: SKU id '': empty"),
    (["gates", "--target-sku", ""], "usage: gpuhil gates", "gpuhil gates: error: argument --target-sku: SKU id '': empty"),
    (["bench", "--emulate-sku", "", "argmax"], "usage: gpuhil bench",
     "gpuhil bench: error: argument --emulate-sku: SKU id '': empty"),
    (["probe", "--target-sku", "../x"], "usage: gpuhil probe",
     "gpuhil probe: error: argument --target-sku: SKU id '../x': not a safe identifier (letters, digits, '_', '.', '-', "
     "starting with a letter or digit, at most 64, no '..')"),
])
def test_empty_or_unsafe_sku_options_are_usage_errors(args, usage, message):
    r = gpuhil(*args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines()[0].startswith(usage) and r.stderr.splitlines()[-1] == message


def test_probe_sku_credits_each_field_to_its_own_source():
    out = {line.split()[0]: line for line in gpuhil("probe", "--target-sku", "h20_3e").stdout.splitlines()}
    assert "'232c GH100 [H20 HBM3e]'" in out["pci_device_id"]
    assert "tokenspeed/issues/310 (Compute Capability: 9.0)" in out["cc"]
    assert "TileOPs/pull/1658 (HBM theoretical 4.80 TB/s)" in out["peak_dram_gbs"]
    assert "no published value" in out["sm_count"] and "no published value" in out["l2_bytes"]
    assert "mem_bw_gbs" not in out["l2_bytes"]  # each field its own source, not the bandwidth's
