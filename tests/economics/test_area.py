"""The area model: GPUs described at their nodes land near their real dies; parts sum to the
total; templates agree with their own area rule; more of anything costs area."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tegel.economics.area import COMPONENTS, area_rows, chip_area
from tegel.economics.assumptions import load_assumptions
from tegel.hardware import ChipTemplate, expand, list_presets, load_chip, load_system, load_technology
from tegel.hardware.loader import PRESET_DIR
from tegel.hardware.yamlio import read_yaml

A = load_assumptions()
REAL_DIES_MM2 = {"h100-sxm": 814.0, "a100-80gb": 826.0}


@pytest.mark.parametrize("name", sorted(REAL_DIES_MM2))
def test_gpus_land_within_15_percent_of_their_real_dies(name: str) -> None:
    area = chip_area(load_chip(name), A)
    assert area.stated_silicon_mm2 == REAL_DIES_MM2[name]
    assert abs(area.total_mm2 / REAL_DIES_MM2[name] - 1.0) < 0.15, area.breakdown_mm2


def test_h100_is_not_the_calibration_point() -> None:
    """A100's die photo sets the GPU overheads; H100 is predicted from them at 5 nm."""
    h100 = chip_area(load_chip("h100-sxm"), A)
    a100 = chip_area(load_chip("a100-80gb"), A)
    assert abs(a100.error) < 0.03  # calibration
    assert h100.node == "5nm" and a100.node == "7nm"
    assert h100.breakdown_mm2["tile_logic"] / h100.tiles < a100.breakdown_mm2["tile_logic"] / a100.tiles


@pytest.mark.parametrize("name", [p.name for p in list_presets()])
def test_breakdown_sums_to_the_total(name: str) -> None:
    system = load_system(name)
    area = chip_area(system.chip, A, system)
    assert set(area.breakdown_mm2) == set(COMPONENTS)
    assert sum(area.breakdown_mm2.values()) == pytest.approx(area.total_mm2)
    assert all(v >= 0 for v in area.components_mm2)
    assert sum(share for _, _, share in area_rows(area)) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["craftwerk", "ref-dataflow"])
def test_templates_agree_with_their_own_area_rule(name: str) -> None:
    area = chip_area(load_chip(name), A)
    assert abs(area.error) < 0.10


def test_physical_units_are_counted_not_enabled_ones() -> None:
    area = chip_area(load_chip("a100-80gb"), A)
    assert area.tiles == 128 and load_chip("a100-80gb").tile_count == 108
    fewer = A.model_copy(update={"die_inventory": {}})
    assert chip_area(load_chip("a100-80gb"), fewer).total_mm2 < area.total_mm2


BASE = read_yaml(PRESET_DIR / "ref-dataflow.yaml")


def _template(**tile: object) -> ChipTemplate:
    data = dict(BASE)
    data["tile"] = {**BASE["tile"], **tile}
    return ChipTemplate.model_validate(data)


@settings(max_examples=20, deadline=None)
@given(st.floats(min_value=16, max_value=4096), st.floats(min_value=1.1, max_value=4.0),
       st.sampled_from(["16nm", "7nm", "5nm", "3nm"]))
def test_more_macs_or_sram_means_more_area(macs: float, factor: float, node: str) -> None:
    def area(t: ChipTemplate) -> float:
        t = t.model_copy(update={"node": node})
        return chip_area(expand(t, load_technology(node)), A).total_mm2

    base = area(_template(macs_per_cycle=macs))
    assert area(_template(macs_per_cycle=macs * factor)) > base
    assert area(_template(macs_per_cycle=macs, sram_bytes=BASE["tile"]["sram_bytes"] * factor)) > base


def test_newer_node_means_smaller_die() -> None:
    sizes = []
    for node in ("16nm", "7nm", "5nm", "3nm"):
        t = _template().model_copy(update={"node": node})
        sizes.append(chip_area(expand(t, load_technology(node)), A).total_mm2)
    assert sizes == sorted(sizes, reverse=True)
