"""The chip template: derived area, peak and power move the way the knobs say they should."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tegel.hardware import ChipTemplate, expand, load_chip, load_technology
from tegel.hardware.loader import PRESET_DIR
from tegel.hardware.yamlio import read_yaml

BASE = ChipTemplate.model_validate(read_yaml(PRESET_DIR / "ref-dataflow.yaml"))


def _with(**changes: object) -> ChipTemplate:
    """The reference template with top-level, `tile.` or `noc.` fields changed."""
    data = BASE.model_dump()
    for key, value in changes.items():
        section, _, field = key.rpartition("__")
        (data[section] if section else data)[field] = value
    return ChipTemplate.model_validate(data)


def _chip(t: ChipTemplate):  # type: ignore[no-untyped-def]
    return expand(t, load_technology(t.node))


def test_preset_is_the_expanded_template() -> None:
    preset = load_chip("ref-dataflow")
    direct = _chip(BASE)
    assert preset.die_area_mm2 == pytest.approx(direct.die_area_mm2)
    assert preset.tdp_w == pytest.approx(direct.tdp_w)
    assert preset.peak_flops_per_s("bf16") == pytest.approx(2 * 1024 * 1024 * 1e9)
    assert preset.peak_flops_per_s("fp4") == pytest.approx(4 * preset.peak_flops_per_s("bf16"))
    assert preset.offchip_bytes == pytest.approx(96e9)
    assert 0 < preset.idle_w < preset.tdp_w


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=2, max_value=64), st.integers(min_value=2, max_value=64))
def test_more_tiles_means_more_area_peak_sram_and_power(rows: int, cols: int) -> None:
    small, large = _chip(_with(rows=rows, cols=cols)), _chip(_with(rows=rows + 1, cols=cols))
    assert large.die_area_mm2 > small.die_area_mm2
    assert large.peak_flops_per_s("bf16") > small.peak_flops_per_s("bf16")
    assert large.sram_bytes_total > small.sram_bytes_total
    assert large.tdp_w > small.tdp_w and large.idle_w > small.idle_w


@settings(max_examples=25, deadline=None)
@given(st.floats(min_value=64, max_value=8192), st.floats(min_value=1.1, max_value=4.0))
def test_more_macs_or_sram_per_tile_means_more_area(macs: float, factor: float) -> None:
    base = _chip(_with(tile__macs_per_cycle=macs))
    more_macs = _chip(_with(tile__macs_per_cycle=macs * factor))
    more_sram = _chip(
        _with(tile__macs_per_cycle=macs, tile__sram_bytes=BASE.tile.sram_bytes * factor)
    )
    assert more_macs.die_area_mm2 > base.die_area_mm2
    assert more_macs.peak_flops_per_s("bf16") == pytest.approx(
        factor * base.peak_flops_per_s("bf16")
    )
    assert more_sram.die_area_mm2 > base.die_area_mm2
    assert more_sram.noc_hop_length_mm > base.noc_hop_length_mm


def test_newer_node_means_smaller_cooler_chip() -> None:
    chips = [_chip(_with(node=n)) for n in ("16nm", "7nm", "5nm", "3nm")]
    for old, new in itertools.pairwise(chips):
        assert new.die_area_mm2 < old.die_area_mm2
        assert new.pj_per_flop("bf16") < old.pj_per_flop("bf16")
        assert new.tdp_w < old.tdp_w


def test_power_adds_up_from_its_parts() -> None:
    chip = _chip(_with(overheads={**BASE.overheads.model_dump(), "power_margin_fraction": 0.0}))
    sram = chip.levels()[0]
    expected = (
        chip.peak_flops_per_s("bf16") * chip.pj_per_flop("bf16")
        + sram.read_bytes_per_s * 8 * sram.read_pj_per_bit
        + chip.tile_count * chip.noc.link_bytes_per_s * 8 * chip.noc_pj_per_bit_per_hop
        + chip.offchip_bytes_per_s * 8 * chip.offchip_pj_per_bit
    ) * 1e-12 + chip.idle_w
    assert chip.tdp_w == pytest.approx(expected)


def test_craftwerk_keeps_its_announced_figures() -> None:
    chip = load_chip("craftwerk")
    assert chip.tile_count == 16384
    assert chip.offchip_bytes == pytest.approx(1e12)
    assert chip.offchip_bytes_per_s == pytest.approx(8e15)
