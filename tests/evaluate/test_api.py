"""`tegel.run` as a Python API: the result, its dict contract, and its per-step table."""

from __future__ import annotations

import json
import math

import pytest

import tegel
from tegel.errors import TegelError
from tegel.hardware import load_system
from tegel.mapping.params import default_params
from tegel.mapping.plan import Parallelism, StepKind
from tegel.report.text import si
from tegel.serving import RunResult, run
from tegel.serving.llm import memory_per_chip
from tegel.serving.scenario import RunOptions, Scenario
from tegel.workload import DType, Precision
from tegel.workload.model_config import load_model_config

CONTRACT_KEYS = ("model", "system", "batch", "ttft_s", "tpot_s", "throughput_tokens_per_s",
                 "tokens_per_s_per_user", "energy_j_per_token", "power_w", "memory_bytes",
                 "energy_breakdown_j_per_token")


@pytest.fixture(scope="module")
def gpu_result() -> RunResult:
    """A single-stage, single-micro-batch GPU plan: step times add up to phase times."""
    return run("llama-3.1-8b", "h100-sxm", batch=4, input_tokens=256, output_tokens=32,
               options=RunOptions(tp=1, pp=1))


def test_top_level_run_is_the_serving_run() -> None:
    assert tegel.run is run
    result = tegel.run("qwen2.5-0.5b", "h100-sxm", batch=2, input_tokens=64, output_tokens=8)
    assert isinstance(result, RunResult)


def test_to_dict_has_the_contract_keys_and_is_json(gpu_result: RunResult) -> None:
    d = gpu_result.to_dict()
    assert set(CONTRACT_KEYS) <= set(d)
    assert (d["model"], d["system"], d["batch"]) == ("llama-3.1-8b", "h100-sxm", 4)
    assert json.loads(json.dumps(d)) == d
    assert math.isclose(sum(d["energy_breakdown_j_per_token"].values()), d["energy_j_per_token"],
                        rel_tol=1e-9)
    assert d["tokens_per_s_per_user"] == pytest.approx(1.0 / d["tpot_s"])
    # generated tokens per second of the whole system
    assert d["throughput_tokens_per_s"] == pytest.approx(4 * 32 / d["e2e_latency_s"])
    assert d["e2e_latency_s"] == pytest.approx(d["ttft_s"] + 31 * d["tpot_s"])


def test_op_rows_are_one_per_step_of_each_phase(gpu_result: RunResult) -> None:
    rows = gpu_result.op_rows()
    prefill, decode = gpu_result.chosen.prefill, gpu_result.chosen.decode
    assert len(rows) == len(prefill.steps) + len(decode.steps)
    assert [r["phase"] for r in rows] == ["prefill"] * len(prefill.steps) + ["decode"] * len(decode.steps)
    assert [r["step"] for r in rows] == [sc.step.name for sc in prefill.steps + decode.steps]
    levels = decode.plan.levels
    for r in rows:
        assert {f"{name}_bytes" for name in levels} <= set(r)
        assert r["time_s"] >= 0 and r["energy_j"] >= 0 and r["repeat"] >= 1


@pytest.mark.parametrize(("system", "tp", "stages"), [("h100-sxm", 1, None), ("dgx-h100", 4, None),
                                                      ("ref-dataflow", 1, 1)])
def test_step_times_times_repeat_add_up_to_phase_times(system: str, tp: int, stages: int | None) -> None:
    result = run("llama-3.1-8b", system, batch=4, input_tokens=256, output_tokens=32,
                 options=RunOptions(tp=tp, pp=1, stages=stages))
    assert result.tpot_s == result.chosen.decode.time_s
    assert result.ttft_s >= result.chosen.prefill.time_s  # plus any per-request host overhead
    for phase_name, phase in (("prefill", result.chosen.prefill), ("decode", result.chosen.decode)):
        assert (phase.plan.stages, phase.plan.microbatches) == (1, 1)
        rows = [r for r in result.op_rows() if r["phase"] == phase_name]
        steps_s = sum(r["time_s"] * r["repeat"] for r in rows)
        chips = phase.plan.chips_per_stage
        dynamic = sum(r["energy_j"] * r["repeat"] * chips for r in rows)
        if phase.power_capped:  # a compute-bound phase at the TDP: stretched, less per action
            assert phase.time_s > steps_s
            assert phase.cost.energy_j - phase.static_w * phase.time_s < dynamic
            continue
        assert math.isclose(steps_s, phase.time_s, rel_tol=1e-9)
        assert math.isclose(dynamic + phase.static_w * phase.time_s, phase.cost.energy_j, rel_tol=1e-9)


