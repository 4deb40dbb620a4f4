"""The cost record every evaluator returns: time and energy by category, adding with `+`.

Totals are derived from the breakdown, so they cannot disagree with it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


class Category(enum.Enum):
    """Where energy goes: arithmetic, each class of data movement, and static power."""

    COMPUTE = "compute"
    ONCHIP_SRAM = "onchip_sram"
    NOC = "noc"
    OFFCHIP_MEMORY = "offchip_memory"
    CHIP_TO_CHIP = "chip_to_chip"
    STATIC = "static"


CATEGORIES: tuple[Category, ...] = tuple(Category)
_ZERO = (0.0,) * len(CATEGORIES)


@dataclass(frozen=True, slots=True)
class Cost:
    """Seconds and joules of some work; `energy_by_category_j` is indexed like CATEGORIES."""

    time_s: float = 0.0
    energy_by_category_j: tuple[float, ...] = _ZERO

    @classmethod
    def of(cls, time_s: float, energy_j: Mapping[Category, float]) -> Cost:
        return cls(time_s, tuple(energy_j.get(c, 0.0) for c in CATEGORIES))

    @property
    def energy_j(self) -> float:
        return sum(self.energy_by_category_j)

    @property
    def energy_breakdown_j(self) -> dict[str, float]:
        return {c.value: e for c, e in zip(CATEGORIES, self.energy_by_category_j, strict=True)}

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.time_s + other.time_s,
                    tuple(a + b for a, b in zip(self.energy_by_category_j,
                                                other.energy_by_category_j, strict=True)))

    def scaled(self, factor: float) -> Cost:
        """The cost of doing the same work `factor` times over (time and energy)."""
        return Cost(self.time_s * factor, tuple(e * factor for e in self.energy_by_category_j))

    @staticmethod
    def total(costs: Iterable[Cost]) -> Cost:
        out = Cost()
        for c in costs:
            out = out + c
        return out
