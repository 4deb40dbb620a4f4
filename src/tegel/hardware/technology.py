"""The technology library: energy, area and cost figures per process node, each with its source.

`data/technology.yaml` holds 45 nm anchor figures (Horowitz, ISSCC 2014) and, per node, the factors
that carry them to that node, plus figures published per node (densities, wafer price, defect
density). `load_technology(node)` resolves one node into a `Technology` whose every figure also
records the rule it came from (`Technology.rules`).

Rules (stated once here, applied in `_resolve`):
- MAC energy/area of a dtype class = multiplier of its base format x (mantissa bits / base bits)^2
  + the adder of its accumulation format, at 45 nm; x `energy_factor` / `area_factor` per node.
- SRAM read energy per bit: Horowitz's 64-bit reads of 8 KiB / 32 KiB / 1 MiB arrays / 64,
  interpolated log-log in macro size (end slopes beyond), x `energy_factor`; write = read x
  `sram_write_factor`.
- wire pJ/bit/mm = the 1 V figure x vdd^2 (wire capacitance per mm roughly constant).
- NoC router pJ/bit = the 45 nm figure x `energy_factor`.
- SRAM array density = anchor Mib/mm^2 x anchor bitcell / node bitcell.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from tegel.errors import TegelError, short
from tegel.hardware.fields import DTYPE_CLASSES, Cited, DtypeClass, Frozen, Positive, Source
from tegel.hardware.yamlio import format_validation_error, read_yaml

DATA_DIR = Path(__file__).parent / "data"
TECHNOLOGY_FILE = DATA_DIR / "technology.yaml"


class MacRule(Frozen):
    """How one dtype class's MAC is built from the anchor parts."""

    mult: str  # anchor multiplier format (fp32, fp16, int8, int32)
    mantissa_bits: Positive  # significand bits incl. the hidden bit (ints: width)
    acc: str  # anchor adder format used to accumulate


class Anchor(Cited):
    """Figures at the 45 nm reference node (Horowitz, ISSCC 2014)."""

    node: str
    mult_pj: dict[str, Positive]
    add_pj: dict[str, Positive]
    mult_area_um2: dict[str, Positive]
    add_area_um2: dict[str, Positive]
    base_bits: dict[str, Positive]  # significand bits of each anchor format
    sram_read_pj_per_64b: dict[str, Positive]  # macro bytes (as text) -> pJ per 64-bit read


class NodeFigures(Cited):
    """Per-node factors and published figures."""

    energy_factor: Positive  # logic energy relative to 45 nm
    area_factor: Positive  # logic area relative to 45 nm
    vdd_v: Positive
    logic_mtr_per_mm2: Positive  # logic transistor density, millions per mm^2
    sram_bitcell_um2: Positive  # high-density bitcell
    wafer_usd: Positive  # 300 mm wafer price
    defect_density_per_cm2: Positive


class TechnologyFile(Cited):
    """The whole `technology.yaml`."""

    kind: str = "technology"
    description: str = ""
    sources: dict[str, Source]
    anchor: Anchor
    mac: dict[DtypeClass, MacRule]
    sram_write_factor: Positive
    sram_density_anchor_mib_per_mm2: Positive
    sram_density_anchor_bitcell_um2: Positive
    wire_pj_per_bit_per_mm_at_1v: Positive
    router_pj_per_bit_45nm: Positive
    sram_leakage_w_per_mib: Positive
    logic_leakage_w_per_mm2: Positive
    dram_pj_per_bit: dict[str, Positive]
    link_pj_per_bit: dict[str, Positive]
    nodes: dict[str, NodeFigures]


class Technology(BaseModel):
    """Resolved figures of one process node (SI-ish: pJ, mm^2, W, USD)."""

    model_config = {"frozen": True}

    node: str
    mac_pj: dict[str, float]  # energy of one MAC (2 ops), pJ
    mac_area_um2: dict[str, float]
    sram_anchor_bytes: tuple[float, ...]
    sram_anchor_pj_per_bit: tuple[float, ...]  # read, at this node
    sram_write_factor: float
    sram_mib_per_mm2: float
    wire_pj_per_bit_per_mm: float
    router_pj_per_bit: float
    sram_leakage_w_per_mib: float
    logic_leakage_w_per_mm2: float
    logic_mtr_per_mm2: float
    wafer_usd: float
    defect_density_per_cm2: float
    vdd_v: float
    dram_pj_per_bit: dict[str, float]
    link_pj_per_bit: dict[str, float]
    rules: dict[str, str] = Field(default_factory=dict)

    def pj_per_op(self, dtype: str) -> float:
        """Energy of one arithmetic operation (half a MAC) in `dtype`, pJ."""
        return self.mac_pj[dtype] / 2.0

    def mac_area_mm2(self, dtype: str) -> float:
        return self.mac_area_um2[dtype] * 1e-6

    def sram_read_pj_per_bit(self, macro_bytes: float) -> float:
        """Read energy per bit of an SRAM macro of `macro_bytes`, log-log interpolated, pJ."""
        xs = [math.log(b) for b in self.sram_anchor_bytes]
        ys = [math.log(e) for e in self.sram_anchor_pj_per_bit]
        x = math.log(macro_bytes)
        i = (
            0
            if x < xs[1]
            else len(xs) - 2
            if x >= xs[-2]
            else next(k for k in range(len(xs) - 1) if xs[k] <= x < xs[k + 1])
        )
        slope = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])
        return math.exp(ys[i] + slope * (x - xs[i]))

    def sram_write_pj_per_bit(self, macro_bytes: float) -> float:
        return self.sram_read_pj_per_bit(macro_bytes) * self.sram_write_factor

    def sram_area_mm2(self, capacity_bytes: float) -> float:
        """Area of SRAM arrays holding `capacity_bytes`, mm^2 (array density incl. periphery)."""
        return capacity_bytes * 8 / (self.sram_mib_per_mm2 * 2**20)

    def dram(self, kind: str) -> float:
        if kind not in self.dram_pj_per_bit:
            raise TegelError(
                f"technology: no DRAM energy for {kind!r}; known: {sorted(self.dram_pj_per_bit)}"
            )
        return self.dram_pj_per_bit[kind]

    def link(self, kind: str) -> float:
        if kind not in self.link_pj_per_bit:
            raise TegelError(
                f"technology: no link energy for {kind!r}; known: {sorted(self.link_pj_per_bit)}"
            )
        return self.link_pj_per_bit[kind]


