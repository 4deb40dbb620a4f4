"""Load chips and systems by preset name or file; every error names file, line, field, expectation.

A document's top-level `kind` is `chip`, `chip_template` or `system`. Presets live in
`data/presets/NAME.yaml` (the file name is the preset name) and must cite every figure; user files
are checked the same way except that uncited figures are allowed (`tegel hw validate --strict`
reports them). Loading a chip fills the figures it leaves out from its node's technology
(`derive.complete_chip`); loading a template expands it (`template.expand`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tegel.errors import TegelError, short
from tegel.hardware.cite import check_citations, require_cited
from tegel.hardware.derive import complete_chip, complete_system
from tegel.hardware.schema import Chip
from tegel.hardware.system import System, replica_name, replicated
from tegel.hardware.technology import DATA_DIR, load_technology
from tegel.hardware.template import ChipTemplate, expand
from tegel.hardware.yamlio import (
    LineDict,
    decode,
    format_validation_error,
    locate,
    parse_yaml,
    read_yaml,
)

PRESET_DIR = DATA_DIR / "presets"
KINDS = ("chip", "chip_template", "system")

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class PresetInfo:
    """One shipped preset: its name, whether it is a chip or a system, and a line about it."""

    name: str
    kind: str  # "chip" (chips and chip templates) or "system"
    description: str
    path: Path
    architecture: str = ""  # "gpu" or "dataflow" (a system: its chip's)
    chips: int = 1  # chips in a system preset


def list_presets() -> list[PresetInfo]:
    """Every shipped preset, chips first, then systems, each sorted by name (read as text, not
    loaded: a system's architecture is that of its chip, inline or by preset name)."""
    raws = {path.stem: read_yaml(path) for path in sorted(PRESET_DIR.glob("*.yaml"))}
    out = []
    for name, raw in raws.items():
        kind = "system" if raw.get("kind") == "system" else "chip"
        chip = raw.get("chip") if kind == "system" else raw
        if isinstance(chip, str):
            chip = raws.get(chip, {})
        arch = str(chip.get("architecture", "")) if isinstance(chip, dict) else ""
        chips = int(raw.get("chip_count", 1)) if kind == "system" else 1
        out.append(PresetInfo(name, kind, str(raw.get("description", "")).strip(),
                              PRESET_DIR / f"{name}.yaml", arch, chips))
    return sorted(out, key=lambda p: (p.kind != "chip", p.name))


def resolve_path(name_or_path: str, relative_to: Path | None = None) -> Path:
    """The file a preset name or path refers to; TegelError lists close preset names."""
    if not name_or_path.strip() or "\0" in name_or_path:
        raise TegelError(f"expected a preset name or a file, got {short(name_or_path)}")
    candidate = Path(name_or_path)
    if relative_to is not None and not candidate.is_absolute():
        nearby = relative_to / candidate
        if _is_file(nearby):
            return nearby
    if _is_file(candidate):
        return candidate
    if candidate.suffix in (".yaml", ".yml") or "/" in name_or_path:
        raise TegelError(f"{_shown(name_or_path)}: no such file")
    return PRESET_DIR / f"{preset_name(name_or_path)}.yaml"


def _shown(text: str, limit: int = 160) -> str:
    """A file name as an error message shows it: cut to `limit` characters."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_file(path: Path) -> bool:
    """Whether `path` is a file; False, not OSError, for a name too long or otherwise bad."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def preset_name(name: str) -> str:
    """The shipped preset `name` refers to, case-insensitively; TegelError suggests close names
    (difflib) or lists them all."""
    names = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
    key = name.strip().lower()[:300]
    found = next((n for n in names if n.lower() == key), None)
    if found is not None:
        return found
    close = difflib.get_close_matches(key, [n.lower() for n in names], n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; presets: {', '.join(names)}"
    raise TegelError(f"no preset or file named {short(name)}{hint}")


def _validate(cls: type[M], raw: Any, source: str, prefix: tuple[int | str, ...] = ()) -> M:
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        raise TegelError(format_validation_error(err, raw, source, cls, prefix)) from None


def _kind(raw: LineDict, source: str) -> str:
    kind = raw.get("kind")
    if kind not in KINDS:
        line = raw.key_lines.get("kind", raw.line)
        raise TegelError(
            f"{source}:{line}: kind: expected one of {', '.join(KINDS)}, got {short(kind)}")
    return str(kind)


def _read(path: Path, data: bytes) -> tuple[LineDict, str]:
    source = str(path)
    raw = parse_yaml(decode(data, source), source)
    kind = _kind(raw, source)
    if path.parent.resolve() == PRESET_DIR.resolve():
        require_cited(raw, source)
        if raw.get("name") != path.stem:
            line = raw.key_lines.get("name", 1)
            raise TegelError(
                f"{source}:{line}: name: expected {path.stem!r} (the file name), "
                f"got {short(raw.get('name'))}"
            )
    return raw, kind


def _technology_for(
    node: str, raw: LineDict, source: str, prefix: tuple[int | str, ...] = ()
) -> Any:
    try:
        return load_technology(node)
    except TegelError as err:
        raise TegelError(f"{source}:{locate(raw, (*prefix, 'node'))}: node: {err}") from None


def _chip_from(raw: LineDict, kind: str, source: str, prefix: tuple[int | str, ...] = ()) -> Chip:
    """A completed chip from a raw chip or chip_template mapping."""
    if kind == "chip_template":
        template = _validate(ChipTemplate, raw, source, prefix)
        check_citations(template, raw, source, template.sources)
        technology = _technology_for(template.node, raw, source, prefix)
        try:
            chip = expand(template, technology)
        except ValidationError as err:  # a derived figure outside the schema's bounds
            raise TegelError(f"{source}:{locate(raw, prefix)}: the chip this template expands "
                             f"to is not plausible: {err.errors()[0]['msg']}") from None
    else:
        chip = _validate(Chip, raw, source, prefix)
        check_citations(chip, raw, source, chip.sources)
        chip = complete_chip(chip, _technology_for(chip.node, raw, source, prefix))
    problem = chip.reticle_problem()
    if problem:
        key = "die_area_mm2" if kind == "chip" else "rows"
        raise TegelError(f"{source}:{locate(raw, (*prefix, key))}: {key}: {problem}")
    return chip


# path -> (its bytes, the (path, bytes) of every file it was built from, the document); an entry
# serves only while all those files still hold the same bytes
_CACHE: dict[Path, tuple[bytes, tuple[tuple[Path, bytes], ...], Chip | System]] = {}
_CACHE_SIZE = 256
_LOADING: list[Path] = []  # files being loaded, outermost first (a file naming itself: an error)
_DEPS: list[list[tuple[Path, bytes]]] = []  # per file being loaded, the files it read


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise TegelError(f"{_shown(str(path))}: cannot read: {err.strerror}") from None


def _unchanged(deps: tuple[tuple[Path, bytes], ...]) -> bool:
    for dep, data in deps:
        try:
            if dep.read_bytes() != data:
                return False
        except OSError:
            return False
    return True


def _load_path(path: Path) -> Chip | System:
    """The chip or system in `path`, cached by content: by its own bytes and those of every file
    it names (a system's chip file, a GPU's `same_silicon_as` preset), so an edited or broken
    file is read again, never served from an old load. A file that names itself, directly or
    through others, is a TegelError."""
    data = _read_bytes(path)
    hit = _CACHE.get(path)
    if hit is not None and hit[0] == data and _unchanged(hit[1]):
        doc, deps = hit[2], hit[1]
    else:
        if path in _LOADING:
            chain = " -> ".join(p.name for p in (*_LOADING[_LOADING.index(path):], path))
            raise TegelError(f"{_LOADING[-1]}: refers back to itself ({chain}); a chip or "
                             "system cannot be built from itself")
        _LOADING.append(path)
        _DEPS.append([])
        try:
            doc = _load_content(path, data)
        finally:
            _LOADING.pop()
            deps = tuple(_DEPS.pop())
        _CACHE.pop(path, None)
        while len(_CACHE) >= _CACHE_SIZE:
            del _CACHE[next(iter(_CACHE))]
        _CACHE[path] = (data, deps, doc)
    if _DEPS:
        _DEPS[-1].extend(((path, data), *deps))
    return doc


def _load_content(path: Path, text: bytes) -> Chip | System:
    raw, kind = _read(path, text)
    source = str(path)
    if kind != "system":
        return _chip_from(raw, kind, source)
    data = dict(raw)
    chip_raw = raw.get("chip")
    line = raw.key_lines.get("chip", raw.line)
    if isinstance(chip_raw, str):
        data["chip"] = load_chip(str(resolve_path(chip_raw, path.parent)))
    elif isinstance(chip_raw, LineDict):
        data["chip"] = _chip_from(chip_raw, _kind(chip_raw, f"{source} (chip)"), source)
    else:
        raise TegelError(
            f"{source}:{line}: chip: expected a preset name, a file or a chip mapping, "
            f"got {short(chip_raw)}"
        )
    system = _validate(System, data, source)
    check_citations(system, raw, source, system.sources, skip=frozenset({"chip"}))
    return complete_system(system, load_technology(system.chip.node))


def load_chip(name_or_path: str) -> Chip:
    """A chip by preset name or chip/template file, every figure resolved (SI units)."""
    path = resolve_path(name_or_path).resolve()
    doc = _load_path(path)
    if isinstance(doc, System):
        raise TegelError(
            f"{name_or_path} is a system of {doc.chip_count} x {doc.chip.name}, not a chip; "
            "use load_system"
        )
    return doc


def load_system(name_or_path: str) -> System:
    """A system by preset name or file; a chip name or chip file gives a one-chip system.
    `NxNAME` (`2xdgx-h100`, `16xh100-sxm`, `16x-h100-sxm`) is N of a system preset or file, or N
    chips of a chip in nodes like its smallest node preset (`replicated`)."""
    match = _REPLICA.fullmatch(name_or_path.strip())
    if match is not None and not _is_file(Path(name_or_path)):
        if len(match[1]) > 7:
            raise TegelError(f"{short(name_or_path)}: expected at most 10^7 chips")
        return _replica(int(match[1]), match[2])
    doc = _load_path(resolve_path(name_or_path).resolve())
    return doc if isinstance(doc, System) else System.single(doc)


_REPLICA = re.compile(r"(\d+)\s*[x\u00d7*]\s*-?(.+)", re.IGNORECASE)


def _replica(count: int, name: str) -> System:
    doc = _load_path(resolve_path(name).resolve())
    if isinstance(doc, System):
        return replicated(doc, count * doc.chip_count, replica_name(count, doc.name))
    label = replica_name(count, doc.name)
    if count == 1:
        return System.single(doc)
    return replicated(node_for(doc.name), count, label)


def node_for(chip: str) -> System:
    """The smallest shipped one-node system of several `chip` chips (the node `NxCHIP` is built
    of); TegelError where no preset holds that chip."""
    nodes = []
    for info in list_presets():
        raw = read_yaml(info.path)
        if info.kind == "system" and str(raw.get("chip", "")).lower() == chip.lower():
            system = load_system(info.name)
            if system.chip_count == system.chips_per_node > 1:
                nodes.append(system)
    if not nodes:
        raise TegelError(
            f"no node preset holds {chip} chips, so N x {chip} has no scale-up or scale-out "
            "network to use; name a system preset or file instead (e.g. 2xdgx-h100)")
    return min(nodes, key=lambda s: (s.chip_count, s.name))


def validate_file(path: str, strict: bool = False) -> System:
    """Load `path` as a user file would be; with `strict`, uncited figures are errors too."""
    resolved = resolve_path(path)
    if strict:
        require_cited(read_yaml(resolved), str(resolved))
    return load_system(str(resolved))
