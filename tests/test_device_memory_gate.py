"""A case's device memory through the normal gate: `Requirements(device_memory_bytes=N)` against the
free memory read for the session (capped by the device's total), the skip line naming both, and the
plugin reading free memory only once a case asks for it."""

import dataclasses
import json
import os
import textwrap
from pathlib import Path

from fakes import make_checkout
from gpuhil import session as session_mod
from gpuhil.catalog import matrix
from gpuhil.device.capabilities import Capabilities
from gpuhil.gating import Requirements, check, gate

GIB = 2**30
REPO = Path(__file__).resolve().parents[1]
H200 = Capabilities(source="probe", gpu_present=True, cc="9.0", arch_family=9, mem_bytes=150_000_000_000,
                    mem_free_bytes=149_000_000_000)


def test_a_case_that_fits_the_free_memory_passes():
    assert check(Requirements(device_memory_bytes=100 * GIB), H200).ok
    assert check(Requirements(), dataclasses.replace(H200, mem_free_bytes=0)).ok  # no need stated: no check


def test_a_case_larger_than_the_free_memory_is_refused_with_both_numbers():
    taken = dataclasses.replace(H200, mem_free_bytes=20 * GIB)  # another process holds the rest
    verdict = check(Requirements(device_memory_bytes=28 * GIB), taken)
    assert not verdict.ok
    assert verdict.explain() == (f"device memory (free, cudaMemGetInfo): needs {28 * GIB} B (28.00 GiB), "
                                 f"probed {20 * GIB} B (20.00 GiB) free of 150000000000 B (139.70 GiB) [probe]")


def test_an_emulated_skus_smaller_total_caps_the_free_figure():
    as_l40 = dataclasses.replace(H200, mem_bytes=48 * GIB, source="probe capped by l40s")
    reason = check(Requirements(device_memory_bytes=60 * GIB), as_l40).explain()
    assert f"probed 149000000000 B (138.77 GiB) free, capped at this SKU's {48 * GIB} B (48.00 GiB)" in reason


def test_a_catalog_row_without_a_free_figure_is_judged_on_its_total():
    row = dataclasses.replace(H200, source="catalog rtx5090", mem_bytes=32 * GIB, mem_free_bytes=None)
    assert "device memory (total): needs" in check(Requirements(device_memory_bytes=40 * GIB), row).explain()
    assert check(Requirements(device_memory_bytes=40 * GIB), dataclasses.replace(row, mem_bytes=None)).ok  # unknown
    assert "device memory 42949672960 B (40.00 GiB)" in Requirements(device_memory_bytes=40 * GIB).describe()


def test_without_a_gpu_the_missing_device_is_the_reason():
    verdict = gate(Requirements(device_memory_bytes=GIB), Capabilities(source="probe", gpu_present=False), attached=False)
    assert [r.feature for r in verdict.reasons] == ["GPU"]


CASES = textwrap.dedent("""
    import pytest

    @pytest.mark.requires(device_memory_bytes=28 * 2**30)
    def test_too_big():
        pass

    @pytest.mark.requires(device_memory_bytes=2**30)
    def test_fits():
        pass
""")


def test_the_plugin_skips_with_the_bytes_needed_and_free(pytester, monkeypatch):
    """A session with a device and a fake free figure (a session file, as `gpuhil run` hands it to
    pytest): the gate skips the case that needs more with one line, and runs the one that fits."""
    make_checkout(pytester.path)
    session = session_mod.build(matrix.load(pytester.path / "hardware_matrix.yaml"), target="h200")
    doc = session.to_dict()
    doc["attached"] = True
    doc["capabilities"]["mem_free_bytes"] = 20 * 2**30
    (pytester.path / "session.json").write_text(json.dumps(doc))
    (pytester.path / "suites" / "argmax" / "test_memory_demo.py").write_text(CASES)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "src"), str(REPO)]))
    out = pytester.runpytest_subprocess("suites", "--session-file", "session.json", "-rs", "-p", "no:cacheprovider")
    out.assert_outcomes(passed=1, skipped=1)
    out.stdout.fnmatch_lines([f"SKIPPED [[]1[]] suites/argmax/test_memory_demo.py:4: requires GPU, device memory "
                              f"{28 * 2**30} B (28.00 GiB): device memory (free, cudaMemGetInfo): needs {28 * 2**30} B "
                              f"(28.00 GiB), probed {20 * 2**30} B (20.00 GiB) free of * B (* GiB) [[]catalog h200[]]"])


def test_an_out_of_memory_past_the_estimate_is_a_skip_line_with_the_numbers():
    from gpuhil.perf.out_of_memory import skip_reason

    torch_says = ("CUDA out of memory. Tried to allocate 28.00 GiB. GPU 0 has a total capacity of 139.81 GiB of which "
                  "20.12 GiB is free.\nIncluding non-PyTorch memory, this process has ...")
    assert skip_reason(torch_says, 20 * GIB, 150_000_000_000) == (
        "out of device memory past the gate's estimate (torch.OutOfMemoryError): one allocation of 28.00 GiB failed; "
        f"{20 * GIB} B (20.00 GiB) free of 150000000000 B (139.70 GiB) after it")
    assert skip_reason("some allocator said no\nmore", None, None).endswith(": some allocator said no; free memory "
                                                                           "unknown after it")
