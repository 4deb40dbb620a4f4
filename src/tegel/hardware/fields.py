"""The ground every hardware model stands on: frozen pydantic models that refuse unknown fields,
non-finite numbers and values outside physically generous bounds (by the unit a field's name ends
in), the `Source` a figure comes from and the `cite` map that ties a section's fields to sources.

`hardware/schema.py` builds chips from these; systems, hosts, technology libraries and the
economics data files use them alike, so a bound or a citation rule exists once.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from tegel.errors import short

DtypeClass = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "fp4", "int8", "int4"]
DTYPE_CLASSES: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16", "fp8", "fp4", "int8", "int4")

Positive = Annotated[float, Field(gt=0, strict=True)]
NonNegative = Annotated[float, Field(ge=0, strict=True)]
Count = Annotated[int, Field(ge=1, strict=True)]
NonNegCount = Annotated[int, Field(ge=0, strict=True)]

LABELS = ("assumption", "derived")


# Physically generous bounds on every number a hardware file gives (nonzero magnitudes), by the
# unit its field name ends in; they reject nonsense (1e-300 Hz, 1e308 bytes) and keep what is
# built from a file bounded, without touching any real part. First match wins.
_FLOAT_BOUNDS: tuple[tuple[str, float, float, str], ...] = (
    ("_hz", 1e3, 1e12, " Hz"),
    ("_mm2", 1e-6, 1e6, " mm^2"),
    ("_mm", 1e-6, 1e4, " mm"),
    ("_per_s", 1e-20, 1e20, ""),
    ("_s", 1e-15, 1e4, " s"),
    ("", 1e-20, 1e20, ""),
)
MAX_INT = 10**9  # any integer field (counts, years)
MAX_NAME = 200  # characters of a name
MAX_TEXT = 20_000  # characters of any other text (descriptions, notes, source titles)
MAX_GRID_SIDE = 100_000  # rows or cols of a tile grid
MAX_TILES = 10**7  # tiles on one chip (Cerebras WSE-3: 900,000)
MAX_CHIPS = 10**7  # chips in one system
RETICLE_MM2 = 858.0  # the largest die one lithography exposure prints (26 mm x 33 mm)


def _check_number(field: str, value: object) -> None:
    """Raise ValueError for a number outside the generous bounds for `field`, or a text too long
    (recursing into maps and tuples)."""
    if isinstance(value, dict):
        for item in value.values():
            _check_number(field, item)
    elif isinstance(value, tuple):
        for item in value:
            _check_number(field, item)
    elif isinstance(value, str):
        limit = MAX_NAME if field in ("name", "node", "same_silicon_as") else MAX_TEXT
        if len(value) > limit:
            raise ValueError(f"expected at most {limit:,} characters, got {len(value):,}")
    elif isinstance(value, bool) or not isinstance(value, int | float):
        return
    elif isinstance(value, int):
        if abs(value) > MAX_INT:
            raise ValueError(f"expected an integer of at most {MAX_INT:.0e}, got {short(value)}")
    elif value != 0:
        lo, hi, unit = next((lo, hi, u) for suffix, lo, hi, u in _FLOAT_BOUNDS
                            if field.endswith(suffix))
        if not lo <= abs(value) <= hi:
            raise ValueError(f"expected a value from {lo:g} to {hi:g}{unit} (a physically "
                             f"generous bound), got {short(value)}")


class Frozen(BaseModel):
    """Immutable, unknown fields forbidden, finite numbers within generous physical bounds."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _plausible(cls, value: object, info: ValidationInfo) -> object:
        _check_number(info.field_name or "", value)
        return value


# What kind of page a source is (docs/economics.md, "Sources"): the maker's own page, datasheet,
# whitepaper or financial report (vendor); a peer-reviewed paper or preprint (paper); published
# measurements (benchmark); a specification or rule book (standard); a public code or data
# repository (code); official statistics (statistics); a market analyst's estimate (analyst);
# news or trade press reporting a figure (press); or no outside page at all, a rule stated in
# `note` (assumption).
SourceKind = Literal["vendor", "paper", "benchmark", "standard", "code", "statistics", "analyst",
                     "press", "assumption"]
SOURCE_KINDS: tuple[str, ...] = ("vendor", "paper", "benchmark", "standard", "code", "statistics",
                                 "analyst", "press", "assumption")


class Source(Frozen):
    """Where a figure comes from: a spec sheet, paper, announcement or measurement; `kind` one
    of SOURCE_KINDS (an `assumption` states its rule in `note` and has no URL)."""

    title: str
    url: str = ""
    year: int | None = None
    note: str = ""
    kind: SourceKind | None = None


class Cited(Frozen):
    """A section of figures with its citations: field name -> source id | `assumption: ...`."""

    cite: dict[str, str] = Field(default_factory=dict)

    def cite_key_problem(self, key: str) -> str | None:
        """Why `key` cannot be a cite key here (None if it is `*` or names a field)."""
        fields = set(type(self).model_fields) - {"cite"}
        if key == "*" or key.split(".", 1)[0] in fields:
            return None
        return (f"cite names {short(key)}, which is not a field here; "
                f"expected '*' or one of: {', '.join(sorted(fields))}")

    def basis(self, field: str) -> str:
        """`preset`, `technology`, `power model` or `assumption`: how `field` was obtained."""
        text = self.cite.get(field, self.cite.get("*", ""))
        if text.startswith("derived: technology"):
            return "technology"
        if text.startswith("derived: (TDP - idle)"):
            return "power model"
        if text.startswith("assumption"):
            return "assumption"
        return "preset"


def citation_problem(text: str, sources: dict[str, Source]) -> str | None:
    """Why a cite value is invalid (None if it names a known source or is a labelled figure)."""
    head = text.split(":", 1)[0].strip()
    if head in LABELS or head in sources:
        return None
    known = ", ".join(sorted(sources)) or "none defined"
    return (f"cites unknown source {short(head)} (sources: {known}; "
            "or write 'assumption: ...'/'derived: ...')")
