"""`tegel.run_graph`: one forward call of any graph (a CNN, an ONNX model) on a system.

The graph is scheduled (`mapping.schedule`: layer by layer or layer-fused on dataflow chips),
planned by the system's mapping policy (`registry.policy_for`) and priced by the same
evaluators as an LLM phase — `evaluate` or, with sim="event", the event simulator playing the
compiled plan. There is no formula here: time and energy are the engine's steps'. One replica
on one chip serves the call; the system's other chips are charged at idle power with their
hosts' share (whole-system accounting, as `tegel run`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from tegel.errors import TegelError
from tegel.evaluate.analytical import PhaseCost, evaluate
from tegel.evaluate.cost import CATEGORIES, Category
from tegel.evaluate.terms import static_power_w
from tegel.hardware import System, load_system
from tegel.mapping.compiled import CompiledPlan
from tegel.mapping.params import Params, default_params
from tegel.mapping.registry import policy_for
from tegel.mapping.schedule import DEFAULT_SCHEDULE, Schedule, Scheduled, schedule_graph
from tegel.serving.graph_layers import LayerRow, column_totals, energy_columns, layer_rows
from tegel.serving.scenario import SIMULATORS, resolve_precision
from tegel.workload.imported import in_formats
from tegel.workload.ir import Graph

_STATIC = CATEGORIES.index(Category.STATIC)


@dataclass(frozen=True, slots=True)
class GraphRunOptions:
    """How a graph run is mapped and priced: the schedule on dataflow chips (layer | fused;
    default fused, `mapping.schedule`), the evaluator (analytical | event), and whether the LLM
    serving engine's host work per forward call is charged (`host_overhead`: the GPU's
    `iteration_overhead_s` — scheduling, sampling — and the dataflow `host_round_trip_s` of a
    sampled token; off by default: a CNN call samples nothing. Kernel and step overheads stay)."""

    schedule: Schedule = DEFAULT_SCHEDULE
    sim: str = "analytical"
    host_overhead: bool = False
    # formats the graph runs in: a format name, "auto" (the chip's bf16, or the nearest it has:
    # an imported model is fp32) or "as-built" (the graph's own formats)
    precision: str = "auto"
    # dataflow chips: activations off chip between ops even where they fit on chip, as ZigZag
    # evaluates each layer alone (`PlanRequest.spill_activations`); for like-for-like checks
    spill_activations: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, Schedule):
            raise TegelError(f"schedule: expected layer or fused, got {self.schedule!r}")
        if self.sim not in SIMULATORS:
            raise TegelError(f"sim: expected 'analytical' or 'event', got {self.sim!r}")


@dataclass(frozen=True, slots=True)
class GraphResult:
    """One forward call of a graph of `batch` inferences on a whole system (SI units; per
    inference figures divide the call by `batch`)."""

    model: str
    system: System
    batch: int
    schedule: Schedule
    sim: str
    phase: PhaseCost  # the call on its replica, as the evaluator priced it
    compiled: CompiledPlan | None
    layers: tuple[LayerRow, ...]
    ops: tuple[LayerRow, ...]
    notes: tuple[str, ...]

    @property
    def latency_s(self) -> float:
        """Seconds of one call (all `batch` inferences)."""
        return self.phase.time_s

    @property
    def throughput_inferences_per_s(self) -> float:
        return self.batch / self.latency_s

    @property
    def chips_idle(self) -> int:
        return self.system.chip_count - self.phase.plan.parallelism.chips_per_replica

    def _energy(self) -> tuple[float, ...]:
        """Energy by category of the whole system over one call."""
        idle_w, _ = static_power_w(self.system, self.chips_idle)
        idle_w += self.system.host.rack_overhead_w * self.system.rack_share
        energy = list(self.phase.cost.energy_by_category_j)
        energy[_STATIC] += idle_w * self.latency_s
        return tuple(energy)

    @property
    def energy_breakdown_j_per_inference(self) -> dict[str, float]:
        return {c.value: e / self.batch for c, e in zip(CATEGORIES, self._energy(), strict=True)}

    @property
    def energy_j_per_inference(self) -> float:
        return sum(self._energy()) / self.batch

    @property
    def power_w(self) -> float:
        """Average power of the whole system over the call, W."""
        return sum(self._energy()) / self.latency_s

    @property
    def bound(self) -> str:
        """The resource that bounds the layer with the most busy time."""
        return max(self.layers, key=lambda r: r.time_s).bound if self.layers else ""

    def energy_by_level_j(self) -> dict[str, float]:
        """The replica's energy of the call per column (compute, each level, noc, ...): the
        per-layer rows' column sums, equal to the call's energy."""
        return column_totals(self.layers)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON contract of `tegel run MODEL.onnx --json`."""
        plan = self.phase.plan
        return {
            "model": self.model, "system": self.system.name, "batch": self.batch,
            "schedule": self.schedule.value, "sim": self.sim, "policy": plan.policy,
            "stages": plan.stages, "microbatches": plan.microbatches,
            "chips_busy": plan.parallelism.chips_per_replica, "chips_idle": self.chips_idle,
            "latency_s": self.latency_s,
            "throughput_inferences_per_s": self.throughput_inferences_per_s,
            "energy_j_per_inference": self.energy_j_per_inference,
            "energy_breakdown_j_per_inference": self.energy_breakdown_j_per_inference,
            "energy_columns": list(energy_columns(plan.levels)),
            "power_w": self.power_w, "power_capped": self.phase.power_capped,
            "bound": self.bound,
            "layers": [r.to_dict() for r in self.layers],
            "notes": list(self.notes),
        }

    def _repr_html_(self) -> str:
        """An HTML table for notebooks (`tegel.report.notebook`)."""
        from tegel.report.notebook import graph_html

        return graph_html(self)


