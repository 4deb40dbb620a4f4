"""The spatial compiler: its plans keep their invariants, `verify` names each broken one,
routes follow the topology's rule, weights stay put between prefill and decode, and plans
print, diff and serialise."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from simulate.cases import SMALL, STRIP, compile_fan_in, compile_phase, fan_in_graph, system
from tegel.cli import main
from tegel.errors import TegelError
from tegel.mapping.compiled import (
    CompiledPlan,
    Link,
    PlanError,
    Rect,
    Segment,
    describe,
    diff,
    to_dict,
    verify,
)
from tegel.mapping.compiler import compile_for, partition_stages
from tegel.mapping.plan import Parallelism, PlanRequest
from tegel.mapping.routing import chip_route, noc_route
from tegel.workload import Phase, load_model_config


@pytest.fixture(scope="module")
def decode() -> CompiledPlan:
    return compile_phase("llama-3.1-8b", "craftwerk", "decode", stages=8, batch=8)


def test_stages_regions_and_homes(decode: CompiledPlan) -> None:
    rows, cols = decode.grid
    assert sum(st.region.tiles for st in decode.stages) == rows * cols  # every tile used
    assert sum(st.layers for st in decode.stages) == 32
    assert [st.segments[-1 if i < 7 else -2].first_layer for i, st in enumerate(decode.stages)] == [
        4 * i for i in range(8)]
    last = decode.stages[-1]
    assert last.region.tiles > decode.stages[1].region.tiles  # it also holds the LM head
    weights = {h.tensor: h for h in decode.homes if h.stage == 3 and h.kind == "weight"}
    q = weights["layers.0.attn.q.weight"]
    assert q.bytes == 4 * 4096 * 4096 * 2
    # 16 GB of weights over 4.3 GB of SRAM: each stage's tiles keep what fits (its attention
    # weights), the MLP weights stream from the stacked DRAM
    assert q.level == "tile_sram" and weights["layers.0.mlp.down.weight"].level == "stacked_dram"
    assert all(h.level == "tile_sram" for h in decode.homes if h.kind == "activation")
    assert len(decode.transfers) == 7 and all(len(t.route) >= 1 for t in decode.transfers)
    assert decode.transfers[0].tensor == "layers.0.mlp_residual" and decode.transfers[0].into == "embed"


def test_weights_stay_put_between_prefill_and_decode(decode: CompiledPlan) -> None:
    prefill = compile_phase("llama-3.1-8b", "craftwerk", "prefill", stages=8, batch=8)
    changed = diff(prefill, decode)
    assert changed  # activations, splits and KV differ ...
    assert [st.region for st in prefill.stages] == [st.region for st in decode.stages]
    weight_keys = {f"home {h.stage}/{h.tensor}" for h in decode.homes if h.kind == "weight"}
    assert not [line for line in changed if line[2:].split(":")[0] in weight_keys]
    assert diff(decode, decode) == []


def test_weights_resident_in_sram_when_they_fit() -> None:
    plan = compile_phase("llama-3.1-8b", "craftwerk-station", "decode", stages=16, batch=1, pp=8)
    assert {h.level for h in plan.homes if h.kind == "weight"} == {"tile_sram"}
    assert [st.region.chip for st in plan.stages] == [i // 2 for i in range(16)]
    crossings = [t for t in plan.transfers if t.chip_hops]
    assert len(crossings) == 7 and all(t.route[0].kind == "c2c" for t in crossings)
    biggest = max(plan.stages, key=lambda st: st.region.tiles)
    assert biggest.index in (0, 15)  # the embedding table or the LM head needs the SRAM


def test_describe_and_json(decode: CompiledPlan) -> None:
    text = describe(decode)
    assert text.startswith("compiled plan of llama-3.1-8b-decode on craftwerk: 8 stage(s)")
    assert "stage 7: chip 0" in text and "layers.0.attn.q" in text and "transfer 0->1" in text
    assert "layers.0.attn.q" not in describe(decode, ops=False)
    data = json.loads(json.dumps(to_dict(decode)))
    assert len(data["stages"]) == 8 and data["transfers"][0]["route"][0]["kind"] in ("x", "y")


@pytest.mark.parametrize("broken", ["no home", "over capacity", "no route", "order", "overlap",
                                    "no split"])
def test_verify_names_each_broken_invariant(broken: str) -> None:
    plan = compile_fan_in()
    assert verify(plan) is plan
    if broken == "no home":
        bad = replace(plan, homes=tuple(h for h in plan.homes if h.tensor != "sum01"))
        message = "sum01 .* no home"
    elif broken == "over capacity":
        homes = tuple(replace(h, kind="weight", bytes=1e12) if h.tensor == "x" else h for h in plan.homes)
        bad, message = replace(plan, homes=homes), "holds .* more than"
    elif broken == "no route":
        bad = replace(plan, transfers=(replace(plan.transfers[0], route=()), *plan.transfers[1:]))
        message = "has no route"
    elif broken == "order":
        last = plan.stages[-1]
        swapped = replace(last, segments=(Segment(tuple(reversed(last.segments[0].ops))),))
        bad, message = replace(plan, stages=(*plan.stages[:-1], swapped)), "reads sum01 before"
    elif broken == "overlap":
        first = plan.stages[0]
        moved = replace(first, region=replace(first.region, cols=first.region.cols + 1))
        bad, message = replace(plan, stages=(moved, *plan.stages[1:])), "share tiles"
    else:
        bad, message = replace(plan, splits=plan.splits[1:]), "has no split"
    with pytest.raises(PlanError, match=message):
        verify(bad)


def test_transfer_leaving_before_it_is_produced_is_caught() -> None:
    plan = compile_fan_in()
    early = replace(plan.transfers[0], tensor="sum")  # produced only in the last stage
    with pytest.raises(PlanError, match="before it is produced"):
        verify(replace(plan, transfers=(early, *plan.transfers[1:])))


def test_mesh_routes_are_dimension_ordered() -> None:
    chip = system(SMALL).chip
    a, b = Rect(0, 0, 0, 2, 2), Rect(0, 5, 4, 3, 4)
    route = noc_route(a, b, chip)
    xs = [lk for lk in route if lk.kind == "x"]
    ys = [lk for lk in route if lk.kind == "y"]
    assert route == (*xs, *ys)  # X first, then Y
    assert [lk.line for lk in xs] == [2, 3, 4] and all((lk.lo, lk.hi) == (0, 2) for lk in xs)
    assert [lk.line for lk in ys] == [2, 3, 4, 5] and all((lk.lo, lk.hi) == (4, 8) for lk in ys)
    assert all(lk.direction == 1 for lk in route)
    back = noc_route(b, a, chip)
    assert [lk.line for lk in back if lk.kind == "x"] == [4, 3, 2]
    assert all(lk.direction == -1 for lk in back)
    assert xs[0].bytes_per_s == 2 * chip.noc.link_bytes_per_s


def test_torus_takes_the_short_way_round() -> None:
    chip = system("wormhole-n300").chip  # 8 x 16 torus
    route = noc_route(Rect(0, 0, 0, 8, 2), Rect(0, 0, 14, 8, 2), chip)
    assert [(lk.kind, lk.line, lk.direction) for lk in route] == [("x", 0, -1)]  # the wrap link


def test_chip_to_chip_routes() -> None:
    station = system("craftwerk-station")  # all-to-all links
    (direct,) = chip_route(2, 5, station)
    assert (direct.chip, direct.line) == (2, 5)
    assert direct.bytes_per_s == pytest.approx(station.scale_up.link_bytes_per_s / 7)  # type: ignore[union-attr]
    switched = chip_route(0, 9, system("dgx-h100").model_copy(update={"chip_count": 16}))
    assert [lk.chip for lk in switched] == [0, 9] and len(switched) == 2


def test_unfolded_graphs_are_cut_at_layer_boundaries() -> None:
    graph = fan_in_graph()
    stages = partition_stages(graph, 4, 1, system(STRIP).chip)
    assert [seg.ops for (seg,) in stages] == [("branch0",), ("branch1",), ("branch2",), ("sum01", "sum")]
    with pytest.raises(TegelError, match="at least as many"):
        compile_for(graph, system(STRIP), PlanRequest(Phase(1, 1, 0), Parallelism(), 1, 6))


def test_folded_stages_need_layers() -> None:
    cfg = load_model_config("qwen2.5-0.5b")
    plan = compile_phase("qwen2.5-0.5b", "ref-dataflow", "decode", stages=cfg.num_layers + 5)
    assert [st.layers for st in plan.stages] == [1] * cfg.num_layers  # capped at one layer each
    with pytest.raises(TegelError, match="at least as many layers"):
        compile_for(plan.graph, system("ref-dataflow"),
                    PlanRequest(plan.phase, Parallelism(), cfg.num_layers, cfg.num_layers + 1))


def test_plan_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "llama-3.1-8b", "--on", "craftwerk", "--stages", "4", "--brief"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("compiled plan of llama-3.1-8b-decode on craftwerk")
    assert "homes:" in out and "transfer" in out
    assert main(["plan", "qwen2.5-0.5b", "--on", "ref-dataflow", "--phase", "prefill", "--stages", "4",
                 "--batch", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["stages"]) == 4 and data["microbatches"] == 4
    assert main(["plan", "qwen2.5-0.5b", "--on", "h100-sxm"]) == 2
    assert "kernel by kernel" in capsys.readouterr().err


def test_link_labels() -> None:
    assert Link("x", 0, 4, 1, 0, 2, 1.0, 0.0).label() == "chip 0 x+ line 4 rows 0-1"
    assert Link("c2c", 1, 2, 1, 0, 1, 1.0, 0.0).label() == "c2c 1->2"
