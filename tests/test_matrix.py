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
    issues = len(matrix.load(REPO / "hardware_matrix.yaml").known_issues)
    assert ok.returncode == 0 and ok.stdout == (f"{REPO / 'hardware_matrix.yaml'}: ok: 13 SKUs (10 default tier, 3 full), "
                                                f"5 suites in {REPO / 'suites'}, {issues} known issues\n")
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
    _refused_at_line(tmp_path, old, new, needle, message)


def _refused_at_line(tmp_path, old, new, needle, message):
    """`matrix check` on a copy of the repo's matrix with `old` replaced: exit 2, nothing on stdout, and the
    one line `FILE:LINE: message` where LINE holds `needle`."""
    assert old in TEXT, f"fixture drifted from hardware_matrix.yaml: {old!r}"
    broken = TEXT.replace(old, new, 1)
    path = tmp_path / "hardware_matrix.yaml"
    path.write_text(broken)
    r = _cli("matrix", "check", str(path))
    line = broken[: broken.index(needle)].count("\n") + 1
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [f"{path}:{line}: {message}"], r.stderr


SUITES = REPO / "suites"
HAVE = "have: argmax, device, fp8_grouped_gemm, gates, nvfp4_moe"


@pytest.mark.parametrize("old, new, needle, message", [
    # one namespace: `-m h100` must collect the H100 runner's list, not GB10's as well
    ("    markers:\n    - dgx_spark\n", "    markers:\n    - h100\n", "    - h100\n",
     "skus.10.markers.0: SKU 'gb10': marker 'h100' is a SKU id; a catalog marker names a group of SKUs and must "
     "differ from every SKU id"),
    # a bool is not a count, a float not an integer; physical amounts are finite and positive
    ("    sm_count: 132\n", "    sm_count: true\n", "sm_count: true", "skus.0.sm_count: Input should be a valid integer"),
    ("    max_cluster_size: 16\n", "    max_cluster_size: 16.0\n", "max_cluster_size: 16.0",
     "skus.0.max_cluster_size: Input should be a valid integer"),
    ("    cluster_launch: true\n", "    cluster_launch: 1\n", "cluster_launch: 1",
     "skus.0.cluster_launch: Input should be a valid boolean"),
    ("    mem_bw_gbs: 3350\n", "    mem_bw_gbs: .inf\n", "mem_bw_gbs: .inf", "skus.0.mem_bw_gbs: Input should be a finite number"),
    ("    mem_bw_gbs: 3350\n", "    mem_bw_gbs: .nan\n", "mem_bw_gbs: .nan", "skus.0.mem_bw_gbs: Input should be a finite number"),
    ("      bf16: 989\n", "      bf16: -989\n", "bf16: -989", "skus.0.peak_tflops.bf16: Input should be greater than 0"),
    ("      bf16: 989\n", "      bf16: false\n", "bf16: false", "skus.0.peak_tflops.bf16: Input should be a valid number"),
    ("    smem_optin_bytes: 232448\n", "    smem_optin_bytes: 240000\n", "smem_optin_bytes: 240000",
     "skus.0.smem_optin_bytes: SKU 'h100': 240000 is more than smem_per_sm_bytes 233472: a block cannot opt into more "
     "than its SM has"),
    ("version: 1\n", "version: true\n", "version: true", "version: Value error, version is the number 1, not a boolean"),
    # PCI device ids are 16 bits
    ("      - '0x2330'\n", "      - '0x12330'\n", "'0x12330'", "skus.0.match.pci_device_ids.0: Value error, PCI device id "
     "'0x12330' is not a 16-bit hex id like '0x2330' (0x0000 to 0xffff)"),
    ("      - '0x2330'\n", "      - '-0x1'\n", "'-0x1'", "skus.0.match.pci_device_ids.0: Value error, PCI device id "
     "'-0x1' is not a 16-bit hex id like '0x2330' (0x0000 to 0xffff)"),
    # a date that does not exist is a problem at its line (it was a ValueError traceback, INTERNALERROR in pytest)
    ("expires: 2027-05-31", "expires: 2027-02-30", "expires: 2027-02-30",
     "known_issues.0.expires: '2027-02-30' is not a real date (day is out of range for month)"),
    # selections: suites checked against the checkout's suites/ although this copy has none beside it
    ("  l40s: {exclude: [nvfp4_moe]}", "  l40s: {exclude: [nvfp4_mo]}", "nvfp4_mo]",
     f"selections.l40s.exclude.0: unknown suite 'nvfp4_mo': no such folder in {SUITES} ({HAVE})"),
    ("  l40s: {exclude: [nvfp4_moe]}", "  l40s: {extras: [nvfp4_moe]}", "extras: [nvfp4_moe]",
     "selections.l40s.extras.0: suite 'nvfp4_moe' is not opt-in (selection_defaults.opt_in): it runs on every runner already"),
    ("opt_in: []}", "opt_in: [gates]}", "opt_in: [gates]",
     f"suite 'gates' ({SUITES / 'gates'}) runs on no runner: it is opt-in and no SKU lists it in its selection's extras"),
    ('providers: ["*"]', "providers: []", "providers: []",
     "selection_defaults.providers: List should have at least 1 item after validation, not 0"),
    ("opt_in: []}", "opt_in: [gaets]}", "opt_in: [gaets]",
     f"selection_defaults.opt_in.0: unknown suite 'gaets': no such folder in {SUITES} ({HAVE})"),
])
def test_matrix_check_refuses_what_no_part_or_suite_has_at_file_line(tmp_path, old, new, needle, message):
    _refused_at_line(tmp_path, old, new, needle, message)


