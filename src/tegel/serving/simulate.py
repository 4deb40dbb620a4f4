"""The request-level serving simulation: arrivals, a router, replicas, and the clock.

One `Simulation` holds all state (SimPy's habit): the replicas of the system, a heap of events
ordered by (time, priority, sequence) — so a run is deterministic — and the per-request records.
Open-loop arrivals are read from the workload's arrays in order; a closed loop releases the next
request when one finishes. A request reaches its replica's queue after the policy's host work
per request (`request_overhead_s`, as `tegel run` counts it in TTFT). Disaggregated serving
moves each prompt's KV cache from a prefill replica to a decode replica as a transfer step on
the system's chip-to-chip links, priced by the engine's `step_terms`.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tegel.evaluate.cost import CATEGORIES, Category
from tegel.evaluate.terms import Rates, static_power_w, step_terms
from tegel.hardware import System
from tegel.mapping.plan import Step, StepKind
from tegel.serving.oracle import Oracle
from tegel.serving.replica import Iteration, Records, Replica, SchedulerConfig
from tegel.serving.requests import Workload
from tegel.workload.llm import Phase

if TYPE_CHECKING:
    from tegel.serving.speculative_cost import SpeculativeRuntime

_STATIC = CATEGORIES.index(Category.STATIC)
_END, _KV, _READY = 0, 1, 2  # event kinds, in priority order at equal times


@dataclass(frozen=True, slots=True)
class Pools:
    """Replica layout: how many replicas, which prefill (disaggregated), KV blocks each."""

    replicas: int
    prefill: int  # replicas 0..prefill-1 prefill only (0: every replica does both)
    kv_blocks: int
    kv_bytes_per_token: float  # whole replica
    chips_per_replica: int
    overhead_s: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a simulation produced: the records, the clock span and the energy by category
    (whole system: replicas busy and idle, chips outside replicas, racks' overhead)."""

    records: Records
    arrival_s: list[float]
    span_s: float
    energy_by_category_j: tuple[float, ...]
    host_energy_j: float
    iterations: int
    peak_kv_fraction: float
    kv_transfer_s: float


