"""`tegel claim`: one workload on two systems — energy, cost and footprint ratios, how they move
with each assumption, and how far each machine is from the energy floor.

Ratios are A's advantage over B (> 1: A is better by that factor): energy = tokens/J of A /
tokens/J of B; cost = B's $/Mtoken / A's (TCO and capital only); footprint = B's racks, kW
(nameplate, facility) and serving kW / A's. Each system serves at the largest batch that keeps
its speed per user at or above the target (`tco.interactive_run`), unless a batch is given.

Sensitivity: each key assumption — economic ones from `economics.yaml`, and the energy figures of
each system's chip and host — is moved by -/+ `swing` (25%) with everything else fixed (batches
too) and the ratios recomputed; rows sort by the largest |log| change of any ratio. Energy
figures and assumptions that move no ratio are left out (a GPU's arithmetic energy is derived from
its TDP by the GPU policy, not from pJ/op; a chip bought at market price does not care what its
memory costs). Moving a chip's TDP moves its nameplate power (racks,
facility) and, on a GPU, its energy per FLOP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tegel.economics.area import Area, chip_area
from tegel.economics.assumptions import Assumptions, load_assumptions
from tegel.economics.cost import ChipCost, chip_cost
from tegel.economics.floor import EnergyFloor, energy_floor
from tegel.economics.tco import Footprint, Tco, footprint, interactive_run, tco
from tegel.errors import TegelError
from tegel.hardware import StorageLevel, System, load_system
from tegel.serving.run import RunResult, resolve_precision, run
from tegel.workload.llm import Precision
from tegel.workload.model_config import ModelConfig, load_model_config

RATIOS = ("energy", "cost_tco", "cost_capital", "racks", "kw", "serving_kw")


@dataclass(frozen=True, slots=True)
class Workload:
    """What both systems serve: a model, prompt and output lengths, formats, speed and target."""

    model: ModelConfig
    input_tokens: int
    output_tokens: int
    precision: Precision | None  # None: each system's default (bf16 where it has it)
    min_tokens_per_s_per_user: float
    target_tokens_per_s: float


@dataclass(frozen=True, slots=True)
class SystemEconomics:
    """One system on the workload: the run and everything derived from it."""

    system: System
    result: RunResult
    floor: EnergyFloor
    tco: Tco
    footprint: Footprint
    chip_cost: ChipCost
    area: Area

    @property
    def floor_ratio(self) -> float:
        """Energy per token / the floor at this chip's node and batch (>= 1)."""
        return self.result.energy_j_per_token / self.floor.j_per_token

    def to_dict(self) -> dict[str, object]:
        r = self.result
        return {"system": self.system.name, "chip": self.system.chip.name,
                "chips": self.system.chip_count, "batch": r.batch,
                "parallelism": r.to_dict()["parallelism"],
                "tokens_per_s_per_user": r.tokens_per_s_per_user,
                "throughput_tokens_per_s": r.throughput_tokens_per_s,
                "energy_j_per_token": r.energy_j_per_token,
                "energy_breakdown_j_per_token": r.energy_breakdown_j_per_token,
                "energy_floor_j_per_token": self.floor.j_per_token,
                "floor_ratio": self.floor_ratio, "energy_floor": self.floor.to_dict(),
                "power_w": r.power_w, "tdp_w": self.system.tdp_w,
                "chip_price_usd": self.chip_cost.price_usd,
                "chip_price_basis": self.chip_cost.basis,
                "chip_cost_breakdown_usd": self.chip_cost.breakdown_usd,
                "area": self.area.to_dict(), "tco": self.tco.to_dict(),
                "usd_per_mtoken": self.tco.usd_per_mtoken,
                "capital_usd_per_mtoken": self.tco.capital_usd_per_mtoken,
                "footprint": self.footprint.to_dict()}


def evaluate_system(w: Workload, system: System, a: Assumptions,
                    batch: int | None = None) -> SystemEconomics:
    """Run `system` on the workload (at `batch`, or the interactive batch) and cost it."""
    precision = w.precision or resolve_precision(system, None)
    if batch is None:
        result = interactive_run(w.model, system, w.min_tokens_per_s_per_user, w.input_tokens,
                                 w.output_tokens, precision)
    else:
        result = run(w.model, system, batch, w.input_tokens, w.output_tokens, precision)
    return _cost(w, system, result, a)


def _cost(w: Workload, system: System, result: RunResult, a: Assumptions) -> SystemEconomics:
    floor = energy_floor(w.model, result.batch, w.input_tokens, w.output_tokens,
                         result.precision, system.chip.node)
    return SystemEconomics(system, result, floor, tco(result, system, a),
                           footprint(result, system, w.target_tokens_per_s, a),
                           chip_cost(system.chip, a), chip_area(system.chip, system, a))


