"""Serving economics of one system on one workload: the static batch it can serve at a speed
per user, its total cost of ownership per million tokens, and its footprint at a target
throughput. TCO and footprint read only the system, its power and its throughput (`Served`):
a static run or a serving operating point (`serving/operating.py`) alike.

- interactive batch (the static path of `claim`, with a fixed batch): the largest static batch
  whose tokens/s per user (1 / TPOT) meets the target at some split of the system (tensor- or
  pipeline-parallel degree), searched over powers of two up to the largest batch that fits
  memory, then bisected (speed per user falls as the batch grows);
- TCO over `years`: capital (chips + hosts) + facility capital for the system's provisioned
  (nameplate) power, pro rata over the facility's life + energy: (utilisation x serving power +
  (1 - utilisation) x idle power) x PUE x hours x price; tokens = utilisation x throughput x
  seconds; $/Mtoken = TCO / tokens x 1e6 (and capital-only: capital / tokens x 1e6). Serving
  power is the run's (or serving point's) own `power_w`, which already counts the whole system
  (busy replicas, idle chips and their hosts at idle power, rack overhead) — nothing is added;
- footprint at a target throughput: systems = ceil(target / system throughput); racks from nodes
  per rack (the system's, and no more than the rack power limit allows at nameplate power; a node
  above the limit takes ceil(node power / limit) racks); IT kW at nameplate and while serving;
  facility kW = IT kW x PUE; floor area = racks x m^2 per rack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tegel.economics.assumptions import Assumptions
from tegel.economics.cost import CapitalCost, system_capital
from tegel.economics.served import Served
from tegel.errors import TegelError
from tegel.hardware import System
from tegel.mapping.params import Params
from tegel.serving.operating import candidate_splits
from tegel.serving.run import RunResult, run
from tegel.serving.scenario import RunOptions
from tegel.workload.llm import Precision
from tegel.workload.model_config import ModelConfig

SECONDS_PER_YEAR = 365.25 * 24 * 3600.0
HOURS_PER_YEAR = 365.25 * 24.0


def interactive_run(model: ModelConfig, system: System, min_tokens_per_s_per_user: float,
                    input_tokens: int, output_tokens: int, precision: Precision, *,
                    params: Params | None = None) -> RunResult:
    """The run at the largest batch whose speed per user meets `min_tokens_per_s_per_user`.

    At each batch every split of the system is tried (`best_split`), not only the one
    `tegel.run` picks for the lowest end-to-end latency; the split that meets the speed with the
    highest throughput is kept. `params`: the mapping policies' parameters (None: shipped).
    """
    def at(batch: int) -> RunResult:
        return best_split(model, system, batch, input_tokens, output_tokens, precision,
                          min_tokens_per_s_per_user, params=params)

    try:
        largest = run(model, system, "auto", input_tokens, output_tokens, precision,
                      params=params).batch
    except TegelError as err:
        raise TegelError(f"{system.name}: {err}") from None
    best = at(1)
    if best.tokens_per_s_per_user < min_tokens_per_s_per_user:
        raise TegelError(
            f"{system.name} reaches at most {best.tokens_per_s_per_user:.3g} tokens/s per user on "
            f"{model.name} (batch 1); lower --min-tokens-per-s-per-user below "
            f"{min_tokens_per_s_per_user:g}")
    lo, hi = 1, None
    b = 2
    while b <= largest:
        r = at(b)
        if r.tokens_per_s_per_user < min_tokens_per_s_per_user:
            hi = b
            break
        lo, best, b = b, r, b * 2
    hi = hi or largest + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        r = at(mid)
        if r.tokens_per_s_per_user >= min_tokens_per_s_per_user:
            lo, best = mid, r
        else:
            hi = mid
    return best


def best_split(model: ModelConfig, system: System, batch: int, input_tokens: int,
               output_tokens: int, precision: Precision, speed: float, *,
               params: Params | None = None) -> RunResult:
    """Among the system's splits at `batch`: the highest throughput meeting `speed`, else the
    fastest per user. Tried: `candidate_splits` (the lowest-latency split `tegel.run` picks, and
    each power-of-two tensor-parallel and pipeline degree, the rest searched)."""
    splits = [s for s in candidate_splits(model, system) if s != RunOptions()]
    results = [run(model, system, batch, input_tokens, output_tokens, precision, params=params)]
    for options in splits:
        try:
            results.append(run(model, system, batch, input_tokens, output_tokens, precision,
                               options=options, params=params))
        except TegelError:
            continue
    fast = [r for r in results if r.tokens_per_s_per_user >= speed]
    if fast:
        return max(fast, key=lambda r: r.throughput_tokens_per_s)
    return max(results, key=lambda r: r.tokens_per_s_per_user)


@dataclass(frozen=True, slots=True)
class Tco:
    """Total cost of ownership of one system serving one workload, USD, by part."""

    system: str
    years: float
    capital: CapitalCost
    facility_usd: float
    energy_usd: float
    tokens: float  # generated over the years at the utilisation

    @property
    def total_usd(self) -> float:
        return self.capital.total_usd + self.facility_usd + self.energy_usd

    @property
    def usd_per_mtoken(self) -> float:
        return self.total_usd / self.tokens * 1e6

    @property
    def capital_usd_per_mtoken(self) -> float:
        return self.capital.total_usd / self.tokens * 1e6

    def to_dict(self) -> dict[str, object]:
        return {"years": self.years, "capital_usd": self.capital.total_usd,
                "capital_breakdown_usd": {"chips": self.capital.chips_usd,
                                          "hosts": self.capital.hosts_usd},
                "facility_usd": self.facility_usd, "energy_usd": self.energy_usd,
                "total_usd": self.total_usd, "tokens": self.tokens,
                "usd_per_mtoken": self.usd_per_mtoken,
                "capital_usd_per_mtoken": self.capital_usd_per_mtoken}


def tco(result: Served, a: Assumptions) -> Tco:
    """TCO of the result's system serving its workload (rules in the module doc)."""
    system = result.system
    capital = system_capital(system, a)
    facility = a.facility_usd_per_w * system.tdp_w * min(1.0, a.years / a.facility_life_years)
    mean_w = a.utilization * result.power_w + (1.0 - a.utilization) * system.idle_w
    energy = mean_w * a.pue / 1000.0 * HOURS_PER_YEAR * a.years * a.electricity_usd_per_kwh
    tokens = a.utilization * result.throughput_tokens_per_s * SECONDS_PER_YEAR * a.years
    return Tco(system.name, a.years, capital, facility, energy, tokens)


