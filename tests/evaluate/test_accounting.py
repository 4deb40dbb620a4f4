"""Whole-system accounting: a run is charged for every chip of the system it occupies — the
replicas serving the batch, and the chips the batch leaves idle at idle power with their hosts
and racks — so a comparison between systems is like for like, and no run ever reports less
than the hardware's idle power."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tegel.hardware import list_presets, load_system
from tegel.serving import run
from tegel.serving.scenario import RunOptions
from tegel.workload import load_model_config


def test_idle_replicas_are_charged_at_idle_power() -> None:
    """Batch 1 on an 8-package station split dp8: one package serves, seven idle. Their idle
    power is in the energy per token (the first wave charged only the busy one)."""
    r = run("llama-3.1-8b", "craftwerk-station", batch=1, input_tokens=512, output_tokens=64,
            options=RunOptions(tp=1, pp=1))
    system = r.system
    d = r.to_dict()
    assert r.parallelism.dp == 8
    assert (d["chips_busy"], d["chips_idle"]) == (1, 7)
    one_replica_j = sum(r.chosen.replica_energy_by_category_j())
    tokens = r.batch * r.output_tokens
    idle_chips_w = 7 * system.chip.idle_w
    assert d["energy_j_per_token"] * tokens >= one_replica_j + idle_chips_w * r.e2e_latency_s
    assert d["power_w"] >= system.idle_w


def test_a_full_batch_leaves_nothing_idle() -> None:
    r = run("llama-3.1-8b", "dgx-h100", batch=64, input_tokens=512, output_tokens=64)
    assert r.chips_idle == 0 and r.chips_busy == 8


@pytest.mark.parametrize("name", [p.name for p in list_presets()])
def test_no_system_reports_less_than_its_idle_power(name: str) -> None:
    """Over every shipped chip and system, a small model at batch 1 (mostly idle hardware)."""
    cfg = replace(load_model_config("qwen2.5-0.5b"), name="small", num_layers=4)
    system = load_system(name)
    try:
        r = run(cfg, system, batch=1, input_tokens=128, output_tokens=16)
    except Exception as err:  # a chip without a supported format for this model is fine
        pytest.skip(str(err))
    assert r.power_w >= system.idle_w * (1 - 1e-9), (r.power_w, system.idle_w)
    assert r.chips_busy + r.chips_idle == system.chip_count


def test_a_tiny_model_on_a_gpu_draws_at_least_idle_power() -> None:
    """A 3 M-parameter model: most of its time is kernel launches and host work, during which
    the GPU still draws its idle power (the first wave averaged 40 W on a 70 W-idle H100)."""
    tiny = replace(load_model_config("llama-3.1-8b"), name="tiny", hidden_size=128, num_layers=2,
                   num_heads=4, num_kv_heads=2, head_dim=32, rotary_dim=32, intermediate_size=512,
                   vocab_size=8192)
    r = run(tiny, "h100-sxm", batch=1, input_tokens=64, output_tokens=16)
    assert r.power_w >= load_system("h100-sxm").chip.idle_w
