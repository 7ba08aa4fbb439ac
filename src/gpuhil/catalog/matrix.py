"""hardware_matrix.yaml: the SKU catalog, per-SKU test selections and known issues.

Loaded through a schema (pydantic). Every problem is reported as `FILE:LINE: message`, one line each and
all of them at once, so a broken matrix is fixed in one pass.

Selection is by default: every suite folder under suites/ runs on every SKU's runner with
`selection_defaults`; `selections:` holds only a SKU's deltas (tier, providers, exclude, extras).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from yaml.constructor import ConstructorError

from .. import ids
from .predicates import Predicate, PredicateError

ARCH_MARKERS = ("sm80", "sm89", "sm90", "sm100", "sm103", "sm120", "sm121")
# SKU ids and catalog markers become pytest markers: none may take a name that already means something.
RESERVED_MARKERS = ids.RESERVED_MARKERS | frozenset(ARCH_MARKERS)
MATRIX_FILE = "hardware_matrix.yaml"
MAX_MATRIX_BYTES = 1 << 20  # a catalog of every SKU ever made fits many times over; more is a mistake or an attack
# The suites of the checkout this package runs from: checked when no suites/ sits beside the matrix.
CHECKOUT_SUITES = Path(__file__).resolve().parents[3] / "suites"
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


def _pci_device_id(value: str) -> str:
    if not re.fullmatch(r"(0x)?[0-9a-fA-F]{1,4}", value):
        raise ValueError(f"PCI device id {value!r} is not a 16-bit hex id like '0x2330' (0x0000 to 0xffff)")
    return f"0x{int(value, 16):04x}"


PciDeviceId = Annotated[str, AfterValidator(_pci_device_id)]
# Physical quantities: a bool is not a count, and no part has a negative, zero, infinite or NaN one.
Count = Annotated[int, Field(strict=True, gt=0)]
Amount = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]


class Match(_Strict):
    names: list[Text] = []  # the driver's device name (cuDeviceGetName), compared exactly, ignoring case
    pci_device_ids: list[PciDeviceId] = []
    cc: str


class PeakTflops(_Strict):
    bf16: Amount | None = None
    fp8: Amount | None = None
    fp4: Amount | None = None


class Sku(_Strict):
    id: str
    name: str
    arch: Literal["sm80", "sm89", "sm90", "sm100", "sm103", "sm120", "sm121"]
    match: Match
    cc: str = Field(pattern=r"^\d+\.\d+$")
    sm_count: Count | None = None  # None: no public reading; the probe supplies it
    smem_optin_bytes: Count
    smem_per_sm_bytes: Count | None = None
    l2_bytes: Count | None = None
    mem_bytes: Count | None = None
    cluster_launch: bool = Field(strict=True)
    max_cluster_size: int = Field(strict=True, ge=1, le=16)
    mem_bw_gbs: Amount
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


Tier = Literal["default", "full"]


class SelectionDefaults(_Strict):
    """What every SKU's runner runs unless its `selections:` entry says otherwise."""
    tier: Tier = "default"  # "full" adds slow cases
    providers: list[Text] = Field(default=["*"], min_length=1)  # glob patterns over provider names; [] would drop them all
    opt_in: list[SuiteName] = []  # suites that run only where a SKU lists them in `extras`


class SelectionDelta(_Strict):
    """One SKU's differences from the defaults."""
    tier: Tier | None = None
    providers: list[Text] | None = Field(default=None, min_length=1)
    exclude: list[SuiteName] = []  # suites this runner does not run
    extras: list[SuiteName] = []  # opt-in suites this runner does run