@dataclass(frozen=True, slots=True)
class Footprint:
    """What serving a target throughput takes: systems, chips, racks, power, floor."""

    system: str
    target_tokens_per_s: float
    systems: int
    chips: int
    nodes: int
    racks: int
    it_kw: float  # nameplate (TDP) IT power
    serving_kw: float  # IT power while serving the target
    facility_kw: float  # nameplate IT power x PUE
    floor_m2: float
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"target_tokens_per_s": self.target_tokens_per_s, "systems": self.systems,
                "chips": self.chips, "nodes": self.nodes, "racks": self.racks,
                "it_kw": self.it_kw, "serving_kw": self.serving_kw,
                "facility_kw": self.facility_kw, "floor_m2": self.floor_m2,
                "notes": list(self.notes)}


def footprint(result: Served, target_tokens_per_s: float, a: Assumptions) -> Footprint:
    """Systems, racks, kW and floor area to serve `target_tokens_per_s` as `result` serves."""
    system = result.system
    if target_tokens_per_s <= 0:
        raise TegelError(f"--target-tokens-per-s: expected a positive number, got "
                         f"{target_tokens_per_s:g}")
    n = math.ceil(target_tokens_per_s / result.throughput_tokens_per_s * (1 - 1e-12))
    nodes = n * system.node_count
    limit = system.host.rack_power_limit_w or a.rack_power_limit_w
    node_w = system.tdp_w / system.node_count
    notes = []
    by_power = int(limit // node_w)
    if by_power == 0:
        racks = nodes * math.ceil(node_w / limit)
        notes.append(f"a {system.name} node draws {node_w / 1e3:.1f} kW at nameplate, above the "
                     f"{limit / 1e3:.0f} kW rack limit: {math.ceil(node_w / limit)} racks per node")
    else:
        per_rack = min(system.host.nodes_per_rack or by_power, by_power)
        racks = math.ceil(nodes / per_rack)
    it_w = n * system.tdp_w
    return Footprint(system.name, target_tokens_per_s, n, n * system.chip_count, nodes, racks,
                     it_w / 1e3, n * result.power_w / 1e3, it_w * a.pue / 1e3,
                     racks * a.floor_m2_per_rack, tuple(notes))
