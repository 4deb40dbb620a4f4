"""The cost terms of one step, the power cap and static power: every evaluator's formulas.

A step's work needs, from each resource, work / rate seconds: compute at the step's achievable
share of peak, each storage level, the on-chip network (pooled over the step's share of the
links), and, for a transfer, each link bundle of its route. Those resources work concurrently;
what cannot overlap follows them — a route's latency, a collective on the chip-to-chip links
(it waits for the op it combines), and fixed overheads. Energy is actions x energy per action.

The analytical evaluator takes a step's time as the slowest concurrent term plus the serial
ones; the event simulator gives the same terms to resources that queue. Power is counted at the
wall: the chips' dynamic energy, their static power (idle and, on a GPU, the active floor of a
serving context) and their hosts, fans and power-supply losses (`static_power_w`,
`phase_static_w`; docs/power.md). Neither has a formula of
its own, so where nothing is contended they agree, and where they differ it is contention.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tegel.errors import TegelError
from tegel.evaluate.cost import CATEGORIES, Category
from tegel.hardware import System
from tegel.hardware.derive import active_power_w, busy_share, dvfs_energy_exponent
from tegel.mapping.plan import Plan, Step, StepKind
from tegel.mapping.routing import noc_links

_IDX = {c: i for i, c in enumerate(CATEGORIES)}


class Bound(enum.Enum):
    """The resource that sets a step's time."""

    COMPUTE = "compute"
    MEMORY = "memory"  # a storage level (named in StepCost.level)
    NOC = "noc"
    LINK = "link"
    OVERHEAD = "overhead"


@dataclass(frozen=True, slots=True)
class Rates:
    """The rates and energies of one system under one plan, resolved once."""

    chip_name: str
    level_names: tuple[str, ...]
    level_scopes: tuple[str, ...]
    read_bps: tuple[float, ...]
    write_bps: tuple[float, ...]
    read_pj: tuple[float, ...]
    write_pj: tuple[float, ...]
    level_category: tuple[int, ...]
    peak: dict[str, float]
    pj_per_flop: dict[str, float]
    noc_byte_hops_per_s: float
    noc_pj: float
    link_bps: float
    link_pj: float
    collective_bps: float  # the link rate a collective achieves (plan.collective_efficiency)
    busy_share: float  # compute below this share of peak is charged its busy power (GPU)
    # per level: whether its bytes take time of their own; a register file's accesses are the
    # array's cycles, counted in the compute term (mapping/registers.py)
    timed: tuple[bool, ...]

    @classmethod
    def of(cls, system: System, plan: Plan) -> Rates:
        chip = system.chip
        levels = chip.levels()
        names = tuple(lv.name for lv in levels)
        if names != plan.levels:
            raise TegelError(f"plan levels {plan.levels} do not match {chip.name}'s {names}")
        eff = plan.bandwidth_efficiency
        link = system.collective_link(plan.chips_per_stage)
        link_pj = link.pj_per_bit if link is not None and link.pj_per_bit is not None else 0.0
        return cls(
            chip.name, names, tuple(lv.scope for lv in levels),
            tuple(lv.read_bytes_per_s * e for lv, e in zip(levels, eff, strict=True)),
            tuple(lv.write_bytes_per_s * e for lv, e in zip(levels, eff, strict=True)),
            tuple(lv.read_pj_per_bit for lv in levels), tuple(lv.write_pj_per_bit for lv in levels),
            tuple(_IDX[Category.OFFCHIP_MEMORY] if lv.scope == "offchip" else
                  _IDX[Category.ONCHIP_SRAM] for lv in levels),
            {d: chip.peak_flops_per_s(d) for d in chip.dtypes},
            {d: chip.pj_per_flop(d) for d in chip.dtypes},
            chip.noc.link_bytes_per_s * noc_links(chip), chip.noc_pj_per_bit_per_hop,
            link.link_bytes_per_s if link else 0.0, link_pj,
            link.link_bytes_per_s * plan.collective_efficiency if link else 0.0, busy_share(chip),
            tuple(lv.kind != "registers" for lv in levels))


