"""Analytical evaluator and event simulator on the same plans. They price every step with the
same terms (`evaluate.terms`), so where nothing is contended they agree to rounding — over
dataflow plans (several models, chips, phases, pipelines, multi-chip, tensor parallel) and GPU
kernel sequences — and where they differ it is contention the formulas cannot see: a hot link."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulate.cases import SMALL, STRIP, compile_fan_in, compile_phase, system
from tegel.cli import main
from tegel.errors import TegelError
from tegel.evaluate import evaluate
from tegel.evaluate.simulator import run_simulation, simulate
from tegel.mapping.compiler import compile_for
from tegel.mapping.lower import lower
from tegel.mapping.params import default_params
from tegel.mapping.plan import PlanRequest, StepKind
from tegel.serving import run
from tegel.serving.scenario import RunOptions

CASES = [  # model, system, phase, stages, batch (micro-batches = min(batch, stages)), pp
    ("llama-3.1-8b", "craftwerk", "decode", 2, 1, 1),
    ("llama-3.1-8b", "craftwerk", "prefill", 4, 4, 1),
    ("llama-3.1-8b", "craftwerk", "decode", 32, 32, 1),
    ("llama-3.1-8b", "ref-dataflow", "decode", 4, 4, 1),
    ("llama-3.1-8b", SMALL, "prefill", 8, 1, 1),
    ("qwen2.5-0.5b", "craftwerk", "prefill", 8, 8, 1),
    ("qwen2.5-0.5b", "ref-dataflow", "decode", 1, 1, 1),
    ("qwen2.5-0.5b", SMALL, "decode", 4, 4, 1),
    ("qwen2.5-0.5b", "cerebras-wse3", "decode", 8, 2, 1),
    ("mixtral-8x7b", "craftwerk", "decode", 8, 8, 1),
    ("mixtral-8x7b", "ref-dataflow", "prefill", 2, 1, 1),
    ("llama-3.1-8b", "craftwerk-station", "decode", 8, 8, 8),
    ("llama-3.1-8b", "craftwerk-station", "prefill", 16, 4, 8),
    ("gemma-2-2b-it", "craftwerk", "decode", 4, 4, 1),  # two kinds of layer, alternating
    ("gemma-3-1b-it", SMALL, "prefill", 3, 1, 1),
    ("gemma-3-1b-it", "craftwerk-station", "decode", 8, 8, 4),
]

RUNS = [  # whole runs, both phases: GPUs (kernel sequences) and tensor-parallel dataflow plans
    ("llama-3.1-8b", "h100-sxm", 8, RunOptions()),
    ("qwen2.5-0.5b", "h100-sxm", 1, RunOptions()),
    ("llama-3.1-70b", "dgx-h100", 16, RunOptions(tp=4, pp=2)),
    ("mixtral-8x7b", "dgx-h100", 4, RunOptions(tp=8, ep=8)),
    ("llama-3.1-8b", "mi300x-8", 8, RunOptions(tp=2, pp=4)),
    ("llama-3.1-8b", "craftwerk-station", 4, RunOptions(tp=2, pp=4)),
    ("llama-2-7b", "groq-576", 1, RunOptions()),
    ("gemma-3-1b-it", "dgx-h100", 4, RunOptions(tp=2, pp=2)),
]


def _agree(plan: object, lowered: object, sys_: object) -> None:
    analytical = evaluate(lowered, sys_)  # type: ignore[arg-type]
    simulated = simulate(plan, sys_, lowered=lowered)  # type: ignore[arg-type]
    assert simulated.time_s == pytest.approx(analytical.time_s, rel=0.02)
    assert simulated.plan == analytical.plan  # the same result type, of the same steps
    dynamic = [e for c, e in simulated.cost.energy_breakdown_j.items() if c != "static"]
    # equal up to rounding: under a power cap the energy per action follows the (equal) time
    assert dynamic == pytest.approx(
        [e for c, e in analytical.cost.energy_breakdown_j.items() if c != "static"], rel=1e-12)
    assert simulated.cost.energy_breakdown_j["static"] == pytest.approx(
        analytical.static_w * simulated.time_s)


@pytest.mark.parametrize(("model", "system_name", "phase", "stages", "batch", "pp"), CASES)
def test_uncontended_agreement_of_compiled_plans(model: str, system_name: str, phase: str,
                                                 stages: int, batch: int, pp: int) -> None:
    plan = compile_phase(model, system_name, phase, stages, batch, pp)
    sys_ = system(system_name)
    _agree(plan, lower(plan, sys_), sys_)


@pytest.mark.parametrize(("model", "system_name", "batch", "options"), RUNS)
def test_uncontended_agreement_of_chosen_plans(model: str, system_name: str, batch: int,
                                               options: RunOptions) -> None:
    result = run(model, system_name, batch, 256, 32, options=options)
    compiled = result.chosen.compiled or (None, None)
    for cost, plan in ((result.chosen.prefill, compiled[0]), (result.chosen.decode, compiled[1])):
        _agree(plan or cost.plan, cost.plan, result.system)
    if system_name == "groq-576":  # a layer spread over chips: its collectives are steps
        assert result.parallelism.tp > 1
        assert any(s.kind is StepKind.COLLECTIVE for s in result.chosen.decode.plan.steps)


def test_hot_link_slows_the_simulation_not_the_formulas() -> None:
    """Three branches on regions 0 | 1 | 2 send to region 3 at once: every transfer crosses the
    two links into region 3. The simulator queues them there; the formulas price each alone."""
    plan = compile_fan_in()
    sys_ = system(STRIP)
    assert [t.route[-1] for t in plan.transfers].count(plan.transfers[-1].route[-1]) == 3
    hot = plan.transfers[-1].route[-1]
    share = default_params().dataflow.noc_bandwidth_fraction  # the NoC's achieved share
    alone = plan.transfers[-1].bytes / (hot.bytes_per_s * share)  # one branch over the hot link
    result = run_simulation(plan, sys_)
    analytical = evaluate(lower(plan, sys_), sys_)
    assert result.busy_s[hot.label()] == pytest.approx(3 * alone)
    # the transfers wait for each other in the simulator; the formulas price each one alone
    sim_transfers = [s for s in result.cost.steps if s.step.kind is StepKind.TRANSFER]
    formula_transfers = [s for s in analytical.steps if s.step.kind is StepKind.TRANSFER]
    assert max(s.time_s for s in sim_transfers) >= 2.9 * alone
    assert max(s.time_s for s in formula_transfers) < 1.1 * alone + max(
        sum(lk.latency_s for lk in s.step.route) for s in formula_transfers)
    single = compile_for(plan.graph, sys_, PlanRequest(plan.phase, plan.parallelism, 1, 4))
    assert evaluate(lower(single, sys_), sys_).time_s == analytical.time_s  # deterministic


def test_consecutive_tokens_pipeline_through_stages() -> None:
    """Four micro-batches, four stages: one call fills and drains the pipeline (what the
    analytical evaluator prices); consecutive tokens keep it full, so each costs less."""
    plan = compile_phase("llama-3.1-8b", "craftwerk", "decode", stages=4, batch=4)
    sys_ = system("craftwerk")
    # without the per-call host round trip, which every token pays whatever the pipeline does
    params = default_params().with_dataflow({"host_round_trip_s": 0.0}, "test").dataflow
    lowered = lower(plan, sys_, params)
    one = simulate(plan, sys_, lowered=lowered)
    many = simulate(plan, sys_, tokens=8, lowered=lowered)
    assert many.time_s < 0.8 * one.time_s
    assert one.time_s == pytest.approx(evaluate(lowered, sys_).time_s, rel=0.02)


def test_run_event_mode_on_gpus_and_dataflow_chips() -> None:
    for system_name in ("craftwerk", "h100-sxm"):
        analytical = run("qwen2.5-0.5b", system_name, batch=4, input_tokens=256, output_tokens=64)
        event = run("qwen2.5-0.5b", system_name, batch=4, input_tokens=256, output_tokens=64,
                    options=RunOptions(sim="event"))
        assert event.parallelism == analytical.parallelism
        assert event.chosen.decode.plan == analytical.chosen.decode.plan  # one mapping
        assert event.tpot_s == pytest.approx(analytical.tpot_s, rel=0.02)
    with pytest.raises(TegelError, match="sim"):
        run("qwen2.5-0.5b", "craftwerk", options=RunOptions(sim="cycle"))


@pytest.mark.parametrize("system_name", ["craftwerk", "h100-sxm"])
def test_run_writes_a_perfetto_trace(system_name: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.json"
    assert main(["run", "llama-3.1-8b", "--on", system_name, "--sim", "event",
                 "--trace", str(path)]) == 0
    assert "TPOT" in capsys.readouterr().out
    events = json.loads(path.read_text())["traceEvents"]
    spans = [e for e in events if e["ph"] == "X"]
    tracks = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert all(e["dur"] >= 0 and e["ts"] >= 0 for e in spans)
    assert any(e["name"].endswith("(layer 31)") for e in spans)
    process_of = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    decode_start = min(e["ts"] for e in spans if process_of[e["pid"]].startswith("decode"))
    prefill_end = max(e["ts"] + e["dur"] for e in spans if process_of[e["pid"]].startswith("prefill"))
    assert decode_start == pytest.approx(prefill_end)  # decode is drawn after prefill
    if system_name == "craftwerk":
        processes = set(process_of.values())
        assert any(t.startswith("stage 0: chip 0") for t in tracks)  # tile regions
        assert any(t.startswith("stacked_dram @ stage") for t in tracks)  # memory channels
        assert {"prefill: chip 0", "decode: chip 0"} <= processes
        assert all("bytes" in e["args"] for e in spans)
    else:
        assert any(t.startswith("hbm") for t in tracks)
    assert main(["run", "llama-3.1-8b", "--on", "craftwerk", "--trace", str(path)]) == 2
    assert "--sim event" in capsys.readouterr().err
