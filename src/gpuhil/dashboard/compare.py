"""Compare view: two perf runs side by side (two runs of one machine, or the same commit on two machines),
one row per series with B/A of the medians and the verdict rule's band, sortable, its state in the
address (`compare.html#a=h100/RUN&b=h100/RUN&sort=ratio&dir=desc`) so a link opens the same comparison.

The band is what `gpuhil perf compare` would say of run B against a baseline holding only run A
(baseline.judge with a one-run history): threshold = max(5 %, 4 x max(B's own noise, 2.5 %)), B's own
noise being its p25-p75 spread as a standard deviation (IQR / 1.349 / median). The p25/p75 spread rather
than `stdrel`: stdrel is the standard error of one run's median, which the timer drives to 0.5 % and which
says nothing of run-to-run spread (two A/A runs on an H100 differed by 7.8 %); the rule covers that with
its 2.5 % prior for a history under 3 runs, which one run A is. Runs of two fingerprints (or machines) are
compared all the same (the gate would say EPOCH): the page names what differs.

Each machine's runs (its last COMPARE_RUNS perf runs: medians and quartiles of every series) travel in
data/runs-<machine>.js, loaded by a script tag when the machine is picked (the site has no fetch()); the
page computes the rows in the browser with the rule's constants, which `pair` computes with judge itself
(the browser test holds the two equal).
"""

from __future__ import annotations

import math
from typing import Any

from ..perf.baseline import FLOOR, K, YOUNG_NOISE, Entry, judge, unusable
from .analysis import Fleet
from .page import esc, frame, json_for_script

COMPARE_RUNS = 120  # runs offered per machine, as many as the trends draw
SOFTWARE = ("driver", "cuda", "torch", "cutlass_dsl", "dsl_cuda")


def _num(v: float) -> float:
    return float(f"{v:.6g}")


def _cell(p, *, valid: bool) -> list:
    """[median, p25, p75] of a valid point; [verdict, why] of one no verdict may use (unusable's words)."""
    if valid:
        return [_num(p.median_us), _num(p.p25_us), _num(p.p75_us)]
    refused = unusable({"status": p.status, "median_us": p.median_us, "p25_us": p.p25_us, "p75_us": p.p75_us,
                        "throttled": p.status == "throttled", "throttle_reasons": p.why_invalid, "error": p.why_invalid})
    return [refused.verdict, refused.note] if refused else ["INVALID", p.why_invalid or p.status]


def machine_runs(fleet: Fleet, machine: str) -> dict[str, Any]:
    """One machine's last COMPARE_RUNS perf runs: {"machine", "series": [keys], "runs": [{id, t, sha, fp,
    sw, result, rows: {series index: cell}}]}, runs in order."""
    wanted = fleet.machines[machine].perf_runs[-COMPARE_RUNS:]
    import pandas as pd

    mine = fleet.runs[(fleet.runs["machine"] == machine) & fleet.runs["run_id"].isin(wanted)]
    meta = {r["run_id"]: r for r in mine.astype(object).where(pd.notna(mine), None).to_dict("records")}
    views = [v for v in fleet.views if v.series.machine == machine]
    rows: dict[str, dict[str, list]] = {rid: {} for rid in wanted}
    keys = []
    for i, v in enumerate(views):
        keys.append(v.series.key)
        for p in v.series.points:
            if p.run_id in rows:
                rows[p.run_id][str(i)] = _cell(p, valid=True)
        for p in v.series.invalid:
            if p.run_id in rows:
                rows[p.run_id][str(i)] = _cell(p, valid=False)
    runs = []
    for rid in wanted:
        r = meta[rid]
        runs.append({"id": rid, "t": str(r["timestamp"])[:16].replace("T", " "), "sha": r["git_sha"] or "",
                     "fp": r["fingerprint_id"] or "", "result": r["result"],
                     "sw": {k: r.get(k) for k in SOFTWARE}, "rows": rows[rid]})
    return {"machine": machine, "series": keys, "runs": runs}


