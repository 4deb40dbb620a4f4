"""One design point: parameters -> template -> chip -> system -> the engine -> a typed record.

The engine is `economics.evaluate.evaluate_system`, the function `tegel claim` uses: a static
`tegel run` at the space's batch (`fixed_batch`), or the operating point at the SLO
(`serving.operating.find_operating_point`). Nothing here prices anything itself.

In `operating_point` mode two checks run before the (seconds-long) operating-point search, each
reading the engine: the hardware constraints (they read only the expanded design), and a static
`tegel run` at batch 1 — the split of lowest latency, with nothing else in flight. No serving
concurrency is faster per user than that run, and no request's first token comes sooner than its
prefill alone, so a design that misses the SLO there misses it at every concurrency.

An error on one point is caught and stored with its message; the search goes on.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

from tegel.economics.area import chip_area
from tegel.economics.assumptions import Assumptions, load_assumptions
from tegel.economics.cost import chip_cost, system_capital
from tegel.economics.evaluate import SystemEconomics, Workload, evaluate_system
from tegel.economics.served import ServingPoint
from tegel.errors import TegelError
from tegel.explore.metrics import (
    BINDING_TOLERANCE,
    CONSTRAINTS,
    HARDWARE,
    MEMORY,
    SLO_SPEED,
    SLO_TTFT,
    violation,
)
from tegel.explore.space import Space, Value, point_key
from tegel.hardware import System, load_system
from tegel.hardware.derive import complete_system
from tegel.hardware.technology import load_technology
from tegel.hardware.template import ChipTemplate, expand
from tegel.hardware.yamlio import read_yaml
from tegel.serving.run import RunResult, run
from tegel.serving.scenario import resolve_precision
from tegel.workload.model_config import load_model_config


@dataclass(frozen=True, slots=True)
class Task:
    """A point to evaluate: the trial that first asked for it and its parameters."""

    trial: int
    params: dict[str, Value]

    @property
    def key(self) -> str:
        return point_key(self.params)


@dataclass(frozen=True, slots=True)
class PointResult:
    """One evaluated point. `violated`: constraints it misses (infeasible if any); `binding`:
    those a feasible point meets within BINDING_TOLERANCE; `error`: the message if the
    evaluation failed (then metrics hold what was known before it)."""

    key: str
    trial: int
    params: dict[str, Value]
    metrics: dict[str, float]
    violated: tuple[str, ...]
    binding: tuple[str, ...]
    error: str | None
    elapsed_s: float

    @property
    def feasible(self) -> bool:
        return self.error is None and not self.violated


@dataclass(frozen=True, slots=True)
class Design:
    """A point made concrete: its system (the expanded chip inside) and the format it runs."""

    system: System
    precision: str | None
    batch: int | None  # fixed_batch: the point's own batch (None: the space's)


@dataclass
class Evaluator:
    """Evaluates points of one space; built once per worker process (holds loaded files)."""

    space: Space
    assumptions: Assumptions = field(init=False)
    _template: dict[str, Any] = field(init=False)
    _system_raw: dict[str, Any] | None = field(init=False)

    def __post_init__(self) -> None:
        self.assumptions = load_assumptions()
        self._template = ChipTemplate.model_validate(
            read_yaml(self.space.template_path)).model_dump()
        self._system_raw = (None if self.space.system_path is None
                            else dict(read_yaml(self.space.system_path)))
        self._model = load_model_config(self.space.spec.workload.model)

    def design(self, params: dict[str, Value], key: str) -> Design:
        """The system of a point: the template with the point's values, expanded on its node's
        technology, in the space's system (chip replaced, chip count set) or on its own."""
        doc = copy.deepcopy(self._template)
        chips, precision, batch = 1, self.space.spec.workload.precision, None
        for name, value in params.items():
            if name == "system.chip_count":
                chips = int(value)
            elif name == "workload.precision":
                precision = str(value)
            elif name == "workload.batch":
                batch = int(value)
            else:
                _set(doc, name, value)
        # a design is a new chip: priced by the cost model, never a named product's price
        doc["name"] = f"{doc['name']}~{key[:8]}"
        template = ChipTemplate.model_validate(doc)
        tech = load_technology(template.node)
        chip = expand(template, tech)
        if self._system_raw is None:
            return Design(System.single(chip), precision, batch)
        data = dict(self._system_raw)
        per_node = int(data.get("chips_per_node", 1))
        data.update(chip=chip, chip_count=chips, chips_per_node=min(per_node, chips),
                    name=f"{data['name']}~{key[:8]}")
        return Design(complete_system(System.model_validate(data), tech), precision, batch)

    def workload(self) -> Workload:
        spec = self.space.spec
        slo = spec.slo
        return Workload(self._model, spec.workload.input_tokens, spec.workload.output_tokens,
                        None, slo.min_tokens_per_s_per_user if slo else 0.0,
                        spec.target_tokens_per_s, slo.max_ttft_s if slo else None)

    def evaluate(self, task: Task, at_operating_point: bool | None = None) -> PointResult:
        """The record of one point; any failure is stored as its error message.
        `at_operating_point`: True to evaluate at the SLO's operating point whatever the
        space's mode (the refinement of a fixed-batch search's best points)."""
        start = time.perf_counter()
        metrics: dict[str, float] = {}
        violated: list[str] = []
        error = None
        try:
            design = self.design(task.params, task.key)
            metrics.update(hardware_metrics(design.system, self.assumptions))
            violated += self._violations(metrics, HARDWARE)
            screen = (self.space.spec.evaluate.kind == "operating_point"
                      if at_operating_point is None else at_operating_point)
            if not (screen and violated):
                econ = self._engine(design, screen, violated)
                if econ is not None:
                    metrics.update(served_metrics(econ))
                    violated += self._violations(metrics, set(CONSTRAINTS) - HARDWARE)
                    violated += self._slo_violations(metrics)
        except TegelError as err:
            error = str(err)
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
        binding = () if violated or error else self._binding(metrics)
        return PointResult(task.key, task.trial, dict(task.params), metrics,
                           tuple(dict.fromkeys(violated)), binding, error,
                           time.perf_counter() - start)

    def _engine(self, design: Design, screen: bool,
                violated: list[str]) -> SystemEconomics | None:
        """The engine's evaluation, or None where the design is ruled out (added to
        `violated`): memory, or (operating point) the static batch-1 screen or the SLO."""
        w = self.workload()
        spec = self.space.spec
        precision = resolve_precision(design.system, design.precision)
        w = Workload(w.model, w.input_tokens, w.output_tokens, precision,
                     w.min_tokens_per_s_per_user, w.target_tokens_per_s, w.max_ttft_s)
        try:
            if not screen:
                batch = design.batch or spec.evaluate.batch
                return evaluate_system(w, design.system, self.assumptions, batch)
            alone = run(w.model, design.system, 1, w.input_tokens, w.output_tokens, precision)
            missed = _slo_missed(alone, w)
            if missed:
                violated += missed
                return None
            return evaluate_system(w, design.system, self.assumptions)
        except TegelError as err:
            text = str(err)
            if "does not fit" in text:
                violated.append(MEMORY)
            elif "per-user speed binds" in text:
                violated.append(SLO_SPEED)
            elif "TTFT limit binds" in text:
                violated.append(SLO_TTFT)
            else:
                raise
            return None

    def _violations(self, metrics: dict[str, float], names: set[str] | frozenset[str]) -> list[str]:
        limits = self.space.spec.constraints
        return [n for n in limits if n in names and CONSTRAINTS[n].metric in metrics
                and violation(n, metrics[CONSTRAINTS[n].metric], limits[n]) > 0]

    def _slo_violations(self, metrics: dict[str, float]) -> list[str]:
        slo = self.space.spec.slo
        if slo is None:
            return []
        out = []
        if metrics["tokens_per_s_per_user"] < slo.min_tokens_per_s_per_user:
            out.append(SLO_SPEED)
        if slo.max_ttft_s is not None and metrics["ttft_s"] > slo.max_ttft_s:
            out.append(SLO_TTFT)
        return out

    def _binding(self, metrics: dict[str, float]) -> tuple[str, ...]:
        limits = self.space.spec.constraints
        out = [n for n in limits if CONSTRAINTS[n].metric in metrics
               and violation(n, metrics[CONSTRAINTS[n].metric], limits[n]) > -BINDING_TOLERANCE]
        slo = self.space.spec.slo
        if slo is not None and "tokens_per_s_per_user" in metrics:
            speed = slo.min_tokens_per_s_per_user
            if speed and metrics["tokens_per_s_per_user"] < speed * (1 + BINDING_TOLERANCE):
                out.append(SLO_SPEED)
            if slo.max_ttft_s and metrics["ttft_s"] > slo.max_ttft_s * (1 - BINDING_TOLERANCE):
                out.append(SLO_TTFT)
        return tuple(out)