def test_matrix_file_over_the_size_cap_or_not_utf8_is_one_line(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text(TEXT + "#" + "x" * matrix.MAX_MATRIX_BYTES + "\n")
    r = _cli("matrix", "check", str(big))
    assert (r.returncode, r.stderr) == (2, f"{big}:0: larger than the matrix size cap ({matrix.MAX_MATRIX_BYTES} bytes): "
                                           "is this the hardware matrix?\n")
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes(TEXT.replace("name: H100 SXM5 80GB", "name: H100 SXM5 80GB \u00e9").encode("latin-1", "replace"))
    r = _cli("matrix", "check", str(latin))
    line = TEXT.splitlines().index("    name: H100 SXM5 80GB") + 1
    assert r.returncode == 2 and r.stderr.startswith(f"{latin}:{line}: not UTF-8 text (byte ") and r.stderr.count("\n") == 1
    r = _cli("matrix", "check", str(tmp_path))
    assert (r.returncode, r.stderr) == (2, f"{tmp_path}:0: not a regular file\n")


@pytest.mark.parametrize("tail, line, message", [
    # PyYAML's scanner is quadratic in flow depth: 200000 brackets kept it busy for hours within the size cap
    ("deep: " + "[" * 200_000 + "]" * 200_000, 0, f"[ ] and {{ }} nested more than {matrix.MAX_FLOW_DEPTH} deep: "
                                                  "not a hardware matrix"),
    ("deep:\n  " + "- " * 1500 + "x", 1, "nested too deeply for a hardware matrix"),  # block nesting: RecursionError
])
def test_deep_nesting_is_refused_in_one_line(tmp_path, tail, line, message):
    path = tmp_path / "hardware_matrix.yaml"
    path.write_text(TEXT + tail + "\n")
    r = _cli("matrix", "check", str(path))
    at = line or TEXT.count("\n") + 1
    assert (r.returncode, r.stderr) == (2, f"{path}:{at}: {message}\n")


def test_yaml_syntax_error_is_one_line(tmp_path):
    path = tmp_path / "hardware_matrix.yaml"
    path.write_text("version: 1\nskus: [\n  - id: x\n")
    r = _cli("matrix", "check", str(path))
    assert (r.returncode, r.stderr) == (2, f"{path}:3: not valid YAML: while parsing a flow node; expected the node "
                                           "content, but found '-'\n")


def test_a_session_refuses_an_unreal_date_as_a_usage_error(pytester):
    make_checkout(pytester.path, TEXT.replace("expires: 2027-05-31", "expires: 2027-02-30"))
    out = pytester.runpytest("--collect-only", "-q")
    assert out.ret == pytest.ExitCode.USAGE_ERROR and "INTERNALERROR" not in out.stderr.str() + out.stdout.str()
    line = line_of(TEXT, "expires: 2027-05-31")
    out.stderr.fnmatch_lines([f"ERROR: gpuhil: *hardware_matrix.yaml:{line}: known_issues.0.expires: '2027-02-30' "
                              "is not a real date (day is out of range for month)"])


def test_matrix_check_refuses_when_no_suites_can_be_found(tmp_path, monkeypatch):
    """A matrix with no suites/ beside it is checked against the checkout's; with neither, matrix check
    refuses rather than let a typo in a selection drop a suite unseen (a session still loads)."""
    path = tmp_path / "hardware_matrix.yaml"
    path.write_text(TEXT)
    assert matrix.load(path, strict=True).suites_dir == SUITES
    monkeypatch.setattr(matrix, "CHECKOUT_SUITES", tmp_path / "nowhere")
    with pytest.raises(matrix.MatrixError) as err:
        matrix.load(path, strict=True)
    assert [p.message for p in err.value.problems] == [
        f"no suites/ beside the matrix nor in this gpuhil checkout ({tmp_path / 'nowhere'}): the selections cannot "
        "be checked against the suites; keep the matrix at a checkout's root"]
    assert matrix.load(path).suites_dir is None


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
