"""hardware_matrix.yaml validation: the repo's file is valid, broken copies fail with FILE:LINE: messages."""

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fakes import make_checkout
from gpuhil.catalog import matrix

REPO = Path(__file__).resolve().parents[1]
TEXT = (REPO / "hardware_matrix.yaml").read_text()


def line_of(text: str, needle: str) -> int:
    """Line of the last occurrence (a duplicate is reported where it repeats)."""
    return [i + 1 for i, line in enumerate(text.splitlines()) if needle in line][-1]


def test_repo_matrix_is_valid_and_complete():
    mx = matrix.load(REPO / "hardware_matrix.yaml", strict=True)
    required = {"h100", "h200", "h200_nvl", "h20", "h20_3e", "b200", "gb200", "b300", "rtx5090", "rtxpro6000", "gb10",
                "l40s", "a100"}
    assert required <= set(mx.skus)
    assert set(mx.selections) == set(mx.skus)
    gb10 = mx.sku("gb10")
    assert (gb10.cc, gb10.smem_optin_bytes, gb10.cluster_launch, gb10.arch) == ("12.1", 101376, True, "sm121")
    assert mx.sku("h20").cluster_launch is False


def test_every_catalog_number_has_a_source():
    for sku in matrix.load(REPO / "hardware_matrix.yaml").skus.values():
        for field in matrix.SOURCED_FIELDS:
            if getattr(sku, field) is not None:
                assert sku.sources.get(field), f"{sku.id}.{field} has no source"


@pytest.mark.parametrize("name, old, new, needle, message", [
    ("unknown key", "    cluster_launch: false\n", "    cluster_launch: false\n    cluster_lanch: false\n",
     "cluster_lanch", "Extra inputs are not permitted"),
    ("wrong type", "  sm_count: 78\n", "  sm_count: seventy-eight\n", "seventy-eight", "valid integer"),
    ("bad predicate", "when: {arch_family: 12}", "when: {arch_family: twelve}", "twelve", "cannot read condition"),
    ("unknown fact", "when: {arch_family: 12}", "when: {gpu_name: GB10}", "gpu_name", "unknown fact 'gpu_name'"),
    ("known issue for a suite that does not exist", "applies_to: {suite: fp8_grouped_gemm,",
     "applies_to: {suite: fp8_grouped_gem,", "fp8_grouped_gem,", "would never apply"),
    ("duplicate id", "- id: h200\n", "- id: h100\n", "- id: h100", "duplicate SKU id 'h100'"),
    ("unknown SKU in selection", "  a100: {exclude:", "  a101: {exclude:", "a101: {exclude", "unknown SKU 'a101'"),
    ("unknown suite in selection", "  l40s: {exclude: [nvfp4_moe]}", "  l40s: {exclude: [nvfp4_mo]}", "[nvfp4_mo]",
     "unknown suite 'nvfp4_mo'"),
    ("expired entry", "expires: 2027-05-31", "expires: 2020-01-31", "expires: 2020", "expired on 2020-01-31"),
    ("bad mode", "mode: xfail", "mode: ignore", "mode: ignore", "'xfail' or 'skip'"),
    ("bad link", "link: https://github.com/NVIDIA/cutlass", "link: github.com/NVIDIA/cutlass", "link: github",
     "should match pattern"),
    ("duplicate YAML key", "    sm_count: 132\n", "    sm_count: 132\n    sm_count: 133\n", "sm_count: 133",
     "duplicate key 'sm_count'"),
    ("missing source", "      mem_bw_gbs: https://www.nvidia.com/en-us/data-center/h200/", "      mem_bandwidth_note: x",
     "mem_bandwidth_note", "no source for mem_bw_gbs"),
    ("cluster size without cluster launch", "    cluster_launch: false\n    max_cluster_size: 1",
     "    cluster_launch: false\n    max_cluster_size: 4", "max_cluster_size: 4", "max_cluster_size must be 1"),
])
def test_broken_matrix_reports_file_line_message(tmp_path, name, old, new, needle, message):
    assert old in TEXT, f"fixture drifted from hardware_matrix.yaml: {old!r}"
    broken = TEXT.replace(old, new, 1)
    make_checkout(tmp_path, broken)
    path = tmp_path / "hardware_matrix.yaml"
    with pytest.raises(matrix.MatrixError) as err:
        matrix.load(path, strict=True)
    text = str(err.value)
    assert message in text, text
    line = line_of(broken, needle)
    assert any(p.line in range(line - 25, line + 1) for p in err.value.problems if message in p.message), (line, text)
    assert text.startswith(f"{path}:")


def test_not_yaml_names_the_line(tmp_path):
    path = tmp_path / "hardware_matrix.yaml"
    path.write_text("version: 1\nskus: [\n  - id: x\n")
    with pytest.raises(matrix.MatrixError, match=r"hardware_matrix.yaml:\d+: not valid YAML"):
        matrix.load(path)