def pair(key: str, a: list | None, b: list | None) -> dict[str, Any]:
    """One row of the comparison from two cells of machine_runs: what judge says of B against a baseline
    holding only A (the fingerprint set equal: the page compares across epochs and machines too)."""
    if a is None or b is None:
        return {"ratio": None, "threshold": None, "call": "only in A" if b is None else "only in B", "note": ""}
    for side, cell in (("A", a), ("B", b)):
        if isinstance(cell[0], str):
            return {"ratio": None, "threshold": None, "call": cell[0], "note": f"{side}: {cell[1]}"}
    suite, case_id, provider = key.split("|")
    v = judge([Entry("A", "", "same", "", a[0], a[1], a[2])],
              {"suite": suite, "case_id": case_id, "provider": provider, "status": "ok", "fingerprint_id": "same",
               "median_us": b[0], "p25_us": b[1], "p75_us": b[2]})
    return {"ratio": v.ratio, "threshold": v.threshold, "call": v.verdict, "note": ""}


def data_path(machine: str) -> str:
    return f"data/runs-{machine}.js"


def data_file(runs: dict[str, Any]) -> str:
    return "/* gpuhil runs for the compare view */\ngpuhilRuns(" + json_for_script(runs) + ");\n"


LEGEND = ("<p class=muted>Pick two runs: two nights of one machine, or the same commit on two machines (picking "
          "B's machine selects its run of A's commit when there is one). B/A is the ratio of the medians; the band "
          "is what <code>gpuhil perf compare</code> would allow B against a baseline of run A alone: "
          "max(5 %, 4 × max(B's p25–p75 spread / 1.349, 2.5 %)); outside it the row is SLOW or FAST. "
          "Click a column to sort; the address keeps the comparison, so a link opens it again.</p>")


def _picker(side: str, machines: list[str]) -> str:
    opts = "".join(f'<option value="{esc(m)}">{esc(m)}</option>' for m in machines)
    return (f'<fieldset class="pick" data-side="{side}"><legend>run {side.upper()}</legend>'
            f'<label>machine <select id="{side}-machine">{opts}</select></label> '
            f'<label>run <select id="{side}-run"></select></label></fieldset>')


COLUMNS = (("series", "series"), ("a", "A median us"), ("b", "B median us"), ("ratio", "B/A"),
           ("band", "band"), ("call", "call"))


def page(fleet: Fleet, footer: str) -> tuple[str, dict[str, str]]:
    """The page and {relative path: text} of each machine's runs file."""
    machines = [m for m, mach in sorted(fleet.machines.items()) if mach.perf_runs]
    files = {data_path(m): data_file(machine_runs(fleet, m)) for m in machines}
    if not machines:
        return frame("compare.html", "Compare two runs", "<p>No perf runs in the history yet.</p>", footer=footer), files
    head = "".join(f'<th data-sort="{k}" tabindex="0">{esc(label)}<span class="dir"></span></th>' for k, label in COLUMNS)
    body = (LEGEND + f'<div class="filters">{_picker("a", machines)}{_picker("b", machines)}</div>'
            '<p id="compare-head" class="muted"></p><p id="compare-summary"></p>'
            f'<table class="compare"><thead><tr>{head}</tr></thead><tbody id="compare-rows"></tbody></table>')
    rule = {"floor": FLOOR, "k": K, "young_noise": YOUNG_NOISE,
            "paths": {m: data_path(m) for m in machines}}
    html = frame("compare.html", "Compare two runs", body, footer=footer, data={"compare-rule": rule},
                 scripts=("assets/compare.js",))
    return html, files