def _slo_missed(alone: RunResult, w: Workload) -> list[str]:
    """The SLO limits a static batch-1 run already misses (module doc)."""
    out = []
    if alone.tokens_per_s_per_user < w.min_tokens_per_s_per_user:
        out.append(SLO_SPEED)
    if w.max_ttft_s is not None and alone.ttft_s > w.max_ttft_s:
        out.append(SLO_TTFT)
    return out


def _set(doc: dict[str, Any], dotted: str, value: Value) -> None:
    parts = dotted.split(".")
    node = doc
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def hardware_metrics(system: System, a: Assumptions) -> dict[str, float]:
    """What the expanded design alone says: areas, powers, prices (before any run)."""
    chip = system.chip
    dies = chip.package.compute_dies if chip.package else 1
    nodes_per_rack = system.host.nodes_per_rack
    rack_ovh = system.host.rack_overhead_w * system.rack_share
    per_node = (system.tdp_w - rack_ovh) / system.node_count
    rack_w = (per_node * nodes_per_rack + system.host.rack_overhead_w if nodes_per_rack
              else system.tdp_w)
    return {
        "chips": float(system.chip_count),
        "area_mm2": chip_area(chip, a, system).total_mm2,
        "die_area_mm2": chip.die_area_mm2,
        "package_power_w": chip.tdp_w,
        "power_density_w_per_mm2": chip.tdp_w / (chip.die_area_mm2 * dies),
        "system_power_w": system.tdp_w,
        "rack_power_w": rack_w,
        "chip_price_usd": chip_cost(chip, a).price_usd,
        "system_capital_usd": system_capital(system, a).total_usd,
        "offchip_bytes_per_s": system.offchip_bytes_per_s,
    }


