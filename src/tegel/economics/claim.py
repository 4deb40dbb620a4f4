"""`tegel claim`: one workload on two systems — energy, cost and footprint ratios, how they move
with each assumption, and how far each machine is from the energy floor.

Like for like: each system serves at the largest batch that keeps its speed per user at or above
the same target (`tco.interactive_run`), unless a batch is given, and is charged for all the
hardware it occupies — the run's whole-system energy and power (busy replicas, chips the batch
leaves idle at idle power, hosts, rack overhead), the whole system's capital and nameplate power.

Ratios are A's advantage over B (> 1: A is better by that factor): energy = tokens/J of A /
tokens/J of B; cost = B's $/Mtoken / A's (TCO and capital only); footprint = B's racks, kW
(nameplate, facility) and serving kW / A's.

Sensitivity: each key assumption — economic ones from `economics.yaml`, and the energy figures of
each system's chip and host (`energy_knobs`) — is moved by -/+ `swing` (25%) with everything else
fixed (batches and splits too) and the ratios recomputed; rows sort by the largest |log| change of
any ratio. A GPU's arithmetic energy is derived from its TDP (`hardware/data/gpu_power.yaml`),
so its row moves compute_power_fraction over the file's stated range instead, and moving a GPU's
TDP or idle power moves its energy per FLOP too. Assumptions that move no ratio are left out (a
chip bought at market price does not care what its memory costs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tegel.economics import energy_knobs
from tegel.economics.area import Area, chip_area
from tegel.economics.assumptions import Assumptions, load_assumptions
from tegel.economics.cost import ChipCost, chip_cost
from tegel.economics.floor import EnergyFloor, energy_floor
from tegel.economics.tco import Footprint, Tco, footprint, interactive_run, tco
from tegel.hardware import System, load_system
from tegel.mapping.params import Params
from tegel.serving.run import RunResult, run
from tegel.serving.scenario import RunOptions, resolve_precision
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
    """One system on the workload: the run (whole-system energy and power) and everything
    derived from it."""

    result: RunResult
    floor: EnergyFloor
    tco: Tco
    footprint: Footprint
    chip_cost: ChipCost
    area: Area

    @property
    def system(self) -> System:
        return self.result.system

    @property
    def floor_ratio(self) -> float:
        """Energy per token / the floor at this chip's node and batch (>= 1)."""
        return self.result.energy_j_per_token / self.floor.j_per_token

    def to_dict(self) -> dict[str, object]:
        r = self.result
        run_dict = r.to_dict()
        return {"system": self.system.name, "chip": self.system.chip.name,
                "chips": self.system.chip_count, "chips_busy": r.chips_busy,
                "chips_idle": r.chips_idle, "batch": r.batch,
                "parallelism": run_dict["parallelism"],
                "tokens_per_s_per_user": r.tokens_per_s_per_user,
                "throughput_tokens_per_s": r.throughput_tokens_per_s,
                "energy_j_per_token": r.energy_j_per_token,
                "energy_breakdown_j_per_token": r.energy_breakdown_j_per_token,
                "energy_floor_j_per_token": self.floor.j_per_token,
                "floor_ratio": self.floor_ratio, "energy_floor": self.floor.to_dict(),
                "power_w": r.power_w, "idle_w": self.system.idle_w, "tdp_w": self.system.tdp_w,
                "chip_price_usd": self.chip_cost.price_usd,
                "chip_price_basis": self.chip_cost.basis,
                "chip_cost_breakdown_usd": self.chip_cost.breakdown_usd,
                "area": self.area.to_dict(), "tco": self.tco.to_dict(),
                "usd_per_mtoken": self.tco.usd_per_mtoken,
                "capital_usd_per_mtoken": self.tco.capital_usd_per_mtoken,
                "footprint": self.footprint.to_dict()}


def evaluate_system(w: Workload, system: System, a: Assumptions, batch: int | None = None, *,
                    params: Params | None = None) -> SystemEconomics:
    """Run `system` on the workload (at `batch`, or the interactive batch) and cost it;
    `params`: the mapping policies' parameters (None: shipped)."""
    precision = w.precision or resolve_precision(system, None)
    if batch is None:
        result = interactive_run(w.model, system, w.min_tokens_per_s_per_user, w.input_tokens,
                                 w.output_tokens, precision, params=params)
    else:
        result = run(w.model, system, batch, w.input_tokens, w.output_tokens, precision,
                     params=params)
    return cost_run(w, result, a)


def cost_run(w: Workload, result: RunResult, a: Assumptions) -> SystemEconomics:
    """Floor, TCO, footprint, chip cost and area of a run of the workload (its system's)."""
    system = result.system
    floor = energy_floor(w.model, result.batch, w.input_tokens, w.output_tokens,
                         result.precision, system.chip.node)
    return SystemEconomics(result, floor, tco(result, a),
                           footprint(result, w.target_tokens_per_s, a),
                           chip_cost(system.chip, a), chip_area(system.chip, a, system))


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
                swing: float = 0.25, *, params: Params | None = None) -> list[SensitivityRow]:
    """Ratios with each key assumption at (1 - swing) and (1 + swing) (a GPU's
    compute_power_fraction: at its stated range), sorted by influence."""
    base = ratios(on, vs)
    rows = []
    for name in economic_knobs(on, vs, a):
        value = a.value(name)
        ends = []
        for f in (1.0 - swing, 1.0 + swing):
            b = a.with_overrides({name: _clamped(name, value * f)}, flag="sensitivity")
            ends.append(ratios(cost_run(w, on.result, b), cost_run(w, vs.result, b)))
        rows.append(SensitivityRow(name, _basis(a, name), value, ends[0], ends[1], base))
    for which, s in (("A", on), ("B", vs)):
        r = s.result
        same_split = RunOptions(tp=r.parallelism.tp, pp=r.parallelism.pp, ep=r.parallelism.ep,
                                stages=r.chosen.config.stages)
        for key, _ in energy_knobs.KNOBS:
            knob = energy_knobs.moved(s.system, key, swing)
            if knob is None:
                continue
            ends = []
            for system in (knob.low, knob.high):
                again = run(w.model, system, r.batch, w.input_tokens, w.output_tokens,
                            r.precision, options=same_split, params=params)
                moved = cost_run(w, again, a)
                ends.append(ratios(moved, vs) if which == "A" else ratios(on, moved))
            rows.append(SensitivityRow(f"{s.system.name}: {knob.label}", knob.basis,
                                       float("nan"), ends[0], ends[1], base))
    return sorted((r for r in rows if r.influence > 1e-12), key=lambda r: -r.influence)


