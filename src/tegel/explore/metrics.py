"""What a design point is measured by (metrics, with units) and held to (constraints).

Every metric is read from the engine's own results (`economics.evaluate.SystemEconomics`, the
expanded chip and system); nothing here computes a figure of its own beyond a reciprocal or a
ratio of two engine figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tegel.evaluate.cost import CATEGORIES


@dataclass(frozen=True, slots=True)
class Metric:
    unit: str
    text: str


_ENERGY = {f"energy_{c.value}_j_per_token": Metric("J/token", f"energy per token: {c.value}")
           for c in CATEGORIES}

METRICS: dict[str, Metric] = {
    "tokens_per_j": Metric("token/J", "generated tokens per joule (whole system, at the wall)"),
    "energy_j_per_token": Metric("J/token", "energy per generated token (whole system)"),
    **_ENERGY,
    "energy_floor_j_per_token": Metric("J/token", "the energy floor at the design's node "
                                       "(economics/floor.py)"),
    "energy_floor_arithmetic_j_per_token": Metric("J/token", "the floor's arithmetic part"),
    "energy_floor_weights_j_per_token": Metric("J/token", "the floor's weight-read part"),
    "floor_ratio": Metric("x", "energy per token / the floor"),
    "usd_per_mtoken": Metric("USD/Mtoken", "TCO per million tokens (economics/tco.py)"),
    "capital_usd_per_mtoken": Metric("USD/Mtoken", "capital only, per million tokens"),
    "tokens_per_s_per_user": Metric("token/s", "speed per user (1 / median TPOT)"),
    "throughput_tokens_per_s": Metric("token/s", "generated tokens/s of the whole system"),
    "ttft_s": Metric("s", "time to first token (p99 at the operating point; a static run's)"),
    "concurrency": Metric("seqs", "sequences in flight (operating point) or the static batch"),
    "area_mm2": Metric("mm^2", "modelled silicon per package (economics/area.py)"),
    "die_area_mm2": Metric("mm^2", "area of one compute die (the template's derivation)"),
    "package_power_w": Metric("W", "package TDP (the template's derivation)"),
    "power_density_w_per_mm2": Metric("W/mm^2", "package TDP / compute-die area"),
    "system_power_w": Metric("W", "system nameplate power at the wall"),
    "rack_power_w": Metric("W", "nameplate power of a full rack of the system's nodes"),
    "chip_price_usd": Metric("USD", "price of one package (economics/cost.py)"),
    "system_capital_usd": Metric("USD", "chips and hosts of one system"),
    "offchip_bytes_per_s": Metric("B/s", "off-chip memory bandwidth of the system"),
    "chips": Metric("chips", "packages in the system"),
}


@dataclass(frozen=True, slots=True)
class Constraint:
    metric: str
    sense: Literal["max", "min"]


CONSTRAINTS: dict[str, Constraint] = {
    "max_die_area_mm2": Constraint("die_area_mm2", "max"),
    "max_package_power_w": Constraint("package_power_w", "max"),
    "max_power_density_w_per_mm2": Constraint("power_density_w_per_mm2", "max"),
    "max_rack_power_w": Constraint("rack_power_w", "max"),
    "max_system_power_w": Constraint("system_power_w", "max"),
    "max_chip_price_usd": Constraint("chip_price_usd", "max"),
    "max_system_capital_usd": Constraint("system_capital_usd", "max"),
    "max_usd_per_mtoken": Constraint("usd_per_mtoken", "max"),
}
# Hardware constraints read only the expanded design; they are checked before the engine runs.
HARDWARE = frozenset({"max_die_area_mm2", "max_package_power_w", "max_power_density_w_per_mm2",
                      "max_rack_power_w", "max_system_power_w", "max_chip_price_usd",
                      "max_system_capital_usd"})
# Violations the engine reports rather than a constraint of the file.
SLO_SPEED = "slo_tokens_per_s_per_user"
SLO_TTFT = "slo_ttft_s"
MEMORY = "memory_capacity"
BINDING_TOLERANCE = 0.05  # a feasible point's constraint binds within 5% of its limit


def violation(name: str, value: float, limit: float) -> float:
    """How far `value` is beyond the constraint `name` (<= 0: met), relative to the limit."""
    c = CONSTRAINTS[name]
    return (value - limit) / limit if c.sense == "max" else (limit - value) / limit
