"""The built site without a browser: files and links (offline, relative), the overview's findings, the
figures (valid plotly), the coverage matrix and the escaping of every text that comes from data."""

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fake_runs
from fake_runs import CANARY, CLUSTER_SKIP, EPOCH_RUN, FAIL_REASON, PLANTED_RUN, XFAIL_REASON, run_id, sha
from gpuhil.dashboard import build, compare
from gpuhil.history import add, read_perf, read_runs
from gpuhil.perf.baseline import Baseline
from html_doc import parse

PAGES = ("index.html", "trends.html", "compare.html", "coverage.html", "roofline.html")
GHOST = "argmax|suites/argmax/test_argmax_perf.py::test_argmax_perf[retired-case]|torch"


def make_baselines(history: Path, root: Path) -> Path:
    """h200's first five runs promoted as a perf baseline would be, plus a series the fleet no longer times."""
    runs = read_runs(history)
    perf = read_perf(history, runs)
    base = Baseline(root / "h200")
    for rid in runs[runs["machine"] == "h200"]["run_id"][:5]:
        rows = perf[perf["run_id"] == rid]
        base.add_run(rows.astype(object).where(rows.notna(), None).to_dict("records"))
    ghost = rows.iloc[0].to_dict()
    ghost.update(case_id=GHOST.split("|")[1], provider="torch")
    base.add_run([ghost])
    base.save()
    return root


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("fleet")
    add(fake_runs.fleet(root / "results"), root / "history")
    return build(root / "history", root / "site", make_baselines(root / "history", root / "baselines"))


def page(site, name):
    return (site.root / name).read_text(encoding="utf-8")


def trend_figures(site):
    """Every trend figure, from the per-machine data files the trends page loads on demand."""
    figures = {}
    for f in sorted((site.root / "data").glob("trends-*.js")):
        text = f.read_text(encoding="utf-8")
        figures.update(json.loads(text[text.index("gpuhilFigures(") + len("gpuhilFigures("):text.rindex(");")]))
    return figures


def blob(site, name, blob_id="figures"):
    m = re.search(rf'<script type="application/json" id="{blob_id}">(.*?)</script>', page(site, name), re.S)
    return json.loads(m.group(1))


def test_the_site_is_self_contained_and_links_relatively(site):
    assert sorted(p.name for p in site.root.iterdir()) == sorted([".gpuhil-site", "assets", "data", *PAGES])
    assert [p.name for p in site.root.rglob("*plotly*")] == ["plotly.min.js"]  # written once
    for name in PAGES:
        doc = parse(page(site, name))
        refs = [e.attrs.get("src") for e in doc.find_all("script") if e.attrs.get("src")]
        refs += [e.attrs["href"] for e in doc.find_all("link")] + [e.attrs["href"] for e in doc.find_all("a")]
        for ref in refs:
            assert not re.match(r"^([a-z]+:|//)", ref), f"{name}: {ref} leaves the site"
            target = ref.split("#", 1)[0]
            assert not target or (site.root / target).is_file(), f"{name}: {ref} is not in the site"
        refs += [e.attrs["data-src"] for e in doc.find_all("div", cls="plot") if "data-src" in e.attrs]
        has_plots = bool(doc.find_all("div", cls="plot"))
        assert ("assets/plotly.min.js" in refs) == has_plots, name
    assert site.bytes["assets/plotly.min.js"] > 1_000_000
    assert site.total_bytes - site.bytes["assets/plotly.min.js"] < 1_000_000


def test_the_overview_lists_the_planted_regression_with_its_run_and_commit_range(site):
    doc = parse(page(site, "index.html"))
    found = doc.find_all("tr", cls="finding", data_kind="regression")
    assert len(found) == 1, [f.text for f in found]
    row = found[0]
    assert row.attrs["data-machine"] == "h100" and CANARY[2] in row.attrs["data-series"]
    text = row.text
    assert f"{run_id(PLANTED_RUN - 1)} → {run_id(PLANTED_RUN)}" in text
    assert f"{sha(PLANTED_RUN - 1)[:12]}..{sha(PLANTED_RUN)[:12]}" in text
    assert re.search(r"\+1[89]\.\d %", text)  # planted +20 %, measured through 1.5 % noise
    assert not doc.find_all("tr", cls="finding", data_kind="improvement")