class Simulation:
    """All state of one run (module doc)."""

    def __init__(self, oracle: Oracle, system: System, pools: Pools, scheduler: SchedulerConfig,
                 workload: Workload, progress: Callable[[int], None] | None = None,
                 speculative: SpeculativeRuntime | None = None) -> None:
        self.oracle, self.system, self.pools, self.cfg = oracle, system, pools, scheduler
        self.wl = workload
        n = len(workload)
        self.inputs = workload.input_tokens.tolist()
        self.outputs = workload.output_tokens.tolist()
        self.arrival = workload.arrival_s.tolist()
        self.rec = Records(n)
        self.progress = progress
        roles = ["prefill"] * pools.prefill + ["decode" if pools.prefill else "both"] * (
            pools.replicas - pools.prefill)
        prefixes = None
        if scheduler.prefix_cache and workload.prefix_id is not None \
                and workload.prefix_tokens is not None:
            prefixes = (workload.prefix_id.tolist(), workload.prefix_tokens.tolist())
        self.replicas = [Replica(i, oracle, scheduler, pools.kv_blocks, self.inputs, self.outputs,
                                 self.rec, role, prefixes, speculative, oracle.beams)
                         for i, role in enumerate(roles)]
        self.current: list[Iteration | None] = [None] * pools.replicas
        self.idle_since = [0.0] * pools.replicas
        self.energy = [0.0] * len(CATEGORIES)
        self.static_w, self.host_w = static_power_w(system, pools.chips_per_replica)
        self.events: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.rr = [0, 0]  # round-robin cursors: entry pool, decode pool
        self.iterations = 0
        self.done = 0
        self.kv_transfer_s = 0.0
        self.next_closed = 0
        self.host_j = 0.0  # the part of the static energy outside the chips

    # -- events --------------------------------------------------------------------------
    def push(self, t: float, kind: int, a: int, b: int = -1) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, kind, self.seq, a, b))

    def route(self, pool: range) -> int:
        """A replica of `pool` for the next request (round robin or fewest outstanding)."""
        if self.cfg.router == "least-loaded":
            return min(pool, key=lambda i: (self.replicas[i].outstanding, i))
        cursor = 0 if pool.start == 0 else 1
        i = pool[self.rr[cursor] % len(pool)]
        self.rr[cursor] += 1
        return i

    def arrive(self, r: int, t: float) -> None:
        """Request `r` arrives at `t`: dropped if it can never fit, else routed and queued."""
        self.arrival[r] = t
        p = self.pools
        entry = range(0, p.prefill) if p.prefill else range(p.replicas)
        i = self.route(entry)
        rep = self.replicas[i]
        tokens = rep.whole(r)
        need = rep.blocks_for(self.inputs[r] if p.prefill else tokens)
        if need > rep.kv_blocks or (p.prefill and rep.blocks_for(tokens) > p.kv_blocks):
            self.rec.dropped[r] = (f"needs {tokens} tokens of KV cache; a replica holds "
                                   f"{p.kv_blocks * rep.bs}")
            self.finished(r, t)
            return
        self.rec.replica[r] = i
        rep.outstanding += 1
        self.push(t + p.overhead_s, _READY, r, i)

    def kick(self, i: int, t: float) -> None:
        """Start replica `i`'s next iteration if it is idle and has work."""
        rep = self.replicas[i]
        if rep.busy:
            return
        it = rep.schedule()
        if it is None:
            return
        gap = t - self.idle_since[i]
        self.energy[_STATIC] += self.static_w * gap
        self.host_j += self.host_w * gap
        rep.busy = True
        self.current[i] = it
        self.push(t + it.cost.time_s, _END, i)

    def end_iteration(self, i: int, t: float) -> None:
        rep = self.replicas[i]
        it = self.current[i]
        assert it is not None
        self.current[i] = None
        rep.busy = False
        self.idle_since[i] = t
        self.iterations += 1
        for k, e in enumerate(it.cost.energy_by_category_j):
            self.energy[k] += e
        self.host_j += it.cost.host_w * it.cost.time_s  # hosts, fans, losses at this load
        finished, prefilled = rep.complete(it, t)
        for r in finished:
            rep.outstanding -= 1
            self.finished(r, t)
        for r in prefilled:
            if rep.role == "prefill":
                self.send_kv(r, i, t)
            else:
                rep.join(r)

    def send_kv(self, r: int, src: int, t: float) -> None:
        """Move `r`'s cache to a decode replica (a transfer step on the chip-to-chip links)."""
        p = self.pools
        dst = self.route(range(p.prefill, p.replicas))
        cached = self.inputs[r] + self.rec.generated[r] - 1
        seconds, joules = self.transfer(cached * p.kv_bytes_per_token)
        self.kv_transfer_s += seconds
        self.energy[CATEGORIES.index(Category.CHIP_TO_CHIP)] += joules
        self.replicas[src].outstanding -= 1
        self.replicas[dst].outstanding += 1
        self.rec.replica[r] = dst
        self.push(t + seconds, _KV, r, src * p.replicas + dst)

    def transfer(self, nbytes: float) -> tuple[float, float]:
        """(s, J) of sending `nbytes` from one replica to another, every chip its share."""
        chips = self.pools.chips_per_replica
        plan = self.oracle.plan(Phase(1, 1, 1), 1)
        levels = len(plan.levels)
        step = Step("kv transfer", StepKind.TRANSFER, 0, 1, 0.0, "", 1.0, (0.0,) * levels,
                    (0.0,) * levels, link_bytes=nbytes / chips)
        terms = step_terms(step, Rates.of(self.system, plan))
        return terms.time_and_bound()[0], sum(terms.energy_by_category_j) * chips

    def finished(self, r: int, t: float) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done)
        if self.wl.concurrency is not None and self.next_closed < len(self.arrival):
            nxt = self.next_closed
            self.next_closed += 1
            self.arrive(nxt, max(t, self.arrival[nxt]))

    # -- the clock -----------------------------------------------------------------------
    def run(self) -> Outcome:
        n = len(self.arrival)
        open_loop = self.wl.concurrency is None
        self.next_closed = n if open_loop else min(n, self.wl.concurrency or 0)
        nxt = 0  # the next open-loop arrival
        if not open_loop:
            for r in range(self.next_closed):
                self.arrive(r, self.arrival[r])
        arrival = self.arrival
        events = self.events
        now = 0.0
        dirty: set[int] = set()  # replicas to start once every event of this instant is in
        while events or (open_loop and nxt < n):
            if open_loop and nxt < n and (not events or arrival[nxt] <= events[0][0]):
                t = arrival[nxt]
            else:
                t = events[0][0]
            if t > now and dirty:
                for i in sorted(dirty):
                    self.kick(i, now)
                dirty.clear()
                continue  # kicking may have added events at `now`
            now = t
            if open_loop and nxt < n and arrival[nxt] <= now and (not events or events[0][0] >= now):
                self.arrive(nxt, now)
                nxt += 1
                continue
            _, kind, _, a, b = heapq.heappop(events)
            if kind == _END:
                self.end_iteration(a, now)
                dirty.add(a)
            elif kind == _READY:
                self.replicas[b].enqueue(a)
                dirty.add(b)
            else:  # _KV: a cache arrived at its decode replica
                src, dst = divmod(b, self.pools.replicas)
                self.replicas[src].release(a)
                self.replicas[dst].has_kv.add(a)
                self.replicas[dst].enqueue(a)
                dirty.update((src, dst))
            if not events and not (open_loop and nxt < n):
                for i in sorted(dirty):
                    self.kick(i, now)
                dirty.clear()
        stuck = [r for r in range(n) if math.isnan(self.rec.finish_s[r]) and r not in self.rec.dropped]
        for r in stuck:  # cannot happen with the admission rules; never lose a request silently
            self.rec.dropped[r] = "never scheduled (simulator error)"
        return self._outcome(now)

    def _outcome(self, end: float) -> Outcome:
        energy = list(self.energy)
        host_j = self.host_j
        for i in range(self.pools.replicas):
            energy[_STATIC] += self.static_w * (end - self.idle_since[i])
            host_j += self.host_w * (end - self.idle_since[i])
        outside = self.system.chip_count - self.pools.replicas * self.pools.chips_per_replica
        idle_w, idle_host_w = static_power_w(self.system, outside)
        rack_w = self.system.host.rack_overhead_w * self.system.rack_share
        energy[_STATIC] += (idle_w + rack_w) * end
        host_j += (idle_host_w + rack_w) * end
        peak = max(rep.peak_blocks for rep in self.replicas) / self.pools.kv_blocks
        return Outcome(self.rec, self.arrival, end, tuple(energy), host_j, self.iterations, peak,
                       self.kv_transfer_s)