def ratios(on: SystemEconomics, vs: SystemEconomics) -> dict[str, float]:
    """A's advantage over B per ratio name in RATIOS (> 1: A better)."""
    fa, fb = on.footprint, vs.footprint
    return {
        "energy": vs.result.energy_j_per_token / on.result.energy_j_per_token,
        "cost_tco": vs.tco.usd_per_mtoken / on.tco.usd_per_mtoken,
        "cost_capital": vs.tco.capital_usd_per_mtoken / on.tco.capital_usd_per_mtoken,
        "racks": fb.racks / fa.racks,
        "kw": fb.facility_kw / fa.facility_kw,
        "serving_kw": fb.serving_kw / fa.serving_kw,
    }


@dataclass(frozen=True, slots=True)
class SensitivityRow:
    """One assumption moved down and up: the ratios at each end."""

    name: str
    basis: str  # the assumption's citation (source id or labelled text)
    base_value: float
    low: dict[str, float]
    high: dict[str, float]
    base: dict[str, float]

    @property
    def influence(self) -> float:
        """Largest |ln(ratio / base ratio)| over both ends and every ratio."""
        return max(abs(math.log(end[k] / self.base[k])) for end in (self.low, self.high)
                   for k in RATIOS)

    def to_dict(self) -> dict[str, object]:
        return {"assumption": self.name, "basis": self.basis, "value": self.base_value,
                "influence": self.influence, "low": self.low, "high": self.high}


def _scaled_chip_energy(system: System, what: str, f: float) -> System | None:
    chip = system.chip
    if what == "offchip_pj_per_bit":
        if chip.offchip is None:
            return None
        new = chip.model_copy(update={"offchip": chip.offchip.model_copy(
            update={"pj_per_bit": chip.offchip_pj_per_bit * f})})
    elif what == "sram_pj_per_bit":
        def level(lv: StorageLevel) -> StorageLevel:
            return lv.model_copy(update={"read_pj_per_bit": (lv.read_pj_per_bit or 0.0) * f,
                                         "write_pj_per_bit": (lv.write_pj_per_bit or 0.0) * f})

        tiles = chip.tiles.model_copy(update={"storage": tuple(level(x) for x in
                                                               chip.tiles.storage)})
        new = chip.model_copy(update={"tiles": tiles, "global_storage": tuple(
            level(x) for x in chip.global_storage)})
    elif what == "pj_per_op":
        unit = chip.tiles.compute
        unit = unit.model_copy(update={"pj_per_op": {k: v * f for k, v in unit.pj_per_op.items()}})
        new = chip.model_copy(update={"tiles": chip.tiles.model_copy(update={"compute": unit})})
    elif what == "idle_w":
        new = chip.model_copy(update={"idle_w": chip.idle_w * f})
    elif what == "tdp_w":
        new = chip.model_copy(update={"tdp_w": chip.tdp_w * f, "idle_w": min(chip.idle_w,
                                                                              chip.tdp_w * f)})
    elif what == "host_w":
        host = system.host
        if not host.host_w_per_node:
            return None
        idle = host.idle_host_w_per_node
        return system.model_copy(update={"host": host.model_copy(update={
            "host_w_per_node": host.host_w_per_node * f,
            "idle_host_w_per_node": None if idle is None else idle * f})})
    else:
        raise TegelError(f"unknown energy figure {what!r}")
    return system.model_copy(update={"chip": new})


PHYSICS_KNOBS = (("offchip_pj_per_bit", "off-chip memory pJ/bit"),
                 ("sram_pj_per_bit", "on-chip SRAM pJ/bit"),
                 ("pj_per_op", "arithmetic pJ/op"),
                 ("idle_w", "chip idle (static) power"),
                 ("tdp_w", "chip TDP (nameplate power)"),
                 ("host_w", "host power per node"))


def economic_knobs(on: SystemEconomics, vs: SystemEconomics, a: Assumptions) -> list[str]:
    """The economics.yaml figures that can move A's or B's results, by override name."""
    names = ["electricity_usd_per_kwh", "pue", "utilization", "years", "facility_usd_per_w",
             "host_usd_per_node", "wafer_price_factor", "defect_density_factor",
             "interposer_usd_per_mm2", "test_assembly_usd_per_package", "board_usd_per_chip",
             "rack_power_limit_w"]
    if any(s.chip_cost.basis == "cost" for s in (on, vs)):
        names.append("gross_margin")
    for s in (on, vs):
        chip = s.system.chip
        if chip.offchip is not None:
            names.append(f"memory_usd_per_gb.{chip.offchip.kind}")
        if s.chip_cost.basis == "market":
            names.append(f"market_price_usd.{chip.name}")
    return list(dict.fromkeys(names))


def _basis(a: Assumptions, name: str) -> str:
    return a.cite.get(name, a.cite.get(name.split(".", 1)[0], ""))


