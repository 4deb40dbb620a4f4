"""The cost record: adds with `+`, scales, totals, and its breakdown always sums to its total."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tegel.evaluate.cost import CATEGORIES, Category, Cost

_amounts = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)
costs = st.builds(Cost, _amounts, st.tuples(*[_amounts] * len(CATEGORIES)))


def _close(a: Cost, b: Cost, rel: float = 1e-12) -> bool:
    return math.isclose(a.time_s, b.time_s, rel_tol=rel, abs_tol=1e-300) and all(
        math.isclose(x, y, rel_tol=rel, abs_tol=1e-300)
        for x, y in zip(a.energy_by_category_j, b.energy_by_category_j, strict=True))


def test_of_places_each_category_and_fills_the_rest_with_zero() -> None:
    c = Cost.of(2.0, {Category.NOC: 3.0, Category.STATIC: 0.5})
    assert c.time_s == 2.0
    assert c.energy_breakdown_j == {"compute": 0.0, "onchip_sram": 0.0, "noc": 3.0,
                                    "offchip_memory": 0.0, "chip_to_chip": 0.0, "static": 0.5}
    assert c.energy_j == 3.5


def test_zero_cost_is_the_identity_and_total_of_nothing() -> None:
    c = Cost(1.5, tuple(float(i) for i in range(len(CATEGORIES))))
    assert Cost() + c == c
    assert c + Cost() == c
    assert Cost.total([]) == Cost()
    assert Cost().energy_j == 0.0


@settings(max_examples=50, deadline=None)
@given(costs)
def test_breakdown_sums_to_energy(c: Cost) -> None:
    breakdown = c.energy_breakdown_j
    assert list(breakdown) == [cat.value for cat in CATEGORIES]
    assert sum(breakdown.values()) == c.energy_j
    assert math.isclose(c.energy_j, math.fsum(c.energy_by_category_j), rel_tol=1e-12)


@settings(max_examples=50, deadline=None)
@given(costs, costs)
def test_add_sums_time_and_each_category(a: Cost, b: Cost) -> None:
    s = a + b
    assert s.time_s == a.time_s + b.time_s
    assert s.energy_by_category_j == tuple(
        x + y for x, y in zip(a.energy_by_category_j, b.energy_by_category_j, strict=True))
    assert s == b + a
    assert math.isclose(s.energy_j, a.energy_j + b.energy_j, rel_tol=1e-12, abs_tol=1e-300)


@settings(max_examples=50, deadline=None)
@given(costs, costs, costs)
def test_add_is_associative(a: Cost, b: Cost, c: Cost) -> None:
    assert _close((a + b) + c, a + (b + c))


@settings(max_examples=50, deadline=None)
@given(costs, st.floats(min_value=0.0, max_value=1e3, allow_nan=False))
def test_scaled_multiplies_time_and_every_category(c: Cost, factor: float) -> None:
    s = c.scaled(factor)
    assert s.time_s == c.time_s * factor
    assert s.energy_by_category_j == tuple(e * factor for e in c.energy_by_category_j)
    assert math.isclose(s.energy_j, c.energy_j * factor, rel_tol=1e-12, abs_tol=1e-300)
    assert c.scaled(1.0) == c
    assert c.scaled(2.0) == c + c
    assert c.scaled(0.0) == Cost()


@settings(max_examples=50, deadline=None)
@given(st.lists(costs, max_size=8))
def test_total_is_the_running_sum(parts: list[Cost]) -> None:
    expected = Cost()
    for p in parts:
        expected = expected + p
    total = Cost.total(parts)
    assert total == expected
    assert Cost.total(iter(parts)) == expected  # any iterable, consumed once
    assert math.isclose(total.energy_j, math.fsum(p.energy_j for p in parts),
                        rel_tol=1e-9, abs_tol=1e-300)
    assert sum(total.energy_breakdown_j.values()) == total.energy_j


@settings(max_examples=50, deadline=None)
@given(costs, st.integers(min_value=1, max_value=20))
def test_scaled_by_n_equals_n_copies_added(c: Cost, n: int) -> None:
    assert _close(c.scaled(n), Cost.total([c] * n), rel=1e-12)


def test_cost_is_frozen() -> None:
    c = Cost(1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.time_s = 2.0
