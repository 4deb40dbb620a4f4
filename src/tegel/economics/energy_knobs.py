"""The hardware figures `tegel claim` moves over their plausible ranges, and how a system is
rebuilt with them moved.

Each figure (`FIGURES`) is set to a value — an absolute figure (`offchip_pj_per_bit`,
`compute_power_fraction`, `host_w_per_node`, `rack_overhead_w`) or a factor on what the hardware
derived (`*_scale`, 1 = as loaded) — and the system is derived again by the hardware's own rules,
so everything that follows from the figure follows:

- a chip made from a template (`hardware/template.py`; CRAFTWERK) is expanded again from its
  template, with the off-chip pJ/bit set in the template and the scale factors applied to the
  technology library's SRAM, wire + router, MAC and leakage figures: its TDP (every resource at
  full rate) and idle power are derived again. `tdp_scale` then sets its nameplate to that share
  of the derived sum.
- any other chip has the figure replaced where it was loaded. A GPU's arithmetic pJ/op is derived
  at load from (TDP - idle) x compute_power_fraction / peak (`hardware/data/gpu_power.yaml`):
  `compute_power_fraction` rescales exactly those entries, and moving its idle power derives
  them again by the same rule.
- host power per node and rack overhead are the system's.

`system_at(system, {figure: value, ...})` applies several figures at once (the joint worst and
best cases of `tornado.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import yaml

from tegel.errors import TegelError
from tegel.hardware import Chip, StorageLevel, System, load_technology
from tegel.hardware.derive import complete_chip
from tegel.hardware.loader import PRESET_DIR
from tegel.hardware.technology import DATA_DIR, Technology
from tegel.hardware.template import ChipTemplate, expand
from tegel.hardware.yamlio import read_yaml

GPU_POWER_FILE = DATA_DIR / "gpu_power.yaml"
_FROM_TDP = "derived: (TDP - idle)"  # how the hardware cites a pJ/op it derived from TDP
_FROM_TEMPLATE = "derived: template"  # how an expanded template cites its TDP


@dataclass(frozen=True, slots=True)
class Figure:
    """One movable hardware figure: its label, unit ('x': a factor on the derived value) and
    what it belongs to ('chip' or 'system')."""

    label: str
    unit: str
    of: str


FIGURES: dict[str, Figure] = {
    "offchip_pj_per_bit": Figure("off-chip memory pJ/bit", "pJ/bit", "chip"),
    "offchip_energy_scale": Figure("off-chip memory pJ/bit (x derived)", "x", "chip"),
    "sram_energy_scale": Figure("on-chip SRAM pJ/bit (x derived)", "x", "chip"),
    "noc_energy_scale": Figure("NoC + wire pJ/bit (x derived)", "x", "chip"),
    "mac_energy_scale": Figure("arithmetic pJ/op (x bottom-up MAC)", "x", "chip"),
    "compute_power_fraction": Figure("arithmetic share of dynamic power at peak", "", "chip"),
    "leakage_scale": Figure("leakage / idle power (x derived)", "x", "chip"),
    "tdp_scale": Figure("nameplate (x derived all-units-at-once TDP)", "x", "chip"),
    "host_w_per_node": Figure("host power per node", "W", "system"),
    "rack_overhead_w": Figure("rack overhead power", "W", "system"),
}


@dataclass(frozen=True, slots=True)
class FractionRange:
    """compute_power_fraction of `gpu_power.yaml`: central value, range and source."""

    low: float
    central: float
    high: float
    source: str


@lru_cache(maxsize=4)
def _gpu_power(text: str) -> FractionRange:
    data = yaml.safe_load(text)
    return FractionRange(float(data["low"]), float(data["compute_power_fraction"]),
                         float(data["high"]), " ".join(str(data.get("source", "")).split()))


def gpu_power_fraction() -> FractionRange:
    """The GPU power model's figure as the hardware data file states it (read afresh)."""
    return _gpu_power(GPU_POWER_FILE.read_text(encoding="utf-8"))


