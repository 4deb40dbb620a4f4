"""Cost: dies per wafer and yield follow their closed forms; breakdowns sum to prices; capital
adds; prices follow the pricing basis."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tegel.economics.assumptions import load_assumptions
from tegel.economics.cost import (
    CapitalCost,
    chip_cost,
    die_cost,
    dies_per_wafer,
    negative_binomial_yield,
    system_capital,
)
from tegel.errors import TegelError
from tegel.hardware import list_presets, load_chip, load_system

A = load_assumptions()


def test_dies_per_wafer_closed_form() -> None:
    d = A.wafer_diameter_mm - 2 * A.edge_exclusion_mm
    expected = math.pi * d * d / 4 / 100 - math.pi * d / math.sqrt(200)
    assert dies_per_wafer(100.0, A) == pytest.approx(expected)
    assert 600 < dies_per_wafer(100.0, A) < 700
    assert dies_per_wafer(46225.0, A) == 1.0  # wafer-scale
    with pytest.raises(TegelError, match="does not fit"):
        dies_per_wafer(80000.0, A)


@settings(max_examples=50, deadline=None)
@given(st.floats(min_value=10, max_value=900), st.floats(min_value=0.01, max_value=0.5),
       st.floats(min_value=0.3, max_value=10))
def test_yield_falls_with_area_and_defects_and_is_a_fraction(area: float, d0: float,
                                                              alpha: float) -> None:
    y = negative_binomial_yield(area, d0, alpha)
    assert 0 < y <= 1
    assert negative_binomial_yield(area * 1.5, d0, alpha) < y
    assert negative_binomial_yield(area, d0 * 1.5, alpha) < y
    assert negative_binomial_yield(area, d0, 1e6) == pytest.approx(math.exp(-d0 * area / 100),
                                                                     rel=1e-3)  # Poisson limit


def test_bigger_dies_cost_more_per_mm2() -> None:
    chip = load_chip("h100-sxm")
    small, large = die_cost(chip, 200.0, 1.0, A), die_cost(chip, 800.0, 1.0, A)
    assert large.good_die_usd / 800 > small.good_die_usd / 200


@pytest.mark.parametrize("name", [p.name for p in list_presets() if p.kind == "chip"])
def test_parts_sum_to_the_price(name: str) -> None:
    cost = chip_cost(load_chip(name), A)
    assert sum(cost.breakdown_usd.values()) == pytest.approx(cost.price_usd)
    assert cost.manufacturing_usd == pytest.approx(cost.price_usd - cost.breakdown_usd["margin"])
    assert all(v >= 0 for v in cost.parts_usd)


def test_pricing_basis() -> None:
    market = chip_cost(load_chip("h100-sxm"), A)
    assert market.basis == "market" and market.price_usd == 27500
    cost = chip_cost(load_chip("h100-sxm"), A.with_overrides({"pricing": "cost"}))
    assert cost.basis == "cost"
    assert cost.price_usd == pytest.approx(cost.manufacturing_usd / (1 - A.gross_margin))
    assert cost.manufacturing_usd == pytest.approx(market.manufacturing_usd)
    # Raymond James puts an H100 at $3,320 to make; the bottom-up figure is the same order
    assert 2000 < cost.manufacturing_usd < 8000


def test_memory_price_moves_the_chip_cost() -> None:
    chip = load_chip("craftwerk")
    base = chip_cost(chip, A)
    dearer = chip_cost(chip, A.with_overrides({"memory_usd_per_gb.stacked_dram": 30}))
    assert dearer.breakdown_usd["memory"] == pytest.approx(2 * base.breakdown_usd["memory"],
                                                           rel=0.01)
    assert dearer.price_usd > base.price_usd


def test_system_capital_adds_up() -> None:
    system = load_system("dgx-h100")
    cap = system_capital(system, A)
    assert cap.chips_usd == pytest.approx(8 * 27500)
    assert cap.hosts_usd == pytest.approx(A.host_usd_per_node)
    assert (cap + cap).total_usd == pytest.approx(2 * cap.total_usd)
    assert cap.scaled(3).total_usd == pytest.approx(3 * cap.total_usd)
    assert CapitalCost().total_usd == 0