@dataclass(frozen=True, slots=True)
class StepTerms:
    """Seconds each resource needs for one occurrence of a step on one chip, and its energy."""

    compute_s: float
    level_s: tuple[float, ...]  # per storage level, nearest first
    noc_s: float  # pooled on-chip network traffic, its latency included
    route_s: tuple[float, ...]  # per link bundle of a transfer's route: bytes / bundle rate
    latency_s: float  # a route's latency (after its bytes)
    link_s: float  # chip-to-chip bytes of a collective / link rate + its latency
    overhead_s: float
    energy_by_category_j: tuple[float, ...]

    def concurrent(self) -> tuple[float, Bound, int]:
        """(seconds, bound, level index or -1) of the slowest of the overlapping terms."""
        best = (self.compute_s, Bound.COMPUTE, -1)
        for i, t in enumerate(self.level_s):
            if t > best[0]:
                best = (t, Bound.MEMORY, i)
        if self.noc_s > best[0]:
            best = (self.noc_s, Bound.NOC, -1)
        route = max(self.route_s, default=0.0)
        if route > best[0]:
            best = (route, Bound.LINK, -1)
        return best

    def time_and_bound(self) -> tuple[float, Bound, int]:
        """The step's time when nothing else competes, and what bounds it."""
        time, bound, level = self.concurrent()
        time += self.latency_s
        if self.link_s > time:
            bound, level = Bound.LINK, -1
        time += self.link_s
        if self.overhead_s > time:
            bound, level = Bound.OVERHEAD, -1
        return time + self.overhead_s, bound, level


def level_energy_j(s: Step, r: Rates) -> tuple[float, ...]:
    """Joules of one occurrence of step `s` at each storage level (nearest first): bytes read
    and written there x 8 bits x the level's pJ/bit for reads and for writes. The category
    energy of `step_terms` and the per-level tables of a graph run both sum these."""
    return tuple(8e-12 * (rd * r.read_pj[i] + wr * r.write_pj[i])
                 for i, (rd, wr) in enumerate(zip(s.reads, s.writes, strict=True)))


def step_terms(s: Step, r: Rates) -> StepTerms:
    """The terms of one occurrence of step `s` on one chip (module doc)."""
    if s.flops and s.compute_class not in r.peak:
        raise TegelError(f"{r.chip_name} does not compute in {s.compute_class} (step {s.name}); "
                         f"it supports {', '.join(r.peak)}")
    share = s.resource_share
    energy = [0.0] * len(CATEGORIES)
    compute_s = 0.0
    if s.flops:
        compute_s = s.flops / (r.peak[s.compute_class] * s.compute_efficiency * share)
        busy = max(1.0, r.busy_share / s.compute_efficiency)  # busy power at a low share of peak
        energy[_IDX[Category.COMPUTE]] = s.flops * r.pj_per_flop[s.compute_class] * busy * 1e-12
    level_s = []
    for i, (rd, wr) in enumerate(zip(s.reads, s.writes, strict=True)):
        level = s.level_share[i] if s.level_share else 1.0
        level_s.append((rd / r.read_bps[i] + wr / r.write_bps[i]) / (share * level)
                       if (rd or wr) and r.timed[i] else 0.0)
    for i, joules in enumerate(level_energy_j(s, r)):
        energy[r.level_category[i]] += joules
    noc_s = 0.0
    if s.noc_byte_hops:
        energy[_IDX[Category.NOC]] = 8e-12 * s.noc_byte_hops * r.noc_pj
        if not s.route:
            noc_s = s.noc_byte_hops / (r.noc_byte_hops_per_s * share) + s.noc_latency_s
    link_s = 0.0
    if s.link_bytes:
        energy[_IDX[Category.CHIP_TO_CHIP]] = 8e-12 * s.link_bytes * r.link_pj
        if not s.route:
            rate = r.collective_bps * s.link_share if s.kind is StepKind.COLLECTIVE else r.link_bps
            if not rate:
                raise TegelError(f"step {s.name} needs chip-to-chip links, but the system has none")
            link_s = s.link_bytes / rate + s.link_latency_s
    route_s = tuple(s.transfer_bytes / lk.bytes_per_s for lk in s.route)
    latency = sum(lk.latency_s for lk in s.route)
    return StepTerms(compute_s, tuple(level_s), noc_s, route_s, latency, link_s, s.overhead_s,
                     tuple(energy))