def test_expired_entry_is_only_fatal_for_matrix_check(tmp_path):
    path = tmp_path / "hardware_matrix.yaml"
    path.write_text(TEXT.replace("expires: 2027-05-31", "expires: 2020-01-31"))
    mx = matrix.load(path, suites_dir=REPO / "suites")  # sessions still load: the affected tests error instead
    assert mx.known_issues[0].expired(dt.date(2026, 1, 1))


def _check(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "gpuhil", "matrix", "check", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def test_cli_matrix_check_exit_codes(tmp_path):
    ok = _check()
    assert ok.returncode == 0 and "ok: 13 SKUs" in ok.stdout
    broken = tmp_path / "hardware_matrix.yaml"
    broken.write_text(TEXT.replace("  sm_count: 78\n", "  sm_count: many\n", 1))
    bad = _check(str(broken))
    assert bad.returncode == 2
    assert f"{broken}:{line_of(broken.read_text(), 'sm_count: many')}: " in bad.stderr


@pytest.mark.parametrize("name, pci, cc, expected", [
    # PCI device id first: it names the board whatever the driver string says
    ("Some renamed board", "0x2e12", "12.1", "gb10"),
    ("NVIDIA H20", "0x232c", "9.0", "h20_3e"),
    ("NVIDIA H200", "0x233b", "9.0", "h200_nvl"),
    ("NVIDIA H100 80GB HBM3", "0x2330", "9.0", "h100"),
    # exact name second (case and spacing ignored), never a substring of a sibling's name
    ("NVIDIA H200", None, "9.0", "h200"),
    ("NVIDIA H20", None, "9.0", "h20"),
    ("NVIDIA H20-3e", None, "9.0", "h20_3e"),
    ("nvidia  h200 nvl", None, "9.0", "h200_nvl"),
    ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", None, "12.0", "rtxpro6000"),
    ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "0x2bb5", "12.0", "rtxpro6000"),
    # unknown stays unknown: runs from its probe alone
    ("NVIDIA H20-3e 141GB", None, "9.0", None),
    ("NVIDIA H200 SXM 141GB", "0x2399", "9.0", None),  # a PCI id no row lists, a name no row lists
    ("NVIDIA H100 80GB HBM3", None, "8.0", None),  # cc must agree
    ("NVIDIA Future GPU", "0xffff", "13.0", None),
])
def test_catalog_match_is_pci_id_then_exact_name(name, pci, cc, expected):
    got = matrix.load(REPO / "hardware_matrix.yaml").match(name, pci, cc)
    assert (got.id if got else None) == expected


def test_new_hopper_rows_are_siblings_not_copies():
    mx = matrix.load(REPO / "hardware_matrix.yaml")
    h20, h20_3e, h200, nvl = (mx.sku(i) for i in ("h20", "h20_3e", "h200", "h200_nvl"))
    assert (h20_3e.mem_bytes, h20_3e.mem_bw_gbs, h20_3e.cluster_launch) == (141_000_000_000, 4800, False)
    assert h20_3e.mem_bw_gbs != h20.mem_bw_gbs and h20_3e.match.pci_device_ids == ["0x232c"]
    assert nvl.match.pci_device_ids == ["0x233b"] and nvl.peak_tflops.fp8 < h200.peak_tflops.fp8
    assert mx.selections["h20_3e"] == mx.selections["h20"] and mx.selections["h200_nvl"] == mx.selections["h200"]


NULL_CLAIM = re.compile(r"((?:[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)?)(?:/[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)?)*) null\b")


def test_notes_agree_with_rows():
    """A note saying 'X null' speaks of a catalog field X that the row leaves out."""
    for sku in matrix.load(REPO / "hardware_matrix.yaml").skus.values():
        for claim in NULL_CLAIM.findall(sku.notes or ""):
            for field in claim.split("/"):
                obj = sku
                for part in field.split("."):
                    assert part in type(obj).model_fields, f"{sku.id} notes: '{field}' is not a catalog field"
                    obj = getattr(obj, part)
                assert obj is None, f"{sku.id} notes say {field} is null, the row has {obj!r}"


def _cli(*args, env=None):
    """`python -m gpuhil` with this checkout's sources, from any directory."""
    import os

    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]), **(env or {})}
    return subprocess.run([sys.executable, "-m", "gpuhil", *args], capture_output=True, text=True, env=full, timeout=120)


SHADOWS = "shadows a marker pytest or gpuhil already defines"
WHY = " (it names folders and the runner's marker)"
SAFE = "not a safe identifier (letters, digits, '_', '.', '-', starting with a letter or digit, at most 64, no '..')"
EMPTY = "Value error, empty value: give the text or leave the entry out"


