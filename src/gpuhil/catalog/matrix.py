"""hardware_matrix.yaml: the SKU catalog, per-SKU test selections and known issues.

Loaded through a schema (pydantic). Every problem is reported as `FILE:LINE: message`, all of them at
once, so a broken matrix is fixed in one pass.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from .. import ids
from .predicates import Predicate, PredicateError

ARCH_MARKERS = ("sm80", "sm89", "sm90", "sm100", "sm103", "sm120", "sm121")
# SKU ids and catalog markers become pytest markers: none may take a name that already means something.
RESERVED_MARKERS = ids.RESERVED_MARKERS | frozenset(ARCH_MARKERS)
MATRIX_FILE = "hardware_matrix.yaml"
# Catalog numbers that must each cite where they come from (datasheet, or "read on device DATE").
SOURCED_FIELDS = ("sm_count", "smem_optin_bytes", "smem_per_sm_bytes", "l2_bytes", "mem_bytes",
                  "cluster_launch", "max_cluster_size", "mem_bw_gbs", "peak_tflops")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _required_text(value: str) -> str:
    if not value.strip():
        raise ValueError("empty value: give the text or leave the entry out")
    return value


def _catalog_marker(value: str) -> str:
    problem = ids.marker_problem(value, RESERVED_MARKERS)
    if problem:
        raise ValueError(f"marker {value!r}: {problem}")
    return value


def _suite(value: str) -> str:
    return ids.check_id(value, "suite")  # a suite names a folder and baselines/<sku>/<suite>.json


# Each entry is checked on its own, so a problem is reported at that entry's line.
Text = Annotated[str, AfterValidator(_required_text)]
CatalogMarker = Annotated[str, AfterValidator(_catalog_marker)]
SuiteName = Annotated[str, AfterValidator(_suite)]


class Match(_Strict):
    names: list[Text] = []  # the driver's device name (cuDeviceGetName), compared exactly, ignoring case
    pci_device_ids: list[str] = []
    cc: str

    @field_validator("pci_device_ids")
    @classmethod
    def _hex_ids(cls, values: list[str]) -> list[str]:
        for i in values:
            try:
                int(i, 16)
            except ValueError:
                raise ValueError(f"PCI device id {i!r} is not hex like '0x2330'") from None
        return [f"0x{int(i, 16):04x}" for i in values]


class PeakTflops(_Strict):
    bf16: float | None = None
    fp8: float | None = None
    fp4: float | None = None


class Sku(_Strict):
    id: str
    name: str
    arch: Literal["sm80", "sm89", "sm90", "sm100", "sm103", "sm120", "sm121"]
    match: Match
    cc: str = Field(pattern=r"^\d+\.\d+$")
    sm_count: int | None = Field(default=None, gt=0)  # None: no public reading; the probe supplies it
    smem_optin_bytes: int = Field(gt=0)
    smem_per_sm_bytes: int | None = Field(default=None, gt=0)
    l2_bytes: int | None = Field(default=None, gt=0)
    mem_bytes: int | None = Field(default=None, gt=0)
    cluster_launch: bool
    max_cluster_size: int = Field(ge=1, le=16)
    mem_bw_gbs: float = Field(gt=0)
    peak_tflops: PeakTflops
    markers: list[CatalogMarker] = []
    sources: dict[Text, Text]
    notes: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        problem = ids.marker_problem(value, RESERVED_MARKERS)
        if problem:
            raise ValueError(f"SKU id {value!r}: {problem} (it names folders and the runner's marker)")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _required_text(value)

    @property
    def arch_family(self) -> int:
        return int(self.cc.split(".")[0])


class Selection(_Strict):
    suites: list[SuiteName]
    tier: Literal["default", "full"] = "default"
    providers: list[str] = ["*"]


class AppliesTo(_Strict):
    suite: str = "*"
    test: str = "*"
    params: dict[str, str | int | float | bool] = {}
    provider: str = "*"
    backend: str = "*"  # what a provider is built on (cutlass-cpp, cute-dsl, torch, ...)
    third_party: bool | None = None  # true: only providers registered through the entry point


class KnownIssue(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    when: dict[str, Any]
    applies_to: AppliesTo
    mode: Literal["xfail", "skip"]
    reason: str = Field(min_length=1)
    link: str = Field(pattern=r"^https?://")
    expires: dt.date

    @property
    def predicate(self) -> Predicate:
        return Predicate.parse(self.when)

    def expired(self, today: dt.date | None = None) -> bool:
        return self.expires < (today or dt.date.today())


class _Document(_Strict):
    version: Literal[1]
    skus: list[Sku]
    selections: dict[str, Selection]
    known_issues: list[KnownIssue] = []


@dataclass(frozen=True)
class Problem:
    line: int
    message: str


class MatrixError(Exception):
    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path, self.problems = path, sorted(problems, key=lambda p: p.line)
        super().__init__("\n".join(f"{path}:{p.line}: {p.message}" for p in self.problems))


@dataclass(frozen=True)
class Matrix:
    path: str
    skus: dict[str, Sku]
    selections: dict[str, Selection]
    known_issues: tuple[KnownIssue, ...]
    lines: dict[tuple, int]

    def sku(self, sku_id: str) -> Sku:
        try:
            return self.skus[sku_id]
        except KeyError:
            raise KeyError(f"unknown SKU '{sku_id}' (catalog {self.path} has: {', '.join(self.skus)})") from None

    def line_of(self, *path: Any) -> int:
        return self.lines.get(tuple(path), 1)

    def match(self, name: str | None, pci_device_id: str | None, cc: str | None) -> Sku | None:
        """The catalog row for a probed device: its PCI device id first, else its exact driver name
        (case and repeated spaces ignored), each with cc agreeing; never a substring, so an H20-3e is
        not taken for the H20 nor an H200 NVL for the H200 SXM. No match: an unknown device, which
        runs from its probe alone.

        A SKU name labels results and picks the test list; it never decides what may run.
        """
        pid = _pci_id(pci_device_id)
        if pid:
            for sku in self.skus.values():
                if pid in sku.match.pci_device_ids and (cc is None or sku.cc == cc):
                    return sku
        if name:
            want = _name_key(name)
            for sku in self.skus.values():
                if any(_name_key(n) == want for n in sku.match.names) and (cc is None or sku.cc == cc):
                    return sku
        return None


def _pci_id(raw: str | None) -> str | None:
    try:
        return f"0x{int(raw, 16):04x}" if raw else None
    except ValueError:
        return None


def _name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def default_path() -> Path:
    """$GPUHIL_MATRIX, else the nearest hardware_matrix.yaml from the working directory upwards."""
    env = ids.env_value("GPUHIL_MATRIX")  # set but empty is refused: InvalidValue
    if env:
        return Path(env)
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / MATRIX_FILE).exists():
            return d / MATRIX_FILE
    return Path(__file__).resolve().parents[3] / MATRIX_FILE


def _anchors_and_aliases(text: str) -> list[Problem]:
    """Every anchor (&a) and alias (*a), read from the event stream before anything is built: nested
    aliases expand exponentially ("billion laughs") when the document is walked, and a catalog has no
    use for them, so they are refused outright."""
    by_line: dict[int, str] = {}
    for ev in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(ev, yaml.AliasEvent):
            by_line.setdefault(ev.start_mark.line + 1, f"YAML alias '*{ev.anchor}'")
        elif getattr(ev, "anchor", None):
            by_line.setdefault(ev.start_mark.line + 1, f"YAML anchor '&{ev.anchor}'")
    return [Problem(line, f"{what}: anchors and aliases are not allowed in the matrix; write the value out")
            for line, what in by_line.items()]


def _line_map(node: yaml.Node, path: tuple, out: dict, dupes: list[Problem]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for k, v in node.value:
            key = k.value
            if key in seen:
                dupes.append(Problem(k.start_mark.line + 1, f"duplicate key '{key}'"))
            seen.add(key)
            out[path + (key,)] = k.start_mark.line + 1
            _line_map(v, path + (key,), out, dupes)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _line_map(v, path + (i,), out, dupes)


def _line_for(lines: dict[tuple, int], loc: tuple) -> int:
    loc = tuple(loc)
    while loc and loc not in lines:
        loc = loc[:-1]
    return lines.get(loc, 1)


def load(path: str | os.PathLike | None = None, *, strict_expiry: bool = False,
         today: dt.date | None = None, suites_dir: Path | None = None) -> Matrix:
    """Parse and validate. `strict_expiry` makes an expired known issue an error (matrix check)."""
    p = Path(path) if path else default_path()
    shown = str(path) if path else str(p)
    try:
        text = p.read_text()
    except OSError as exc:
        raise MatrixError(shown, [Problem(0, f"cannot read: {exc.strerror or exc}")]) from None
    try:
        aliases = _anchors_and_aliases(text)
        if aliases:
            raise MatrixError(shown, aliases)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise MatrixError(shown, [Problem(mark.line + 1 if mark else 1, f"not valid YAML: {exc}")]) from None
    if node is None or not isinstance(raw, dict):
        raise MatrixError(shown, [Problem(1, "expected a mapping with version, skus, selections, known_issues")])
    lines: dict[tuple, int] = {}
    problems: list[Problem] = []
    _line_map(node, (), lines, problems)
    try:
        doc = _Document.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(x) for x in err["loc"])
            problems.append(Problem(_line_for(lines, err["loc"]), f"{where}: {err['msg']}"))
        raise MatrixError(shown, problems) from None
    problems += _cross_checks(doc, lines, strict_expiry, today or dt.date.today(), suites_dir or p.parent / "suites")
    if problems:
        raise MatrixError(shown, problems)
    return Matrix(shown, {s.id: s for s in doc.skus}, dict(doc.selections), tuple(doc.known_issues), lines)


def _cross_checks(doc: _Document, lines: dict, strict_expiry: bool, today: dt.date,
                  suites_dir: Path) -> list[Problem]:
    problems = []
    sku_lines: dict[str, int] = {}
    pci_ids: dict[str, str] = {}
    names: dict[str, str] = {}
    for i, sku in enumerate(doc.skus):
        if sku.id in sku_lines:
            problems.append(Problem(lines[("skus", i, "id")], f"duplicate SKU id '{sku.id}' (first at line {sku_lines[sku.id]})"))
        sku_lines.setdefault(sku.id, lines[("skus", i, "id")])
        for j, pid in enumerate(sku.match.pci_device_ids):
            other = pci_ids.setdefault(pid, sku.id)
            if other != sku.id:
                problems.append(Problem(lines[("skus", i, "match", "pci_device_ids", j)],
                                        f"PCI device id {pid} is listed by SKU '{other}' and SKU '{sku.id}': one device, one row"))
        for j, name in enumerate(sku.match.names):
            other = names.setdefault(_name_key(name), sku.id)
            if other != sku.id:
                problems.append(Problem(lines[("skus", i, "match", "names", j)],
                                        f"device name '{name}' is listed by SKU '{other}' and SKU '{sku.id}': one device, one row"))
        for f in SOURCED_FIELDS:
            if getattr(sku, f) is not None and f not in sku.sources:
                problems.append(Problem(lines[("skus", i, f)], f"SKU '{sku.id}': no source for {f}"))
        if not sku.cluster_launch and sku.max_cluster_size != 1:
            problems.append(Problem(lines[("skus", i, "max_cluster_size")],
                                    f"SKU '{sku.id}': cluster_launch is false, so max_cluster_size must be 1"))
        if sku.match.cc != sku.cc:
            problems.append(Problem(lines[("skus", i, "match", "cc")], f"SKU '{sku.id}': match.cc {sku.match.cc} differs from cc {sku.cc}"))
    known_suites = {d.name for d in suites_dir.iterdir() if d.is_dir()} if suites_dir.is_dir() else None
    for sel_id, sel in doc.selections.items():
        if sel_id not in sku_lines:
            problems.append(Problem(lines[("selections", sel_id)],
                                    f"selection for unknown SKU '{sel_id}' (known: {', '.join(sku_lines)})"))
        for j, suite in enumerate(sel.suites):
            if known_suites is not None and suite not in known_suites:
                problems.append(Problem(lines[("selections", sel_id, "suites", j)],
                                        f"selection '{sel_id}': unknown suite '{suite}' (have: {', '.join(sorted(known_suites))})"))
    ki_ids: dict[str, int] = {}
    for i, ki in enumerate(doc.known_issues):
        line = lines[("known_issues", i, "id")]
        if ki.id in ki_ids:
            problems.append(Problem(line, f"duplicate known issue id '{ki.id}' (first at line {ki_ids[ki.id]})"))
        ki_ids.setdefault(ki.id, line)
        try:
            Predicate.parse(ki.when, ("known_issues", i, "when"))
        except PredicateError as exc:
            problems.append(Problem(_line_for(lines, exc.path), f"known issue '{ki.id}': {exc}"))
        suite = ki.applies_to.suite
        if known_suites is not None and not any(c in suite for c in "*?[") and suite not in known_suites:
            problems.append(Problem(lines[("known_issues", i, "applies_to")],
                                    f"known issue '{ki.id}': applies_to.suite '{suite}' is not a suite "
                                    f"(have: {', '.join(sorted(known_suites))}): it would never apply"))
        if strict_expiry and ki.expired(today):
            problems.append(Problem(lines[("known_issues", i, "expires")],
                                    f"known issue '{ki.id}' expired on {ki.expires}: re-verify it, then extend or retire it"))
    return problems
