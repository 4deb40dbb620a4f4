"""`tegel claim`: one workload on two systems — energy, cost and footprint ratios, how they move
with each assumption, and how far each machine is from the energy floor.

Like for like: both systems are held to the same service level — a speed per user (1 / median
TPOT at steady state) and a p99 TTFT limit (default 2 s, set for 1,024-token prompts), served by
the same scheduler (chunked prefill by default) — each at the operating point of its serving
curve (`serving/operating.py`: the concurrency and split of highest throughput meeting both),
and each is charged for all the hardware it occupies: the serving run's whole-system energy and
power (busy replicas, chips outside them at idle power, hosts, rack overhead), the whole
system's capital and nameplate power. A fixed batch for either side (`batch_on`, `batch_vs`)
runs both as static batches instead (`tegel run`; the other side at its largest static batch
meeting the speed, `tco.interactive_run`), with no TTFT limit — today's static path, said so.

Ratios are A's advantage over B (> 1: A is better by that factor): energy = tokens/J of A /
tokens/J of B; cost = B's $/Mtoken / A's (TCO and capital only); footprint = B's racks, kW
(nameplate, facility) and serving kW / A's.

Sensitivity: each key assumption — economic ones from `economics.yaml`, and the energy figures of
each system's chip and host (`energy_knobs`) — is moved by -/+ `swing` (25%) with everything else
fixed (concurrencies or batches, splits and requests too: an energy figure is re-priced by
serving the same requests again at the same concurrency and split, without searching the
operating point again) and the ratios recomputed; rows sort by the largest |log| change of
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
from tegel.economics.served import Served, ServingPoint, service_fields
from tegel.economics.tco import Footprint, Tco, footprint, interactive_run, tco
from tegel.errors import TegelError
from tegel.hardware import System, load_system
from tegel.mapping.params import Params
from tegel.serving.operating import CHUNKED, ServiceLevel, find_operating_point
from tegel.serving.operating import served_again as serve_point_again
from tegel.serving.replica import SchedulerConfig
from tegel.serving.run import RunResult, run
from tegel.serving.scenario import RunOptions, resolve_precision
from tegel.workload.llm import Precision
from tegel.workload.model_config import ModelConfig, load_model_config

RATIOS = ("energy", "cost_tco", "cost_capital", "racks", "kw", "serving_kw")


@dataclass(frozen=True, slots=True)
class Workload:
    """What both systems serve: a model, prompt and output lengths, formats, the service level
    (speed per user, p99 TTFT limit — None: the default —, scheduler — None: static batches)
    and the throughput the footprint is sized for."""

    model: ModelConfig
    input_tokens: int
    output_tokens: int
    precision: Precision | None  # None: each system's default (bf16 where it has it)
    min_tokens_per_s_per_user: float
    target_tokens_per_s: float
    max_ttft_s: float | None = None
    scheduler: SchedulerConfig | None = CHUNKED

    @property
    def service(self) -> ServiceLevel | None:
        """The service level both systems are held to (None: static batches, no TTFT limit)."""
        if self.scheduler is None:
            return None
        return ServiceLevel(self.min_tokens_per_s_per_user, self.max_ttft_s, self.scheduler)

    def service_dict(self) -> dict[str, object]:
        s = self.service
        if s is not None:
            return {"mode": "operating point", **s.to_dict(self.input_tokens)}
        return {"mode": "static batch", "min_tokens_per_s_per_user": self.min_tokens_per_s_per_user,
                "per_user_speed": "1 / TPOT of the static batch", "max_ttft_s": None,
                "ttft_limit": "none (static batches)", "scheduler": {"kind": "static run"},
                "text": f">= {self.min_tokens_per_s_per_user:g} tokens/s per user where a batch "
                        f"is searched; static batches (`tegel run`: prefill, then decode), no "
                        f"TTFT limit"}


@dataclass(frozen=True, slots=True)
class SystemEconomics:
    """One system on the workload: how it serves (a static run or an operating point; whole-
    system energy and power) and everything derived from it; `basis`: how its batch or
    concurrency was chosen."""

    result: Served
    floor: EnergyFloor
    tco: Tco
    footprint: Footprint
    chip_cost: ChipCost
    area: Area
    basis: str = ""

    @property
    def system(self) -> System:
        return self.result.system

    @property
    def floor_ratio(self) -> float:
        """Energy per token / the floor at this chip's node and batch (>= 1)."""
        return self.result.energy_j_per_token / self.floor.j_per_token

    def to_dict(self) -> dict[str, object]:
        r = self.result
        return {"system": self.system.name, "chip": self.system.chip.name,
                "chips": self.system.chip_count, "chips_busy": r.chips_busy,
                "chips_idle": r.chips_idle, "batch": r.batch, "batch_basis": self.basis,
                **service_fields(r),
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
                    params: Params | None = None, basis: str = "") -> SystemEconomics:
    """Place `system` on the workload and cost it: a static run at `batch` when given; else at
    its operating point at the workload's service level, or (no scheduler) at its largest
    static batch meeting the speed. `params`: the mapping policies' parameters (None: shipped);
    `basis`: how a given batch was chosen (said in the report)."""
    precision = w.precision or resolve_precision(system, None)
    service = w.service
    result: Served
    if batch is not None:
        result = run(w.model, system, batch, w.input_tokens, w.output_tokens, precision,
                     params=params)
        basis = basis or "fixed"
    elif service is None:
        result = interactive_run(w.model, system, w.min_tokens_per_s_per_user, w.input_tokens,
                                 w.output_tokens, precision, params=params)
        basis = "largest static batch at the speed per user"
    else:
        result = ServingPoint(find_operating_point(w.model, system, w.input_tokens,
                                                   w.output_tokens, service, precision=precision,
                                                   params=params))
        basis = "highest throughput at the service level"
    return cost_run(w, result, a, basis)


