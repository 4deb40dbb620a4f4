"""The energy floor: no modelled machine — preset or random template — comes out below it."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tegel.economics.floor import call_work, energy_floor
from tegel.errors import TegelError
from tegel.hardware import ChipTemplate, System, expand, list_presets, load_system, load_technology
from tegel.serving.run import run
from tegel.workload.llm import Phase, Precision
from tegel.workload.model_config import load_model_config

SLACK = 1 - 1e-9  # equality is allowed (a dataflow chip pays exactly the floor's arithmetic)
MODELS = ("qwen2.5-0.5b", "llama-3.2-1b")


def _fits(system: System, model: str, batch: int, precision: str | None):  # type: ignore[no-untyped-def]
    try:
        return run(model, system, batch, 512, 64, precision)
    except TegelError:
        return None


@pytest.mark.parametrize("name", [p.name for p in list_presets()])
@pytest.mark.parametrize("batch", [1, 16])
def test_no_preset_beats_the_floor(name: str, batch: int) -> None:
    system = load_system(name)
    checked = 0
    for model in MODELS:
        for precision in (None, "fp8", "int8"):
            result = _fits(system, model, batch, precision)
            if result is None:
                continue
            floor = energy_floor(load_model_config(model), batch, 512, 64, result.precision,
                                 system.chip.node)
            assert result.energy_j_per_token >= floor.j_per_token * SLACK, (model, precision)
            assert result.energy_breakdown_j_per_token["compute"] >= \
                floor.arithmetic_j_per_token * SLACK
            checked += 1
            break
    if not checked:
        pytest.skip(f"no test model fits {name} alone")  # groq-lpu: 230 MB; groq-576 covers it


NODES = ("16nm", "7nm", "5nm", "3nm")


@st.composite
def templates(draw: st.DrawFn) -> ChipTemplate:
    sram = draw(st.sampled_from([65536, 262144, 1048576, 4194304]))
    stacked = draw(st.booleans())
    return ChipTemplate.model_validate({
        "name": "random", "architecture": "dataflow", "node": draw(st.sampled_from(NODES)),
        "clock_hz": draw(st.floats(min_value=5e8, max_value=2e9)),
        "rows": draw(st.integers(2, 48)), "cols": draw(st.integers(2, 48)),
        "tile": {"macs_per_cycle": draw(st.sampled_from([16, 64, 256, 1024, 4096])),
                 "mac_dtype": "bf16", "dtype_speedup": {"fp8": 2, "int8": 2},
                 "sram_bytes": sram,
                 "sram_read_bytes_per_cycle": draw(st.sampled_from([64, 256, 1024])),
                 "sram_macro_bytes": draw(st.sampled_from([8192, 32768, 262144])) if sram > 262144
                 else 8192},
        "noc": {"topology": draw(st.sampled_from(["mesh", "torus"])),
                "link_bytes_per_cycle": draw(st.sampled_from([16, 64, 256])),
                "hop_latency_cycles": 1},
        "offchip": {"kind": "stacked_dram" if stacked else draw(st.sampled_from(
                        ["hbm3", "hbm3e", "lpddr5", "gddr6"])),
                    "stacks": draw(st.integers(1, 8)), "bytes_per_stack": 16e9,
                    "bytes_per_s_per_stack": draw(st.floats(min_value=5e10, max_value=2e12)),
                    **({"pj_per_bit": draw(st.floats(min_value=0.05, max_value=1.0))}
                       if stacked else {})},
        "overheads": {"logic_overhead_fraction": 0.5, "phy_mm2_per_stack": 10, "io_mm2": 50,
                      "power_margin_fraction": 0.2},
    })


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(templates(), st.sampled_from(MODELS), st.sampled_from([1, 4, 32]),
       st.sampled_from(["bf16", "fp8"]))
def test_no_random_template_beats_the_floor(t: ChipTemplate, model: str, batch: int,
                                            precision: str) -> None:
    chip = expand(t, load_technology(t.node))
    result = _fits(System.single(chip), model, batch, precision)
    if result is None:
        return
    floor = energy_floor(load_model_config(model), batch, 512, 64, result.precision, chip.node)
    assert result.energy_j_per_token >= floor.j_per_token * SLACK


def test_floor_parts_and_monotonicity() -> None:
    cfg = load_model_config("llama-3.1-8b")
    p = Precision()
    small = energy_floor(cfg, 1, 512, 64, p, "5nm")
    large = energy_floor(cfg, 64, 512, 64, p, "5nm")
    assert small.j_per_token == pytest.approx(small.arithmetic_j_per_token + small.weights_j_per_token)
    assert large.weights_j_per_token == pytest.approx(small.weights_j_per_token / 64, rel=0.01)
    assert energy_floor(cfg, 8, 512, 64, p, "3nm").j_per_token < \
        energy_floor(cfg, 8, 512, 64, p, "7nm").j_per_token
    # per generated token: ~2 FLOPs per parameter for every prompt and generated token
    per_token = 2 * 8.0e9 * (512 + 64) / 64
    assert 0.8 * per_token < large.flops_per_token < 1.3 * per_token  # embeddings: no FLOPs


def test_call_work_counts_each_weight_once() -> None:
    cfg = load_model_config("llama-3.2-1b")  # tied embeddings: the head reads the whole table
    w = call_work(cfg, Phase.decode(4, 128), Precision(), "5nm")
    params_bytes = 2 * 1.236e9
    assert 0.9 * params_bytes < w.weight_bytes < 1.05 * params_bytes
