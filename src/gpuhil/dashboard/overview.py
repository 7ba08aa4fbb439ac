"""Overview page: per machine, the last run's result, new regressions and improvements with the run and
commit range they appeared in, epoch changes, missing series and invalid rows of the last run."""

from __future__ import annotations

from .analysis import Finding, Fleet, Machine
from .page import esc, frame, short_case, table

RESULT_KEYS = ("passed", "failed", "error", "skipped", "xfailed")


def _fp(run: dict) -> str:
    parts = [("driver", run.get("driver")), ("CUDA", run.get("cuda")), ("torch", run.get("torch")),
             ("CuTe DSL", run.get("cutlass_dsl")), ("payload CUDA", run.get("dsl_cuda"))]
    return " · ".join(f"{k} {v}" for k, v in parts if v)


def _trend_link(f: Finding) -> str:
    s = f.series
    return f'trends.html#sku={esc(s.machine)}&amp;suite={esc(s.suite)}&amp;provider={esc(s.provider)}'


def _compare_link(f: Finding) -> str:
    """The compare view of the last run before the change and the first after it."""
    return f'compare.html#a={esc(f.machine)}/{esc(f.before_run)}&amp;b={esc(f.machine)}/{esc(f.after_run)}&amp;sort=ratio&amp;dir=desc'


def _finding_row(f: Finding) -> str:
    s = f.series
    # acknowledged.yaml: an accepted or expected change says so (and by whom, until when); an expired one says that
    ack = f'<br><span class="ack {esc(f.ack_state)}">{esc(f.ack)}</span>' if f.ack_state else ""
    state = f' data-ack="{esc(f.ack_state)}"' if f.ack_state else ""
    return (f'<tr class="finding {esc(f.kind)}" data-machine="{esc(f.machine)}" data-series="{esc(s.uid)}" '
            f'data-kind="{esc(f.kind)}"{state}><td class="{esc(f.kind)}">{esc(f.kind)}{ack}</td>'
            f'<td class="num">{(f.ratio - 1) * 100:+.1f} %</td>'
            f'<td><a href="{_trend_link(f)}" title="{esc(s.case_id)}">{esc(short_case(s.case_id))}</a>'
            f'<br><span class="muted">{esc(s.suite)} · {esc(s.provider)}</span></td>'
            f'<td><a href="{_compare_link(f)}" title="compare the two runs"><code>{esc(f.before_run)}</code> → '
            f'<code>{esc(f.after_run)}</code></a></td>'
            f'<td><code>{esc(f.commit_range)}</code></td><td>{esc(f.evidence)}{"; " + esc(f.note) if f.note else ""}</td></tr>')


FINDING_HEAD = ["change", "size", "series", "runs (last before → first after)", "commits", "evidence"]


def _verdict_class(run) -> str:
    """The run's verdict as one CSS class: 'HARNESS ERROR' -> 'HARNESS-ERROR'."""
    return esc(str(run["result"]).replace(" ", "-"))


def _machine(m: Machine) -> str:
    run = m.last_run
    counts = ", ".join(f"{run[k]} {k}" for k in RESULT_KEYS if run[k])
    head = (f'<h2 id="m-{esc(m.name)}">{esc(m.name)} <span class="badge {_verdict_class(run)}" '
            f'title="{esc(run.get("detail") or "")}">{esc(run["result"])}</span></h2>'
            f'<p>last run <code>{esc(run["run_id"])}</code> at {esc(run["timestamp"])}, commit '
            f'<code>{esc((run["git_sha"] or "?")[:12])}</code>: {esc(counts or "no tests")}<br>'
            f'<span class="muted">{esc(run.get("gpu_name") or "")} · {esc(_fp(run))}</span></p>')
    parts = [head]
    if m.last_perf_run is None:
        parts.append("<p class=muted>No perf runs (coverage only).</p>")
        return f'<section class="machine" data-machine="{esc(m.name)}">{"".join(parts)}</section>'
    if m.last_perf_run["run_id"] != run["run_id"]:
        parts.append(f'<p class=muted>last perf run: <code>{esc(m.last_perf_run["run_id"])}</code></p>')
    parts.append("<h3>New regressions and improvements</h3>")
    parts.append(table(FINDING_HEAD, [_finding_row(f) for f in m.findings], cls="findings")
                 if m.findings else '<p class="none-found">None in the last runs.</p>')
    if m.epochs:
        parts.append("<h3>Epoch changes (new fingerprint: a new baseline, not a regression)</h3>")
        parts.append(table(FINDING_HEAD, [_finding_row(f) for f in m.epochs], cls="epochs"))
    if m.missing:
        items = "".join(f'<li data-series="{esc(k)}"><code>{esc(k)}</code></li>' for k in m.missing)
        parts.append(f'<h3>Missing series ({len(m.missing)})</h3><p class=muted>In the previous perf run or the '
                     f'baseline, absent from the last perf run.</p><ul class="missing">{items}</ul>')
    if m.invalid:
        items = "".join(f'<li><code>{esc(s.key)}</code>: {esc(p.status)} ({esc(p.why_invalid)})</li>' for s, p in m.invalid)
        parts.append(f'<h3>Invalid rows in the last perf run ({len(m.invalid)})</h3><ul class="invalid">{items}</ul>')
    return f'<section class="machine" data-machine="{esc(m.name)}">{"".join(parts)}</section>'


def page(fleet: Fleet, footer: str) -> str:
    rows = []
    for m in fleet.machines.values():
        r = m.last_run
        rows.append(f'<tr data-machine="{esc(m.name)}"><td><a href="#m-{esc(m.name)}">{esc(m.name)}</a></td>'
                    f'<td>{esc(r["timestamp"][:16])}</td><td class="{_verdict_class(r)}">{esc(r["result"])}</td>'
                    + "".join(f'<td class="num">{r[k]}</td>' for k in RESULT_KEYS)
                    + f'<td class="num regression">{sum(f.open for f in m.findings)}</td>'
                    f'<td class="num">{sum(f.ack_state in ("acknowledged", "expected") for f in m.findings)}</td>'
                    f'<td class="num improvement">{sum(f.kind == "improvement" for f in m.findings)}</td>'
                    f'<td class="num">{len(m.epochs)}</td><td class="num">{len(m.missing)}</td>'
                    f'<td class="num">{len(m.invalid)}</td></tr>')
    summary = table(["SKU", "last run (UTC)", "result", *RESULT_KEYS, "regressions", "acknowledged", "improvements",
                     "epochs", "missing", "invalid"], rows, cls="fleet")
    body = summary + "".join(_machine(m) for m in fleet.machines.values())
    return frame("index.html", "Fleet overview", body, footer=footer)
