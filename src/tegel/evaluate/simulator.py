"""The event-driven simulator: a plan played out on tiles, links and memory channels.

The kernel is SimPy's idea without its generality: all state in one `Kernel`, events on a heap
ordered by (time, priority, sequence) so that runs are deterministic, and `Resource`s — one
holder at a time, waiting requests served by (priority, arrival). Statistics and tracing are
attached from outside (a `Tracer` receives every busy interval).

`simulate` plays any plan. Every job is priced by the shared cost terms (`evaluate.terms`) of its
step, exactly as the analytical evaluator prices it:
- a job holds its stage's region (queued in program order: token, micro-batch, layer, op) for
  its private terms — compute, tile-level storage, the region's own network — while its traffic
  to chip-level and off-chip memory and, for a transfer, each link bundle of its route (split
  at the edges of all routes, so that bundles sharing physical links share a queue) are demands
  on shared resources that queue; then it waits its serial terms (route latency, a collective's
  chip-to-chip time, fixed overhead);
- a compiled (spatial) plan runs by its data dependencies: an op waits for the ops (and
  transfers) that produce its inputs, so independent stages overlap; a plan of steps alone (a
  GPU's kernels) runs its steps in order on each pipeline stage;
- micro-batches pipeline through the stages; with `tokens` > 1 each micro-batch's next token
  waits for its previous one.
Uncontended, each job takes exactly the analytical evaluator's step time; the simulator adds
what the formulas cannot see — queues on shared links and channels, and the overlap of stages.
The result is the analytical evaluator's `PhaseCost`, finished by the same power cap and static
power.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from heapq import heappop, heappush
from typing import Any, Protocol

from tegel.evaluate.analytical import PhaseCost, StepCost, dynamic_energy, finish
from tegel.evaluate.terms import Bound, Rates, StepTerms, step_terms
from tegel.hardware import System
from tegel.mapping.compiled import CompiledPlan, Stream
from tegel.mapping.lower import lower
from tegel.mapping.plan import Link, Plan, StepKind

_PRIORITY_SHIFT = 40  # events: (time, priority << 40 | sequence, callback, argument)


class Kernel:
    """The simulation clock and its event heap."""

    __slots__ = ("_heap", "_seq", "events", "now")

    def __init__(self) -> None:
        self.now = 0.0
        self.events = 0
        self._heap: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._seq = 0

    def at(self, delay: float, fn: Callable[[Any], None], arg: Any = None, priority: int = 0) -> None:
        """Call fn(arg) `delay` seconds from now (after earlier events of equal time/priority)."""
        self._seq += 1
        heappush(self._heap, (self.now + delay, (priority << _PRIORITY_SHIFT) | self._seq, fn, arg))

    def run(self) -> float:
        """Process events until none are left; returns the final time."""
        heap, pop = self._heap, heappop
        first = self._seq - len(heap)  # every event pushed from here on is also popped
        while heap:
            time, _, fn, arg = pop(heap)
            self.now = time
            fn(arg)
        self.events += self._seq - first
        return self.now


class Resource:
    """One holder at a time; waiting requests are served in (priority, arrival) order.

    `use(seconds, fn, arg)` holds it for a fixed time and then calls fn(arg, start);
    `acquire(fn, arg)` calls fn(arg) once granted and holds it until `release()`.
    """

    __slots__ = ("_arg", "_done_cb", "_fn", "_queue", "_seq", "_since", "busy", "busy_s",
                 "kernel", "name", "track")

    def __init__(self, kernel: Kernel, name: str, track: tuple[str, str] = ("", "")) -> None:
        self.kernel, self.name, self.track = kernel, name, track
        self.busy = False
        self.busy_s = 0.0
        self._since = 0.0
        self._fn: Callable[..., None] = _nothing
        self._arg: Any = None
        self._done_cb = self._done
        self._queue: list[tuple[int, int, float, Callable[..., None], Any]] = []
        self._seq = 0

    def use(self, seconds: float, fn: Callable[[Any, float], None], arg: Any, priority: int = 0) -> None:
        if self.busy:
            self._seq += 1
            heappush(self._queue, (priority, self._seq, seconds, fn, arg))
            return
        k = self.kernel  # the hot path, inlined: grant now, finish `seconds` later
        self.busy, self._since, self._fn, self._arg = True, k.now, fn, arg
        k._seq += 1
        heappush(k._heap, (k.now + seconds, k._seq, self._done_cb, None))

    def acquire(self, fn: Callable[[Any], None], arg: Any, priority: int = 0) -> None:
        if self.busy:
            self._seq += 1
            heappush(self._queue, (priority, self._seq, -1.0, fn, arg))
        else:
            self.busy, self._since = True, self.kernel.now
            fn(arg)

    def release(self) -> None:
        k = self.kernel
        self.busy_s += k.now - self._since
        if not self._queue:
            self.busy = False
            return
        _, _, seconds, fn, arg = heappop(self._queue)
        self._since = k.now
        if seconds < 0:
            fn(arg)
        else:
            self._fn, self._arg = fn, arg
            k._seq += 1
            heappush(k._heap, (k.now + seconds, k._seq, self._done_cb, None))

    def _done(self, _: object) -> None:
        # the callback first, so that what it makes ready queues before the next is chosen
        self._fn(self._arg, self._since)
        self.release()


def _nothing(*_: object) -> None:
    return None


class Tracer(Protocol):
    """Receives busy intervals: (process, track) names the timeline row."""

    def span(self, process: str, track: str, name: str, start_s: float, end_s: float,
             args: dict[str, Any]) -> None: ...


class _Job:
    __slots__ = ("args", "bound", "demands", "dependents", "deps", "end", "name", "parts",
                 "priority", "private", "region", "start", "step", "tail")

    def __init__(self, name: str, step: int, region: Resource | None, priority: int,
                 private: tuple[float, Bound], demands: list[tuple[Resource, float, Bound]],
                 tail: float, args: dict[str, Any]) -> None:
        self.name, self.step, self.region, self.priority = name, step, region, priority
        self.private, self.demands, self.tail, self.args = private, demands, tail, args
        self.deps = 0
        self.dependents: list[_Job] = []
        self.parts = 0
        self.start = self.end = 0.0
        self.bound = private[1]


@dataclass(frozen=True, slots=True)
class SimRun:
    """A simulation: the cost (per call), events processed, and busy seconds per resource."""

    cost: PhaseCost
    events: int
    makespan_s: float
    busy_s: dict[str, float]


def _link_segments(plan: Plan) -> dict[tuple[int, str, int, int], list[int]]:
    """Breakpoints of every grid line's bundles, so overlapping bundles share segments."""
    cuts: dict[tuple[int, str, int, int], set[int]] = {}
    for s in plan.steps:
        for lk in s.route:
            cuts.setdefault((lk.chip, lk.kind, lk.line, lk.direction), set()).update((lk.lo, lk.hi))
    return {key: sorted(points) for key, points in cuts.items()}