@pytest.mark.parametrize("old, new, needle, message", [
    *[("  - id: h100\n", f"  - id: {m}\n", f"- id: {m}", f"skus.0.id: Value error, SKU id '{m}': {SHADOWS}{WHY}")
      for m in ("skip", "xfail", "skipif", "parametrize", "usefixtures", "filterwarnings", "timeout", "gpu", "aot",
                "perf", "slow", "requires", "skus", "known_issue", "sm90", "sm121", "not")],
    ("  - id: h100\n", "  - id: ../x\n", "- id: ../x", f"skus.0.id: Value error, SKU id '../x': {SAFE}{WHY}"),
    ("  - id: h100\n", "  - id: H100\n", "- id: H100", "skus.0.id: Value error, SKU id 'H100': not a marker name "
     "(lower-case letters, digits and '_', starting with a letter, at most 64)" + WHY),
    ("  - id: h100\n", "  - id: ''\n", "- id: ''", "skus.0.id: Value error, SKU id '': empty" + WHY),
    ("    markers:\n    - hopper\n", "    markers:\n    - skip\n", "- skip",
     f"skus.0.markers.0: Value error, marker 'skip': {SHADOWS}"),
    ("      cc: read on device 2026-11-22 (H100 lease, driver 580.159.04); read on device 2026-11-13 (brief)\n",
     "      cc: ''\n", "      cc: ''", f"skus.0.sources.cc: {EMPTY}"),
    ("      - NVIDIA H100 80GB HBM3\n", "      - ''\n", "      - ''", f"skus.0.match.names.0: {EMPTY}"),
    ("    name: H100 SXM5 80GB\n", "    name: ' '\n", "    name: ' '", f"skus.0.name: {EMPTY}"),
    ("  l40s: {exclude: [nvfp4_moe]}", "  l40s: {exclude: [../device]}", "../device",
     f"selections.l40s.exclude.0: Value error, suite '../device': {SAFE}"),
    ("      - '0x233b'\n", "      - '0x2335'\n", "- '0x2335'\n      cc: '9.0'\n    cc: '9.0'\n    smem_optin_bytes: 232448\n"
     "    smem_per_sm_bytes: 233472\n    mem_bytes: 141",
     "PCI device id 0x2335 is listed by SKU 'h200' and SKU 'h200_nvl': one device, one row"),
    ("  l40s: {exclude:", "  l40s: &sel {exclude:", "&sel",
     "YAML anchor '&sel': anchors and aliases are not allowed in the matrix; write the value out"),
])
def test_matrix_check_refuses_unsafe_or_empty_values_at_file_line(tmp_path, old, new, needle, message):
    assert old in TEXT, f"fixture drifted from hardware_matrix.yaml: {old!r}"
    broken = TEXT.replace(old, new, 1)
    path = tmp_path / "hardware_matrix.yaml"
    path.write_text(broken)
    r = _cli("matrix", "check", str(path))
    line = broken[: broken.index(needle)].count("\n") + 1
    assert r.returncode == 2 and r.stdout == ""
    assert f"{path}:{line}: {message}" in r.stderr.splitlines(), r.stderr


def test_aliases_are_refused_wherever_they_are(tmp_path):
    path = tmp_path / "hardware_matrix.yaml"
    path.write_text(TEXT.replace("  l40s: {exclude:", "  l40s: &sel {exclude:", 1).replace(
        "  a100: {exclude: [fp8_grouped_gemm, nvfp4_moe]}", "  a100: *sel", 1))
    r = _cli("matrix", "check", str(path))
    lines = path.read_text().splitlines()
    at = [i + 1 for i, ln in enumerate(lines) if "&sel" in ln or "*sel" in ln]
    assert r.returncode == 2 and r.stderr.splitlines() == [
        f"{path}:{at[0]}: YAML anchor '&sel': anchors and aliases are not allowed in the matrix; write the value out",
        f"{path}:{at[1]}: YAML alias '*sel': anchors and aliases are not allowed in the matrix; write the value out"]


def test_a_billion_laughs_does_not_hang_matrix_check(tmp_path):
    levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, name in zip("abcdefgh", "bcdefghi"):
        levels.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")  # 9^9 leaves once expanded
    path = tmp_path / "hardware_matrix.yaml"
    path.write_text("version: 1\n" + "\n".join(levels) + "\nskus: [*i]\n")
    r = _cli("matrix", "check", str(path))  # before the check, walking this took longer than any CI job allows
    assert r.returncode == 2
    assert r.stderr.splitlines()[0] == (f"{path}:2: YAML anchor '&a': anchors and aliases are not allowed in the matrix; "
                                        "write the value out")


def test_an_empty_matrix_variable_is_refused(tmp_path):
    r = _cli("matrix", "check", env={"GPUHIL_MATRIX": ""})
    assert (r.returncode, r.stderr) == (2, "gpuhil: $GPUHIL_MATRIX is set but empty: unset it or give it a value\n")
