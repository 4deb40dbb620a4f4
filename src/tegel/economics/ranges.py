"""Plausible ranges of the figures a claim rests on (`data/ranges.yaml`): economic figures of
`economics.yaml`, the chip price basis, and unannounced hardware figures of the presets.

`load_ranges()` reads and checks the file (every bound cited; cites name a source of this file
or of `economics.yaml`, or are labelled); parsing is cached by the file's text. For one claim,
`economic_ranges(a)` and `hardware_ranges(system)` give `Range`s whose central value is the one
in use — the assumption's (an override included) or the preset's; where that value lies outside
the stated bounds, the range is widened to include it and says so (`note`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from tegel.economics.assumptions import Assumptions
from tegel.economics.energy_knobs import FIGURES, current, gpu_power_fraction
from tegel.errors import TegelError
from tegel.hardware import System
from tegel.hardware.cite import check_citations
from tegel.hardware.fields import Cited, Frozen, Source
from tegel.hardware.yamlio import format_validation_error, parse_yaml

RANGES_FILE = Path(__file__).parent / "data" / "ranges.yaml"
ARCHITECTURES = ("gpu", "dataflow")


class FigureRange(Cited):
    """low <= central <= high, each bound cited (`cite` keys: low, central, high or '*')."""

    low: float
    central: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> FigureRange:
        if not self.low <= self.central <= self.high:
            raise ValueError(f"expected low <= central <= high, got {self.low:g}, "
                             f"{self.central:g}, {self.high:g}")
        return self


class Choice(Cited):
    """An assumption with two values: the one in use (`central`) and the other."""

    central: str
    other: str


class RangesFile(Frozen):
    kind: Literal["ranges"] = "ranges"
    description: str = ""
    sources: dict[str, Source]
    economic: dict[str, FigureRange]
    choices: dict[str, Choice] = Field(default_factory=dict)
    hardware: dict[str, dict[str, FigureRange]] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Range:
    """One figure of one claim over its plausible range: `name` as the report shows it, the
    figure (`figure`: an economics.yaml override name or a hardware figure of `energy_knobs`),
    the system it belongs to (None: economic, both systems), bounds, unit and the basis of each
    bound; `note`: what was done to the stated range."""

    name: str
    figure: str
    system: str | None
    label: str
    unit: str
    low: float
    central: float
    high: float
    basis: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"assumption": self.name, "figure": self.figure, "system": self.system,
                "label": self.label, "unit": self.unit, "low": self.low,
                "central": self.central, "high": self.high, "basis": self.basis,
                "note": self.note}


def load_ranges() -> RangesFile:
    """The shipped ranges, validated and citation-checked."""
    try:
        text = RANGES_FILE.read_text(encoding="utf-8")
    except OSError as err:
        raise TegelError(f"{RANGES_FILE}: cannot read: {err.strerror}") from None
    return ranges_from_text(text, str(RANGES_FILE))


@lru_cache(maxsize=4)
def ranges_from_text(text: str, source: str) -> RangesFile:
    """A ranges file from its YAML text (cached by content); cites may also name the sources
    of the shipped economics.yaml."""
    from tegel.economics.assumptions import load_assumptions

    raw = parse_yaml(text, source)
    try:
        out = RangesFile.model_validate(raw)
    except ValidationError as err:
        raise TegelError(format_validation_error(err, raw, source, RangesFile)) from None
    known = {**load_assumptions().sources, **out.sources}
    check_citations(out, raw, source, known)
    for group, figures in out.hardware.items():
        for name in figures:
            if name not in FIGURES:
                raise TegelError(f"{source}: hardware.{group}.{name}: no such hardware figure; "
                                 f"known: {', '.join(FIGURES)}")
    return out


def _basis(r: FigureRange) -> dict[str, str]:
    star = r.cite.get("*", "")
    return {end: r.cite.get(end, star) for end in ("low", "central", "high")}


def _resolved(name: str, figure: str, system: str | None, label: str, unit: str,
              r: FigureRange, value: float) -> Range:
    """A range around the value in use, widened to include it where it lies outside."""
    low, high, note = r.low, r.high, ""
    if not low <= value <= high:
        low, high = min(low, value), max(high, value)
        note = (f"the value in use, {value:g}, lies outside the stated range "
                f"[{r.low:g}, {r.high:g}]; widened to include it")
    elif abs(value - r.central) > 1e-9 * max(1.0, abs(value)):
        note = f"the value in use, {value:g}, differs from the stated central {r.central:g}"
    return Range(name, figure, system, label, unit, low, value, high, _basis(r), note)


def economic_ranges(a: Assumptions, file: RangesFile | None = None) -> list[Range]:
    """Every economic figure with a range, centred on its value in `a`; a map entry `a` does
    not have (a market price of a chip it does not know) is skipped."""
    f = file or load_ranges()
    out = []
    for name, r in f.economic.items():
        try:
            value = a.value(name)
        except (KeyError, AttributeError):
            continue
        out.append(_resolved(name, name, None, name, "", r, value))
    return out


def hardware_ranges(system: System, file: RangesFile | None = None) -> list[Range]:
    """The hardware figures of `system` with a range: its architecture's, its chip's and its own
    entries (the most specific wins), plus a GPU's compute_power_fraction from gpu_power.yaml;
    figures the system does not have are left out."""
    f = file or load_ranges()
    chip = system.chip
    entries: dict[str, FigureRange] = {}
    for key in (chip.architecture, chip.name, system.name):
        entries.update(f.hardware.get(key, {}))
    fraction = current(system, "compute_power_fraction")
    if fraction is not None:
        g = gpu_power_fraction()
        entries["compute_power_fraction"] = FigureRange(
            low=g.low, central=g.central, high=g.high,
            cite={"*": f"derived: hardware/data/gpu_power.yaml: {g.source}"})
    out = []
    for figure, r in entries.items():
        value = current(system, figure)
        if value is None:
            continue
        spec = FIGURES[figure]
        out.append(_resolved(f"{system.name}: {spec.label}", figure, system.name, spec.label,
                             spec.unit, r, value))
    return out
