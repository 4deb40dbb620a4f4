"""The event-driven simulator: a compiled plan played out on tiles, links and memory channels.

The kernel is SimPy's idea without its generality: all state in one `Kernel`, events on a heap
ordered by (time, priority, sequence) so that runs are deterministic, and `Resource`s — one
holder at a time, waiting requests served by (priority, arrival). Statistics and tracing are
attached from outside (a `Tracer` receives every busy interval).

`simulate` lowers a compiled plan to jobs with dependencies and runs them:
- an op of a stage holds its region (the region's queue is ordered by the compiled program
  order: token, micro-batch, layer, op) for the longest of its private terms — compute at the
  split's utilisation, tile-SRAM traffic, traffic on the region's own network plus latency —
  and of its demands on shared memory channels (the stacked or off-chip memory attached to the
  region, queued);
- a transfer between stages demands every link bundle of its route (split at the edges of all
  routes, so that bundles that share physical links share a queue) for bytes / bandwidth, then
  waits the route's latency; it holds no region, so compute overlaps communication;
- micro-batches pipeline through the stages, and with `tokens` > 1 each micro-batch's next
  token waits for its previous one.
Uncontended, each op takes exactly the analytical evaluator's time; the simulator adds what
the formulas cannot see — queues on shared links and channels, and the overlap of stages.
The result is the analytical evaluator's `PhaseCost`: energies per action from the same plan,
static energy over the simulated time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from heapq import heappop, heappush
from typing import Any, Protocol

from tegel.evaluate.analytical import PhaseCost, StepCost, evaluate
from tegel.evaluate.cost import CATEGORIES, Category, Cost
from tegel.hardware import System
from tegel.mapping.compiled import CompiledPlan, Link
from tegel.mapping.compiler import layer_name, lower
from tegel.mapping.plan import Plan, Step
from tegel.mapping.routing import noc_links

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
                 private: tuple[float, str], demands: list[tuple[Resource, float, str]], tail: float,
                 args: dict[str, Any]) -> None:
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


class _Rates:
    """Per-step seconds of each term, as the analytical evaluator computes them."""

    def __init__(self, plan: Plan, system: System) -> None:
        chip = system.chip
        levels = chip.levels()
        eff = plan.bandwidth_efficiency
        self.read = [lv.read_bytes_per_s * e for lv, e in zip(levels, eff, strict=True)]
        self.write = [lv.write_bytes_per_s * e for lv, e in zip(levels, eff, strict=True)]
        self.scope = [lv.scope for lv in levels]
        self.names = [lv.name for lv in levels]
        self.peak = {d: chip.peak_flops_per_s(d) for d in chip.dtypes}
        self.noc = chip.noc.link_bytes_per_s * noc_links(chip)

    def private(self, s: Step) -> tuple[float, str]:
        """The longest term a region does alone: compute, tile levels, its network."""
        share = s.resource_share
        terms = [(s.flops / (self.peak[s.compute_class] * s.compute_efficiency * share)
                  if s.flops else 0.0, "compute")]
        terms += [((rd / self.read[i] + wr / self.write[i]) / share, self.names[i])
                  for i, (rd, wr) in enumerate(zip(s.reads, s.writes, strict=True))
                  if (rd or wr) and self.scope[i] == "tile"]
        if s.noc_byte_hops:
            terms.append((s.noc_byte_hops / (self.noc * share) + s.noc_latency_s, "noc"))
        return max(terms)

    def shared(self, s: Step) -> list[tuple[int, float]]:
        """(level index, seconds) of traffic to levels beyond the tiles."""
        return [(i, (rd / self.read[i] + wr / self.write[i]) / s.resource_share)
                for i, (rd, wr) in enumerate(zip(s.reads, s.writes, strict=True))
                if (rd or wr) and self.scope[i] != "tile"]


def _link_segments(plan: CompiledPlan) -> dict[tuple[int, str, int, int], list[int]]:
    """Breakpoints of every grid line's bundles, so overlapping bundles share segments."""
    cuts: dict[tuple[int, str, int, int], set[int]] = {}
    for t in plan.transfers:
        for lk in t.route:
            cuts.setdefault((lk.chip, lk.kind, lk.line, lk.direction), set()).update((lk.lo, lk.hi))
    return {key: sorted(points) for key, points in cuts.items()}


