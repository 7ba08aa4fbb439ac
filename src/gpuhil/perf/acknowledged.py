"""Acknowledged regressions and expected changes (baselines/acknowledged.yaml), applied to the verdicts.

Each entry names one series of one SKU's baseline (suite|case_id|provider on `sku`, the folder name:
`h100`, `h100-as-h20`), what it covers, why, who said so and until when:

    kind          acknowledged: a known slowdown accepted for now (a SLOW it covers is ACK, not failing);
                  expected: a wanted change (a new DSL release, a trade-off made on purpose): runs after it
                  are judged against the baseline entries after it only, so the baseline resets
    commits       A..B: the change landed after commit A and is in commit B (the range the dashboard
                  prints for a change), with `since`, when the first run at B started: the gate has no
                  git history, so "after the change" is decided by time. A run (or baseline entry) is
                  covered when it is at B, or started at or after `since`, and is not at A
    fingerprint   ID: covered are the runs (and entries) of that probe fingerprint
    reason, who   one line each
    added, until  dates: the entry holds through `until`, at most MAX_DAYS after `added`

An entry whose `until` has passed covers nothing any more: the series fails again and its note says the
entry expired. The date is always passed in (`today`), never read here. A malformed file is one
PerfInputError naming the file, line, entry and field.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError

from .. import ids
from ..catalog.matrix import StrictDateLoader
from .baseline import Entry, Verdict, judge, unusable
from .store import series_key
from .validate import PerfInputError, key_problem

FILE = "acknowledged.yaml"  # beside goals.yaml and the SKU folders in baselines/
# A quarter: long enough for an upstream fix or the next DSL/driver release to land, short enough that an
# accepted slowdown is looked at again before it is forgotten; the same order as known issues' expiries.
MAX_DAYS = 90
MAX_BYTES = 1 << 20
KINDS = ("acknowledged", "expected")
COMMITS = re.compile(r"([0-9a-f]{7,40})\.\.([0-9a-f]{7,40})")
FINGERPRINT = re.compile(r"[0-9a-f]{8,64}")
FIELDS = ("series", "sku", "kind", "commits", "since", "fingerprint", "reason", "who", "added", "until")


def check_series(value: str) -> str:
    parts = value.split("|")
    if len(parts) != 3:
        raise ValueError(f"{value!r} is not a series key 'suite|case_id|provider'")
    problem = ids.id_problem(parts[0])
    if problem:
        raise ValueError(f"suite {parts[0]!r}: {problem}")
    for what, part in zip(("case_id", "provider"), parts[1:]):
        if key_problem(part):
            raise ValueError(f"{what} of {value!r} is empty")
    return value


def _sku(value: str) -> str:
    problem = ids.id_problem(value)
    if problem:
        raise ValueError(f"{value!r}: {problem} (the baseline folder: h100, or h100-as-h20 for an emulated run)")
    return value


def _line(value: str) -> str:
    if not value.strip():
        raise ValueError("empty: say it in one line")
    if any(ord(c) < 32 for c in value):
        raise ValueError("one line: no line breaks or control characters")
    return value.strip()


def _commits(value: Any) -> tuple[str, str]:
    m = COMMITS.fullmatch(value) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"{value!r} is not A..B: two git shas (7 to 40 lower-case hex digits) joined by '..'")
    a, b = m.groups()
    if a.startswith(b) or b.startswith(a):
        raise ValueError(f"{value!r}: the two ends name the same commit")
    return a, b


def _fingerprint(value: str) -> str:
    if not FINGERPRINT.fullmatch(value):
        raise ValueError(f"{value!r} is not a probe fingerprint_id (hex digits, as in the perf rows)")
    return value


def day(value: Any) -> dt.date:
    """A calendar date: YAML's date, or the same text quoted. Never a number (pydantic would read 20261231 as
    seconds since 1970) nor a time of day."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a real date") from None
    raise ValueError(f"{value!r} is not a date YYYY-MM-DD")