def test_the_torch_upgrade_is_an_epoch_on_every_h100_series_never_a_regression(site):
    h100 = [v for v in site.fleet.views if v.series.machine == "h100"]
    assert len(h100) == len(fake_runs.SERIES)
    for v in h100:
        epoch = [c for c in v.changes if c.kind == "epoch"]
        assert len(epoch) == 1 and (epoch[0].before.run_id, epoch[0].after.run_id) == (run_id(EPOCH_RUN - 1), run_id(EPOCH_RUN))
        assert epoch[0].fingerprint_change == (("torch", "2.11.0", "2.12.0"),)
        assert all(c.kind != "regression" or CANARY[2] == v.series.provider for c in v.changes)
    assert "epoch change (torch 2.11.0 -&gt; 2.12.0)" in page(site, "trends.html")


def test_missing_series_come_from_the_previous_run_and_the_baseline(site):
    h200 = site.fleet.machines["h200"]
    assert h200.missing == sorted([GHOST, "argmax|" + fake_runs.SERIES[3][1] + "|torch"])
    doc = parse(page(site, "index.html"))
    section, = doc.find_all("section", data_machine="h200")
    assert {li.attrs["data-series"] for li in section.find_all("li")} == set(h200.missing)
    assert not site.fleet.machines["h100"].missing


def test_every_figure_is_valid_plotly_and_marks_what_it_should(site):
    import plotly.graph_objects as go

    figures = {**trend_figures(site), **{f"roof-{k}": v for k, v in blob(site, "roofline.html").items()}}
    assert len(figures) == len(site.fleet.views) + 2  # two suites in the roofline view
    for fig in figures.values():
        go.Figure(fig)  # plotly's own schema validation: raises on a property it does not know
    trends = trend_figures(site)
    by_uid = {v.series.uid: trends[f"f{i}"] for i, v in enumerate(site.fleet.views)}
    canary = by_uid[f"h100|{CANARY[0]}|{CANARY[1]}|{CANARY[2]}"]
    colors = [s["line"]["color"] for s in canary["layout"]["shapes"]]
    assert colors.count("#cf222e") == 1 and colors.count("#6b7280") == 1  # the regression and the epoch
    throttled = by_uid[f"h100|argmax|{fake_runs.SERIES[3][1]}|torch"]
    invalid, = [t for t in throttled["data"] if t["name"].startswith("invalid")]
    assert len(invalid["x"]) == 2 and invalid["marker"]["symbol"] == "x"
    emulated = [f for uid, f in by_uid.items() if uid.startswith("h100-as-h20|")]
    assert len(emulated) == 2 and all(f["data"][2]["marker"]["symbol"] == "diamond-open" for f in emulated)
    h200 = by_uid[f"h200|argmax|{fake_runs.SERIES[0][1]}|gpuhil-cute"]
    band = [t for t in h200["data"] if t["name"].startswith("baseline ±")]
    assert len(band) == 1 and band[0]["fill"] == "tonexty"


def test_the_coverage_matrix_has_every_cell_with_its_reason(site):
    doc = parse(page(site, "coverage.html"))
    cells = {(c.attrs["data-machine"], c.attrs["data-test"]): c for c in doc.find_all("td", cls="cell")}
    machines = ["gb10", "h100", "h100-as-h20", "h200"]
    assert [th.attrs["data-machine"] for th in doc.find_all("th") if "data-machine" in th.attrs] == machines
    tests = {f"{c}::{n}" for c, n, _, _ in fake_runs.cases_for("h100")}
    assert set(cells) == {(m, t) for m in machines for t in tests}

    def cell(machine, name):
        return next(c for (m, t), c in cells.items() if m == machine and t.endswith("::" + name))

    assert cell("gb10", "test_cutlass_provider[sm12x]").attrs["data-outcome"] == "xfailed"
    assert cell("gb10", "test_cutlass_provider[sm12x]").attrs["title"] == XFAIL_REASON
    assert cell("h100-as-h20", "test_argmax_cluster[cluster2]").attrs["title"] == CLUSTER_SKIP
    assert cell("h100", "test_argmax_cluster[cluster2]").attrs["data-outcome"] == "passed"
    failed = cell("h200", "test_argmax_correct[M1-N151936-bf16]")
    assert failed.attrs["data-outcome"] == "failed" and failed.attrs["title"] == FAIL_REASON and failed.text == "FAIL"
    suites = [tr.text for tr in doc.find_all("tr", cls="suite")]
    assert suites == ["argmax", "fp8_grouped_gemm", "gates"]