def _clamped(name: str, value: float) -> float:
    if name in ("utilization", "gross_margin"):
        return min(value, 0.99)
    if name == "pue":
        return max(value, 1.0)
    return value


@dataclass(frozen=True, slots=True)
class ClaimOptions:
    """What the claim is checked on besides the model and systems: lengths, formats (None: each
    system's default, bf16 where it has it), the speed per user (None: the assumptions'
    `min_tokens_per_s_per_user`), the throughput the footprint is sized for, fixed batches
    (None: each system's interactive batch) and the sensitivity swing (0: no sensitivity)."""

    input_tokens: int = 1024
    output_tokens: int = 256
    precision: Precision | None = None
    min_tokens_per_s_per_user: float | None = None
    target_tokens_per_s: float = 1e6
    batch_on: int | None = None
    batch_vs: int | None = None
    swing: float = 0.25


@dataclass(frozen=True, slots=True)
class Claim:
    """The claim check: both systems, the ratios, the sensitivity rows and the floor;
    `overrides`: the assumptions that differ from the shipped file."""

    workload: Workload
    on: SystemEconomics
    vs: SystemEconomics
    sensitivity: tuple[SensitivityRow, ...]
    assumptions: Assumptions
    overrides: dict[str, object]

    @property
    def ratios(self) -> dict[str, float]:
        return ratios(self.on, self.vs)

    @property
    def energy_floor_j_per_token(self) -> float:
        """The workload's floor: the lower of the two systems' floors (node and batch)."""
        return min(self.on.floor.j_per_token, self.vs.floor.j_per_token)

    @property
    def notes(self) -> list[str]:
        """What the reader must know besides the numbers: the asymmetry of arithmetic energy
        where one side's comes from its TDP and the other's does not, and footprint notes."""
        out = []
        from_tdp = [s.system.name for s in (self.on, self.vs)
                    if energy_knobs.pj_from_tdp(s.system.chip)]
        if len(from_tdp) == 1:
            f = energy_knobs.gpu_power_fraction()
            other = next(s.system.name for s in (self.on, self.vs) if s.system.name != from_tdp[0])
            out.append(f"{from_tdp[0]}'s arithmetic energy is derived from its TDP (a share "
                       f"{f.central:g} of dynamic power at peak, range {f.low:g}..{f.high:g}); "
                       f"{other}'s bottom-up from the technology library's MAC energy: an "
                       f"asymmetry in {other}'s favour")
        return out + [n for s in (self.on, self.vs) for n in s.footprint.notes]

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
            "accounting": LIKE_FOR_LIKE,
            "notes": self.notes,
            "assumptions": {"pricing": self.assumptions.pricing,
                            "years": self.assumptions.years,
                            "utilization": self.assumptions.utilization,
                            "electricity_usd_per_kwh": self.assumptions.electricity_usd_per_kwh,
                            "pue": self.assumptions.pue,
                            "rack_power_limit_w": self.assumptions.rack_power_limit_w,
                            "overrides": self.overrides},
        }


LIKE_FOR_LIKE = ("Like for like: each system serves at the same per-user speed target and is "
                 "charged for all the hardware it occupies (busy chips, chips the batch leaves "
                 "idle at idle power, hosts and racks).")


def claim(model: str | ModelConfig, on: str | System, vs: str | System,
          a: Assumptions | None = None, *, options: ClaimOptions | None = None,
          params: Params | None = None) -> Claim:
    """Check the claim "A beats B" on one workload (module doc). `a`: the economics
    assumptions (None: the shipped file); `params`: the mapping policies' (None: shipped)."""
    shipped = load_assumptions()
    a = shipped if a is None else a
    o = options or ClaimOptions()
    cfg = model if isinstance(model, ModelConfig) else load_model_config(model)
    sys_on = on if isinstance(on, System) else load_system(on)
    sys_vs = vs if isinstance(vs, System) else load_system(vs)
    speed = (a.min_tokens_per_s_per_user if o.min_tokens_per_s_per_user is None
             else o.min_tokens_per_s_per_user)
    w = Workload(cfg, o.input_tokens, o.output_tokens, o.precision, speed, o.target_tokens_per_s)
    eo = evaluate_system(w, sys_on, a, o.batch_on, params=params)
    ev = evaluate_system(w, sys_vs, a, o.batch_vs, params=params)
    rows = tuple(sensitivity(w, eo, ev, a, o.swing, params=params)) if o.swing > 0 else ()
    return Claim(w, eo, ev, rows, a, a.changes_from(shipped))