@dataclass(frozen=True)
class Selection:
    """What one SKU's runner runs: every suite folder except `skipped`, at `tier`, for providers matching
    one of `providers`."""
    tier: str
    providers: tuple[str, ...]
    skipped: frozenset[str]

    @classmethod
    def resolve(cls, defaults: SelectionDefaults, delta: SelectionDelta | None) -> Selection:
        delta = delta or SelectionDelta()
        skipped = (set(defaults.opt_in) - set(delta.extras)) | set(delta.exclude)
        providers = delta.providers if delta.providers is not None else defaults.providers
        return cls(delta.tier or defaults.tier, tuple(providers), frozenset(skipped))


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
    selection_defaults: SelectionDefaults = SelectionDefaults()
    selections: dict[str, SelectionDelta] = {}
    known_issues: list[KnownIssue] = []

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if isinstance(value, bool):  # True == 1 to Python, not to a reader of the file
            raise ValueError("version is the number 1, not a boolean")
        return value


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
    known_issues: tuple[KnownIssue, ...]
    lines: dict[tuple, int]
    suites_dir: Path | None  # the suites/ the selections were checked against; None: none was found
    selections: dict[str, Selection]  # every SKU's, by id in catalog order: the defaults with its deltas applied

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


class StrictDateLoader(yaml.SafeLoader):
    """SafeLoader whose dates must exist: `2027-02-30` is a problem at its line, not a ValueError (the
    catalog's and the perf acknowledgements' expiry dates)."""


def _real_date(loader: StrictDateLoader, node: yaml.ScalarNode):
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise ConstructorError(None, None, f"'{node.value}' is not a real date ({exc})", node.start_mark) from None


StrictDateLoader.add_constructor("tag:yaml.org,2002:timestamp", _real_date)


