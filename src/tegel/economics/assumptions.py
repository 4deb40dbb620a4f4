"""The economics assumptions: one YAML file (`data/economics.yaml`), every figure cited, every
figure overridable.

`Assumptions` is an immutable value that the area, cost, TCO and claim functions take as an
argument; nothing reads it from a global. `load_assumptions()` reads and checks the shipped file
(every number cited, every cite naming a source or labelled `assumption:`/`derived:`); parsing is
cached by the file's text, so an edited file is read afresh. `Assumptions.with_overrides({"pue":
1.2, "memory_usd_per_gb.hbm3": 10})` returns a copy with fields (or map entries) replaced,
re-validated; a bad name or value is a one-line `TegelError` naming it and what was expected.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from tegel.errors import TegelError
from tegel.hardware.cite import check_citations, require_cited
from tegel.hardware.fields import Cited, NonNegative, Positive, Source
from tegel.hardware.yamlio import format_validation_error, parse_yaml

ECONOMICS_FILE = Path(__file__).parent / "data" / "economics.yaml"

Fraction = float  # validated in `_check_ranges`
Pricing = Literal["market", "cost"]


class AreaFigures(Cited):
    """Unit areas of the area model (`economics.area`); see docs/economics.md for the rules."""

    gpu_tile_logic_transistors: Positive  # SIMT control, schedulers, LD/ST, SFU per GPU tile (SM)
    gpu_crossbar_transistors_per_tile: NonNegative  # SM-to-L2 crossbar, per SM
    gpu_other_mm2: NonNegative  # video engines, PCIe, pads: not scaling with node
    dataflow_logic_overhead_fraction: NonNegative  # on MACs + tile SRAM, as the chip templates
    storage_efficiency: dict[str, Positive]  # "<architecture>.<storage kind>" -> x array density
    memory_phy_mm2_per_stack: dict[str, NonNegative]
    memory_controller_transistors_per_stack: dict[str, NonNegative]
    memory_phy_mm2_per_tb_s: dict[str, NonNegative]  # non-stacked DRAM kinds, per TB/s
    link_phy_mm2_per_link: NonNegative
    link_controller_transistors_per_link: NonNegative
    host_interface_mm2: NonNegative


class DieInventory(Cited):
    """What is physically on a die whose products enable less of it (yield harvesting)."""

    tiles: int | None = None
    global_storage_bytes: float | None = None
    memory_stacks: int | None = None
    links: int | None = None
    critical_area_fraction: float | None = None  # share of the die a defect cannot be repaired in


class Assumptions(Cited):
    """Every figure of the area, cost, TCO and footprint models (SI units, USD)."""

    kind: Literal["economics"] = "economics"
    description: str = ""
    sources: dict[str, Source]
    area: AreaFigures
    die_inventory: dict[str, DieInventory] = Field(default_factory=dict)
    # cost
    wafer_diameter_mm: Positive
    edge_exclusion_mm: NonNegative
    yield_clustering_alpha: Positive
    wafer_price_factor: Positive
    defect_density_factor: NonNegative
    memory_usd_per_gb: dict[str, NonNegative]
    interposer_usd_per_mm2: NonNegative
    interposer_area_factor: Positive
    memory_stack_footprint_mm2: NonNegative
    flip_chip_usd_per_mm2: NonNegative
    test_assembly_usd_per_package: NonNegative
    board_usd_per_chip: NonNegative
    gross_margin: NonNegative
    market_price_usd: dict[str, Positive]
    host_usd_per_node: NonNegative
    pricing: Pricing = "market"
    # TCO and footprint
    years: Positive
    utilization: Positive
    electricity_usd_per_kwh: NonNegative
    pue: Positive
    facility_usd_per_w: NonNegative
    facility_life_years: Positive
    rack_power_limit_w: Positive
    floor_m2_per_rack: Positive
    min_tokens_per_s_per_user: NonNegative

    def with_overrides(self, overrides: Mapping[str, object], flag: str = "--set") -> Assumptions:
        """A copy with `name` or `name.key` replaced by each value (numbers given as text are
        parsed); TegelError names the flag, the name and what was expected."""
        data = self.model_dump()
        for name, value in overrides.items():
            field, _, key = name.partition(".")
            if field == "area" and key:
                field, _, key = key.partition(".")
                target = data["area"]
                fields = AreaFigures.model_fields
            else:
                target, fields = data, Assumptions.model_fields
            if field not in fields or field in _NOT_FIGURES:
                raise TegelError(f"{flag} {name}: no assumption named {field!r}{_hint(field)}")
            parsed = _parse(value, flag, name, text=field == "pricing")
            if key:
                if not isinstance(target[field], dict):
                    raise TegelError(f"{flag} {name}: {field} is a single figure, not a map; "
                                     f"write {field}=VALUE")
                target[field] = {**target[field], key: parsed}
            elif isinstance(target[field], dict):
                raise TegelError(f"{flag} {name}: {field} is a map; write {field}.KEY=VALUE "
                                 f"(keys: {', '.join(sorted(target[field]))})")
            else:
                target[field] = parsed
        try:
            out = Assumptions.model_validate(data)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise TegelError(f"{flag} {where}: {first['msg'].lower()}") from None
        _check_ranges(out, flag)
        return out

    def value(self, name: str) -> float:
        """The figure `name` or `name.key` (as `with_overrides` names it)."""
        field, _, key = name.partition(".")
        obj: Any = self
        if field == "area":
            obj, (field, _, key) = self.area, key.partition(".")
        current = getattr(obj, field)
        return float(current[key] if key else current)


    def changes_from(self, base: Assumptions) -> dict[str, object]:
        """The figures that differ from `base`, named as `with_overrides` names them."""
        out: dict[str, object] = {}
        mine, theirs = self.model_dump(), base.model_dump()
        for field in Assumptions.model_fields:
            if field in _NOT_FIGURES:
                continue
            if field == "area":
                for sub in AreaFigures.model_fields:
                    if sub != "cite":
                        _diff(f"area.{sub}", mine["area"][sub], theirs["area"][sub], out)
                continue
            _diff(field, mine[field], theirs[field], out)
        return out


_NOT_FIGURES = ("sources", "cite", "kind", "description", "die_inventory")


def _diff(name: str, mine: object, theirs: object, out: dict[str, object]) -> None:
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                out[f"{name}.{key}"] = mine.get(key)
    elif mine != theirs:
        out[name] = mine


def _hint(name: str) -> str:
    names = [n for n in Assumptions.model_fields if n not in ("sources", "cite", "kind")]
    close = difflib.get_close_matches(name, names, n=3)
    return f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(names)}"


def _parse(value: object, flag: str, name: str, text: bool = False) -> object:
    if text or not isinstance(value, str):
        return value
    try:
        return float(value)
    except ValueError:
        raise TegelError(f"{flag} {name}: expected a number, got {value!r}") from None


def _check_ranges(a: Assumptions, flag: str) -> None:
    for name in ("utilization", "gross_margin"):
        value = getattr(a, name)
        if not 0 < value <= 1 or (name == "gross_margin" and value >= 1):
            raise TegelError(f"{flag} {name}: expected a fraction in (0, 1), got {value:g}")
    if a.pue < 1:
        raise TegelError(f"{flag} pue: expected >= 1 (total facility power / IT power), got {a.pue:g}")


def load_assumptions() -> Assumptions:
    """The shipped assumptions, validated and citation-checked (a fresh value on each call)."""
    try:
        text = ECONOMICS_FILE.read_text(encoding="utf-8")
    except OSError as err:
        raise TegelError(f"{ECONOMICS_FILE}: cannot read: {err.strerror}") from None
    return assumptions_from_text(text, str(ECONOMICS_FILE)).model_copy(deep=True)


@lru_cache(maxsize=8)
def assumptions_from_text(text: str, source: str) -> Assumptions:
    """Assumptions from the YAML text of an economics file, checked like the shipped one;
    `source` names the file in errors. Cached by content: the text is the key."""
    raw = parse_yaml(text, source)
    require_cited(raw, source)
    try:
        out = Assumptions.model_validate(raw)
    except ValidationError as err:
        raise TegelError(format_validation_error(err, raw, source, Assumptions)) from None
    check_citations(out, raw, source, out.sources)
    _check_ranges(out, source)
    return out


def parse_set_flags(items: list[str] | None, flag: str = "--set") -> dict[str, str]:
    """`["pue=1.2", "memory_usd_per_gb.hbm3=10"]` -> {name: value text}; TegelError on bad form."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise TegelError(f"{flag} {item!r}: expected NAME=VALUE, e.g. {flag} pue=1.2")
        out[name.strip()] = value.strip()
    return out
