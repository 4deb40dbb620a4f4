"""Weights split across storage levels: a model larger than the chips' on-chip storage keeps
what fits on chip and streams the rest, each step reads a weight from the level that holds it,
the split is faster than streaming everything, and a model that fits keeps all on chip."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tegel.evaluate.analytical import evaluate
from tegel.hardware import load_system
from tegel.mapping.compiled import CompiledPlan, verify
from tegel.mapping.compiler import compile_llm
from tegel.mapping.lower import lower
from tegel.mapping.plan import Parallelism, StepKind
from tegel.mapping.sharding import shard_graph
from tegel.workload.folding import model_weight_bytes
from tegel.workload.ir import Role
from tegel.workload.llm import Phase, Precision
from tegel.workload.model_config import load_model_config

TP = 16


@pytest.fixture(scope="module")
def sn40l() -> CompiledPlan:
    """Llama-3.1-8B decoding on the 16 sockets of an SN40L-16 (16 GB of weights, 8.3 GB of
    SRAM), as SambaNova serves it."""
    cfg = load_model_config("llama-3.1-8b")
    return compile_llm(cfg, load_system("sn40l-16"), Phase.decode(1, 1024), Precision(),
                       Parallelism(tp=TP), 1)


def _weights(plan: CompiledPlan) -> dict[str, float]:
    out: dict[str, float] = {}
    for h in plan.homes:
        if h.kind == "weight":
            out[h.level] = out.get(h.level, 0.0) + h.bytes
    return out


def test_a_model_larger_than_sram_splits_between_sram_and_hbm(sn40l: CompiledPlan) -> None:
    held = _weights(sn40l)
    assert set(held) == {"pmu", "hbm3"}
    # each chip's share of every weight (k and v, 8 heads over 16 chips, are held twice)
    cfg = load_model_config("llama-3.1-8b")
    shards = shard_graph(sn40l.graph, TP, 1)
    layers = {op.name: cfg.num_layers if op.layer >= 0 else 1 for op in sn40l.graph.ops}
    share = {t.name: t.nbytes / shards[op.name].read_div[i] * layers[op.name]
             for op in sn40l.graph.ops for i, t in enumerate(op.inputs) if t.role is Role.WEIGHT}
    assert sum(held.values()) == pytest.approx(sum(share.values()), rel=1e-12)
    assert sum(share.values()) * TP >= model_weight_bytes(cfg, Precision())
    sram = sn40l.level("pmu")
    fraction = 0.85  # sram_weight_fraction (mapping/data/dataflow.yaml)
    assert held["pmu"] <= fraction * sram.total_bytes
    assert held["pmu"] > 0.75 * fraction * sram.total_bytes  # the fill packs most of its share
    assert sn40l.notes[0].startswith("weights in pmu and hbm3, KV cache in hbm3")


def test_weights_read_in_part_are_placed_last(sn40l: CompiledPlan) -> None:
    """The embedding table (a gather reads a few rows of it a call) stays off chip while
    weights read whole every call fill the SRAM."""
    ops = {op.name: op for op in sn40l.graph.ops}
    homes = {h.tensor: h for h in sn40l.homes}
    embed = next(op for op in ops.values() if op.kind.value == "embedding")
    table = next(t for t in embed.inputs if t.role is Role.WEIGHT)
    assert homes[table.name].level == "hbm3"
    # while a weight read whole of about the table's share sits on chip
    assert any(h.level == "pmu" and h.kind == "weight" and h.bytes >= 0.5 * homes[table.name].bytes
               for h in sn40l.homes)


def test_each_step_reads_its_weight_from_the_level_holding_it(sn40l: CompiledPlan) -> None:
    system = load_system("sn40l-16")
    plan = lower(sn40l, system)
    pmu, hbm = plan.levels.index("pmu"), plan.levels.index("hbm3")
    ops = {op.name: op for op in sn40l.graph.ops}
    homes = {h.tensor: h for h in sn40l.homes}
    seen = set()
    for step in plan.steps:
        if step.kind is StepKind.COLLECTIVE or not step.ops or step.ops[0] not in ops:
            continue
        op = ops[step.ops[0]]
        weights = [t for t in op.inputs if t.role is Role.WEIGHT]
        if op.kind.value != "matmul" or len(weights) != 1:
            continue
        level = homes[weights[0].name].level
        seen.add(level)
        share = homes[weights[0].name].bytes / step.repeat  # each chip's share of one layer
        if level == "pmu":
            assert step.reads[hbm] == 0.0 and step.reads[pmu] >= share
        else:
            assert step.reads[hbm] == pytest.approx(share)
    assert seen == {"pmu", "hbm3"}


def test_the_split_is_faster_than_streaming_every_weight(sn40l: CompiledPlan) -> None:
    system = load_system("sn40l-16")
    streamed = verify(replace(sn40l, homes=tuple(
        replace(h, level="hbm3") if h.kind == "weight" else h for h in sn40l.homes)))
    split_s = evaluate(lower(sn40l, system), system).time_s
    streamed_s = evaluate(lower(streamed, system), system).time_s
    # the bytes moved on chip no longer come at the achieved HBM rate
    assert split_s < streamed_s
    moved = _weights(sn40l)["pmu"]
    hbm = system.chip.levels()[-1].read_bytes_per_s * 0.75  # offchip_bandwidth_fraction
    assert streamed_s - split_s > 0.5 * moved / hbm


@pytest.mark.parametrize(("model", "system", "tp"), [
    ("llama-3.1-8b", "cerebras-wse3", 1),
    ("llama-3.2-1b", "sn40l-16", 8),
])
def test_a_model_that_fits_keeps_every_weight_on_chip(model: str, system: str, tp: int) -> None:
    plan = compile_llm(load_model_config(model), load_system(system), Phase.decode(1, 1024),
                       Precision(), Parallelism(tp=tp), 1)
    tile = next(lv.name for lv in plan.levels if lv.scope == "tile")
    assert set(_weights(plan)) == {tile}
    assert plan.notes[0] == f"weights in {tile}, KV cache in {plan.levels[-1].name}"