def cost_run(w: Workload, result: Served, a: Assumptions, basis: str = "") -> SystemEconomics:
    """Floor, TCO, footprint, chip cost and area of a system serving the workload."""
    system = result.system
    floor = energy_floor(w.model, result.batch, w.input_tokens, w.output_tokens,
                         result.precision, system.chip.node)
    return SystemEconomics(result, floor, tco(result, a),
                           footprint(result, w.target_tokens_per_s, a),
                           chip_cost(system.chip, a), chip_area(system.chip, a, system), basis)


def served_again(w: Workload, served: Served, system: System,
                 params: Params | None = None) -> Served:
    """`served` again on `system` (one energy figure moved), at the same batch or concurrency,
    split and requests: nothing searched again."""
    if isinstance(served, ServingPoint):
        return ServingPoint(serve_point_again(w.model, served.op, system, params))
    if not isinstance(served, RunResult):
        raise TypeError(f"not a run or an operating point: {type(served).__name__}")
    par = served.parallelism
    same_split = RunOptions(tp=par.tp, pp=par.pp, ep=par.ep, stages=served.chosen.config.stages)
    return run(w.model, system, served.batch, w.input_tokens, w.output_tokens, served.precision,
               options=same_split, params=params)


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
        for key, _ in energy_knobs.KNOBS:
            knob = energy_knobs.moved(s.system, key, swing)
            if knob is None:
                continue
            ends = []
            for system in (knob.low, knob.high):
                moved = cost_run(w, served_again(w, s.result, system, params), a)
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
    (None: each system at its operating point; either fixed: static batches for both), the
    sensitivity swing (0: no sensitivity), the p99 TTFT limit (None: the default, 2 s for
    1,024-token prompts) and the scheduler of the operating points."""

    input_tokens: int = 1024
    output_tokens: int = 256
    precision: Precision | None = None
    min_tokens_per_s_per_user: float | None = None
    target_tokens_per_s: float = 1e6
    batch_on: int | None = None
    batch_vs: int | None = None
    swing: float = 0.25
    max_ttft_s: float | None = None
    scheduler: str = "chunked"


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
        where one side's comes from its TDP and the other's does not, an operating point that
        the scheduler's limit stopped rather than the service level, and footprint notes."""
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
        for s in (self.on, self.vs):
            if isinstance(s.result, ServingPoint) and s.result.op.at_scheduler_limit:
                r = s.result.op.point.result
                out.append(f"{s.system.name} runs as many sequences as its scheduler allows "
                           f"({r.config.parallelism.dp} replicas x {r.scheduler.max_seqs}): the "
                           f"service level does not bind it there")
        return out + [n for s in (self.on, self.vs) for n in s.footprint.notes]

    def to_dict(self) -> dict[str, object]:
        r = self.ratios
        w = self.workload
        return {
            "model": w.model.name, "on": self.on.system.name, "vs": self.vs.system.name,
            "workload": {"input_tokens": w.input_tokens, "output_tokens": w.output_tokens,
                         "min_tokens_per_s_per_user": w.min_tokens_per_s_per_user,
                         "max_ttft_s": None if w.service is None else w.service.ttft_limit_s,
                         "target_tokens_per_s": w.target_tokens_per_s},
            "service_level": w.service_dict(),
            "ratios": {"energy": r["energy"],
                       "cost": {"tco": r["cost_tco"], "capital": r["cost_capital"]},
                       "footprint": {"racks": r["racks"], "kw": r["kw"],
                                     "serving_kw": r["serving_kw"]},
                       "meaning": "A's advantage over B: > 1 means A is better by that factor"},
            "energy_floor_j_per_token": self.energy_floor_j_per_token,
            "systems": {s.system.name: s.to_dict() for s in (self.on, self.vs)},
            "sensitivity": [row.to_dict() for row in self.sensitivity],
            "accounting": like_for_like(w),
            "notes": self.notes,
            "assumptions": {"pricing": self.assumptions.pricing,
                            "years": self.assumptions.years,
                            "utilization": self.assumptions.utilization,
                            "electricity_usd_per_kwh": self.assumptions.electricity_usd_per_kwh,
                            "pue": self.assumptions.pue,
                            "rack_power_limit_w": self.assumptions.rack_power_limit_w,
                            "overrides": self.overrides},
        }