def test_text_from_data_is_escaped_everywhere(site):
    for name in PAGES:
        text = page(site, name)
        for raw in ("<probed>", "<b>bold?</b>", "<https://github.com/NVIDIA"):
            assert raw not in text, f"{name} carries {raw!r} unescaped"
        for m in re.finditer(r'<script type="application/json"[^>]*>(.*?)</script>', text, re.S):
            assert "<" not in m.group(1) and ">" not in m.group(1)
    for f in (site.root / "data").glob("*.js"):
        assert "<" not in f.read_text() and ">" not in f.read_text()
    assert "&lt;probed&gt; &amp; &#x27;emulated&#x27;" in page(site, "coverage.html")


def test_each_machines_figures_are_in_its_own_file(site):
    doc = parse(page(site, "trends.html"))
    figures = {f.name: f.read_text() for f in (site.root / "data").glob("trends-*.js")}
    assert sorted(figures) == ["trends-h100-as-h20.js", "trends-h100.js", "trends-h200.js"]
    for card in doc.find_all("div", cls="card"):
        plot, = card.find_all("div", cls="plot")
        assert plot.attrs["data-src"] == f"data/trends-{card.attrs['data-sku']}.js"
        assert f'"{plot.attrs["data-fig"]}":' in figures[plot.attrs["data-src"].split("/")[1]]
    assert "gpuhilFigures" not in page(site, "trends.html")  # the page itself stays small


def test_filters_offer_every_sku_suite_and_provider(site):
    doc = parse(page(site, "trends.html"))
    options = {s.attrs["data-filter"]: [o.attrs["value"] for o in s.find_all("option")] for s in doc.find_all("select")}
    assert options["sku"] == ["", "h100", "h100-as-h20", "h200"]  # gb10 ran without --perf
    assert options["suite"] == ["", "argmax", "fp8_grouped_gemm"]
    assert options["provider"] == ["", *sorted({s[2] for s in fake_runs.SERIES})]
    cards = doc.find_all("div", cls="card")
    assert len(cards) == len(site.fleet.views)
    assert all(c.attrs["data-sku"] and c.attrs["data-suite"] and c.attrs["data-provider"] for c in cards)