def sensitivity(w: Workload, on: SystemEconomics, vs: SystemEconomics, a: Assumptions,
                swing: float = 0.25) -> list[SensitivityRow]:
    """Ratios with each key assumption at (1 - swing) and (1 + swing), sorted by influence."""
    base = ratios(on, vs)
    rows = []
    for name in economic_knobs(on, vs, a):
        value = a.value(name)
        ends = []
        for f in (1.0 - swing, 1.0 + swing):
            b = a.with_overrides({name: _clamped(name, value * f)}, flag="sensitivity")
            ends.append(ratios(_cost(w, on.system, on.result, b), _cost(w, vs.system, vs.result, b)))
        rows.append(SensitivityRow(name, _basis(a, name), value, ends[0], ends[1], base))
    for which, s in (("A", on), ("B", vs)):
        for key, label in PHYSICS_KNOBS:
            ends = []
            for f in (1.0 - swing, 1.0 + swing):
                moved_sys = _scaled_chip_energy(s.system, key, f)
                if moved_sys is None:
                    break
                par = s.result.parallelism
                r = run(w.model, moved_sys, s.result.batch, w.input_tokens, w.output_tokens,
                        s.result.precision, tp=par.tp, pp=par.pp, ep=par.ep)
                moved = _cost(w, moved_sys, r, a)
                ends.append(ratios(moved, vs) if which == "A" else ratios(on, moved))
            if len(ends) == 2:
                rows.append(SensitivityRow(f"{s.system.name}: {label}", _physics_basis(s.system, key),
                                           float("nan"), ends[0], ends[1], base))
    return sorted((r for r in rows if r.influence > 1e-12), key=lambda r: -r.influence)


def _clamped(name: str, value: float) -> float:
    if name in ("utilization", "gross_margin"):
        return min(value, 0.99)
    if name == "pue":
        return max(value, 1.0)
    return value


def _physics_basis(system: System, key: str) -> str:
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


@dataclass(frozen=True, slots=True)
class Claim:
    """The claim check: both systems, the ratios, the sensitivity rows and the floor."""

    workload: Workload
    on: SystemEconomics
    vs: SystemEconomics
    sensitivity: tuple[SensitivityRow, ...]
    assumptions: Assumptions
    overrides: dict[str, str]

    @property
    def ratios(self) -> dict[str, float]:
        return ratios(self.on, self.vs)

    @property
    def energy_floor_j_per_token(self) -> float:
        """The workload's floor: the lower of the two systems' floors (node and batch)."""
        return min(self.on.floor.j_per_token, self.vs.floor.j_per_token)

    def to_dict(self) -> dict[str, object]:
        r = self.ratios
        w = self.workload
        return {
            "model": w.model.name, "on": self.on.system.name, "vs": self.vs.system.name,
            "workload": {"input_tokens": w.input_tokens, "output_tokens": w.output_tokens,
                         "min_tokens_per_s_per_user": w.min_tokens_per_s_per_user,
                         "target_tokens_per_s": w.target_tokens_per_s},
            "ratios": {"energy": r["energy"],
                       "cost": {"tco": r["cost_tco"], "capital": r["cost_capital"]},
                       "footprint": {"racks": r["racks"], "kw": r["kw"],
                                     "serving_kw": r["serving_kw"]},
                       "meaning": "A's advantage over B: > 1 means A is better by that factor"},
            "energy_floor_j_per_token": self.energy_floor_j_per_token,
            "systems": {s.system.name: s.to_dict() for s in (self.on, self.vs)},
            "sensitivity": [row.to_dict() for row in self.sensitivity],
            "assumptions": {"pricing": self.assumptions.pricing,
                            "years": self.assumptions.years,
                            "utilization": self.assumptions.utilization,
                            "electricity_usd_per_kwh": self.assumptions.electricity_usd_per_kwh,
                            "pue": self.assumptions.pue,
                            "rack_power_limit_w": self.assumptions.rack_power_limit_w,
                            "overrides": self.overrides},
        }


def claim(model: str | ModelConfig, on: str | System, vs: str | System, *,
          input_tokens: int = 1024, output_tokens: int = 256, precision: Precision | None = None,
          min_tokens_per_s_per_user: float | None = None, target_tokens_per_s: float = 1e6,
          overrides: dict[str, str] | None = None, batch_on: int | None = None,
          batch_vs: int | None = None, swing: float = 0.25) -> Claim:
    """Check the claim "A beats B" on one workload (module doc)."""
    a = load_assumptions().with_overrides(overrides or {})
    cfg = model if isinstance(model, ModelConfig) else load_model_config(model)
    sys_on = on if isinstance(on, System) else load_system(on)
    sys_vs = vs if isinstance(vs, System) else load_system(vs)
    speed = a.min_tokens_per_s_per_user if min_tokens_per_s_per_user is None else \
        min_tokens_per_s_per_user
    w = Workload(cfg, input_tokens, output_tokens, precision, speed, target_tokens_per_s)
    eo = evaluate_system(w, sys_on, a, batch_on)
    ev = evaluate_system(w, sys_vs, a, batch_vs)
    rows = tuple(sensitivity(w, eo, ev, a, swing)) if swing > 0 else ()
    return Claim(w, eo, ev, rows, a, dict(overrides or {}))
