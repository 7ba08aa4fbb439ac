"""One run context: `gpuhil run` builds the session once, writes it, and pytest (controller and
workers) decides on that file; the report opens with the session's own lines."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fakes import FakeDriver, FakeNvml, NoDriver, make_checkout
from gpuhil import runner, session as session_mod
from gpuhil.catalog import matrix
from gpuhil.device.probe import probe
from gpuhil.report import run_report

REPO = Path(__file__).resolve().parents[1]
MX = matrix.load(REPO / "hardware_matrix.yaml")


def on(sku_id: str):
    """The probe of a device answering like this catalog SKU (fake driver and NVML)."""
    sku = MX.sku(sku_id)
    return probe(driver=FakeDriver(sku), nvml=FakeNvml(sku), read_software=False)


def gpuhil(*args, cwd, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "gpuhil", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=env)


SESSIONS = {
    "cpu": lambda: session_mod.build(MX, fingerprint=probe(driver=NoDriver(), read_software=False)),
    "h100": lambda: session_mod.build(MX, fingerprint=on("h100")),
    "h100 as h20": lambda: session_mod.build(MX, emulate="h20", fingerprint=on("h100")),
    "h100 as gb10": lambda: session_mod.build(MX, emulate="gb10", fingerprint=on("h100")),
    **{f"target {s}": (lambda s=s: session_mod.build(MX, target=s, fingerprint=on("h100"))) for s in MX.skus},
}


@pytest.mark.parametrize("name", SESSIONS)
def test_the_session_file_gives_back_the_same_session(tmp_path, name):
    s = SESSIONS[name]()
    path = tmp_path / "session.json"
    path.write_text(json.dumps(s.to_dict()))
    back = session_mod.load_file(path)
    assert (back.fingerprint, back.sku, back.caps, back.attached, back.target_sku, back.drift) == \
        (s.fingerprint, s.sku, s.caps, s.attached, s.target_sku, s.drift)
    assert back.matrix.skus == s.matrix.skus and back.matrix.known_issues == s.matrix.known_issues
    assert back.header_lines() == s.header_lines() and back.selection_id == s.selection_id


@pytest.mark.parametrize("text, message", [
    ("{", "cannot read it"),
    ('{"schema": 7}', "not a gpuhil session"),
    ('{"schema": 1, "matrix": "hardware_matrix.yaml"}', "field 'fingerprint' is missing"),
])
def test_a_broken_session_file_is_one_line(tmp_path, text, message):
    (tmp_path / "s.json").write_text(text)
    with pytest.raises(session_mod.SessionSetupError, match=message) as exc:
        session_mod.load_file(tmp_path / "s.json")
    assert "\n" not in str(exc.value)


def test_the_selection_is_the_sku_the_session_acts_as():
    assert SESSIONS["h100"]().selection_id == "h100"
    assert SESSIONS["h100 as h20"]().selection_id == "h20"
    assert SESSIONS["target gb10"]().selection_id == "gb10"
    assert SESSIONS["cpu"]().selection_id is None


def test_folder_label_names_the_emulated_or_target_sku():
    assert runner.folder_label(SESSIONS["h100"]()) == "h100"
    assert runner.folder_label(SESSIONS["h100 as h20"]()) == "h100-as-h20"
    assert runner.folder_label(SESSIONS["target gb10"]()) == "h100-target-gb10"
    assert runner.folder_label(SESSIONS["cpu"]()) == "cpu"


def test_the_report_header_is_the_sessions_own_text():
    s = SESSIONS["h100 as h20"]()
    text = run_report.render(run_report.RunSummary(), title="gpuhil run x", lines=s.header_lines(prefix=""),
                             verdict="PASS")
    assert any(line.startswith("- EMULATING h20: ") for line in text.splitlines())
    for line in s.header_lines(prefix=""):
        assert f"- {line}\n" in text
    assert "- catalog SKU: h100 (" in text  # what the history reads the run's SKU from


@pytest.mark.parametrize("args, message", [
    (["--emulate-sku", "x9000"], "--emulate-sku: unknown SKU 'x9000' (catalog"),
    (["--target-sku", "x9000"], "--target-sku: unknown SKU 'x9000' (catalog"),
    (["--expect-sku", "x9000"], "--expect-sku: unknown SKU 'x9000' (catalog"),
    (["--emulate-sku", "h20", "--target-sku", "gb10"], "--emulate-sku and --target-sku exclude each other"),
])
def test_session_refusals_name_the_option_and_list_the_catalog(args, message):
    kw = {"--emulate-sku": "emulate", "--target-sku": "target", "--expect-sku": "expect"}
    with pytest.raises(session_mod.SessionSetupError) as exc:
        session_mod.build(MX, fingerprint=on("h100"), **{kw[a]: v for a, v in zip(args[::2], args[1::2])})
    assert message in str(exc.value) and "\n" not in str(exc.value)
    if "unknown" in message:
        assert ", ".join(MX.skus) in str(exc.value)


@pytest.mark.parametrize("command", [["gates", "--target-sku", "x9000"], ["probe", "--target-sku", "x9000"],
                                     ["run", "--expect-sku", "x9000"], ["run", "--emulate-sku", "x9000"],
                                     ["run", "--target-sku", "x9000"]])
def test_every_command_validates_a_sku_option_the_same_way(tmp_path, command):
    make_checkout(tmp_path)
    r = gpuhil(*command, *(["--results-dir", str(tmp_path / "out")] if command[0] == "run" else []), cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert len(r.stderr.splitlines()) == 1 and f"{command[1]}: unknown SKU 'x9000' (catalog " in r.stderr


@pytest.mark.parametrize("old", [["run", "--sku", "h100"], ["gates", "--sku", "h20"], ["probe", "--sku", "h20"]])
def test_the_old_sku_flag_is_gone(tmp_path, old):
    r = gpuhil(*old, cwd=REPO)
    assert r.returncode == 2 and "unrecognized arguments: --sku" in r.stderr


SUITE = textwrap.dedent("""
    import pytest
    from gpuhil.gating import Requirements

    def test_host_side():
        pass

    @pytest.mark.slow
    def test_full_tier_only():
        pass

    @pytest.mark.requires(Requirements(needs_gpu=False, cluster_size=2))
    def test_needs_a_cluster():
        pass

    def test_sees_the_session(gpuhil_session):
        assert gpuhil_session.caps.emulated_sku == "h20"  # fails when this process probed for itself