def _job_label(name: str, first_layer: int, rep: int) -> str:
    return name if first_layer < 0 else f"{name} (layer {first_layer + rep})"


class _Run:
    """Builds the jobs of a plan and plays them on one kernel."""

    def __init__(self, lowered: Plan, system: System, tracer: Tracer | None) -> None:
        self.k = Kernel()
        self.tracer = tracer
        self.lowered = lowered
        rates = Rates.of(system, lowered)
        self.terms: list[StepTerms] = [step_terms(s, rates) for s in lowered.steps]
        self.level_names, self.scopes = rates.level_names, rates.level_scopes
        self.resources: dict[str, Resource] = {}
        self.segments = _link_segments(lowered)
        self.jobs: list[_Job] = []

    def _resource(self, name: str, process: str) -> Resource:
        res = self.resources.get(name)
        if res is None:
            res = self.resources[name] = Resource(self.k, name, (process, name))
        return res

    def _links(self, lk: Link) -> list[Resource]:
        proc = "chip-to-chip" if lk.kind == "c2c" else f"chip {lk.chip} network"
        if lk.kind not in ("x", "y"):
            return [self._resource(lk.label(), proc)]
        points = self.segments[(lk.chip, lk.kind, lk.line, lk.direction)]
        spans = [(a, b) for a, b in itertools.pairwise(points) if lk.lo <= a and b <= lk.hi]
        return [self._resource(Link(lk.kind, lk.chip, lk.line, lk.direction, a, b, 0.0, 0.0).label(), proc)
                for a, b in spans]

    def job(self, index: int, name: str, region: Resource | None, where: str,
            args: dict[str, Any]) -> _Job:
        """The job of one occurrence of step `index`: its private terms on `region`, its memory
        traffic and route as queued demands, its serial terms as the tail (module doc)."""
        s, t = self.lowered.steps[index], self.terms[index]
        private = [(t.compute_s, Bound.COMPUTE), (t.noc_s, Bound.NOC)]
        demands: list[tuple[Resource, float, Bound]] = []
        for i, sec in enumerate(t.level_s):
            if not sec:
                continue
            if self.scopes[i] == "tile":
                private.append((sec, Bound.MEMORY))
            else:
                demands.append((self._resource(f"{self.level_names[i]} @ {where}", where), sec,
                                Bound.MEMORY))
        for lk, sec in zip(s.route, t.route_s, strict=True):
            demands += [(res, sec, Bound.LINK) for res in self._links(lk)]
        best = max(private, key=lambda p: p[0])
        job = _Job(name, index, region, len(self.jobs), best, demands,
                   t.latency_s + t.link_s + t.overhead_s, args)
        self.jobs.append(job)
        return job

    # ---- building ------------------------------------------------------------------------

    def build_compiled(self, plan: CompiledPlan, tokens: int) -> None:
        """Jobs of a compiled plan, linked by its data dependencies."""
        steps = self.lowered.steps
        ops = {op.name: op for op in plan.graph.ops}
        op_step: dict[tuple[int, str], int] = {}
        collective: dict[tuple[int, str], int] = {}
        transfers: list[int] = []
        for i, s in enumerate(steps):
            if s.kind is StepKind.TRANSFER:
                transfers.append(i)
            elif s.kind is StepKind.COLLECTIVE:
                collective[(s.stage, s.ops[0])] = i
            else:
                op_step[(s.stage, s.ops[0])] = i
        regions = [self._resource(f"stage {st.index}: {st.region.label()}", f"chip {st.region.chip}")
                   for st in plan.stages]
        incoming: list[list[int]] = [[] for _ in plan.stages]
        for j, tr in enumerate(plan.transfers):
            incoming[tr.dst_stage].append(j)
        last: dict[int, _Job] = {}
        outputs = Stream.of(plan.stages).block_outputs
        for token in range(tokens):
            for mb in range(plan.microbatches):
                produced: dict[str, _Job] = {}
                chain: list[_Job] = []
                for st in plan.stages:
                    where = f"stage {st.index}"
                    for j in incoming[st.index]:
                        tr = plan.transfers[j]
                        job = self.job(transfers[j], f"{tr.tensor} -> stage {tr.dst_stage}", None,
                                       where, {"bytes": tr.bytes, "microbatch": mb, "token": token})
                        self._after(job, [produced.get(tr.tensor)], chain)
                        produced[tr.into] = job
                    stream = Stream(outputs)
                    for seg in st.segments:
                        for name, holder in stream.aliases(seg):
                            if holder in produced:
                                produced[name] = produced[holder]
                        stream.passed(seg)
                        for rep in range(seg.repeat):
                            if rep and seg.carry:
                                produced[seg.carry[0]] = produced[seg.carry[1]]
                            for name in seg.ops:
                                op, index = ops[name], op_step[(st.index, name)]
                                s = steps[index]
                                args = {"flops": s.flops, "bytes": sum(s.reads) + sum(s.writes),
                                        "microbatch": mb, "token": token}
                                label = _job_label(name, seg.first_layer, rep)
                                job = self.job(index, label, regions[st.index], where, args)
                                self._after(job, [produced.get(t.name) for t in op.inputs], chain)
                                if (st.index, name) in collective:
                                    c = collective[(st.index, name)]
                                    done = self.job(c, f"{label} {steps[c].name}", regions[st.index],
                                                    where, {"microbatch": mb, "token": token})
                                    self._after(done, [job], chain)
                                    job = done
                                for t in op.outputs:
                                    produced[t.name] = job
                self._next_token(last, mb, chain)

    def build_sequence(self, tokens: int) -> None:
        """Jobs of a plan of steps alone: each stage runs its steps in order (a stage's steps
        with stage -1 are those every stage runs), stage after stage for each micro-batch."""
        plan = self.lowered
        regions = [self._resource(f"stage {i}", f"{plan.system} stage {i}")
                   for i in range(plan.stages)]
        last: dict[int, _Job] = {}
        for token in range(tokens):
            for mb in range(plan.microbatches):
                chain: list[_Job] = []
                for stage in range(plan.stages):
                    for index, s in enumerate(plan.steps):
                        if s.stage not in (-1, stage):
                            continue
                        first = s.first_layer + (stage * s.repeat if s.stage < 0 <= s.first_layer else 0)
                        for rep in range(s.repeat):
                            args = {"flops": s.flops, "microbatch": mb, "token": token}
                            job = self.job(index, _job_label(s.name, first, rep),
                                           regions[stage], f"stage {stage}", args)
                            self._after(job, [chain[-1] if chain else None], chain)
                self._next_token(last, mb, chain)

    def _after(self, job: _Job, deps: list[_Job | None], chain: list[_Job]) -> None:
        for dep in {id(d): d for d in deps if d is not None}.values():
            dep.dependents.append(job)
            job.deps += 1
        chain.append(job)

    def _next_token(self, last: dict[int, _Job], mb: int, chain: list[_Job]) -> None:
        """The micro-batch's next token starts after its previous one ends."""
        previous = last.get(mb)
        if previous is not None:
            for job in chain:
                if not job.deps:
                    job.deps = 1
                    previous.dependents.append(job)
        if chain:
            last[mb] = chain[-1]

    # ---- execution ----------------------------------------------------------------------

    def run(self) -> float:
        for job in self.jobs:
            if not job.deps:
                self._ready(job)
        return self.k.run()

    def _ready(self, job: _Job) -> None:
        if job.region is not None:
            job.region.acquire(self._start, job, job.priority)
        else:
            self._start(job)

    def _start(self, job: _Job) -> None:
        job.start = self.k.now
        job.parts = 1 + len(job.demands)
        self.k.at(job.private[0], self._private_done, job)
        for res, seconds, label in job.demands:
            res.use(seconds, self._demand_done, (job, res, label), job.priority)

    def _private_done(self, job: _Job) -> None:
        self._part(job, job.private[1])

    def _demand_done(self, payload: tuple[_Job, Resource, Bound], start: float) -> None:
        job, res, label = payload
        if self.tracer is not None:
            self.tracer.span(res.track[0], res.track[1], job.name, start, self.k.now, job.args)
        self._part(job, label)

    def _part(self, job: _Job, label: Bound) -> None:
        job.parts -= 1
        job.bound = label
        if not job.parts:
            if job.tail:
                self.k.at(job.tail, self._finish, job)
            else:
                self._finish(job)

    def _finish(self, job: _Job) -> None:
        job.end = self.k.now
        for dep in job.dependents:  # before the release: the region picks among all ready
            dep.deps -= 1
            if not dep.deps:
                self._ready(dep)
        if job.region is not None:
            job.region.release()
            if self.tracer is not None:
                process, track = job.region.track
                self.tracer.span(process, track, job.name, job.start, job.end, job.args)