def test_the_roofline_shows_each_machines_latest_fraction_of_its_ceiling(site):
    fig = blob(site, "roofline.html")["r0"]
    heat = fig["data"][0]
    assert heat["type"] == "heatmap" and heat["x"] == ["h100", "h100-as-h20", "h200"]
    view = next(v for v in site.fleet.views if v.series.machine == "h100" and v.series.provider == CANARY[2])
    row = next(i for i, label in enumerate(heat["y"]) if CANARY[2] in label)
    assert heat["z"][row][0] == pytest.approx(view.series.points[-1].pct_of_ceiling, abs=0.01)
    assert heat["z"][row][1] is None  # the emulated machine did not time the canary


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "gpuhil.dashboard.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_build_refuses_a_bad_history_or_baseline_with_one_line(site, tmp_path):
    r = run_cli("dashboard", "build", "--history", str(tmp_path / "nothing"), "--out", str(tmp_path / "s"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    assert "not a history folder" in r.stderr
    bad = tmp_path / "baselines" / "h100"
    bad.mkdir(parents=True)
    (bad / "argmax.json").write_text("{\"series\": 3}")
    history = site.root.parent / "history"
    r = run_cli("dashboard", "build", "--history", str(history), "--out", str(tmp_path / "s"),
                "--baselines", str(tmp_path / "baselines"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "argmax.json: field 'series' must be an object" in r.stderr
    r = run_cli("dashboard", "build", "--history", str(history), "--out", str(tmp_path / "s"))
    assert r.returncode == 0 and "1 new regression(s)" in r.stdout


# --- the site folder: never a file we did not write, never half a file ---

@pytest.fixture(scope="module")
def small_history(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    rows = [s[:4] for s in fake_runs.SERIES[:2]]
    dirs = [fake_runs.results_dir(root / "results", sku="h100", started=fake_runs.START + dt.timedelta(days=d),
                                  git_sha=sha(d), rows=rows, cases=fake_runs.cases_for("h100")) for d in range(3)]
    add(dirs, root / "history")
    return root / "history"


def test_a_folder_we_did_not_make_is_refused_and_left_untouched(small_history, tmp_path):
    """It used to remove OUT/data/ before writing: any folder with a data/ subfolder was wiped."""
    out = tmp_path / "mine"
    (out / "data").mkdir(parents=True)
    (out / "data" / "precious.csv").write_text("keep me\n")
    r = run_cli("dashboard", "build", "--history", str(small_history), "--out", str(out))
    assert (r.returncode, r.stdout) == (2, "") and "Traceback" not in r.stderr
    assert r.stderr == (f"gpuhil dashboard build: {out}: not empty and not a site `gpuhil dashboard build` made "
                        "(no .gpuhil-site): refusing to write into it; give a new or empty folder\n")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["data", "data/precious.csv"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli("dashboard", "build", "--history", str(small_history), "--out", str(empty)).returncode == 0
    assert (empty / "index.html").is_file() and (empty / ".gpuhil-site").is_file()


def test_a_rebuild_removes_only_files_an_earlier_build_wrote(small_history, tmp_path):
    out = tmp_path / "site"
    build(small_history, out)
    marker = json.loads((out / ".gpuhil-site").read_text())
    assert "data/trends-h100.js" in marker["files"] and "index.html" in marker["files"]
    (out / "data" / "trends-gone.js").write_text("// a machine an earlier history had\n")
    (out / ".gpuhil-site").write_text(json.dumps({**marker, "files": marker["files"] + ["data/trends-gone.js"]}))
    (out / "data" / "notes.txt").write_text("someone's notes\n")
    (out / "CNAME").write_text("perf.example.org\n")
    build(small_history, out)
    assert not (out / "data" / "trends-gone.js").exists()
    assert (out / "data" / "notes.txt").read_text() == "someone's notes\n" and (out / "CNAME").is_file()
    assert "data/trends-gone.js" not in json.loads((out / ".gpuhil-site").read_text())["files"]
    assert not [p for p in out.rglob("*.tmp")]


@pytest.mark.parametrize("files", [["../outside.txt"], ["/etc/hostname"], ["data/../../outside.txt"], "index.html"])
def test_a_marker_that_names_files_outside_the_site_is_refused(small_history, tmp_path, files):
    (tmp_path / "outside.txt").write_text("not the site's\n")
    out = tmp_path / "site"
    build(small_history, out)
    (out / ".gpuhil-site").write_text(json.dumps({"schema": 1, "files": files}))
    r = run_cli("dashboard", "build", "--history", str(small_history), "--out", str(out))
    assert (r.returncode, r.stdout) == (2, "") and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"gpuhil dashboard build: {out / '.gpuhil-site'}: not a marker")
    assert (tmp_path / "outside.txt").read_text() == "not the site's\n"


def test_a_marker_nested_too_deeply_is_refused(small_history, tmp_path):
    out = tmp_path / "site"
    out.mkdir()
    (out / ".gpuhil-site").write_text("[" * 100_000)
    r = run_cli("dashboard", "build", "--history", str(small_history), "--out", str(out))
    assert (r.returncode, r.stdout) == (2, "") and r.stderr.count("\n") == 1 and "not a marker" in r.stderr


def test_a_folder_where_a_page_goes_is_refused_before_anything_is_written(small_history, tmp_path):
    out = tmp_path / "site"
    build(small_history, out)
    (out / "index.html").unlink()
    (out / "index.html").mkdir()
    (out / "index.html" / "mine.txt").write_text("x\n")
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    r = run_cli("dashboard", "build", "--history", str(small_history), "--out", str(out))
    assert (r.returncode, r.stdout) == (2, "") and r.stderr == (
        f"gpuhil dashboard build: {out / 'index.html'}: a folder where the site's file goes: refusing to replace it\n")
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps


def test_baselines_that_are_a_file_are_named_as_such(small_history, tmp_path):
    (tmp_path / "notes.txt").write_text("a file\n")
    r = run_cli("dashboard", "build", "--history", str(small_history), "--out", str(tmp_path / "s"),
                "--baselines", str(tmp_path / "notes.txt"))
    assert (r.returncode, r.stderr) == (2, f"gpuhil dashboard build: {tmp_path / 'notes.txt'}: not a folder "
                                           "(--baselines takes the baselines root)\n")


def test_an_output_path_that_is_a_file_or_under_one_is_one_line_and_exit_2(small_history, tmp_path):
    (tmp_path / "notes.txt").write_text("a file\n")
    for out, expected in ((tmp_path / "notes.txt", f"{tmp_path / 'notes.txt'}: is a file, not a site folder"),
                          (tmp_path / "notes.txt" / "site", "Not a directory")):
        r = run_cli("dashboard", "build", "--history", str(small_history), "--out", str(out))
        assert (r.returncode, r.stdout) == (2, "") and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        assert expected in r.stderr
    assert (tmp_path / "notes.txt").read_text() == "a file\n"


def test_a_build_killed_while_writing_leaves_each_page_whole(small_history, tmp_path, monkeypatch):
    out = tmp_path / "site"
    build(small_history, out)
    before = (out / "trends.html").read_text(encoding="utf-8")
    real = Path.write_text

    def dies_halfway(self, text, *a, **kw):
        if self.name.startswith(".trends.html."):
            real(self, text[: len(text) // 2], *a, **kw)
            raise KeyboardInterrupt  # killed mid-write
        return real(self, text, *a, **kw)

    monkeypatch.setattr(Path, "write_text", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        build(small_history, out)
    assert (out / "trends.html").read_text(encoding="utf-8") == before
    assert not [p for p in out.rglob("*.tmp")]


# --- the compare view: two runs side by side ---

def runs_file(site, machine):
    text = (site.root / "data" / f"runs-{machine}.js").read_text(encoding="utf-8")
    return json.loads(text[text.index("gpuhilRuns(") + len("gpuhilRuns("):text.rindex(");")])


def test_the_compare_view_carries_every_perf_run_of_each_machine(site):
    h100 = runs_file(site, "h100")
    assert h100 == compare.machine_runs(site.fleet, "h100")  # the page's data is the module's
    assert [r["id"] for r in h100["runs"]] == [run_id(i) for i in range(fake_runs.H100_RUNS)]
    assert sorted(h100["series"]) == sorted("|".join(s[:3]) for s in fake_runs.SERIES)
    canary = h100["series"].index("|".join(CANARY[:3]))
    view = next(v for v in site.fleet.views if v.series.uid == "h100|" + "|".join(CANARY[:3]))
    point = next(p for p in view.series.points if p.run_id == run_id(PLANTED_RUN))
    assert h100["runs"][PLANTED_RUN]["rows"][str(canary)] == [pytest.approx(point.median_us, rel=1e-5),
                                                             pytest.approx(point.p25_us, rel=1e-5),
                                                             pytest.approx(point.p75_us, rel=1e-5)]
    throttled = h100["series"].index("argmax|" + fake_runs.SERIES[3][1] + "|torch")
    assert h100["runs"][10]["rows"][str(throttled)] == ["INVALID", "not comparable: sw_power_cap"]
    assert h100["runs"][PLANTED_RUN]["sha"] == sha(PLANTED_RUN) and h100["runs"][0]["sw"]["torch"] == "2.11.0"
    assert sorted(p.name for p in (site.root / "data").glob("runs-*.js")) == [
        "runs-h100-as-h20.js", "runs-h100.js", "runs-h200.js"]  # gb10 ran without --perf


def test_compare_rows_are_the_verdict_rule_for_a_baseline_of_run_a_alone(site):
    h100 = runs_file(site, "h100")
    before, after = h100["runs"][PLANTED_RUN - 1]["rows"], h100["runs"][PLANTED_RUN]["rows"]
    calls = {}
    for i, key in enumerate(h100["series"]):
        p = compare.pair(key, before[str(i)], after[str(i)])
        a, b = before[str(i)][0], after[str(i)][0]
        assert p["ratio"] == pytest.approx(b / a)
        # the runs' own spread is 1 %: the young-series prior sets the band, 4 x 2.5 % = 10 %
        assert p["threshold"] == pytest.approx(0.10)
        calls[key] = p["call"]
    assert calls.pop("|".join(CANARY[:3])) == "SLOW" and set(calls.values()) == {"SAME"}
    canary = str(h100["series"].index("|".join(CANARY[:3])))
    assert compare.pair("a|b|c", after[canary], before[canary])["call"] == "FAST"
    noisy = compare.pair("a|b|c", [10.0, 9.9, 10.1], [12.0, 10.0, 14.0])  # B's IQR / 1.349 / median = 24.7 %
    assert noisy["threshold"] == pytest.approx(4 * 4.0 / 1.349 / 12.0) and noisy["call"] == "SAME"
    assert compare.pair("a|b|c", [10.0, 9.9, 10.1], None)["call"] == "only in A"
    assert compare.pair("a|b|c", None, [10.0, 9.9, 10.1])["call"] == "only in B"
    invalid = compare.pair("a|b|c", [10.0, 9.9, 10.1], ["INVALID", "not comparable: sw_power_cap"])
    assert (invalid["call"], invalid["ratio"], invalid["note"]) == ("INVALID", None, "B: not comparable: sw_power_cap")


def test_each_finding_links_to_the_comparison_of_its_two_runs(site):
    doc = parse(page(site, "index.html"))
    row, = doc.find_all("tr", cls="finding", data_kind="regression")
    links = [a.attrs["href"] for a in row.find_all("a") if a.attrs["href"].startswith("compare.html")]
    assert links == [f"compare.html#a=h100/{run_id(PLANTED_RUN - 1)}&b=h100/{run_id(PLANTED_RUN)}&sort=ratio&dir=desc"]


# --- acknowledged.yaml on the dashboard ---

def test_an_acknowledged_regression_says_so_until_its_date_and_is_open_again_after(site, tmp_path):
    import shutil

    baselines = tmp_path / "baselines"
    shutil.copytree(site.root.parent / "baselines", baselines)
    night = fake_runs.START + dt.timedelta(days=PLANTED_RUN)
    added = night.date()
    (baselines / "acknowledged.yaml").write_text(
        "schema: 1\nentries:\n"
        f"  - series: \"{'|'.join(CANARY[:3])}\"\n    sku: h100\n    kind: acknowledged\n"
        f"    commits: {sha(PLANTED_RUN - 1)[:12]}..{sha(PLANTED_RUN)[:12]}\n    since: \"{night.isoformat()}\"\n"
        f"    reason: canary <slower> on purpose\n    who: alice\n    added: {added}\n"
        f"    until: {added + dt.timedelta(days=30)}\n")
    history = site.root.parent / "history"
    for today, state in ((added + dt.timedelta(days=30), "acknowledged"), (added + dt.timedelta(days=31), "expired")):
        out = tmp_path / f"site-{state}"
        built = build(history, out, baselines, today=today)
        row, = parse((out / "index.html").read_text()).find_all("tr", cls="finding", data_kind="regression")
        assert row.attrs["data-ack"] == state
        regressions = [f for f in built.fleet.machines["h100"].findings if f.kind == "regression"]
        assert [f.open for f in regressions] == [state == "expired"]
        text = (out / "index.html").read_text()
        if state == "acknowledged":
            assert (f"acknowledged (canary &lt;slower&gt; on purpose, alice, until {added + dt.timedelta(days=30)})"
                    in text)
        else:
            assert f"acknowledged entry expired on {added + dt.timedelta(days=30)} (canary &lt;slower&gt;" in text
    r = run_cli("dashboard", "build", "--history", str(history), "--out", str(tmp_path / "s"), "--baselines",
                str(baselines))  # today is long after the entry: it has expired
    assert r.returncode == 0 and "1 new regression(s), " in r.stdout
    (baselines / "acknowledged.yaml").write_text("schema: 1\nentries:\n  - kind: maybe\n")
    r = run_cli("dashboard", "build", "--history", str(history), "--out", str(tmp_path / "s"), "--baselines",
                str(baselines))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "acknowledged.yaml:3: entry 0: field " in r.stderr
