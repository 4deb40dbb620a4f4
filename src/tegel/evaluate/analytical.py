"""The analytical evaluator: a plan's time and energy from counts and rates.

Each step takes the slowest of its concurrent terms plus its serial ones (`terms`). Pipeline
stages — and the routed transfers between them, which hold no tiles — run concurrently on
successive micro-batches: a call takes the sum of all of them plus (micro-batches - 1) times the
slowest (the makespan of a flow line of identical jobs). A call that would draw more than the
chips' board power is stretched to it. Static power — idle chips and their hosts' share — runs
for the whole time."""

from __future__ import annotations

from dataclasses import dataclass

from tegel.evaluate.cost import CATEGORIES, Category, Cost
from tegel.evaluate.terms import (
    Bound,
    Rates,
    dynamic_limit_w,
    phase_static_w,
    power_capped,
    step_terms,
)
from tegel.hardware import System
from tegel.mapping.plan import Plan, Step

_STATIC = CATEGORIES.index(Category.STATIC)
# dynamic energy spent off the GPU core's voltage rail, which DVFS under a power cap leaves alone
_OFF_CORE = frozenset(CATEGORIES.index(c) for c in (Category.OFFCHIP_MEMORY, Category.CHIP_TO_CHIP))


@dataclass(frozen=True, slots=True)
class StepCost:
    """The cost of one occurrence of a step on one chip, and the resource that bounds it."""

    step: Step
    time_s: float
    energy_by_category_j: tuple[float, ...]
    bound: Bound
    level: str = ""  # the storage level, when bound is MEMORY

    @property
    def bound_label(self) -> str:
        """The bounding resource for people: a level's name, or the bound's."""
        return self.level if self.bound is Bound.MEMORY else self.bound.value


@dataclass(frozen=True, slots=True)
class PhaseCost:
    """A plan evaluated: the call's cost (whole replica) and per-step costs."""

    plan: Plan
    cost: Cost
    steps: tuple[StepCost, ...]
    static_w: float  # all but the dynamic power, at the wall: chips idle + active, hosts, fans, PSU loss
    host_w: float  # the part of static_w outside the chips (hosts, fans, PSU loss)
    power_capped: bool  # the chips' board power limit stretched the time

    @property
    def time_s(self) -> float:
        return self.cost.time_s


def step_costs(plan: Plan, rates: Rates) -> tuple[StepCost, ...]:
    """Every step of `plan` priced alone (nothing competing)."""
    out = []
    for s in plan.steps:
        terms = step_terms(s, rates)
        time, bound, level = terms.time_and_bound()
        out.append(StepCost(s, time, terms.energy_by_category_j, bound,
                            rates.level_names[level] if level >= 0 else ""))
    return tuple(out)


def dynamic_energy(plan: Plan, costs: tuple[StepCost, ...]) -> list[float]:
    """Energy by category of one call of a replica, without static energy: each step's energy
    x its repeats, the stages it runs in, the chips sharing a stage and the micro-batches."""
    energy = [0.0] * len(CATEGORIES)
    for sc in costs:
        s = sc.step
        copies = plan.stages if s.stage < 0 else 1
        scale = s.repeat * copies * plan.chips_per_stage * plan.microbatches
        for i, e in enumerate(sc.energy_by_category_j):
            energy[i] += e * scale
    return energy


def finish(plan: Plan, system: System, time_s: float, energy: list[float],
           steps: tuple[StepCost, ...]) -> PhaseCost:
    """A call of `time_s` seconds with `energy` (dynamic, by category) as a PhaseCost: the power
    cap applied, static energy of the replica's chips and hosts — with the fans and power-supply
    losses the call's load causes — over the (capped) time added. Both evaluators end here."""
    chips = plan.parallelism.chips_per_replica
    fixed = sum(energy[i] for i in _OFF_CORE)  # DRAM and links: their own supplies
    time, scale, capped = power_capped(time_s, sum(energy), dynamic_limit_w(system, chips),
                                       fixed_j=fixed)
    # DVFS: the core's lower voltage under the cap spends less per op; off-core energy stays
    energy = [e if i in _OFF_CORE else e * scale for i, e in enumerate(energy)]
    static_w, host_w = phase_static_w(system, chips, time, sum(energy))
    energy[_STATIC] = static_w * time
    return PhaseCost(plan, Cost(time, tuple(energy)), steps, static_w, host_w, capped)


def evaluate(plan: Plan, system: System) -> PhaseCost:
    """Time and energy of one forward call of one replica under `plan`."""
    costs = step_costs(plan, Rates.of(system, plan))
    common = 0.0
    special: dict[int, float] = {}
    routed: list[float] = []  # transfers over routes: pipeline stations of their own
    for sc in costs:
        s = sc.step
        t = sc.time_s * s.repeat
        if s.route:
            routed.append(t)
        elif s.stage < 0:
            common += t
        else:
            special[s.stage] = special.get(s.stage, 0.0) + t
    slowest = max(common + max(special.values(), default=0.0), max(routed, default=0.0))
    time = (plan.stages * common + sum(special.values()) + sum(routed)
            + (plan.microbatches - 1) * slowest)
    return finish(plan, system, time, dynamic_energy(plan, costs), costs)
