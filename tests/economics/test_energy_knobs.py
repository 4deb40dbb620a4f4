"""The sensitivity's energy knobs: each moves its figure and what the hardware derives from it,
nothing else; a GPU's arithmetic energy follows its TDP and compute_power_fraction."""

from __future__ import annotations

import pytest

from tegel.economics.energy_knobs import KNOBS, gpu_power_fraction, moved, pj_from_tdp
from tegel.hardware import load_system

GPU = load_system("dgx-h100")
DATAFLOW = load_system("craftwerk-station")


def _pj(system, dtype: str = "bf16") -> float:  # type: ignore[no-untyped-def]
    return system.chip.tiles.compute.pj_per_op[dtype]


def test_which_chips_derive_arithmetic_energy_from_tdp() -> None:
    assert pj_from_tdp(GPU.chip) and not pj_from_tdp(DATAFLOW.chip)


def test_moving_a_gpus_tdp_or_idle_power_derives_its_pj_per_op_again() -> None:
    chip = GPU.chip
    dynamic = chip.tdp_w - chip.idle_w
    tdp = moved(GPU, "tdp_w", 0.25)
    assert tdp is not None
    assert tdp.high.chip.tdp_w == pytest.approx(1.25 * chip.tdp_w)
    assert _pj(tdp.high) == pytest.approx(_pj(GPU) * (1.25 * chip.tdp_w - chip.idle_w) / dynamic)
    idle = moved(GPU, "idle_w", 0.25)
    assert idle is not None
    assert _pj(idle.low) == pytest.approx(_pj(GPU) * (chip.tdp_w - 0.75 * chip.idle_w) / dynamic)


def test_a_gpus_arithmetic_knob_is_its_compute_power_fraction_range() -> None:
    r = gpu_power_fraction()
    assert r.low < r.central < r.high
    knob = moved(GPU, "pj_per_op", 0.25)
    assert knob is not None and "compute_power_fraction" in knob.label
    assert _pj(knob.low) == pytest.approx(_pj(GPU) * r.low / r.central)
    assert _pj(knob.high) == pytest.approx(_pj(GPU) * r.high / r.central)


def test_a_dataflow_chips_knobs_move_only_their_figure() -> None:
    tdp = moved(DATAFLOW, "tdp_w", 0.25)
    assert tdp is not None and _pj(tdp.high) == _pj(DATAFLOW)
    pj = moved(DATAFLOW, "pj_per_op", 0.25)
    assert pj is not None
    assert (_pj(pj.low), _pj(pj.high)) == pytest.approx((0.75 * _pj(DATAFLOW), 1.25 * _pj(DATAFLOW)))
    assert pj.high.chip.tdp_w == DATAFLOW.chip.tdp_w


@pytest.mark.parametrize("key", [k for k, _ in KNOBS])
def test_every_knob_has_a_basis_and_two_ends(key: str) -> None:
    for system in (GPU, DATAFLOW):
        knob = moved(system, key, 0.25)
        if knob is None:
            continue
        assert knob.basis and knob.low != knob.high
        assert knob.low.name == knob.high.name == system.name
