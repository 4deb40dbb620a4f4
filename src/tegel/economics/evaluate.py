"""Where a system serves a workload and what that costs: the primitives `tegel claim`, `tegel
cost --model` and the tornado share.

- `Workload`: what both systems serve (model, lengths, formats, the service level, the throughput
  the footprint is sized for);
- `evaluate_system`: a system placed on it — at its operating point at the service level
  (`serving/operating.py`), or a static batch — and priced (`cost_run`: floor, TCO, footprint,
  chip cost, area);
- `served_again`: the same placement (concurrency or batch, split, requests) on the system with
  one figure moved, nothing searched again;
- `ratios`: A's advantage over B (> 1: A better) in energy, cost and footprint.
"""

from __future__ import annotations

from dataclasses import dataclass

from tegel.economics.area import Area, chip_area
from tegel.economics.assumptions import Assumptions
from tegel.economics.cost import ChipCost, chip_cost
from tegel.economics.floor import EnergyFloor, energy_floor
from tegel.economics.served import Served, ServingPoint, service_fields
from tegel.economics.tco import Footprint, Tco, footprint, interactive_run, tco
from tegel.hardware import System
from tegel.mapping.params import Params
from tegel.serving.operating import CHUNKED, ServiceLevel, find_operating_point
from tegel.serving.operating import served_again as serve_point_again
from tegel.serving.replica import SchedulerConfig
from tegel.serving.run import RunResult, run
from tegel.serving.scenario import RunOptions, resolve_precision
from tegel.workload.llm import Precision
from tegel.workload.model_config import ModelConfig

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