def run_simulation(plan: Plan | CompiledPlan, system: System, tokens: int = 1,
                   tracer: Tracer | None = None, lowered: Plan | None = None) -> SimRun:
    """Simulate `tokens` consecutive calls of `plan` (each micro-batch's next token waits for
    its previous one); the cost is per call: makespan / tokens. A compiled plan is lowered with
    the shipped dataflow parameters unless `lowered` (its lowering) is given."""
    compiled = plan if isinstance(plan, CompiledPlan) else None
    steps_plan = lowered or (lower(plan, system) if isinstance(plan, CompiledPlan) else plan)
    sim = _Run(steps_plan, system, tracer)
    tokens = max(1, tokens)
    if compiled is not None:
        sim.build_compiled(compiled, tokens)
    else:
        sim.build_sequence(tokens)
    makespan = sim.run()
    totals: dict[int, list[float]] = {}
    bounds: dict[int, tuple[float, Bound]] = {}
    for job in sim.jobs:
        duration = job.end - job.start
        acc = totals.setdefault(job.step, [0.0, 0.0])
        acc[0] += duration
        acc[1] += 1
        if duration >= bounds.get(job.step, (-1.0, Bound.COMPUTE))[0]:
            bounds[job.step] = (duration, job.bound)
    costs = []
    for i, (s, t) in enumerate(zip(steps_plan.steps, sim.terms, strict=True)):
        alone, bound, level = t.time_and_bound()
        time = totals[i][0] / totals[i][1] if i in totals else alone
        bound = bounds[i][1] if i in bounds else bound
        name = sim.level_names[level] if bound is Bound.MEMORY and level >= 0 else ""
        costs.append(StepCost(s, time, t.energy_by_category_j, bound, name))
    steps = tuple(costs)
    cost = finish(steps_plan, system, makespan / tokens, dynamic_energy(steps_plan, steps), steps)
    busy = {name: res.busy_s for name, res in sim.resources.items()}
    return SimRun(cost, sim.k.events, makespan, busy)


def simulate(plan: Plan | CompiledPlan, system: System, tokens: int = 1,
             tracer: Tracer | None = None, lowered: Plan | None = None) -> PhaseCost:
    """The event simulator's cost of one call of `plan` (the analytical evaluator's type)."""
    return run_simulation(plan, system, tokens, tracer, lowered).cost