def _faster_schedule(graph: Graph, system: System, options: GraphRunOptions,
                     params: Params | None, batch_note: str, single: Graph | None) -> GraphResult:
    """`auto`: on a dataflow chip both schedules priced, the faster kept (the other's latency in
    the notes); a GPU runs kernel by kernel either way (layer)."""
    def one(schedule: Schedule) -> GraphResult:
        return run_graph(graph, system, options=replace(options, schedule=schedule),
                         params=params, batch_note=batch_note, single=single)

    if system.chip.architecture != "dataflow":
        return one(Schedule.LAYER)
    results: list[GraphResult] = []
    failed: list[str] = []
    for schedule in (Schedule.LAYER, Schedule.FUSED):
        try:
            results.append(one(schedule))
        except TegelError as err:  # e.g. more layers than the chip has regions for
            failed.append(f"{schedule.value} does not map ({err})")
    if not results:
        raise TegelError(f"{graph.name} on {system.name}: " + "; ".join(failed))
    results.sort(key=lambda r: r.latency_s)
    best = results[0]
    note = "schedule auto: " + "; ".join(
        [f"{best.schedule.value} {best.latency_s:.3g} s per call"]
        + [f"beats {r.schedule.value} {r.latency_s:.3g} s" for r in results[1:]] + failed)
    return replace(best, notes=(*best.notes, note))


def _price(scheduled: Scheduled, system: System, params: Params, sim: str
           ) -> tuple[PhaseCost, CompiledPlan | None, tuple[str, ...]]:
    planned = policy_for(system.chip).plan(scheduled.graph, system, scheduled.request, params)
    if sim == "event":
        from tegel.evaluate.simulator import simulate

        phase = simulate(planned.compiled or planned.plan, system, lowered=planned.plan)
    else:
        phase = evaluate(planned.plan, system)
    return phase, planned.compiled, planned.plan.notes


def without_host_overhead(params: Params) -> Params:
    """`params` without the serving engine's host work per forward call (GraphRunOptions)."""
    return replace(params, gpu=replace(params.gpu, iteration_overhead_s=0.0),
                   dataflow=replace(params.dataflow, host_round_trip_s=0.0))


def _check_covered(graph: Graph, phase: PhaseCost) -> None:
    """Every op of the graph is carried out by some step (nothing silently left unpriced)."""
    carried = {o for sc in phase.steps for o in sc.step.ops}
    missing = [op.name for op in graph.ops if op.name not in carried]
    if missing:
        raise TegelError(f"{graph.name}: the plan leaves op(s) {', '.join(missing[:3])} unpriced")


def run_graph(graph: Graph, system: str | System, *, options: GraphRunOptions | None = None,
              params: Params | None = None, batch_note: str = "",
              single: Graph | None = None) -> GraphResult:
    """Price one forward call of `graph` (its batch is the graph inputs' leading size) on
    `system` with the system's mapping policy; `batch_note` is added to the notes (e.g. how a
    frontend chose the batch). `single`: the same network at batch 1, where a frontend can build
    it (an imported graph's reshapes fix their batch, so it cannot be rebatched)."""
    options = options or GraphRunOptions()
    sys_ = system if isinstance(system, System) else load_system(system)
    if options.precision != "as-built":
        # an imported model is fp32: price it in the chip's (or the asked) formats
        fmt = resolve_precision(sys_, options.precision)
        graph = in_formats(graph, fmt.weights, fmt.activations)
        single = in_formats(single, fmt.weights, fmt.activations) if single is not None else None
        options = replace(options, precision="as-built")
    if options.schedule is Schedule.AUTO:
        return _faster_schedule(graph, sys_, options, params, batch_note, single)
    scheduled = schedule_graph(graph, sys_, options.schedule, single, options.spill_activations)
    params = params or default_params()
    host: tuple[str, ...] = ()
    if not options.host_overhead:
        params = without_host_overhead(params)
        host = ("the LLM serving engine's host work per call is left out (host_overhead)",)
    phase, compiled, plan_notes = _price(scheduled, sys_, params, options.sim)
    _check_covered(scheduled.graph, phase)
    notes = (*((batch_note,) if batch_note else ()), *scheduled.notes, *host, *plan_notes)
    return GraphResult(graph.name, sys_, scheduled.batch, scheduled.schedule, options.sim, phase,
                       compiled, layer_rows(phase, scheduled.graph, sys_),
                       layer_rows(phase, scheduled.graph, sys_, by="op"), notes)