def pj_from_tdp(chip: Chip) -> bool:
    """Whether the chip's arithmetic energy was derived from its TDP (the GPU power model)."""
    unit = chip.tiles.compute
    return any(unit.cite.get(f"pj_per_op.{d}", "").startswith(_FROM_TDP) for d in unit.pj_per_op)


def from_template(chip: Chip) -> bool:
    """Whether the chip was expanded from a chip template (its TDP derived by the template)."""
    return chip.cite.get("tdp_w", "").startswith(_FROM_TEMPLATE)


def current(system: System, figure: str) -> float | None:
    """The figure's value in `system` as loaded (scales: 1); None where it has no such figure
    (no off-chip memory, no host power, arithmetic not derived from TDP)."""
    chip = system.chip
    if figure.endswith("_scale"):
        if figure == "offchip_energy_scale" and chip.offchip is None:
            return None
        return 1.0
    if figure == "offchip_pj_per_bit":
        return chip.offchip_pj_per_bit if chip.offchip is not None else None
    if figure == "compute_power_fraction":
        return gpu_power_fraction().central if pj_from_tdp(chip) else None
    if figure == "host_w_per_node":
        return system.host.host_w_per_node or None
    if figure == "rack_overhead_w":
        return system.host.rack_overhead_w or None
    raise TegelError(f"unknown hardware figure {figure!r}; known: {', '.join(FIGURES)}")


def system_at(system: System, values: Mapping[str, float]) -> System:
    """`system` with each figure set to its value and everything derived from it derived again
    (module doc). `system` must be as loaded: scale factors apply to its derived figures."""
    unknown = sorted(set(values) - set(FIGURES))
    if unknown:
        raise TegelError(f"unknown hardware figure {unknown[0]!r}; known: {', '.join(FIGURES)}")
    chip_values = {k: v for k, v in values.items() if FIGURES[k].of == "chip"}
    chip = system.chip
    if chip_values:
        template = _template(chip.name) if from_template(chip) else None
        chip = (_expanded(template, chip_values) if template is not None
                else _moved_chip(chip, chip_values))
    host = system.host
    if "host_w_per_node" in values:
        base = host.host_w_per_node
        idle = host.idle_host_w_per_node
        f = values["host_w_per_node"] / base if base else 1.0
        host = host.model_copy(update={"host_w_per_node": values["host_w_per_node"],
                                       "idle_host_w_per_node": None if idle is None else idle * f})
    if "rack_overhead_w" in values:
        host = host.model_copy(update={"rack_overhead_w": values["rack_overhead_w"]})
    return system.model_copy(update={"chip": chip, "host": host})