def test_op_table_is_a_dataframe_of_the_rows(gpu_result: RunResult) -> None:
    pd = pytest.importorskip("pandas")
    table = gpu_result.op_table()
    assert isinstance(table, pd.DataFrame)
    rows = gpu_result.op_rows()
    assert len(table) == len(rows)
    assert list(table.columns) == list(rows[0])
    decode = table[table["phase"] == "decode"]
    assert math.isclose(float((decode["time_s"] * decode["repeat"]).sum()), gpu_result.tpot_s,
                        rel_tol=1e-9)
    assert set(table["kind"]) >= {"gemm", "attention", "norm"}


def test_bound_names_a_resource_of_the_machine(gpu_result: RunResult) -> None:
    levels = gpu_result.chosen.decode.plan.levels
    bounds = {r["bound"] for r in gpu_result.op_rows()}
    assert bounds <= {"compute", "noc", "link", "overhead", *levels}, bounds


def test_batch_auto_fills_memory() -> None:
    result = run("llama-3.1-8b", "h100-sxm", batch="auto", input_tokens=512, output_tokens=128)
    mem = result.to_dict()["memory_bytes"]
    assert result.batch > 1
    assert mem["total"] <= mem["capacity"]
    # one more sequence per replica would not fit
    scenario = Scenario(load_model_config("llama-3.1-8b"), None, 512, 128, result.precision)
    more = memory_per_chip(scenario, load_system("h100-sxm"), result.parallelism,
                           result.chosen.batch_per_replica + 1, default_params())
    assert not more.fits


def test_precision_objects_and_names_agree() -> None:
    by_name = run("qwen2.5-7b", "h100-sxm", batch=2, input_tokens=128, output_tokens=8, precision="fp8")
    by_object = run("qwen2.5-7b", "h100-sxm", batch=2, input_tokens=128, output_tokens=8,
                    precision=Precision.uniform(DType.FP8_E4M3))
    assert by_name.to_dict() == by_object.to_dict()


def test_a_workload_that_does_not_fit_says_by_how_much() -> None:
    with pytest.raises(TegelError) as err:
        run("llama-3.1-405b", "h100-sxm", batch=1, input_tokens=1024, output_tokens=256)
    text = str(err.value)
    scenario = Scenario(load_model_config("llama-3.1-405b"), 1, 1024, 256, Precision())
    mem = memory_per_chip(scenario, load_system("h100-sxm"), Parallelism(), 1, default_params())
    assert "does not fit" in text and "h100-sxm" in text
    assert f"short by {si(mem.total_bytes - mem.capacity_bytes, 'B')}" in text


@pytest.mark.parametrize("kwargs", [{"batch": 0}, {"batch": "many"}, {"input_tokens": 0},
                                    {"output_tokens": 0}, {"precision": "fp3"}])
def test_bad_arguments_are_tegel_errors(kwargs: dict) -> None:
    args = {"batch": 1, "input_tokens": 16, "output_tokens": 4, **kwargs}
    with pytest.raises(TegelError):
        run("gpt2", "h100-sxm", **args)


def test_groq_spreads_a_layer_over_chips_with_tensor_parallelism() -> None:
    """Llama-3.1-8B (16 GB in fp16) needs more than its 32 layers' worth of 230 MB Groq chips:
    the search finds tensor x pipeline splits, and the plan carries the all-reduces."""
    from tegel.serving import run

    r = run("llama-3.1-8b", "groq-576", batch=4)
    par = r.parallelism
    assert par.tp > 1 and par.tp * par.pp * par.dp == 576
    assert r.chosen.memory.fits
    kinds = {s.kind for s in r.chosen.decode.plan.steps}
    assert StepKind.COLLECTIVE in kinds
    assert r.energy_breakdown_j_per_token["chip_to_chip"] > 0


def test_moe_models_search_expert_parallelism() -> None:
    """Mixtral on 8 x H100: with no --ep the search considers experts split over the TP chips
    (all-to-all) and picks the faster; a dense model never gets ep > 1."""
    from tegel.serving import run

    free = run("mixtral-8x7b", "dgx-h100", batch=64, options=RunOptions(tp=8))
    forced = run("mixtral-8x7b", "dgx-h100", batch=64, options=RunOptions(tp=8, ep=1))
    assert free.e2e_latency_s <= forced.e2e_latency_s
    assert free.parallelism.ep in (1, 8)
    assert run("llama-3.1-8b", "dgx-h100", batch=64, options=RunOptions(tp=8)).parallelism.ep == 1