def like_for_like(w: Workload) -> str:
    """The accounting sentence of the report: the service level both are held to, and what
    each is charged for."""
    charged = ("each is charged for all the hardware it occupies (busy chips, chips left idle at "
               "idle power, hosts and racks).")
    s = w.service
    if s is None:
        return (f"Like for like: static batches (no TTFT limit), a batch not fixed the largest "
                f"at >= {w.min_tokens_per_s_per_user:g} tokens/s per user; {charged}")
    return (f"Like for like: both systems held to the same service level (>= "
            f"{s.min_tokens_per_s_per_user:g} tokens/s per user, p99 TTFT <= "
            f"{s.ttft_limit_s:g} s, {s.scheduler.kind} scheduler), each at the concurrency and "
            f"split of its highest throughput there; {charged}")


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
    static = o.batch_on is not None or o.batch_vs is not None
    if static and o.max_ttft_s is not None:
        raise TegelError("--max-ttft: a fixed --batch-on/--batch-vs runs static batches (tegel "
                         "run), which have no TTFT limit; give one or the other")
    w = Workload(cfg, o.input_tokens, o.output_tokens, o.precision, speed, o.target_tokens_per_s,
                 o.max_ttft_s, None if static else SchedulerConfig(kind=o.scheduler))
    eo = evaluate_system(w, sys_on, a, o.batch_on, params=params, basis="fixed (--batch-on)")
    ev = evaluate_system(w, sys_vs, a, o.batch_vs, params=params, basis="fixed (--batch-vs)")
    rows = tuple(sensitivity(w, eo, ev, a, o.swing, params=params)) if o.swing > 0 else ()
    return Claim(w, eo, ev, rows, a, a.changes_from(shipped))
