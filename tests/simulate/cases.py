"""Shared fixtures of the compiler and simulator tests: a small template chip, LLM phases
compiled the way `tegel run --sim event` compiles them, and a fan-in graph with a hot link."""

from __future__ import annotations

import math
from functools import cache

from tegel.hardware import ChipTemplate, System, expand, load_system, load_technology
from tegel.hardware.loader import PRESET_DIR
from tegel.hardware.yamlio import read_yaml
from tegel.mapping.compiled import CompiledPlan
from tegel.mapping.compiler import compile_for, compile_llm
from tegel.mapping.plan import Parallelism, PlanRequest
from tegel.workload import DType, Graph, GraphBuilder, Phase, Precision, load_model_config
from tegel.workload.ir import Binary, BinaryFn, OpKind, Unary, UnaryFn

SMALL = "small-8x8"  # the reference dataflow template shrunk to 8 x 8 tiles
STRIP = "strip-2x16"  # ... and to a strip of 2 x 16 tiles, where stages sit side by side
_SHAPES = {SMALL: (8, 8), STRIP: (2, 16)}


@cache
def system(name: str) -> System:
    """A preset, or one of the small template chips above."""
    if name not in _SHAPES:
        return load_system(name)
    data = ChipTemplate.model_validate(read_yaml(PRESET_DIR / "ref-dataflow.yaml")).model_dump()
    rows, cols = _SHAPES[name]
    data.update(name=name, rows=rows, cols=cols)
    template = ChipTemplate.model_validate(data)
    return System.single(expand(template, load_technology(template.node)))


def compile_phase(model: str, system_name: str, phase: str, stages: int, batch: int = 1,
                  pp: int = 1, kv: int = 1152, tokens: int = 1024) -> CompiledPlan:
    """One phase compiled as `tegel run --sim event` does: batch split into min(batch, stages)
    micro-batches."""
    cfg = load_model_config(model)
    micro = min(batch, stages)
    b = math.ceil(batch / micro)
    ph = Phase.decode(b, kv) if phase == "decode" else Phase.prefill(b, tokens)
    return compile_llm(cfg, system(system_name), ph, Precision(), Parallelism(pp=pp), stages, micro)


def fan_in_graph(tokens: int = 2048, channels: int = 512) -> Graph:
    """Three independent elementwise branches of one input (layers 0, 1, 2) summed in layer 3:
    cut at layer boundaries into four stages, three transfers converge on the last region."""
    g = GraphBuilder("fan-in", DType.BF16)
    x = g.input("x", (1, tokens, channels), DType.BF16)
    branches = []
    for layer, fn in enumerate((UnaryFn.RELU, UnaryFn.NEG, UnaryFn.SILU)):
        g.layer = layer
        branches.append(g.op1(OpKind.UNARY, Unary(fn), (x,), f"branch{layer}"))
    g.layer = 3
    total = g.op1(OpKind.BINARY, Binary(BinaryFn.ADD), (branches[0], branches[1]), "sum01")
    out = g.op1(OpKind.BINARY, Binary(BinaryFn.ADD), (total, branches[2]), "sum")
    return g.build((out,))


def compile_fan_in() -> CompiledPlan:
    """The fan-in graph on the strip: stages 0 | 1 | 2 | 3 left to right, so the links into
    stage 3 carry all three branches."""
    graph = fan_in_graph()
    return compile_for(graph, system(STRIP), PlanRequest(Phase(1, 1, 0), Parallelism(), 1, 4))
