"""Hardware figures moved and the system derived again: each moves its figure and what the
hardware derives from it, nothing else; a template's TDP follows its energies; a GPU's
arithmetic energy follows its TDP and compute_power_fraction."""

from __future__ import annotations

import pytest

from tegel.economics.energy_knobs import (
    FIGURES,
    current,
    from_template,
    gpu_power_fraction,
    pj_from_tdp,
    system_at,
)
from tegel.errors import TegelError
from tegel.hardware import load_system

GPU = load_system("dgx-h100")
DATAFLOW = load_system("craftwerk-station")


def _pj(system, dtype: str = "bf16") -> float:  # type: ignore[no-untyped-def]
    return system.chip.tiles.compute.pj_per_op[dtype]


def test_which_chips_derive_what() -> None:
    assert pj_from_tdp(GPU.chip) and not pj_from_tdp(DATAFLOW.chip)
    assert from_template(DATAFLOW.chip) and not from_template(GPU.chip)


@pytest.mark.parametrize("system", [GPU, DATAFLOW], ids=["gpu", "template"])
def test_every_figure_at_its_current_value_rebuilds_the_same_system(system) -> None:  # type: ignore[no-untyped-def]
    values = {k: v for k in FIGURES if (v := current(system, k)) is not None}
    assert values  # the system has figures to move
    same = system_at(system, values)
    assert same.chip.tdp_w == pytest.approx(system.chip.tdp_w, rel=1e-12)
    assert same.chip.idle_w == pytest.approx(system.chip.idle_w, rel=1e-12)
    assert _pj(same) == pytest.approx(_pj(system), rel=1e-12)
    assert same.chip.offchip_pj_per_bit == pytest.approx(system.chip.offchip_pj_per_bit)
    assert same.idle_w == pytest.approx(system.idle_w, rel=1e-12)


def test_a_templates_tdp_follows_its_stacked_memory_energy() -> None:
    """TDP = (MAC + SRAM + NoC + memory at full rate) x (1 + margin) + idle: 0.4 pJ/bit more
    on 8 PB/s adds 8e15 x 8 x 0.4e-12 x 1.2 W per package, and nothing else moves."""
    moved = system_at(DATAFLOW, {"offchip_pj_per_bit": 0.5})
    chip, base = moved.chip, DATAFLOW.chip
    added = base.offchip_bytes_per_s * 8 * 0.4e-12 * 1.2
    assert chip.offchip_pj_per_bit == 0.5
    assert chip.tdp_w - base.tdp_w == pytest.approx(added, rel=1e-9)
    assert chip.idle_w == pytest.approx(base.idle_w) and _pj(moved) == _pj(DATAFLOW)
    assert chip.die_area_mm2 == base.die_area_mm2


def test_a_templates_scales_apply_to_the_technology_it_is_derived_from() -> None:
    base = DATAFLOW.chip
    mac = system_at(DATAFLOW, {"mac_energy_scale": 2.0}).chip
    assert mac.pj_per_flop("bf16") == pytest.approx(2 * base.pj_per_flop("bf16"))
    assert mac.tdp_w > base.tdp_w
    leak = system_at(DATAFLOW, {"leakage_scale": 3.0}).chip
    assert leak.idle_w == pytest.approx(3 * base.idle_w)
    sram = system_at(DATAFLOW, {"sram_energy_scale": 0.5}).chip
    assert sram.levels()[0].read_pj_per_bit == pytest.approx(0.5 * base.levels()[0].read_pj_per_bit)
    noc = system_at(DATAFLOW, {"noc_energy_scale": 2.0}).chip
    assert noc.noc_pj_per_bit_per_hop == pytest.approx(2 * base.noc_pj_per_bit_per_hop)
    half = system_at(DATAFLOW, {"tdp_scale": 0.5}).chip
    assert half.tdp_w == pytest.approx(0.5 * base.tdp_w) and half.idle_w == base.idle_w


def test_a_gpus_arithmetic_follows_compute_power_fraction_and_its_tdp_rule() -> None:
    r = gpu_power_fraction()
    assert r.low < r.central < r.high
    high = system_at(GPU, {"compute_power_fraction": r.high})
    assert _pj(high) == pytest.approx(_pj(GPU) * r.high / r.central)
    assert high.chip.tdp_w == GPU.chip.tdp_w
    idle = system_at(GPU, {"leakage_scale": 0.5})
    assert idle.chip.idle_w == pytest.approx(0.5 * GPU.chip.idle_w)
    assert _pj(idle) > _pj(GPU)  # more of the TDP left above idle for arithmetic
    hbm = system_at(GPU, {"offchip_energy_scale": 1.5})
    assert hbm.chip.offchip_pj_per_bit == pytest.approx(1.5 * GPU.chip.offchip_pj_per_bit)
    assert _pj(hbm) == _pj(GPU)


def test_host_figures_belong_to_the_system() -> None:
    moved = system_at(DATAFLOW, {"host_w_per_node": 4600.0, "rack_overhead_w": 2000.0})
    assert moved.chip == DATAFLOW.chip
    host = DATAFLOW.host
    assert host.psu is not None and DATAFLOW.host.nameplate_w_per_node is None

    def node_wall(host_w: float) -> float:  # chips at TDP and the host, fans, supplies' loss
        cooled = (DATAFLOW.chip.tdp_w * DATAFLOW.chips_per_node + host_w) * (1 + host.fan_fraction)
        return cooled / host.psu.efficiency_at(cooled)  # type: ignore[union-attr]

    assert moved.tdp_w - DATAFLOW.tdp_w == pytest.approx(
        node_wall(4600.0) - node_wall(3000.0) + 1000.0 * DATAFLOW.rack_share)
    assert moved.idle_w > DATAFLOW.idle_w


def test_figures_a_system_lacks_and_unknown_figures() -> None:
    assert current(DATAFLOW, "compute_power_fraction") is None
    assert current(load_system("h100-sxm"), "host_w_per_node") is None
    with pytest.raises(TegelError, match="unknown hardware figure 'pj'"):
        system_at(GPU, {"pj": 1.0})