def served_metrics(e: SystemEconomics) -> dict[str, float]:
    """What the engine's evaluation says: energy (by category), floor, TCO, speed, TTFT."""
    r = e.result
    ttft = r.op.point.ttft_p99_s if isinstance(r, ServingPoint) else getattr(r, "ttft_s", 0.0)
    out = {
        "tokens_per_j": 1.0 / r.energy_j_per_token,
        "energy_j_per_token": r.energy_j_per_token,
        "energy_floor_j_per_token": e.floor.j_per_token,
        "energy_floor_arithmetic_j_per_token": e.floor.arithmetic_j_per_token,
        "energy_floor_weights_j_per_token": e.floor.weights_j_per_token,
        "floor_ratio": e.floor_ratio,
        "usd_per_mtoken": e.tco.usd_per_mtoken,
        "capital_usd_per_mtoken": e.tco.capital_usd_per_mtoken,
        "tokens_per_s_per_user": r.tokens_per_s_per_user,
        "throughput_tokens_per_s": r.throughput_tokens_per_s,
        "ttft_s": float(ttft),
        "concurrency": float(r.batch),
    }
    out.update({f"energy_{k}_j_per_token": v for k, v in r.energy_breakdown_j_per_token.items()})
    return out


def baseline_metrics(space: Space, name: str, at_operating_point: bool,
                     precision: str | None = None) -> dict[str, float]:
    """The space's workload and SLO on a named system (e.g. dgx-h100), in `precision` (default:
    the space's): at the operating point, or a static run at the space's batch (with a batch
    parameter, and no SLO: its largest)."""
    ev = Evaluator(space)
    system = load_system(name)
    w = ev.workload()
    fmt = resolve_precision(system, precision or space.spec.workload.precision)
    w = Workload(w.model, w.input_tokens, w.output_tokens, fmt,
                 w.min_tokens_per_s_per_user, w.target_tokens_per_s, w.max_ttft_s)
    batch = None
    if not at_operating_point:
        p = space.spec.parameters.get("workload.batch")
        batch = space.spec.evaluate.batch or (max(int(v) for v in p.grid()) if p else None)
    econ = evaluate_system(w, system, ev.assumptions, batch)
    return {**hardware_metrics(system, ev.assumptions), **served_metrics(econ)}
