"""The analytical evaluator: a plan's time and energy from counts and rates.

Per step, each resource — compute (at the step's achievable share of peak), every storage
level, the network-on-chip — needs work / rate seconds; they overlap, so the step takes the
slowest, plus what cannot overlap (chip-to-chip collectives, fixed overheads). Energy is
actions x energy per action, plus static power x time. Pipeline stages run concurrently on
successive micro-batches: a call takes the sum of its stages plus (micro-batches - 1) times the
slowest.
"""

from __future__ import annotations

from dataclasses import dataclass

from tegel.errors import TegelError
from tegel.evaluate.cost import CATEGORIES, Category, Cost
from tegel.hardware import System
from tegel.mapping.plan import Plan, Step
from tegel.mapping.routing import noc_links

_IDX = {c: i for i, c in enumerate(CATEGORIES)}


@dataclass(frozen=True, slots=True)
class StepCost:
    """The cost of one occurrence of a step on one chip, and the resource that bounds it."""

    step: Step
    time_s: float
    energy_by_category_j: tuple[float, ...]
    bound: str  # compute | <storage level name> | noc | link | overhead


@dataclass(frozen=True, slots=True)
class PhaseCost:
    """A plan evaluated: the call's cost (whole replica) and per-step costs."""

    plan: Plan
    cost: Cost
    steps: tuple[StepCost, ...]
    static_w: float  # chips idle plus their share of host power, whole replica
    host_w: float  # the host part of static_w
    power_capped: bool  # the chips' board power limit stretched the time

    @property
    def time_s(self) -> float:
        return self.cost.time_s


class _Rates:
    """The rates and energies of one system the evaluator needs, resolved once."""

    def __init__(self, system: System, plan: Plan) -> None:
        chip = system.chip
        levels = chip.levels()
        names = tuple(lv.name for lv in levels)
        if names != plan.levels:
            raise TegelError(f"plan levels {plan.levels} do not match {chip.name}'s {names}")
        eff = plan.bandwidth_efficiency
        self.read_bps = tuple(lv.read_bytes_per_s * e for lv, e in zip(levels, eff, strict=True))
        self.write_bps = tuple(lv.write_bytes_per_s * e for lv, e in zip(levels, eff, strict=True))
        self.read_pj = tuple(lv.read_pj_per_bit for lv in levels)
        self.write_pj = tuple(lv.write_pj_per_bit for lv in levels)
        self.category = tuple(_IDX[Category.OFFCHIP_MEMORY] if lv.scope == "offchip"
                              else _IDX[Category.ONCHIP_SRAM] for lv in levels)
        self.peak = {d: chip.peak_flops_per_s(d) for d in chip.dtypes}
        self.pj_per_flop = {d: chip.pj_per_flop(d) for d in chip.dtypes}
        self.pj_per_flop.update(dict(plan.compute_pj_per_flop))
        self.chip_name = chip.name
        self.level_names = names
        self.noc_byte_hops_per_s = chip.noc.link_bytes_per_s * noc_links(chip)
        self.noc_pj = chip.noc_pj_per_bit_per_hop
        link = system.scale_up
        self.link_bps = link.link_bytes_per_s if link else 0.0
        self.link_pj = system.link_pj_per_bit
        host = system.host
        host_idle = host.host_w_per_node if host.idle_host_w_per_node is None else host.idle_host_w_per_node
        # idle power covers leakage; hosts are shared by the chips of a node
        self.host_w_per_chip = host_idle / system.chips_per_node
        self.idle_w_per_chip = chip.idle_w
        self.dynamic_limit_w_per_chip = chip.tdp_w - chip.idle_w


def _step_cost(s: Step, r: _Rates) -> StepCost:
    if s.flops and s.compute_class not in r.peak:
        raise TegelError(f"{r.chip_name} does not compute in {s.compute_class} (step {s.name}); "
                         f"it supports {', '.join(r.peak)}")
    share = s.resource_share
    times = {"compute": s.flops / (r.peak[s.compute_class] * s.compute_efficiency * share)
             if s.flops else 0.0}
    energy = [0.0] * len(CATEGORIES)
    if s.flops:
        energy[_IDX[Category.COMPUTE]] = s.flops * r.pj_per_flop[s.compute_class] * 1e-12
    for i, (rd, wr) in enumerate(zip(s.reads, s.writes, strict=True)):
        if rd or wr:
            times[r.level_names[i]] = (rd / r.read_bps[i] + wr / r.write_bps[i]) / share
            energy[r.category[i]] += 8e-12 * (rd * r.read_pj[i] + wr * r.write_pj[i])
    if s.noc_byte_hops:
        times["noc"] = s.noc_byte_hops / (r.noc_byte_hops_per_s * share) + s.noc_latency_s
        energy[_IDX[Category.NOC]] = 8e-12 * s.noc_byte_hops * r.noc_pj
    bound = max(times, key=times.__getitem__)
    time = times[bound]
    if s.link_bytes:
        if not r.link_bps:
            raise TegelError(f"step {s.name} needs chip-to-chip links, but the system has none")
        link_time = s.link_bytes / r.link_bps + s.link_latency_s
        if link_time > time:
            bound = "link"
        time += link_time
        energy[_IDX[Category.CHIP_TO_CHIP]] = 8e-12 * s.link_bytes * r.link_pj
    if s.overhead_s > time:
        bound = "overhead"
    time += s.overhead_s
    return StepCost(s, time, tuple(energy), bound)


def evaluate(plan: Plan, system: System) -> PhaseCost:
    """Time and energy of one forward call of one replica under `plan`."""
    rates = _Rates(system, plan)
    step_costs = tuple(_step_cost(s, rates) for s in plan.steps)
    common = 0.0
    special: dict[int, float] = {}
    energy = [0.0] * len(CATEGORIES)
    for sc in step_costs:
        s = sc.step
        t = sc.time_s * s.repeat
        copies = plan.stages if s.stage < 0 else 1
        if s.stage < 0:
            common += t
        else:
            special[s.stage] = special.get(s.stage, 0.0) + t
        scale = s.repeat * copies * plan.chips_per_stage * plan.microbatches
        for i, e in enumerate(sc.energy_by_category_j):
            energy[i] += e * scale
    slowest = common + max(special.values(), default=0.0)
    time = plan.stages * common + sum(special.values()) + (plan.microbatches - 1) * slowest
    chips = plan.parallelism.chips_per_replica
    # the board power limit: chips cannot draw more than TDP, so work that would exceed it
    # runs slower (the clocks throttle) and takes dynamic energy / available power
    dynamic_j = sum(energy)
    capped = dynamic_j > chips * rates.dynamic_limit_w_per_chip * time > 0
    if capped:
        time = dynamic_j / (chips * rates.dynamic_limit_w_per_chip)
    static_w = (rates.idle_w_per_chip + rates.host_w_per_chip) * chips
    energy[_IDX[Category.STATIC]] = static_w * time
    return PhaseCost(plan, Cost(time, tuple(energy)), step_costs, static_w,
                     rates.host_w_per_chip * chips, capped)