""")


def _session_checkout(pytester, s) -> Path:
    make_checkout(pytester.path)
    (pytester.path / "suites/argmax/test_session_file_demo.py").write_text(SUITE)
    doc = s.to_dict()
    doc["matrix"] = str(pytester.path / "hardware_matrix.yaml")
    path = pytester.path / "session.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("workers", [[], ["-n", "1"]])
def test_controller_and_workers_decide_on_the_session_file(pytester, workers):
    """An H100 emulating an H20 cannot be probed on this machine: only the file can say so."""
    path = _session_checkout(pytester, SESSIONS["h100 as h20"]())
    out = pytester.runpytest(f"--session-file={path}", "--selection=h20", "-rs", "-p", "no:cacheprovider", *workers)
    out.assert_outcomes(passed=3, skipped=1)  # the H20 selection is full tier: the slow case runs
    out.stdout.fnmatch_lines(["*requires cluster 2: cluster launch*probed 0*"])
    if not workers:
        out.stdout.fnmatch_lines(["gpuhil: EMULATING h20:*"])


def test_selection_and_tier_are_explicit_options(pytester):
    path = _session_checkout(pytester, SESSIONS["h100 as h20"]())
    out = pytester.runpytest(f"--session-file={path}", "--selection=h20", "--tier=default", "--collect-only", "-q")
    assert "test_full_tier_only" not in out.stdout.str()
    out = pytester.runpytest(f"--session-file={path}", "--selection=a100", "--collect-only", "-q")  # argmax: yes
    out.stdout.fnmatch_lines(["*test_host_side", "*3/4 tests collected*"])
    (pytester.path / "outside").mkdir()
    (pytester.path / "outside/test_named_outside_suites.py").write_text("def test_named():\n    pass\n")
    out = pytester.runpytest(f"--session-file={path}", "--selection=a100", "--collect-only", "-q", "suites", "outside")
    out.stdout.fnmatch_lines(["*test_named", "*4/5 tests collected*"])  # the selection applies to suites/ only


@pytest.mark.parametrize("args, message", [
    (["--emulate-sku", "h20"], "--session-file carries the session: leave out --emulate-sku"),
    (["--selection", "x9000"], "--selection: the catalog * has no selection 'x9000'"),
])
def test_session_file_option_conflicts_are_usage_errors(pytester, args, message):
    path = _session_checkout(pytester, SESSIONS["h100 as h20"]())
    out = pytester.runpytest(f"--session-file={path}", *args)
    assert out.ret == pytest.ExitCode.USAGE_ERROR
    out.stderr.fnmatch_lines([f"*{message}*"])


def _mini(root: Path) -> Path:
    make_checkout(root)
    (root / "suites/gates/test_mini.py").write_text(textwrap.dedent("""
        import pytest

        def test_host_side():
            pass

        @pytest.mark.slow
        def test_full_tier_only():
            pass
    """))
    return root


def test_emulating_on_a_cpu_machine_is_refused_with_the_reason_in_the_report(tmp_path):
    root = _mini(tmp_path)
    r = gpuhil("run", "--emulate-sku", "gb10", "--results-dir", str(root / "out"), cwd=root)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.splitlines() == ["gpuhil run: --emulate-sku gb10: no GPU here to emulate on; "
                                     "use --target-sku for CPU-side reasoning"]
    assert "**RUNNER ERROR: --emulate-sku gb10: no GPU here to emulate on" in (root / "out/report.md").read_text()


def test_run_hands_pytest_the_session_the_selection_and_the_tier(tmp_path):
    root = _mini(tmp_path)
    r = gpuhil("run", "--target-sku", "gb10", cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
    [results] = (root / "results").iterdir()
    assert results.name.endswith("-cpu-target-gb10")
    doc = json.loads((results / "session.json").read_text())
    assert (doc["target_sku"], doc["emulated_sku"], doc["selection"], doc["tier"]) == ("gb10", None, "gb10", "full")
    assert doc["capabilities"]["smem_optin_bytes"] == 101376 and doc["attached"] is False
    report = (results / "report.md").read_text()
    pytest_line = next(line for line in report.splitlines() if line.startswith("- pytest: "))
    assert f"--session-file={results / 'session.json'}" in pytest_line
    pytest_args = pytest_line.split(" -m pytest ", 1)[1].split()
    assert "--selection=gb10" in pytest_args and "--tier=full" in pytest_args and "-m" not in pytest_args
    assert "- TARGET gb10: reasoning with its catalog row" in report
    assert "- command: `gpuhil run --target-sku gb10`" in report
    assert "| gates | 2 | 0 | 0 | 0 | 0 | 0 |" in report  # GB10's tier is full: the slow case ran
