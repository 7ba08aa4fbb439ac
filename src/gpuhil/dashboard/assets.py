"""The site's static assets: plotly.js (written once, from the installed plotly package), a style sheet
and the small script that renders figures when they scroll into view and applies the filters."""

from __future__ import annotations

CSS = """
:root { --fg:#1d2330; --muted:#667085; --line:#d0d5dd; --bg:#fff; --soft:#f5f7fa;
        --pass:#1a7f37; --fail:#cf222e; --skip:#8c959f; --xfail:#9a6700; --err:#8250df; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; gap:1.5rem; align-items:center; padding:.6rem 1.2rem; background:#111827; color:#fff; }
header a { color:#cbd5e1; text-decoration:none; margin-right:1rem; } header a.here { color:#fff; font-weight:600; }
.brand { font-weight:700; letter-spacing:.03em; }
main { padding:0 1.2rem 2rem; } h1 { font-size:1.35rem; } h2 { font-size:1.1rem; margin-top:1.6rem; }
footer { padding:1rem 1.2rem; color:var(--muted); font-size:12px; border-top:1px solid var(--line); }
table { border-collapse:collapse; margin:.4rem 0 1rem; } th, td { border:1px solid var(--line); padding:.25rem .5rem; text-align:left; vertical-align:top; }
thead th { background:var(--soft); } td.num { text-align:right; font-variant-numeric:tabular-nums; }
.badge { display:inline-block; padding:0 .45rem; border-radius:.6rem; font-size:12px; font-weight:600; background:var(--soft); }
.PASS, .passed { color:var(--pass); } .FAIL, .failed { color:var(--fail); } .error { color:var(--err); }
.HARNESS-ERROR, .RUNNER-ERROR, .RUNNER-UNHEALTHY, .INTERRUPTED { color:var(--err); }
.regression { color:var(--fail); } .improvement { color:var(--pass); } .epoch { color:var(--muted); }
.ack { font-size:12px; font-weight:400; color:var(--muted); } .ack.expired { color:var(--fail); font-weight:600; }
.muted { color:var(--muted); } code { font-size:12px; }
.machine { border:1px solid var(--line); border-radius:.5rem; padding:.2rem 1rem .6rem; margin:1rem 0; }
.filters { display:flex; gap:1rem; align-items:center; margin:.5rem 0 1rem; flex-wrap:wrap; }
.grid { display:grid; grid-template-columns:repeat(auto-fill, minmax(560px, 1fr)); gap:1rem; }
.card { border:1px solid var(--line); border-radius:.5rem; padding:.4rem .6rem; }
.card h3 { font-size:13px; margin:.2rem 0; word-break:break-all; } .card .meta { font-size:12px; color:var(--muted); }
.plot { width:100%; height:280px; } .plot.tall { height:auto; }
.emulated h3::after { content:" (emulated)"; color:var(--xfail); }
table.coverage td.cell { text-align:center; font-size:12px; min-width:5.5rem; }
td.cell.passed { background:#dafbe1; } td.cell.failed { background:#ffebe9; color:var(--fail); font-weight:700; }
td.cell.error { background:#fbefff; } td.cell.skipped { background:#f6f8fa; color:var(--skip); }
td.cell.xfailed { background:#fff8c5; color:var(--xfail); } td.cell.flaky { background:#fff1d6; } td.cell.none { color:var(--line); }
fieldset.pick { border:1px solid var(--line); border-radius:.5rem; padding:.2rem .8rem .5rem; }
table.compare th[data-sort] { cursor:pointer; user-select:none; } table.compare td.call { font-weight:600; }
td.call.SLOW { color:var(--fail); } td.call.FAST { color:var(--pass); } td.call.SAME { color:var(--muted); font-weight:400; }
td.call.INVALID, td.call.ERROR { color:var(--err); } td.call.only-in-A, td.call.only-in-B { color:var(--skip); font-weight:400; }
tr.suite th { background:#eef2f7; } th.test { font-weight:400; font-family:ui-monospace, monospace; font-size:12px; }
"""

JS = r"""
(function () {
  "use strict";
  function blob(id) { var el = document.getElementById(id); return el ? JSON.parse(el.textContent) : null; }
  var figures = blob("figures") || {};
  // Figures of one machine arrive in data/trends-<machine>.js, loaded when its first card scrolls in.
  var loading = {};
  window.gpuhilFigures = function (figs) { Object.keys(figs).forEach(function (k) { figures[k] = figs[k]; }); };
  function render(div) {
    if (div.dataset.rendered) return;
    var fig = figures[div.dataset.fig], src = div.dataset.src;
    if (!fig && src && loading[src] !== "done") {
      if (!loading[src]) {
        loading[src] = [];
        var s = document.createElement("script");
        s.src = src;
        s.onload = function () { var wait = loading[src]; loading[src] = "done"; wait.forEach(render); };
        s.onerror = function () { console.error("gpuhil: could not load " + src); };
        document.head.appendChild(s);
      }
      loading[src].push(div);
      return;
    }
    if (!fig) { console.error("gpuhil: no figure " + div.dataset.fig); return; }
    div.dataset.rendered = "1";
    Plotly.newPlot(div, fig.data, fig.layout, {displaylogo: false, responsive: true});
  }
  var plots = Array.prototype.slice.call(document.querySelectorAll(".plot[data-fig]"));
  if (plots.length && typeof Plotly === "undefined") { console.error("gpuhil: assets/plotly.min.js did not load"); return; }
  if ("IntersectionObserver" in window) {
    var io = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) { if (e.isIntersecting) { render(e.target); io.unobserve(e.target); } });
    }, {rootMargin: "400px"});
    plots.forEach(function (d) { io.observe(d); });
  } else { plots.forEach(render); }

  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
  function apply() {
    var want = {};
    selects.forEach(function (s) { if (s.value) want[s.dataset.filter] = s.value; });
    var shown = 0, cards = document.querySelectorAll("[data-series]");
    Array.prototype.forEach.call(cards, function (c) {
      var ok = Object.keys(want).every(function (k) { return c.dataset[k] === want[k]; });
      c.hidden = !ok; if (ok) shown += 1;
    });
    var count = document.getElementById("shown");
    if (count) count.textContent = shown + " of " + cards.length + " series";
    var hash = Object.keys(want).map(function (k) { return k + "=" + encodeURIComponent(want[k]); }).join("&");
    if (history.replaceState) history.replaceState(null, "", hash ? "#" + hash : location.pathname);
  }
  if (selects.length) {
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var p = kv.split("="), s = document.querySelector('select[data-filter="' + p[0] + '"]');
      if (s && p.length === 2) s.value = decodeURIComponent(p[1]);
    });
    selects.forEach(function (s) { s.addEventListener("change", apply); });
    apply();
  }
})();
"""


def files() -> dict[str, str]:
    """The site's assets/ files: name -> text (plotly.js from the installed plotly package)."""
    from plotly.offline import get_plotlyjs

    return {"plotly.min.js": get_plotlyjs(), "site.css": CSS.lstrip(), "site.js": JS.lstrip()}


def plotly_version() -> str:
    from plotly.offline import get_plotlyjs_version

    return get_plotlyjs_version()
