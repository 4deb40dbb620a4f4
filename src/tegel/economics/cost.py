"""Capital cost: wafer -> good die -> package -> chip price -> system price.

- dies per wafer: pi r^2 / A - pi d / sqrt(2 A) on the wafer inside the edge exclusion (one die
  when the die is the wafer);
- yield: negative binomial, Y = (1 + D0 A_crit / alpha)^-alpha, with the node's defect density
  (technology library) and A_crit the die area a defect cannot be repaired in
  (`area.critical_area_fraction`);
- good-die cost = wafer price / (dies per wafer x yield), for every compute and I/O die;
- memory = capacity x price per GB of its kind; packaging on a silicon interposer (memory stacks
  or several dies) priced per mm^2 of interposer, else a flip-chip package per mm^2 of silicon;
  plus test and assembly, and a board (module, power delivery) per chip;
- manufacturing cost = the sum; chip price = a market price where the data file has one and
  pricing is `market`, else cost / (1 - gross margin);
- system = chips x price + nodes x host (CPUs, memory, NICs, chassis, networking).

Every breakdown sums to its total (`CapitalCost.total_usd` is derived from the parts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tegel.economics.area import critical_area_fraction
from tegel.economics.assumptions import Assumptions
from tegel.errors import TegelError
from tegel.hardware import Chip, System, load_technology

_GB = 1e9


@dataclass(frozen=True, slots=True)
class DieCost:
    """One kind of die on one wafer: how many fit, how many work, what a good one costs."""

    area_mm2: float
    dies_per_wafer: float
    yield_fraction: float
    wafer_usd: float

    @property
    def good_die_usd(self) -> float:
        return self.wafer_usd / (self.dies_per_wafer * self.yield_fraction)


CHIP_PARTS = ("dies", "memory", "packaging", "test_assembly", "board", "margin")


@dataclass(frozen=True, slots=True)
class ChipCost:
    """What one chip (package on its board) costs, by part; `margin` is price - manufacturing."""

    chip: str
    parts_usd: tuple[float, ...]  # indexed like CHIP_PARTS
    basis: str  # "market" (a quoted price) or "cost" (manufacturing / (1 - margin))
    compute_die: DieCost

    @property
    def price_usd(self) -> float:
        return sum(self.parts_usd)

    @property
    def manufacturing_usd(self) -> float:
        return self.price_usd - self.parts_usd[-1]

    @property
    def breakdown_usd(self) -> dict[str, float]:
        return dict(zip(CHIP_PARTS, self.parts_usd, strict=True))


@dataclass(frozen=True, slots=True)
class CapitalCost:
    """Capital cost of a system, USD, by part: chips and hosts. Adds with `+`."""

    chips_usd: float = 0.0
    hosts_usd: float = 0.0

    @property
    def total_usd(self) -> float:
        return self.chips_usd + self.hosts_usd

    def __add__(self, other: CapitalCost) -> CapitalCost:
        return CapitalCost(self.chips_usd + other.chips_usd, self.hosts_usd + other.hosts_usd)

    def scaled(self, factor: float) -> CapitalCost:
        return CapitalCost(self.chips_usd * factor, self.hosts_usd * factor)


def dies_per_wafer(area_mm2: float, a: Assumptions) -> float:
    """Whole dies of `area_mm2` on a wafer (square dies, edge loss); 1 for a wafer-scale die."""
    d = a.wafer_diameter_mm - 2.0 * a.edge_exclusion_mm
    usable = math.pi * d * d / 4.0
    if area_mm2 > usable / 4.0:  # the formula breaks down; a die this big is the wafer
        if area_mm2 > usable:
            raise TegelError(f"a {area_mm2:.0f} mm^2 die does not fit a {a.wafer_diameter_mm:g} mm "
                             "wafer")
        return 1.0
    return usable / area_mm2 - math.pi * d / math.sqrt(2.0 * area_mm2)


def negative_binomial_yield(area_mm2: float, defects_per_cm2: float, alpha: float) -> float:
    """Fraction of dies with no killing defect: (1 + D0 A / alpha)^-alpha (A in cm^2)."""
    return (1.0 + defects_per_cm2 * area_mm2 / 100.0 / alpha) ** -alpha


def die_cost(chip: Chip, area_mm2: float, critical_fraction: float,
             a: Assumptions) -> DieCost:
    """Wafer economics of one die of `area_mm2` at the chip's node."""
    tech = load_technology(chip.node)
    y = negative_binomial_yield(area_mm2 * critical_fraction,
                                tech.defect_density_per_cm2 * a.defect_density_factor,
                                a.yield_clustering_alpha)
    return DieCost(area_mm2, dies_per_wafer(area_mm2, a), y, tech.wafer_usd * a.wafer_price_factor)


def chip_cost(chip: Chip, a: Assumptions) -> ChipCost:
    """Price of one chip on its board, by part (rules in the module doc)."""
    pkg = chip.package
    compute = die_cost(chip, chip.die_area_mm2, critical_area_fraction(chip, a), a)
    dies = pkg.compute_dies * compute.good_die_usd
    if pkg.io_dies:
        dies += pkg.io_dies * die_cost(chip, pkg.io_die_area_mm2, 1.0, a).good_die_usd
    memory = 0.0
    stacked_on_interposer = 0
    if chip.offchip is not None:
        kind = chip.offchip.kind
        if kind not in a.memory_usd_per_gb:
            raise TegelError(f"economics: no memory price for {kind!r}; add memory_usd_per_gb.{kind} "
                             f"with --set (known: {', '.join(sorted(a.memory_usd_per_gb))})")
        memory = chip.offchip.capacity_bytes / _GB * a.memory_usd_per_gb[kind]
        if kind != "stacked_dram":
            stacked_on_interposer = max(pkg.memory_stacks, chip.offchip.stacks)
    silicon = chip.silicon_area_mm2
    if pkg.memory_stacks or (chip.offchip and chip.offchip.stacks) or pkg.compute_dies + pkg.io_dies > 1:
        interposer = (silicon + stacked_on_interposer * a.memory_stack_footprint_mm2) * \
            a.interposer_area_factor
        packaging = interposer * a.interposer_usd_per_mm2
    else:
        packaging = silicon * a.flip_chip_usd_per_mm2
    made = (dies, memory, packaging, a.test_assembly_usd_per_package, a.board_usd_per_chip)
    cost = sum(made)
    market = a.market_price_usd.get(chip.name)
    if a.pricing == "market" and market is not None:
        price, basis = market, "market"
    else:
        price, basis = cost / (1.0 - a.gross_margin), "cost"
    return ChipCost(chip.name, (*made, price - cost), basis, compute)


def system_capital(system: System, a: Assumptions) -> CapitalCost:
    """Capital cost of the whole system: its chips at their price plus a host per node."""
    chip = chip_cost(system.chip, a)
    return CapitalCost(chip.price_usd * system.chip_count, a.host_usd_per_node * system.node_count)