class _Run:
    """Builds the jobs of a compiled plan and plays them on one kernel."""

    def __init__(self, plan: CompiledPlan, lowered: Plan, system: System, tokens: int,
                 tracer: Tracer | None) -> None:
        self.k = Kernel()
        self.tracer = tracer
        self.plan, self.lowered = plan, lowered
        self.rates = _Rates(lowered, system)
        self.resources: dict[str, Resource] = {}
        self.segments = _link_segments(plan)
        self.jobs: list[_Job] = []
        self._build(tokens)

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

    def _build(self, tokens: int) -> None:
        plan, rates, steps = self.plan, self.rates, self.lowered.steps
        ops = {op.name: op for op in plan.graph.ops}
        regions = [self._resource(f"stage {st.index}: {st.region.label()}", f"chip {st.region.chip}")
                   for st in plan.stages]
        op_step: dict[tuple[int, str], int] = {}
        i = 0
        for st in plan.stages:
            for seg in st.segments:
                for name in seg.ops:
                    op_step[(st.index, name)] = i
                    i += 1
        incoming: list[list[int]] = [[] for _ in plan.stages]
        for j, tr in enumerate(plan.transfers):
            incoming[tr.dst_stage].append(j)
        last: dict[int, _Job] = {}
        for token in range(tokens):
            for mb in range(plan.microbatches):
                produced: dict[str, _Job] = {}
                chain: list[_Job] = []
                for st in plan.stages:
                    chip = st.region.chip
                    for j in incoming[st.index]:
                        tr = plan.transfers[j]
                        demands = [(res, tr.bytes / lk.bytes_per_s, "link" if lk.kind == "c2c" else "noc")
                                   for lk in tr.route for res in self._links(lk)]
                        job = _Job(f"{tr.tensor} -> stage {tr.dst_stage}", i + j, None, len(self.jobs),
                                   (0.0, "noc"), demands, sum(lk.latency_s for lk in tr.route),
                                   {"bytes": tr.bytes, "microbatch": mb, "token": token})
                        self._add(job, [produced.get(tr.tensor)], chain)
                        produced[tr.into] = job
                    for seg in st.segments:
                        for rep in range(seg.repeat):
                            if rep and seg.carry:
                                produced[seg.carry[0]] = produced[seg.carry[1]]
                            for name in seg.ops:
                                op, index = ops[name], op_step[(st.index, name)]
                                s = steps[index]
                                shared = [(self._resource(f"{rates.names[lv]} @ stage {st.index}",
                                                          f"chip {chip}"), sec, rates.names[lv])
                                          for lv, sec in rates.shared(s)]
                                args = {"flops": s.flops, "bytes": sum(s.reads) + sum(s.writes),
                                        "microbatch": mb, "token": token}
                                job = _Job(layer_name(name, seg.first_layer + rep), index,
                                           regions[st.index], len(self.jobs), rates.private(s),
                                           shared, s.overhead_s, args)
                                self._add(job, [produced.get(t.name) for t in op.inputs], chain)
                                for t in op.outputs:
                                    produced[t.name] = job
                previous = last.get(mb)
                if previous is not None:
                    for job in chain:
                        if not job.deps:
                            job.deps = 1
                            previous.dependents.append(job)
                if chain:
                    last[mb] = chain[-1]

    def _add(self, job: _Job, deps: list[_Job | None], chain: list[_Job]) -> None:
        for dep in {id(d): d for d in deps if d is not None}.values():
            dep.dependents.append(job)
            job.deps += 1
        self.jobs.append(job)
        chain.append(job)

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

    def _demand_done(self, payload: tuple[_Job, Resource, str], start: float) -> None:
        job, res, label = payload
        if self.tracer is not None:
            self.tracer.span(res.track[0], res.track[1], job.name, start, self.k.now, job.args)
        self._part(job, label)

    def _part(self, job: _Job, label: str) -> None:
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


def run_simulation(plan: CompiledPlan, system: System, tokens: int = 1,
                   tracer: Tracer | None = None) -> SimRun:
    """Simulate `tokens` consecutive calls of `plan` (each micro-batch's next token waits for
    its previous one); the cost is per call: makespan / tokens."""
    lowered = lower(plan, system.chip)
    analytical = evaluate(lowered, system)
    sim = _Run(plan, lowered, system, max(1, tokens), tracer)
    makespan = sim.run()
    time = makespan / max(1, tokens)
    totals: dict[int, list[float]] = {}
    bounds: dict[int, tuple[float, str]] = {}
    for job in sim.jobs:
        duration = job.end - job.start
        acc = totals.setdefault(job.step, [0.0, 0.0])
        acc[0] += duration
        acc[1] += 1
        if duration >= bounds.get(job.step, (-1.0, ""))[0]:
            bounds[job.step] = (duration, job.bound)
    steps = tuple(StepCost(sc.step, totals[i][0] / totals[i][1] if i in totals else 0.0,
                           sc.energy_by_category_j, bounds.get(i, (0.0, sc.bound))[1])
                  for i, sc in enumerate(analytical.steps))
    static = CATEGORIES.index(Category.STATIC)
    energy = list(analytical.cost.energy_by_category_j)
    # the board power limit, as the analytical evaluator applies it: dynamic energy over the
    # time cannot exceed the chips' TDP above idle
    dynamic_j = sum(energy) - energy[static]
    limit_w = plan.parallelism.chips_per_replica * (system.chip.tdp_w - system.chip.idle_w)
    capped = dynamic_j > limit_w * time > 0
    if capped:
        time = dynamic_j / limit_w
    energy[static] = analytical.static_w * time
    cost = replace(analytical, cost=Cost(time, tuple(energy)), steps=steps, power_capped=capped)
    busy = {name: res.busy_s for name, res in sim.resources.items()}
    return SimRun(cost, sim.k.events, makespan, busy)


def simulate(plan: CompiledPlan, system: System, tokens: int = 1,
             tracer: Tracer | None = None) -> PhaseCost:
    """The event simulator's cost of one call of `plan` (the analytical evaluator's type)."""
    return run_simulation(plan, system, tokens, tracer).cost
