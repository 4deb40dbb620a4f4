"""Power at the wall: a node's host parts, fans and power supplies, the chips' active floor and
power limit, and what each run counts where (docs/power.md)."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
from pydantic import ValidationError

from tegel.evaluate.terms import (
    chip_static_w,
    dynamic_limit_w,
    phase_static_w,
    static_power_w,
    wall_power_w,
)
from tegel.hardware import load_system
from tegel.hardware.derive import active_power_w
from tegel.hardware.host import Host, Psu
from tegel.serving.run import run

TITANIUM = ((0.1, 0.90), (0.2, 0.94), (0.5, 0.96), (1.0, 0.91))


def test_supply_efficiency_follows_its_curve_and_is_flat_beyond_it() -> None:
    psu = Psu(count=2, rated_w=1000.0, efficiency=TITANIUM)
    assert psu.efficiency_at(100.0) == pytest.approx(0.90)  # 5% load: the 10% point
    assert psu.efficiency_at(400.0) == pytest.approx(0.94)  # 20%
    assert psu.efficiency_at(700.0) == pytest.approx(0.94 + 0.02 * (0.35 - 0.2) / 0.3)
    assert psu.efficiency_at(1000.0) == pytest.approx(0.96)
    assert psu.efficiency_at(5000.0) == pytest.approx(0.91)  # beyond the rating: the last point
    with pytest.raises(ValidationError, match="load fractions must increase"):
        Psu(count=1, rated_w=1000.0, efficiency=((0.5, 0.96), (0.2, 0.94)))


def test_wall_power_adds_fans_then_conversion_loss_and_rises_with_load() -> None:
    host = Host(fan_fraction=0.05, psu=Psu(count=2, rated_w=1000.0, efficiency=TITANIUM))
    # the supplies carry the chips, host and fans: at 1,000 W (50% load) they convert at 96%
    assert host.wall_w(1000.0 / 1.05) == pytest.approx(1000.0 / 0.96)
    assert Host().wall_w(1000.0) == 1000.0  # no supplies, no fans: counted at the DC side
    loads = [host.wall_w(w) for w in range(0, 3000, 50)]
    assert all(b > a for a, b in pairwise(loads))


def test_host_totals_are_the_sums_of_their_parts() -> None:
    parts = [{"name": "cpu", "count": 2, "idle_w": 100.0, "busy_w": 200.0},
             {"name": "nic", "count": 4, "idle_w": 10.0, "busy_w": 15.0}]
    host = Host.model_validate({"parts": parts})
    assert (host.host_w_per_node, host.idle_w_per_node) == (460.0, 240.0)
    with pytest.raises(ValidationError, match="not the sum of its parts"):
        Host.model_validate({"parts": parts, "host_w_per_node": 500.0})
    with pytest.raises(ValidationError, match="below idle_w"):
        Host.model_validate({"parts": [{"name": "cpu", "idle_w": 100.0, "busy_w": 50.0}]})


def test_dgx_h100_host_is_stated_part_by_part_and_its_nameplate_is_the_stated_maximum() -> None:
    system = load_system("dgx-h100")
    host = system.host
    assert {p.name.split(" ")[0] for p in host.parts} >= {"CPU", "DDR5", "NVSwitch", "NVMe"}
    assert host.host_w_per_node == pytest.approx(sum(p.busy_w * p.count for p in host.parts))
    assert host.psu is not None and host.psu.count * host.psu.rated_w == 6 * 3300
    rack_w = host.rack_overhead_w * system.rack_share
    assert system.tdp_w == pytest.approx(10200 + rack_w)
    # idle at the wall: chips and host idle, fans, supplies at light load (~10%: 90%)
    dc = 8 * system.chip.idle_w + host.idle_w_per_node
    assert system.idle_w == pytest.approx(dc * (1 + host.fan_fraction) / 0.90 + rack_w)


def test_a_serving_gpu_draws_its_active_floor_and_a_dataflow_chip_none() -> None:
    h100 = load_system("h100-sxm")
    assert active_power_w(h100.chip) == pytest.approx(0.11 * (700 - 70))
    assert chip_static_w(h100) == pytest.approx(70 + 0.11 * 630)
    assert active_power_w(load_system("craftwerk").chip) == 0.0


def test_the_power_limit_leaves_the_chips_less_dynamic_power() -> None:
    dgx = load_system("dgx-h100")
    static = chip_static_w(dgx)
    assert dynamic_limit_w(dgx, 8) == pytest.approx(8 * (700 - static))
    maxq = dgx.model_copy(update={"chip_power_limit_w": 450.0})
    assert dynamic_limit_w(maxq, 8) == pytest.approx(8 * (450 - static))
    # energies per action stay those derived from the TDP
    assert maxq.chip.pj_per_flop("fp8") == dgx.chip.pj_per_flop("fp8")


def test_static_and_phase_power_are_the_wall_less_the_work() -> None:
    dgx = load_system("dgx-h100")
    chips_w = 8 * chip_static_w(dgx)
    wall, outside = static_power_w(dgx, 8)
    assert wall == pytest.approx(dgx.host.wall_w(chips_w + dgx.host.host_w_per_node))
    assert outside == pytest.approx(wall - chips_w)
    # a phase of 2 s with 4 kJ of dynamic energy: static x t + dynamic = the wall's energy
    static_w, host_w = phase_static_w(dgx, 8, 2.0, 4000.0)
    node_wall, _ = wall_power_w(dgx, 8, chips_w + 2000.0)
    assert static_w * 2.0 + 4000.0 == pytest.approx(node_wall * 2.0)
    assert host_w == pytest.approx(node_wall - chips_w - 2000.0)
    assert static_w > wall  # the work's load adds fan power and supply loss
    # a replica of 2 chips is charged a quarter of the node, loaded alike
    quarter, _ = static_power_w(dgx, 2)
    assert quarter == pytest.approx(wall / 4)


def test_accelerator_energy_excludes_hosts_fans_supplies_and_racks() -> None:
    r = run("llama-3.1-8b", "dgx-h100", 8, 128, 16, "bf16")
    tokens = r.batch * r.output_tokens
    c = r.chosen
    chips_j = 0.0
    for phase, n in ((c.prefill, 1), (c.decode, r.output_tokens - 1)):
        dynamic = phase.cost.energy_j - phase.static_w * phase.time_s
        chips = phase.plan.parallelism.chips_per_replica
        chips_j += n * (dynamic + chips * chip_static_w(r.system) * phase.time_s)
    chips_j += c.prefill.plan.parallelism.chips_per_replica * chip_static_w(r.system) * \
        c.request_overhead_s
    chips_j *= r.replicas_busy
    chips_j += r.chips_idle * chip_static_w(r.system) * r.e2e_latency_s
    assert r.accelerator_energy_j_per_token == pytest.approx(chips_j / tokens, rel=1e-9)
    assert r.energy_j_per_token > r.accelerator_energy_j_per_token
    assert r.power_w >= r.system.idle_w
    assert math.isfinite(r.power_w) and r.power_w <= r.system.tdp_w