SCRIPT = r"""
(function () {
  "use strict";
  var rule = JSON.parse(document.getElementById("compare-rule").textContent);
  var runs = {}, waiting = {};
  window.gpuhilRuns = function (data) { runs[data.machine] = data; };
  var state = {a: null, b: null, sort: "series", dir: "asc"};
  function $(id) { return document.getElementById(id); }

  function load(machine, done) {  // a machine's runs file, by a script tag (file:// allows no fetch)
    if (runs[machine]) { done(); return; }
    if (waiting[machine]) { waiting[machine].push(done); return; }
    waiting[machine] = [done];
    var s = document.createElement("script");
    s.src = rule.paths[machine];
    s.onload = function () { var w = waiting[machine]; delete waiting[machine]; w.forEach(function (f) { f(); }); };
    s.onerror = function () { console.error("gpuhil: could not load " + rule.paths[machine]); };
    document.head.appendChild(s);
  }
  function run(ref) {
    var m = runs[ref.machine];
    return m && m.runs.filter(function (r) { return r.id === ref.run; })[0];
  }
  function fillRuns(side, machine, want) {
    var sel = $(side + "-run"), list = runs[machine].runs;
    sel.textContent = "";
    list.slice().reverse().forEach(function (r) {
      var o = document.createElement("option");
      o.value = r.id; o.textContent = r.t + " · " + r.sha.slice(0, 12) + " · " + r.id + " · " + r.result;
      sel.appendChild(o);
    });
    var ids = list.map(function (r) { return r.id; });
    sel.value = ids.indexOf(want) >= 0 ? want : ids[ids.length - 1];
    state[side] = {machine: machine, run: sel.value};
  }

  // One row: what baseline.judge says of B against a baseline holding only A (dashboard/compare.py, pair).
  function pair(a, b) {
    if (!a || !b) return {ratio: null, threshold: null, call: a ? "only in A" : "only in B", note: ""};
    if (typeof a[0] === "string") return {ratio: null, threshold: null, call: a[0], note: "A: " + a[1]};
    if (typeof b[0] === "string") return {ratio: null, threshold: null, call: b[0], note: "B: " + b[1]};
    var own = (b[2] - b[1]) / 1.349 / b[0];
    var threshold = Math.max(rule.floor, rule.k * Math.max(own, rule.young_noise));
    var ratio = b[0] / a[0];
    var call = ratio > 1 + threshold ? "SLOW" : ratio < 1 - threshold ? "FAST" : "SAME";
    return {ratio: ratio, threshold: threshold, call: call, note: ""};
  }
  function rows() {
    var ra = run(state.a), rb = run(state.b), out = [];
    if (!ra || !rb) return out;
    var sa = runs[state.a.machine].series, sb = runs[state.b.machine].series, keys = {};
    sa.forEach(function (k, i) { keys[k] = [i, null]; });
    sb.forEach(function (k, i) { keys[k] = [keys[k] ? keys[k][0] : null, i]; });
    Object.keys(keys).forEach(function (k) {
      var a = keys[k][0] === null ? undefined : ra.rows[keys[k][0]], b = keys[k][1] === null ? undefined : rb.rows[keys[k][1]];
      if (!a && !b) return;
      var p = pair(a, b);
      p.series = k; p.a = a && typeof a[0] === "number" ? a[0] : null; p.b = b && typeof b[0] === "number" ? b[0] : null;
      p.band = p.threshold;
      out.push(p);
    });
    var dir = state.dir === "desc" ? -1 : 1, key = state.sort;
    out.sort(function (x, y) {
      var u = x[key], v = y[key];
      if (u === null && v === null) return x.series < y.series ? -1 : 1;
      if (u === null) return 1;  // rows without the value last, either way
      if (v === null) return -1;
      if (u < v) return -dir;
      if (u > v) return dir;
      return x.series < y.series ? -1 : 1;
    });
    return out;
  }
  function td(text, cls, title) {
    var c = document.createElement("td");
    c.textContent = text;
    if (cls) c.className = cls;
    if (title) c.title = title;
    return c;
  }
  function num(v, digits) { return v === null ? "" : v.toFixed(digits); }
  function describe(ra, rb) {
    var diff = Object.keys(ra.sw).filter(function (k) { return ra.sw[k] !== rb.sw[k]; })
      .map(function (k) { return k + " " + ra.sw[k] + " → " + rb.sw[k]; });
    var text = "A: " + state.a.machine + " " + ra.t + " commit " + ra.sha.slice(0, 12) + " · B: " + state.b.machine +
      " " + rb.t + " commit " + rb.sha.slice(0, 12) + ". ";
    if (state.a.machine !== state.b.machine) text += "Two machines: B/A compares the hardware, not a change in the code. ";
    else if (ra.fp !== rb.fp) text += "Fingerprints differ (" + (diff.join(", ") || "device or clocks") + "): a new epoch to the gate. ";
    if (ra.sha === rb.sha) text += "Same commit.";
    return text;
  }
  function render() {
    var ra = run(state.a), rb = run(state.b), body = $("compare-rows");
    body.textContent = "";
    if (!ra || !rb) return;
    $("compare-head").textContent = describe(ra, rb);
    var counts = {}, list = rows();
    list.forEach(function (p) {
      counts[p.call] = (counts[p.call] || 0) + 1;
      var tr = document.createElement("tr"), parts = p.series.split("|");
      tr.className = "pair " + p.call.replace(/ /g, "-");
      tr.dataset.series = p.series; tr.dataset.call = p.call;
      if (p.ratio !== null) { tr.dataset.ratio = String(p.ratio); tr.dataset.threshold = String(p.threshold); }
      var name = document.createElement("td");
      name.textContent = parts[1].split("::").pop();
      name.title = p.series;
      var meta = document.createElement("span");
      meta.className = "muted"; meta.textContent = " " + parts[0] + " · " + parts[2];
      name.appendChild(document.createElement("br")); name.appendChild(meta);
      tr.appendChild(name);
      tr.appendChild(td(num(p.a, 4), "num"));
      tr.appendChild(td(num(p.b, 4), "num"));
      tr.appendChild(td(num(p.ratio, 3), "num ratio"));
      tr.appendChild(td(p.threshold === null ? "" : "±" + (100 * p.threshold).toFixed(1) + " %", "num"));
      tr.appendChild(td(p.call, "call " + p.call.replace(/ /g, "-"), p.note));
      body.appendChild(tr);
    });
    $("compare-summary").textContent = list.length + " series: " + Object.keys(counts).sort()
      .map(function (k) { return counts[k] + " " + k; }).join(", ");
    document.querySelectorAll("th[data-sort]").forEach(function (th) {
      th.querySelector(".dir").textContent = th.dataset.sort === state.sort ? (state.dir === "asc" ? " ▲" : " ▼") : "";
    });
    var hash = "a=" + encodeURIComponent(state.a.machine + "/" + state.a.run) + "&b=" +
      encodeURIComponent(state.b.machine + "/" + state.b.run) + "&sort=" + state.sort + "&dir=" + state.dir;
    if (history.replaceState) history.replaceState(null, "", "#" + hash);
  }

  function pick(side, machine, want, then) {
    $(side + "-machine").value = machine;
    load(machine, function () { fillRuns(side, machine, want); if (then) then(); });
  }
  function sameCommit(machine) {  // B's run of A's commit, when that machine ran it
    var ra = run(state.a), m = runs[machine];
    var hit = ra && m && m.runs.filter(function (r) { return r.sha === ra.sha; }).pop();
    return hit ? hit.id : null;
  }
  function wire() {
    ["a", "b"].forEach(function (side) {
      $(side + "-machine").addEventListener("change", function (e) {
        var machine = e.target.value;
        load(machine, function () {
          fillRuns(side, machine, side === "b" ? sameCommit(machine) : null);
          render();
        });
      });
      $(side + "-run").addEventListener("change", function (e) { state[side].run = e.target.value; render(); });
    });
    document.querySelectorAll("th[data-sort]").forEach(function (th) {
      function sort() {
        if (state.sort === th.dataset.sort) state.dir = state.dir === "asc" ? "desc" : "asc";
        else { state.sort = th.dataset.sort; state.dir = th.dataset.sort === "series" ? "asc" : "desc"; }
        render();
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
    });
  }

  var given = {};
  location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
    var i = kv.indexOf("=");
    if (i > 0) given[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1));
  });
  function ref(text) {
    var i = text ? text.indexOf("/") : -1;
    return i > 0 && rule.paths[text.slice(0, i)] ? {machine: text.slice(0, i), run: text.slice(i + 1)} : null;
  }
  if (["series", "a", "b", "ratio", "band", "call"].indexOf(given.sort) >= 0) state.sort = given.sort;
  if (given.dir === "desc" || given.dir === "asc") state.dir = given.dir;
  var a = ref(given.a), b = ref(given.b), first = Object.keys(rule.paths)[0];
  a = a || {machine: first, run: null};
  b = b || {machine: a.machine, run: null};
  wire();
  pick("a", a.machine, a.run, function () {
    if (!a.run && !given.b) {  // no link: the machine's last two runs, what changed last night
      var list = runs[a.machine].runs;
      if (list.length > 1) { $("a-run").value = list[list.length - 2].id; state.a.run = list[list.length - 2].id; }
    }
    pick("b", b.machine, b.run, render);
  });
})();
"""
