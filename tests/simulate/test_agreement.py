"""Analytical evaluator and event simulator on the same compiled plans: within 10% where
nothing is contended (several models, chips, phases, pipelines), and apart where the
simulator sees what formulas cannot — a hot network link, tokens pipelining through stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulate.cases import SMALL, STRIP, compile_fan_in, compile_phase, system
from tegel.cli import main
from tegel.errors import TegelError
from tegel.evaluate import evaluate
from tegel.evaluate.simulator import run_simulation, simulate
from tegel.mapping.compiler import compile_for, lower
from tegel.serving import run

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
]


@pytest.mark.parametrize(("model", "system_name", "phase", "stages", "batch", "pp"), CASES)
def test_uncontended_agreement(model: str, system_name: str, phase: str, stages: int, batch: int,
                               pp: int) -> None:
    plan = compile_phase(model, system_name, phase, stages, batch, pp)
    sys_ = system(system_name)
    analytical = evaluate(lower(plan, sys_.chip), sys_)
    simulated = simulate(plan, sys_)
    assert simulated.time_s == pytest.approx(analytical.time_s, rel=0.10)
    assert simulated.plan == analytical.plan  # the same result type, of the same steps
    dynamic = [e for c, e in simulated.cost.energy_breakdown_j.items() if c != "static"]
    assert dynamic == [e for c, e in analytical.cost.energy_breakdown_j.items() if c != "static"]
    assert simulated.cost.energy_breakdown_j["static"] == pytest.approx(
        analytical.static_w * simulated.time_s)


def test_hot_link_slows_the_simulation_not_the_formulas() -> None:
    """Three branches on regions 0 | 1 | 2 send to region 3 at once: every transfer crosses the
    two links into region 3. The simulator queues them there; the analytical evaluator spreads
    their byte-hops over the chip's links and cannot tell one transfer from three."""
    plan = compile_fan_in()
    sys_ = system(STRIP)
    assert [t.route[-1] for t in plan.transfers].count(plan.transfers[-1].route[-1]) == 3
    hot = plan.transfers[-1].route[-1]
    alone = plan.transfers[-1].bytes / hot.bytes_per_s  # one branch over the hot link
    result = run_simulation(plan, sys_)
    analytical = evaluate(lower(plan, sys_.chip), sys_)
    assert result.busy_s[hot.label()] == pytest.approx(3 * alone)
    assert result.cost.time_s > 1.2 * analytical.time_s
    assert result.cost.time_s > 3 * alone
    # the transfers wait for each other in the simulator; the formulas price each one alone
    sim_transfers = [s for s in result.cost.steps if s.step.kind == "transfer"]
    assert max(s.time_s for s in sim_transfers) >= 2.9 * alone
    single = compile_for(plan.graph, sys_, stages=4)  # same plan, compiled again: same formulas
    assert evaluate(lower(single, sys_.chip), sys_).time_s == analytical.time_s


def test_consecutive_tokens_pipeline_through_stages() -> None:
    """Four micro-batches, four stages: one call fills and drains the pipeline (what the
    analytical evaluator prices); consecutive tokens keep it full, so each costs less."""
    plan = compile_phase("llama-3.1-8b", "craftwerk", "decode", stages=4, batch=4)
    sys_ = system("craftwerk")
    one = simulate(plan, sys_)
    many = simulate(plan, sys_, tokens=8)
    assert many.time_s < 0.8 * one.time_s
    assert one.time_s == pytest.approx(evaluate(lower(plan, sys_.chip), sys_).time_s, rel=0.02)


def test_run_event_mode_and_gpu_refusal() -> None:
    analytical = run("qwen2.5-0.5b", "craftwerk", batch=4, input_tokens=256, output_tokens=64)
    event = run("qwen2.5-0.5b", "craftwerk", batch=4, input_tokens=256, output_tokens=64, sim="event")
    assert event.chosen.decode.plan.policy == "compiled"
    assert event.parallelism == analytical.parallelism
    assert event.tpot_s == pytest.approx(analytical.tpot_s, rel=0.5)
    with pytest.raises(TegelError, match="GPU"):
        run("qwen2.5-0.5b", "h100-sxm", sim="event")
    with pytest.raises(TegelError, match="sim"):
        run("qwen2.5-0.5b", "craftwerk", sim="cycle")


def test_run_writes_a_perfetto_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.json"
    assert main(["run", "llama-3.1-8b", "--on", "craftwerk", "--sim", "event", "--trace", str(path)]) == 0
    assert "TPOT" in capsys.readouterr().out
    events = json.loads(path.read_text())["traceEvents"]
    spans = [e for e in events if e["ph"] == "X"]
    tracks = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    processes = {e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert any(t.startswith("stage 0: chip 0") for t in tracks)  # tile regions
    assert any(" x+ line " in t or " y+ line " in t for t in tracks)  # busy link bundles
    assert any(t.startswith("stacked_dram @ stage") for t in tracks)  # memory channels
    assert {"prefill: chip 0", "decode: chip 0"} <= processes
    assert all(e["dur"] >= 0 and e["ts"] >= 0 for e in spans)
    assert any(e["name"] == "layers.31.mlp.down" for e in spans)
    assert all("bytes" in e["args"] for e in spans)
    process_of = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    decode_start = min(e["ts"] for e in spans if process_of[e["pid"]].startswith("decode"))
    prefill_end = max(e["ts"] + e["dur"] for e in spans if process_of[e["pid"]].startswith("prefill"))
    assert decode_start == pytest.approx(prefill_end)  # decode is drawn after prefill
    assert main(["run", "llama-3.1-8b", "--on", "craftwerk", "--trace", str(path)]) == 2
    assert "--sim event" in capsys.readouterr().err