def instant(value: Any) -> dt.datetime | None:
    """An ISO 8601 time as an aware datetime (no offset: UTC, as the history reads run times), or None."""
    if isinstance(value, dt.datetime):
        t = value
    elif isinstance(value, str):
        try:
            t = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def _since(value: Any) -> dt.datetime:
    t = instant(value)
    if t is None:
        raise ValueError(f"{value!r} is not an ISO 8601 time (when the first run at B started)")
    return t


Line = Annotated[str, AfterValidator(_line)]


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    series: Annotated[str, AfterValidator(check_series)]
    sku: Annotated[str, AfterValidator(_sku)]
    kind: Literal["acknowledged", "expected"]
    commits: Annotated[tuple[str, str], BeforeValidator(_commits)] | None = None
    since: Annotated[dt.datetime, BeforeValidator(_since)] | None = None
    fingerprint: Annotated[str, AfterValidator(_fingerprint)] | None = None
    reason: Line
    who: Line
    added: Annotated[dt.date, BeforeValidator(day)]
    until: Annotated[dt.date, BeforeValidator(day)]

    @property
    def scope(self) -> str:
        return f"fingerprint {self.fingerprint}" if self.fingerprint else f"commits {self.commits[0]}..{self.commits[1]}"

    @property
    def label(self) -> str:
        """How the gate and the dashboard show it: 'acknowledged (reason, who, until 2027-01-31)'."""
        what = "acknowledged" if self.kind == "acknowledged" else "expected change"
        return f"{what} ({self.reason}, {self.who}, until {self.until})"

    def active(self, today: dt.date) -> bool:
        return today <= self.until

    def covers(self, fingerprint_id: Any, git_sha: Any, timestamp: Any) -> bool:
        """Whether a run (or a baseline entry) with these values is after the change."""
        if self.fingerprint is not None:
            return fingerprint_id == self.fingerprint
        before, after = self.commits
        sha = git_sha or ""
        if sha.startswith(before):
            return False
        if sha.startswith(after):
            return True
        t = instant(timestamp)
        return t is not None and t >= self.since

    def document(self) -> dict[str, Any]:
        """The entry as the file holds it (field order of FIELDS, absent scope fields left out)."""
        doc = {"series": self.series, "sku": self.sku, "kind": self.kind}
        if self.fingerprint:
            doc["fingerprint"] = self.fingerprint
        else:
            doc["commits"] = f"{self.commits[0]}..{self.commits[1]}"
            doc["since"] = self.since.isoformat()
        return {**doc, "reason": self.reason, "who": self.who, "added": self.added, "until": self.until}


def entry_problem(a: Acknowledgement, today: dt.date | None) -> tuple[str, str] | None:
    """(field, why) for what no single field says: one scope, since with commits, the dates' horizon."""
    if a.commits is None and a.fingerprint is None:
        return "commits", "missing: give one scope, commits (A..B, with since) or fingerprint"
    if a.commits is not None and a.fingerprint is not None:
        return "fingerprint", "give one scope, commits or fingerprint, not both"
    if a.commits is not None and a.since is None:
        return "since", "missing: with commits, since is when the first run at B started (ISO 8601)"
    if a.fingerprint is not None and a.since is not None:
        return "since", "only goes with commits (a fingerprint scope covers that fingerprint's runs)"
    if a.until < a.added:
        return "until", f"{a.until} is before added {a.added}"
    if (a.until - a.added).days > MAX_DAYS:
        return "until", (f"{a.until} is {(a.until - a.added).days} days after added {a.added}: at most {MAX_DAYS} "
                         "(look at it again and add a new entry then)")
    if today is not None and a.added > today:
        return "added", f"{a.added} is after today ({today})"
    return None