@functools.cache
def technology_file() -> TechnologyFile:
    """The parsed `technology.yaml` (validated, citations checked)."""
    raw = read_yaml(TECHNOLOGY_FILE)
    try:
        tech = TechnologyFile.model_validate(raw)
    except ValidationError as err:
        raise TegelError(
            format_validation_error(err, raw, str(TECHNOLOGY_FILE), TechnologyFile)
        ) from None
    from tegel.hardware.cite import check_citations  # late: cite imports schema-level helpers

    check_citations(tech, raw, str(TECHNOLOGY_FILE), tech.sources)
    return tech


def node_names() -> list[str]:
    """Process nodes the library covers, e.g. ['16nm', '7nm', '5nm', '3nm']."""
    return list(technology_file().nodes)


def normalize_node(node: str) -> str:
    """`5`, `N5`, `5 nm` -> `5nm`."""
    text = node.strip().lower().replace(" ", "").removeprefix("n")
    return text if text.endswith("nm") else f"{text}nm"


def load_technology(node: str) -> Technology:
    """All figures of one process node (`5nm`, `N5`, `5`), resolved from anchors and factors."""
    return _technology(normalize_node(node))


@functools.cache
def _technology(key: str) -> Technology:
    tech = technology_file()
    if key not in tech.nodes:
        raise TegelError(f"technology: no process node {short(key)}; known: {', '.join(tech.nodes)}")
    return _resolve(tech, key)


def _resolve(tech: TechnologyFile, key: str) -> Technology:
    fig = tech.nodes[key]
    anchor = tech.anchor
    mac_pj: dict[str, float] = {}
    mac_area: dict[str, float] = {}
    rules: dict[str, str] = {}
    for dtype in DTYPE_CLASSES:
        rule = tech.mac.get(dtype)  # type: ignore[call-overload]
        if rule is None:
            continue
        ratio = (rule.mantissa_bits / anchor.base_bits[rule.mult]) ** 2
        mac_pj[dtype] = (
            anchor.mult_pj[rule.mult] * ratio + anchor.add_pj[rule.acc]
        ) * fig.energy_factor
        mac_area[dtype] = (
            anchor.mult_area_um2[rule.mult] * ratio + anchor.add_area_um2[rule.acc]
        ) * fig.area_factor
        rules[f"mac_pj.{dtype}"] = (
            f"({rule.mult} mult x ({rule.mantissa_bits:g}/{anchor.base_bits[rule.mult]:g})^2 "
            f"+ {rule.acc} add) at 45 nm x energy_factor {fig.energy_factor:g}"
        )
    sizes = sorted(anchor.sram_read_pj_per_64b, key=float)
    sram_bytes = tuple(float(s) for s in sizes)
    sram_pj = tuple(anchor.sram_read_pj_per_64b[s] / 64.0 * fig.energy_factor for s in sizes)
    rules["sram_read_pj_per_bit"] = (
        "Horowitz 64-bit read energy / 64, log-log in macro size, x energy_factor"
    )
    rules["wire_pj_per_bit_per_mm"] = (
        f"{tech.wire_pj_per_bit_per_mm_at_1v:g} pJ/bit/mm at 1 V x vdd^2"
    )
    rules["sram_mib_per_mm2"] = "anchor density x anchor bitcell / node bitcell"
    return Technology(
        node=key,
        mac_pj=mac_pj,
        mac_area_um2=mac_area,
        sram_anchor_bytes=sram_bytes,
        sram_anchor_pj_per_bit=sram_pj,
        sram_write_factor=tech.sram_write_factor,
        sram_mib_per_mm2=(
            tech.sram_density_anchor_mib_per_mm2
            * tech.sram_density_anchor_bitcell_um2
            / fig.sram_bitcell_um2
        ),
        wire_pj_per_bit_per_mm=tech.wire_pj_per_bit_per_mm_at_1v * fig.vdd_v**2,
        router_pj_per_bit=tech.router_pj_per_bit_45nm * fig.energy_factor,
        sram_leakage_w_per_mib=tech.sram_leakage_w_per_mib,
        logic_leakage_w_per_mm2=tech.logic_leakage_w_per_mm2,
        logic_mtr_per_mm2=fig.logic_mtr_per_mm2,
        wafer_usd=fig.wafer_usd,
        defect_density_per_cm2=fig.defect_density_per_cm2,
        vdd_v=fig.vdd_v,
        dram_pj_per_bit=dict(tech.dram_pj_per_bit),
        link_pj_per_bit=dict(tech.link_pj_per_bit),
        rules=rules,
    )
