"""The plausible ranges: every bound cited, central values equal to the figures in use (the
economics file's and the presets'), a value in use outside its range widens it and says so."""

from __future__ import annotations

import pytest

from tegel.economics.assumptions import load_assumptions
from tegel.economics.energy_knobs import FIGURES, current
from tegel.economics.ranges import (
    RANGES_FILE,
    economic_ranges,
    hardware_ranges,
    load_ranges,
    ranges_from_text,
)
from tegel.errors import TegelError
from tegel.hardware import load_system
from tegel.hardware.loader import list_presets

A = load_assumptions()
FILE = load_ranges()


def test_every_economic_central_is_the_shipped_figure() -> None:
    for name, r in FILE.economic.items():
        assert r.central == pytest.approx(A.value(name)), name
        assert set(r.cite) & {"*", "low", "high"}, name
    assert FILE.choices["pricing"].central == A.pricing


def test_every_absolute_hardware_central_is_the_presets_figure() -> None:
    """A preset's own entry states the figure it was written for; a changed preset must
    change its range too."""
    systems = [load_system(p.name) for p in list_presets()]
    checked = 0
    for key, figures in FILE.hardware.items():
        for figure, r in figures.items():
            if figure.endswith("_scale"):
                assert r.central == 1.0, (key, figure)
                continue
            for s in systems:
                if key in (s.name, s.chip.name):
                    assert current(s, figure) == pytest.approx(r.central), (key, figure)
                    checked += 1
    assert checked >= 3


def test_the_issues_figure_has_its_range() -> None:
    """CRAFTWERK's stacked-memory pJ/bit: the preset's 0.1 to the library's default 0.5."""
    ranges = {r.figure: r for r in hardware_ranges(load_system("craftwerk-station"))}
    r = ranges["offchip_pj_per_bit"]
    assert (r.low, r.central, r.high) == (0.1, 0.1, 0.5)
    assert r.basis["high"] and r.system == "craftwerk-station"
    assert {"host_w_per_node", "tdp_scale", "sram_energy_scale", "noc_energy_scale"} <= set(ranges)
    gpu = {r.figure for r in hardware_ranges(load_system("dgx-h100"))}
    assert "compute_power_fraction" in gpu and "tdp_scale" not in gpu
    assert set(ranges) | gpu <= set(FIGURES)


def test_a_value_in_use_outside_its_range_widens_it() -> None:
    a = A.with_overrides({"pue": 2.5, "years": 5})
    got = {r.name: r for r in economic_ranges(a)}
    assert (got["pue"].low, got["pue"].central, got["pue"].high) == (1.1, 2.5, 2.5)
    assert "outside the stated range" in got["pue"].note
    assert got["years"].central == 5 and "differs from the stated central" in got["years"].note


@pytest.mark.parametrize(("edit", "message"), [
    (("low: 1.10\n    central: 1.56", "low: 1.70\n    central: 1.56"), "low <= central <= high"),
    (("low: \"google-pue-cnbc:", "low: \"nowhere:"), "cites unknown source 'nowhere'"),
    (("    tdp_scale:\n", "    tdp_scales:\n"), "no such hardware figure"),
])
def test_a_broken_ranges_file_is_a_one_line_error(edit: tuple[str, str], message: str) -> None:
    text = RANGES_FILE.read_text(encoding="utf-8")
    assert edit[0] in text
    with pytest.raises(TegelError, match=message) as err:
        ranges_from_text(text.replace(edit[0], edit[1], 1), "edited.yaml")
    assert "\n" not in str(err.value)