def power_capped(time_s: float, dynamic_j: float, limit_w: float,
                 exponent: float | None = None, fixed_j: float = 0.0) -> tuple[float, float, bool]:
    """(time, factor on the core's dynamic energy, capped) of work that takes `time_s` and
    spends `dynamic_j` when nothing limits it, under `limit_w` of dynamic power. Work that would
    draw P0 = dynamic_j / time_s > limit_w runs at a lower clock and voltage (DVFS): energy per op
    on the core ~ clock^a (a: `exponent`, default `hardware.derive.dvfs_energy_exponent`), time
    ~ 1 / clock. `fixed_j` of the dynamic energy is spent off the core's voltage rail (DRAM and
    link transceivers on their own supplies) and does not scale. At clock ratio s the work takes
    time_s / s and spends (dynamic_j - fixed_j) x s^a + fixed_j, drawing exactly `limit_w`;
    without fixed energy s = (limit / P0)^(1 / (1 + a)). a = 0: energy per op fixed, time
    stretched to dynamic_j / limit_w. A limit at or above P0 changes nothing."""
    if limit_w > 0 and dynamic_j > limit_w * time_s > 0:
        a = dvfs_energy_exponent() if exponent is None else exponent
        core, budget = dynamic_j - fixed_j, limit_w * time_s
        if fixed_j <= 0:
            clock = (budget / dynamic_j) ** (1.0 / (1.0 + a))
        else:  # s (core s^a + fixed) = budget, increasing in s: bisection on (0, 1)
            lo, hi = 0.0, 1.0
            for _ in range(60):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if mid * (core * mid**a + fixed_j) < budget else (lo, mid)
            clock = (lo + hi) / 2
        return time_s / clock, clock**a, True
    return time_s, 1.0, False


def chip_static_w(system: System) -> float:
    """What one chip of a serving system draws whatever it computes, W (DC): its idle power plus
    its active floor (`hardware.derive.active_power_w`: a GPU holding a context and running
    kernels at its operating clock)."""
    return system.chip.idle_w + active_power_w(system.chip)


def dynamic_limit_w(system: System, chips: int) -> float:
    """Power `chips` chips may draw above their static power before their clocks throttle:
    (power limit - idle - active floor) each; the limit is the TDP unless the system sets one."""
    return chips * max(0.0, system.chip_limit_w - chip_static_w(system))


def wall_power_w(system: System, chips: float, chip_dc_w: float) -> tuple[float, float]:
    """(W at the wall, the part outside the chips) of `chips` chips that draw `chip_dc_w` W
    together: their share of their nodes' input power, the nodes taken to be loaded alike —
    the chips, the serving host (CPUs, memory, NICs, switch chips, drives), fans and the power
    supplies' conversion loss at that load (`hardware.host`)."""
    if chips <= 0:
        return 0.0, 0.0
    per_node = system.chips_per_node
    node_w = system.node_wall_w(chip_dc_w / chips, system.host.host_w_per_node)
    wall = node_w * chips / per_node
    return wall, wall - chip_dc_w


def static_power_w(system: System, chips: float) -> tuple[float, float]:
    """(static W at the wall, the part outside the chips) of `chips` chips of a serving system:
    their idle power and active floor, and their share of their nodes' host, fans and supply
    losses at that load. Work on top adds its energy and the losses it causes
    (`phase_static_w`)."""
    return wall_power_w(system, chips, chips * chip_static_w(system))


def phase_static_w(system: System, chips: int, time_s: float,
                   dynamic_j: float) -> tuple[float, float]:
    """(static W, the part outside the chips) of `chips` chips that spend `dynamic_j` J of
    dynamic energy in `time_s` s: their power at the wall less that dynamic power — the chips'
    static power, their hosts' share, and the fans and supply losses at the load the work puts
    on the nodes. Static x time + dynamic energy is the energy at the wall."""
    if time_s <= 0:
        return static_power_w(system, chips)
    dynamic_w = dynamic_j / time_s
    wall, outside = wall_power_w(system, chips, chips * chip_static_w(system) + dynamic_w)
    return wall - dynamic_w, outside
