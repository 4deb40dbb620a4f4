"""The energy figures of a system that `tegel claim`'s sensitivity moves, and how each is moved.

Each knob gives two copies of a system, its figure at the low and the high end, with everything
else unchanged except what the hardware derives from it:

- off-chip memory pJ/bit, on-chip SRAM pJ/bit (every level), arithmetic pJ/op, chip idle power,
  chip TDP, host power per node: x (1 - swing) and x (1 + swing);
- a GPU's arithmetic pJ/op is not a free figure: the hardware derives it at load from
  (TDP - idle) x compute_power_fraction / peak (`hardware/data/gpu_power.yaml`). On a GPU the
  arithmetic knob therefore moves compute_power_fraction over its stated range (low..high), and
  moving TDP or idle power derives the pJ/op again by the hardware's own rule (`complete_chip`).
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from tegel.hardware import Chip, StorageLevel, System, load_technology
from tegel.hardware.derive import complete_chip
from tegel.hardware.technology import DATA_DIR

GPU_POWER_FILE = DATA_DIR / "gpu_power.yaml"
_FROM_TDP = "derived: (TDP - idle)"  # how the hardware cites a pJ/op it derived from TDP

KNOBS = (("offchip_pj_per_bit", "off-chip memory pJ/bit"),
         ("sram_pj_per_bit", "on-chip SRAM pJ/bit"),
         ("pj_per_op", "arithmetic pJ/op"),
         ("idle_w", "chip idle (static) power"),
         ("tdp_w", "chip TDP (nameplate power)"),
         ("host_w", "host power per node"))


@dataclass(frozen=True, slots=True)
class Moved:
    """One knob of one system at both ends: what it is, its basis, and the two systems."""

    label: str
    basis: str
    low: System
    high: System


@dataclass(frozen=True, slots=True)
class FractionRange:
    """compute_power_fraction of `gpu_power.yaml`: central value, range and source."""

    low: float
    central: float
    high: float
    source: str


def gpu_power_fraction() -> FractionRange:
    """The GPU power model's figure as the hardware data file states it (read afresh)."""
    data = yaml.safe_load(GPU_POWER_FILE.read_text(encoding="utf-8"))
    return FractionRange(float(data["low"]), float(data["compute_power_fraction"]),
                         float(data["high"]), " ".join(str(data.get("source", "")).split()))


def pj_from_tdp(chip: Chip) -> bool:
    """Whether the chip's arithmetic energy was derived from its TDP (the GPU power model)."""
    unit = chip.tiles.compute
    return any(unit.cite.get(f"pj_per_op.{d}", "").startswith(_FROM_TDP) for d in unit.pj_per_op)


def moved(system: System, key: str, swing: float) -> Moved | None:
    """The knob `key` of `system` moved to both ends (None: the system has no such figure)."""
    label = dict(KNOBS)[key]
    chip = system.chip
    if key == "pj_per_op" and pj_from_tdp(chip):
        r = gpu_power_fraction()
        ends = [_chip(system, _scaled_pj(chip, end / r.central, only_from_tdp=True))
                for end in (r.low, r.high)]
        return Moved(f"arithmetic pJ/op: compute_power_fraction {r.low:g}..{r.high:g}",
                     f"gpu_power.yaml: {r.source}", ends[0], ends[1])
    low, high = (_scaled(system, key, f) for f in (1.0 - swing, 1.0 + swing))
    if low is None or high is None:
        return None
    return Moved(label, _basis(system, key), low, high)


def _chip(system: System, chip: Chip) -> System:
    return system.model_copy(update={"chip": chip})


def _scaled_pj(chip: Chip, f: float, only_from_tdp: bool = False) -> Chip:
    unit = chip.tiles.compute
    pj = {d: v * f if not only_from_tdp or unit.cite.get(f"pj_per_op.{d}", "").startswith(_FROM_TDP)
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


def _scaled(system: System, what: str, f: float) -> System | None:
    chip = system.chip
    if what == "offchip_pj_per_bit":
        if chip.offchip is None:
            return None
        return _chip(system, chip.model_copy(update={"offchip": chip.offchip.model_copy(
            update={"pj_per_bit": chip.offchip_pj_per_bit * f})}))
    if what == "sram_pj_per_bit":
        def level(lv: StorageLevel) -> StorageLevel:
            return lv.model_copy(update={"read_pj_per_bit": (lv.read_pj_per_bit or 0.0) * f,
                                         "write_pj_per_bit": (lv.write_pj_per_bit or 0.0) * f})

        tiles = chip.tiles.model_copy(update={"storage": tuple(level(x) for x in
                                                               chip.tiles.storage)})
        return _chip(system, chip.model_copy(update={"tiles": tiles, "global_storage": tuple(
            level(x) for x in chip.global_storage)}))
    if what == "pj_per_op":
        return _chip(system, _scaled_pj(chip, f))
    if what == "idle_w":
        return _chip(system, _rederived(chip.model_copy(update={"idle_w": chip.idle_w * f})))
    if what == "tdp_w":
        return _chip(system, _rederived(chip.model_copy(update={
            "tdp_w": chip.tdp_w * f, "idle_w": min(chip.idle_w, chip.tdp_w * f)})))
    if what == "host_w":
        host = system.host
        if not host.host_w_per_node:
            return None
        idle = host.idle_host_w_per_node
        return system.model_copy(update={"host": host.model_copy(update={
            "host_w_per_node": host.host_w_per_node * f,
            "idle_host_w_per_node": None if idle is None else idle * f})})
    raise ValueError(f"unknown energy figure {what!r}")


def _basis(system: System, key: str) -> str:
    chip = system.chip
    if key == "offchip_pj_per_bit" and chip.offchip is not None:
        return chip.offchip.cite.get("pj_per_bit", chip.offchip.cite.get("*", ""))
    if key in ("idle_w", "tdp_w"):
        return chip.cite.get(key, "")
    if key == "host_w":
        return system.host.cite.get("host_w_per_node", system.host.cite.get("*", ""))
    if key == "pj_per_op":
        return f"derived: technology {chip.node} MAC energy"
    return f"derived: technology {chip.node} SRAM energy"