@lru_cache(maxsize=16)
def _template(name: str) -> ChipTemplate | None:
    """The shipped chip template named `name` (None: not a shipped template)."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        return None
    raw = read_yaml(path)
    if raw.get("kind") != "chip_template":
        return None
    return ChipTemplate.model_validate(raw)


def _expanded(t: ChipTemplate, values: Mapping[str, float]) -> Chip:
    """The template expanded again on a technology with the scale factors applied."""
    tech = load_technology(t.node)
    if "offchip_pj_per_bit" in values and t.offchip is not None:
        t = t.model_copy(update={"offchip": t.offchip.model_copy(
            update={"pj_per_bit": values["offchip_pj_per_bit"]})})
    if "offchip_energy_scale" in values and t.offchip is not None:
        pj = t.offchip.pj_per_bit if t.offchip.pj_per_bit is not None else tech.dram(t.offchip.kind)
        t = t.model_copy(update={"offchip": t.offchip.model_copy(
            update={"pj_per_bit": pj * values["offchip_energy_scale"]})})
    chip = expand(t, _scaled_technology(tech, values))
    if "tdp_scale" in values:
        tdp = chip.tdp_w * values["tdp_scale"]
        chip = chip.model_copy(update={"tdp_w": max(tdp, chip.idle_w)})
    return chip


def _scaled_technology(tech: Technology, values: Mapping[str, float]) -> Technology:
    sram = values.get("sram_energy_scale", 1.0)
    wire = values.get("noc_energy_scale", 1.0)
    mac = values.get("mac_energy_scale", 1.0)
    leak = values.get("leakage_scale", 1.0)
    return tech.model_copy(update={
        "sram_anchor_pj_per_bit": tuple(e * sram for e in tech.sram_anchor_pj_per_bit),
        "wire_pj_per_bit_per_mm": tech.wire_pj_per_bit_per_mm * wire,
        "router_pj_per_bit": tech.router_pj_per_bit * wire,
        "mac_pj": {d: e * mac for d, e in tech.mac_pj.items()},
        "sram_leakage_w_per_mib": tech.sram_leakage_w_per_mib * leak,
        "logic_leakage_w_per_mm2": tech.logic_leakage_w_per_mm2 * leak})


def _moved_chip(chip: Chip, values: Mapping[str, float]) -> Chip:
    """A loaded (non-template) chip with the figures replaced in place."""
    moves_offchip = "offchip_pj_per_bit" in values or "offchip_energy_scale" in values
    if moves_offchip and chip.offchip is not None:
        pj = values.get("offchip_pj_per_bit", chip.offchip_pj_per_bit)
        pj *= values.get("offchip_energy_scale", 1.0)
        chip = chip.model_copy(update={"offchip": chip.offchip.model_copy(
            update={"pj_per_bit": pj})})
    if "sram_energy_scale" in values:
        chip = _sram_scaled(chip, values["sram_energy_scale"])
    if "noc_energy_scale" in values:
        f = values["noc_energy_scale"]
        noc = chip.noc
        chip = chip.model_copy(update={"noc": noc.model_copy(update={
            "pj_per_bit_per_hop": chip.noc_pj_per_bit_per_hop * f,
            "pj_per_bit_per_mm": None if noc.pj_per_bit_per_mm is None
            else noc.pj_per_bit_per_mm * f})})
    if "mac_energy_scale" in values:
        chip = _pj_scaled(chip, values["mac_energy_scale"], from_tdp=False)
    if "leakage_scale" in values:
        chip = _rederived(chip.model_copy(update={"idle_w": chip.idle_w * values["leakage_scale"]}))
    if "tdp_scale" in values:
        tdp = max(chip.tdp_w * values["tdp_scale"], chip.idle_w)
        chip = _rederived(chip.model_copy(update={"tdp_w": tdp}))
    if "compute_power_fraction" in values and pj_from_tdp(chip):
        f = values["compute_power_fraction"] / gpu_power_fraction().central
        chip = _pj_scaled(chip, f, from_tdp=True)
    return chip


def _sram_scaled(chip: Chip, f: float) -> Chip:
    def level(lv: StorageLevel) -> StorageLevel:
        return lv.model_copy(update={"read_pj_per_bit": (lv.read_pj_per_bit or 0.0) * f,
                                     "write_pj_per_bit": (lv.write_pj_per_bit or 0.0) * f})

    tiles = chip.tiles.model_copy(update={"storage": tuple(level(x) for x in chip.tiles.storage)})
    return chip.model_copy(update={"tiles": tiles, "global_storage": tuple(
        level(x) for x in chip.global_storage)})


def _pj_scaled(chip: Chip, f: float, from_tdp: bool) -> Chip:
    """pJ/op entries x f: those derived from TDP (from_tdp) or the others (not from_tdp)."""
    unit = chip.tiles.compute
    pj = {d: v * f if unit.cite.get(f"pj_per_op.{d}", "").startswith(_FROM_TDP) == from_tdp
          else v for d, v in unit.pj_per_op.items()}
    unit = unit.model_copy(update={"pj_per_op": pj})
    return chip.model_copy(update={"tiles": chip.tiles.model_copy(update={"compute": unit})})


def _rederived(chip: Chip) -> Chip:
    """`chip` with the pJ/op figures derived from its TDP and idle power derived again."""
    unit = chip.tiles.compute
    kept = {d: v for d, v in unit.pj_per_op.items()
            if not unit.cite.get(f"pj_per_op.{d}", "").startswith(_FROM_TDP)}
    if len(kept) == len(unit.pj_per_op):
        return chip
    unit = unit.model_copy(update={"pj_per_op": kept})
    bare = chip.model_copy(update={"tiles": chip.tiles.model_copy(update={"compute": unit})})
    return complete_chip(bare, load_technology(chip.node))
