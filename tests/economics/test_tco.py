"""TCO, $/Mtoken, the interactive batch and the footprint."""

from __future__ import annotations

import dataclasses
import math

import pytest

from tegel.economics.assumptions import load_assumptions
from tegel.economics.tco import HOURS_PER_YEAR, best_split, footprint, interactive_run, tco
from tegel.errors import TegelError
from tegel.hardware import load_system
from tegel.serving.run import run
from tegel.serving.scenario import resolve_precision
from tegel.workload.model_config import load_model_config

A = load_assumptions()
CFG = load_model_config("llama-3.1-8b")


@pytest.fixture(scope="module")
def h100() -> tuple:  # type: ignore[type-arg]
    system = load_system("dgx-h100")
    result = interactive_run(CFG, system, 50.0, 512, 128, resolve_precision(system, None))
    return system, result


def test_interactive_batch_is_the_largest_meeting_the_speed(h100: tuple) -> None:  # type: ignore[type-arg]
    system, result = h100
    assert result.tokens_per_s_per_user >= 50.0
    more = best_split(CFG, system, result.batch + 1, 512, 128, result.precision, 50.0)
    assert more.tokens_per_s_per_user < 50.0
    # the split is searched: the default split of tegel.run (lowest latency) is no faster
    default = run(CFG, system, result.batch, 512, 128, result.precision)
    assert result.throughput_tokens_per_s >= default.throughput_tokens_per_s or \
        default.tokens_per_s_per_user < 50.0


def test_unreachable_speed_is_a_clear_error() -> None:
    system = load_system("dgx-h100")
    with pytest.raises(TegelError, match="tokens/s per user"):
        interactive_run(CFG, system, 1e6, 512, 128, resolve_precision(system, None))


def test_tco_parts_sum_and_scale(h100: tuple) -> None:  # type: ignore[type-arg]
    _, result = h100
    t = tco(result, A)
    assert t.total_usd == pytest.approx(t.capital.total_usd + t.facility_usd + t.energy_usd)
    assert t.usd_per_mtoken > t.capital_usd_per_mtoken > 0
    dear = tco(result, A.with_overrides({"electricity_usd_per_kwh": 2 * A.electricity_usd_per_kwh}))
    assert dear.energy_usd == pytest.approx(2 * t.energy_usd)
    longer = tco(result, A.with_overrides({"years": 2 * A.years}))
    assert longer.tokens == pytest.approx(2 * t.tokens)
    assert longer.usd_per_mtoken < t.usd_per_mtoken  # capital spread over more tokens


def test_footprint_meets_the_target_within_rack_limits(h100: tuple) -> None:  # type: ignore[type-arg]
    system, result = h100
    target = 1e6
    f = footprint(result, target, A)
    assert f.systems * result.throughput_tokens_per_s >= target
    assert (f.systems - 1) * result.throughput_tokens_per_s < target
    assert f.chips == f.systems * system.chip_count
    node_w = system.tdp_w / system.node_count
    per_rack = math.ceil(f.nodes / f.racks)
    assert per_rack * node_w <= A.rack_power_limit_w
    assert f.facility_kw == pytest.approx(f.it_kw * A.pue)
    assert f.floor_m2 == pytest.approx(f.racks * A.floor_m2_per_rack)
    tight = footprint(result, target, A.with_overrides({"rack_power_limit_w": 15000}))
    assert tight.racks >= f.racks


def test_a_node_above_the_rack_limit_takes_several_racks() -> None:
    system = load_system("craftwerk-station")
    result = run(CFG, system, 64, 512, 128)
    f = footprint(result, 1e5, A.with_overrides({"rack_power_limit_w": 20000}))
    node_w = system.tdp_w / system.node_count
    assert f.racks == f.nodes * math.ceil(node_w / 20000) and f.notes


def test_idle_capacity_still_costs_energy(h100: tuple) -> None:  # type: ignore[type-arg]
    _, result = h100
    busy = tco(result, A.with_overrides({"utilization": 0.99}))
    idle = tco(result, A.with_overrides({"utilization": 0.1}))
    assert idle.energy_usd > 0 and idle.usd_per_mtoken > busy.usd_per_mtoken
    assert dataclasses.asdict(idle.capital) == dataclasses.asdict(busy.capital)


def test_serving_power_is_the_runs_whole_system_power(h100: tuple) -> None:  # type: ignore[type-arg]
    """TCO and footprint take the run's power as it is: it already counts the whole system."""
    system, result = h100
    assert result.power_w >= system.idle_w
    t = tco(result, A)
    mean_w = A.utilization * result.power_w + (1 - A.utilization) * system.idle_w
    assert t.energy_usd == pytest.approx(mean_w * A.pue / 1e3 * HOURS_PER_YEAR * A.years
                                         * A.electricity_usd_per_kwh)
    f = footprint(result, 1e6, A)
    assert f.serving_kw == pytest.approx(f.systems * result.power_w / 1e3)


@pytest.mark.parametrize(("name", "model"), [("craftwerk-station", "llama-3.1-8b"),
                                             ("dgx-h100", "qwen2.5-0.5b")])
def test_batch_one_is_charged_for_the_idle_replicas(name: str, model: str) -> None:
    """At batch 1 on a data-parallel split one replica works and the rest idle: the energy,
    power, TCO and footprint still count every chip, once."""
    system = load_system(name)
    result = run(model, system, 1, 512, 128)
    assert result.parallelism.dp > 1 and result.chips_idle == system.chip_count - result.chips_busy > 0
    tokens = result.batch * result.output_tokens
    busy_j = sum(result.chosen.replica_energy_by_category_j())
    idle_j = result.chips_idle * system.chip.idle_w * result.e2e_latency_s
    assert result.energy_j_per_token * tokens >= (busy_j + idle_j) * (1 - 1e-9)
    assert result.power_w >= system.idle_w * (1 - 1e-9)
    assert result.power_w <= system.tdp_w
    f = footprint(result, 1e5, A)
    assert f.serving_kw == pytest.approx(f.systems * result.power_w / 1e3)  # not counted twice
    t = tco(result, A)
    assert t.energy_usd >= system.idle_w * A.pue / 1e3 * HOURS_PER_YEAR * A.years * \
        A.electricity_usd_per_kwh * (1 - 1e-9)