def _entry_lines(text: str) -> tuple[list[int], str | None]:
    """The line of each entry, and the first duplicate key (YAML keeps the last of two silently)."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    lines, dupe = [], None

    def walk(n: yaml.Node) -> None:
        nonlocal dupe
        if isinstance(n, yaml.MappingNode):
            keys = [k.value for k, _ in n.value]
            for i, (k, v) in enumerate(n.value):
                if dupe is None and k.value in keys[:i]:
                    dupe = f"line {k.start_mark.line + 1}: key '{k.value}' appears twice"
                walk(v)
        elif isinstance(n, yaml.SequenceNode):
            for v in n.value:
                walk(v)

    if node is not None:
        walk(node)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == "entries" and isinstance(v, yaml.SequenceNode):
                    lines = [e.start_mark.line + 1 for e in v.value]
    return lines, dupe


def parse(path: Path, text: str, today: dt.date | None) -> list[Acknowledgement]:
    """The entries of a file's text, checked; PerfInputError (one line: file, line, entry, field) otherwise."""
    try:
        if any(isinstance(ev, yaml.AliasEvent) for ev in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise PerfInputError(f"{path}: YAML aliases are not allowed here: write each value out")
        lines, dupe = _entry_lines(text)
        doc = yaml.load(text, Loader=StrictDateLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark else ""
        raise PerfInputError(f"{path}{at}: not valid YAML ({getattr(exc, 'problem', None) or exc})".splitlines()[0]) from None
    except RecursionError:
        raise PerfInputError(f"{path}: nested too deeply") from None
    if dupe:
        raise PerfInputError(f"{path}: {dupe}")
    if not isinstance(doc, dict) or "entries" not in doc:
        raise PerfInputError(f"{path}: missing field 'entries' (a list; see docs/PERF_SCHEMA.md)")
    extra = sorted(str(k) for k in doc if k not in ("schema", "entries"))
    if extra:
        raise PerfInputError(f"{path}: unknown top-level field '{extra[0]}' (fields: schema, entries)")
    if doc.get("schema", 1) != 1 or isinstance(doc.get("schema"), bool):
        raise PerfInputError(f"{path}: field 'schema' is {doc.get('schema')!r}; this gpuhil reads schema 1")
    if not isinstance(doc["entries"], list):
        raise PerfInputError(f"{path}: field 'entries' must be a list (or [] for none)")
    out: list[Acknowledgement] = []
    for i, raw in enumerate(doc["entries"]):
        at = f"{path}:{lines[i]}" if i < len(lines) else str(path)
        name = raw.get("series") if isinstance(raw, dict) else None
        where = f"{at}: entry {i}" + (f" ({name})" if isinstance(name, str) else "")
        if not isinstance(raw, dict):
            raise PerfInputError(f"{where}: expected a mapping with fields {', '.join(FIELDS)}")
        try:
            entry = Acknowledgement.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err["loc"][:1]) or "?"
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"unknown field (fields: {', '.join(FIELDS)})"
            elif err["type"] == "missing":
                msg = "missing"
            raise PerfInputError(f"{where}: field '{field}': {msg}") from None
        problem = entry_problem(entry, today)
        if problem:
            raise PerfInputError(f"{where}: field '{problem[0]}': {problem[1]}")
        twin = next((j for j, o in enumerate(out) if (o.series, o.sku, o.kind, o.scope) == (entry.series, entry.sku,
                                                                                                entry.kind, entry.scope)), None)
        if twin is not None:
            raise PerfInputError(f"{where}: field 'series': entry {twin} already is {entry.kind} for this series, SKU "
                                 f"and {entry.scope}: one entry each (change that one)")
        out.append(entry)
    return out


def load(path: Path, today: dt.date | None) -> list[Acknowledgement]:
    """The checked entries of `path`; no file: none (the file is optional)."""
    path = Path(path)
    if not path.exists():
        return []
    if not path.is_file():
        raise PerfInputError(f"{path}: not a regular file")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise PerfInputError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    if len(data) > MAX_BYTES:
        raise PerfInputError(f"{path}: larger than {MAX_BYTES} bytes: not an acknowledgements file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PerfInputError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    return parse(path, text, today)


HEADER = """\
# Acknowledged regressions and expected changes, read by `gpuhil perf compare` (the gate) and the
# dashboard; written by `gpuhil perf acknowledge` (format: docs/PERF_SCHEMA.md). An entry past its
# `until` covers nothing: its series fails again, saying the entry expired. The command rewrites the
# whole file: put what matters in `reason`, not in comments.
"""


def dump(entries: Sequence[Acknowledgement]) -> str:
    body = yaml.safe_dump({"schema": 1, "entries": [e.document() for e in entries]}, sort_keys=False,
                          allow_unicode=True, width=110)
    return HEADER + body


# --- applied to verdicts ------------------------------------------------------------------------------

def of(entries: Sequence[Acknowledgement], sku: str, key: str) -> list[Acknowledgement]:
    return [a for a in entries if a.sku == sku and a.series == key]


def _covers(a: Acknowledgement, row: dict[str, Any]) -> bool:
    return a.covers(row.get("fingerprint_id"), row.get("git_sha"), row.get("timestamp"))


def reset(entries: Sequence[Acknowledgement], row: dict[str, Any], today: dt.date) -> Acknowledgement | None:
    """The active expected change that covers this run (of one series' entries), if any."""
    return next((a for a in entries if a.kind == "expected" and a.active(today) and _covers(a, row)), None)


def after_change(a: Acknowledgement, history: Sequence[Entry]) -> list[Entry]:
    """The baseline entries after an expected change: the history the runs after it are judged against."""
    return [e for e in history if a.covers(e.fingerprint_id, e.git_sha, e.timestamp)]


def verdict(history: Sequence[Entry], row: dict[str, Any], entries: Sequence[Acknowledgement], today: dt.date) -> Verdict:
    """baseline.judge, with the entries of this row's series and SKU (`of`) applied: an active expected change
    judges against the entries after it (EXPECTED while there are none); an active acknowledgement turns a
    SLOW into ACK; a SLOW covered only by an expired entry stays SLOW and says the entry expired."""
    if unusable(row) is not None:  # a crash or a throttled run is what it is, acknowledged or not
        return judge(list(history), row)
    change = reset(entries, row, today)
    if change is not None:
        post = after_change(change, history)
        if not post:
            key = series_key(row.get("suite"), row.get("case_id"), row.get("provider"))
            return Verdict(key, "EXPECTED", None, row.get("median_us"), None, None,
                           f"{change.label}: no baseline entry after it yet; promote a run after it "
                           "(gpuhil perf baseline update) to start the new baseline")
        v = judge(post, row)
        v = replace(v, note=f"{v.note}; baseline reset by {change.label}")
    else:
        v = judge(list(history), row)
    if v.verdict != "SLOW":
        return v
    ack = next((a for a in entries if a.kind == "acknowledged" and a.active(today) and _covers(a, row)), None)
    if ack is not None:
        return replace(v, verdict="ACK", note=f"{ack.label}: {v.note}")
    gone = next((a for a in entries if not a.active(today) and _covers(a, row)), None)
    if gone is not None:
        return replace(v, note=f"{gone.kind} entry expired on {gone.until} ({gone.reason}, {gone.who}): "
                               f"failing again; {v.note}")
    return v


def resetter(entries: Sequence[Acknowledgement], sku: str, today: dt.date) -> Callable[[str, Entry], Callable[[Entry], bool] | None]:
    """For Baseline.add_run: given a series and the entry being promoted, which entries to keep (those after
    an active expected change that covers it), or None when no change covers it."""
    def keep(key: str, new: Entry) -> Callable[[Entry], bool] | None:
        row = {"fingerprint_id": new.fingerprint_id, "git_sha": new.git_sha, "timestamp": new.timestamp}
        change = reset(of(entries, sku, key), row, today)
        return None if change is None else (lambda e: change.covers(e.fingerprint_id, e.git_sha, e.timestamp))
    return keep