def _read(p: Path, shown: str) -> str:
    """The file's text: UTF-8, at most MAX_MATRIX_BYTES, read bounded so a huge or endless file never fills memory."""
    if p.exists() and not p.is_file():
        raise MatrixError(shown, [Problem(0, "not a regular file")])
    try:
        with p.open("rb") as f:
            data = f.read(MAX_MATRIX_BYTES + 1)
    except OSError as exc:
        raise MatrixError(shown, [Problem(0, f"cannot read: {exc.strerror or exc}")]) from None
    if len(data) > MAX_MATRIX_BYTES:
        raise MatrixError(shown, [Problem(0, f"larger than the matrix size cap ({MAX_MATRIX_BYTES} bytes): "
                                             "is this the hardware matrix?")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MatrixError(shown, [Problem(data[:exc.start].count(b"\n") + 1,
                                          f"not UTF-8 text (byte {exc.start}: {exc.reason})")]) from None


MAX_FLOW_DEPTH = 32  # the catalog nests [ ] and { } two deep; PyYAML's scanner is quadratic in this depth
_FLOW_CHARS = re.compile(r"[\[\]{}#\n]")


def _flow_depth_problem(text: str) -> Problem | None:
    """Refuse `[[[[...` nested past MAX_FLOW_DEPTH before YAML sees it: within the size cap such a line
    keeps the parser busy for hours. Brackets in comments do not count; those in prose are balanced and
    stay far below the limit (no quote tracking: an apostrophe in a plain or folded scalar is not a quote)."""
    depth, line, comment = 0, 1, False
    for m in _FLOW_CHARS.finditer(text):
        ch = m.group()
        if ch == "\n":
            line, comment = line + 1, False
        elif comment:
            continue
        elif ch == "#":
            comment = m.start() == 0 or text[m.start() - 1] in " \t"
        elif ch in "[{":
            depth += 1
            if depth > MAX_FLOW_DEPTH:
                return Problem(line, f"[ ] and {{ }} nested more than {MAX_FLOW_DEPTH} deep: not a hardware matrix")
        else:
            depth = max(depth - 1, 0)
    return None


def _yaml_problem(exc: yaml.YAMLError, lines: dict[tuple, int]) -> Problem:
    """One line: what is wrong, at its line, naming the field when the line holds one."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark else 1
    what = "; ".join(x for x in (getattr(exc, "context", None), getattr(exc, "problem", None)) if x)
    fields = [path for path, at in lines.items() if at == line and path]
    where = ".".join(map(str, max(fields, key=len))) + ": " if fields else ""
    kind = "" if isinstance(exc, ConstructorError) else "not valid YAML: "  # a constructor error is a bad value
    return Problem(line, f"{where}{kind}{what or str(exc).splitlines()[0]}")


def suite_folders(suites_dir: Path) -> dict[str, bool]:
    """Every suite under `suites_dir` (a folder) by name, with whether it holds a test file (test_*.py at
    any depth): only those collect anything."""
    return {d.name: any(d.rglob("test_*.py")) for d in sorted(suites_dir.iterdir())
            if d.is_dir() and not d.name.startswith((".", "_"))}


def _find_suites(matrix_path: Path, given: Path | None) -> Path | None:
    """The suites the selections are checked against: `given`, else the suites/ beside the matrix, else
    the suites of the checkout this package runs from (a matrix kept outside the repo); None when neither
    exists."""
    if given is not None:
        return given
    return next((d for d in (matrix_path.parent / "suites", CHECKOUT_SUITES) if d.is_dir()), None)


def load(path: str | os.PathLike | None = None, *, strict: bool = False,
         today: dt.date | None = None, suites_dir: Path | None = None) -> Matrix:
    """Parse and validate. `strict` (matrix check) also makes an expired known issue an error, and so is
    finding no suites to check the selections against."""
    p = Path(path) if path else default_path()
    shown = str(path) if path else str(p)
    text = _read(p, shown)
    lines: dict[tuple, int] = {}
    problems: list[Problem] = []
    too_deep = _flow_depth_problem(text)
    if too_deep:
        raise MatrixError(shown, [too_deep])
    try:
        aliases = _anchors_and_aliases(text)
        if aliases:
            raise MatrixError(shown, aliases)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _line_map(node, (), lines, problems)
        raw = yaml.load(text, Loader=StrictDateLoader)
    except yaml.YAMLError as exc:
        raise MatrixError(shown, [_yaml_problem(exc, lines)]) from None
    except RecursionError:
        raise MatrixError(shown, [Problem(1, "nested too deeply for a hardware matrix")]) from None
    if node is None or not isinstance(raw, dict):
        raise MatrixError(shown, [Problem(1, "expected a mapping with version, skus, selection_defaults, selections, "
                                             "known_issues")])
    try:
        doc = _Document.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(x) for x in err["loc"])
            problems.append(Problem(_line_for(lines, err["loc"]), f"{where}: {err['msg']}"))
        raise MatrixError(shown, problems) from None
    suites = _find_suites(p, suites_dir)
    if suites is None and strict:
        problems.append(Problem(_line_for(lines, ("selections",)),
                                f"no suites/ beside the matrix nor in this gpuhil checkout ({CHECKOUT_SUITES}): "
                                "the selections cannot be checked against the suites; keep the matrix at a checkout's root"))
    problems += _cross_checks(doc, lines, strict, today or dt.date.today(), suites)
    if problems:
        raise MatrixError(shown, problems)
    selections = {sku.id: Selection.resolve(doc.selection_defaults, doc.selections.get(sku.id)) for sku in doc.skus}
    return Matrix(shown, {s.id: s for s in doc.skus}, tuple(doc.known_issues), lines, suites, selections)


def _cross_checks(doc: _Document, lines: dict, strict: bool, today: dt.date, suites_dir: Path | None) -> list[Problem]:
    problems = []
    sku_lines: dict[str, int] = {}
    pci_ids: dict[str, str] = {}
    names: dict[str, str] = {}
    sku_ids = {sku.id for sku in doc.skus}
    for i, sku in enumerate(doc.skus):
        if sku.id in sku_lines:
            problems.append(Problem(lines[("skus", i, "id")], f"duplicate SKU id '{sku.id}' (first at line {sku_lines[sku.id]})"))
        sku_lines.setdefault(sku.id, lines[("skus", i, "id")])
        for j, marker in enumerate(sku.markers):
            if marker in sku_ids:  # `-m <id>` would then collect this SKU's list on that SKU's runner too
                problems.append(Problem(lines[("skus", i, "markers", j)],
                                        f"skus.{i}.markers.{j}: SKU '{sku.id}': marker '{marker}' is a SKU id; a catalog "
                                        "marker names a group of SKUs and must differ from every SKU id"))
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
        if sku.smem_per_sm_bytes is not None and sku.smem_optin_bytes > sku.smem_per_sm_bytes:
            problems.append(Problem(lines[("skus", i, "smem_optin_bytes")],
                                    f"skus.{i}.smem_optin_bytes: SKU '{sku.id}': {sku.smem_optin_bytes} is more than "
                                    f"smem_per_sm_bytes {sku.smem_per_sm_bytes}: a block cannot opt into more than its SM has"))
        if sku.match.cc != sku.cc:
            problems.append(Problem(lines[("skus", i, "match", "cc")], f"SKU '{sku.id}': match.cc {sku.match.cc} differs from cc {sku.cc}"))
    folders = suite_folders(suites_dir) if suites_dir is not None and suites_dir.is_dir() else None
    problems += _selection_checks(doc, lines, folders, suites_dir)
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
        if folders is not None and not any(c in suite for c in "*?[") and suite not in folders:
            problems.append(Problem(lines[("known_issues", i, "applies_to")],
                                    f"known issue '{ki.id}': applies_to.suite '{suite}' is not a suite "
                                    f"(have: {', '.join(folders)}): it would never apply"))
        if strict and ki.expired(today):
            problems.append(Problem(lines[("known_issues", i, "expires")],
                                    f"known issue '{ki.id}' expired on {ki.expires}: re-verify it, then extend or retire it"))
    return problems


def _selection_checks(doc: _Document, lines: dict, folders: dict[str, bool] | None,
                      suites_dir: Path | None) -> list[Problem]:
    """Every suite a selection names exists, every extra is opt-in, and every suite holding tests runs
    somewhere: a typo or an exclude must never drop a suite from every runner in silence."""
    problems = []
    opt_in = doc.selection_defaults.opt_in
    named = [(("selection_defaults", "opt_in", j), f"selection_defaults.opt_in.{j}", s) for j, s in enumerate(opt_in)]
    sku_ids = [sku.id for sku in doc.skus]
    for sel_id, delta in doc.selections.items():
        if sel_id not in sku_ids:
            problems.append(Problem(lines[("selections", sel_id)],
                                    f"selection for unknown SKU '{sel_id}' (known: {', '.join(sku_ids)})"))
        for key in ("exclude", "extras"):
            for j, suite in enumerate(getattr(delta, key)):
                loc = ("selections", sel_id, key, j)
                named.append((loc, f"selections.{sel_id}.{key}.{j}", suite))
                if key == "extras" and suite not in opt_in:
                    problems.append(Problem(lines[loc], f"selections.{sel_id}.extras.{j}: suite '{suite}' is not opt-in "
                                                        "(selection_defaults.opt_in): it runs on every runner already"))
                if key == "exclude" and suite in delta.extras:
                    problems.append(Problem(lines[loc], f"selections.{sel_id}.exclude.{j}: suite '{suite}' is both "
                                                        "excluded and an extra"))
    if folders is None:
        return problems
    for loc, where, suite in named:
        if suite not in folders:
            problems.append(Problem(lines[loc], f"{where}: unknown suite '{suite}': no such folder in {suites_dir} "
                                                f"(have: {', '.join(folders)})"))
    resolved = [Selection.resolve(doc.selection_defaults, doc.selections.get(sku.id)) for sku in doc.skus]
    for suite, has_tests in folders.items():
        if has_tests and all(suite in sel.skipped for sel in resolved):
            if suite in opt_in:
                line = lines[("selection_defaults", "opt_in", opt_in.index(suite))]
                why = "it is opt-in and no SKU lists it in its selection's extras"
            else:  # at the first SKU's exclude of it (every SKU has one)
                first = doc.skus[0].id if doc.skus else None
                at = doc.selections[first].exclude.index(suite) if first in doc.selections else None
                line = _line_for(lines, ("selections", first, "exclude", at) if at is not None else ("selections",))
                why = "every SKU's selection excludes it"
            problems.append(Problem(line, f"suite '{suite}' ({suites_dir / suite}) runs on no runner: {why}"))
    return problems
