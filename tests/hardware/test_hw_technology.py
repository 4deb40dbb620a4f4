"""The technology library: nodes, cited figures, and the scaling rules behaving as stated."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tegel.errors import TegelError
from tegel.hardware import DTYPE_CLASSES, load_technology, node_names
from tegel.hardware.cite import uncited_figures
from tegel.hardware.technology import TECHNOLOGY_FILE, technology_file
from tegel.hardware.yamlio import read_yaml

NODES = ["16nm", "7nm", "5nm", "3nm"]  # oldest first


def test_library_covers_the_required_nodes_and_cites_every_figure() -> None:
    assert set(NODES) <= set(node_names())
    assert uncited_figures(read_yaml(TECHNOLOGY_FILE)) == []
    assert technology_file().sources  # citations were checked while loading


@pytest.mark.parametrize("node", NODES)
def test_every_node_has_every_figure(node: str) -> None:
    tech = load_technology(node)
    assert set(tech.mac_pj) == set(DTYPE_CLASSES)
    for kind in ("hbm2", "hbm2e", "hbm3", "hbm3e", "hbm4", "gddr6", "lpddr5", "stacked_dram"):
        assert tech.dram(kind) > 0
    for kind in ("die_to_die", "nvlink", "serdes", "ethernet"):
        assert tech.link(kind) > 0
    assert tech.wire_pj_per_bit_per_mm > 0 and tech.sram_mib_per_mm2 > 0
    assert tech.wafer_usd > 0 and tech.defect_density_per_cm2 > 0 and tech.logic_mtr_per_mm2 > 0


def test_newer_nodes_are_cheaper_per_op_denser_and_dearer_per_wafer() -> None:
    techs = [load_technology(n) for n in NODES]
    for old, new in itertools.pairwise(techs):
        for dtype in DTYPE_CLASSES:
            assert new.mac_pj[dtype] < old.mac_pj[dtype]
            assert new.mac_area_um2[dtype] < old.mac_area_um2[dtype]
        assert new.sram_read_pj_per_bit(32768) < old.sram_read_pj_per_bit(32768)
        assert new.sram_mib_per_mm2 >= old.sram_mib_per_mm2
        assert new.logic_mtr_per_mm2 > old.logic_mtr_per_mm2
        assert new.wafer_usd > old.wafer_usd


def test_narrower_formats_cost_less() -> None:
    tech = load_technology("5nm")
    order = ["fp32", "fp16", "bf16", "fp8", "fp4"]
    energies = [tech.mac_pj[d] for d in order]
    assert energies == sorted(energies, reverse=True)
    assert tech.mac_pj["int4"] < tech.mac_pj["int8"] < tech.mac_pj["fp8"]


def test_7nm_is_the_published_scaling_of_the_45nm_anchor() -> None:
    tech = load_technology("7nm")
    # Horowitz int8 MAC = 0.2 pJ mult + 0.1 pJ int32 add; Stillmaker & Baas 45->7 nm energy x0.094
    assert tech.mac_pj["int8"] == pytest.approx((0.2 + 0.1) * 0.094)
    # 1 MiB SRAM: 100 pJ per 64-bit read at 45 nm
    assert tech.sram_read_pj_per_bit(2**20) == pytest.approx(100 / 64 * 0.094)
    assert tech.pj_per_op("int8") == pytest.approx(tech.mac_pj["int8"] / 2)


@given(st.floats(min_value=1024, max_value=2**30), st.floats(min_value=1.01, max_value=16))
def test_sram_energy_grows_with_macro_size(size: float, factor: float) -> None:
    tech = load_technology("5nm")
    assert tech.sram_read_pj_per_bit(size * factor) > tech.sram_read_pj_per_bit(size)


def test_node_names_are_normalised_and_unknown_nodes_rejected() -> None:
    assert load_technology("N5") is load_technology("5nm")
    with pytest.raises(TegelError, match="known: 16nm, 7nm, 5nm, 3nm"):
        load_technology("2nm")
