"""The energy floor of an LLM workload at a process node.

The floor is what a machine must pay per generated token if it paid only for the unavoidable:

    floor = [ sum over ops of FLOPs x (technology pJ per op of the op's compute class)
              + weight bits touched per forward call x (technology SRAM read pJ/bit of the
                smallest macro the library tabulates) x calls ] / (batch x output tokens)

over the calls the run makes: one prefill of the batch's prompts and O - 1 decode steps at the
mean KV length L + O/2 (the run's own approximation). "Weight bits touched" is what the ops must
read: every weight once per call, the embedding only for the rows looked up, MoE experts only
those routed to. The pJ figures are the node's from the technology library.

Why no modelled machine can come out below it: the evaluator charges every op its FLOPs (or
more: padding, micro-batches, replicated attention) at the chip's pJ per op, which presets and
templates derive from the same library entry; it reads every weight at least once per call per
replica from some storage level whose pJ/bit is no lower than the smallest tabulated SRAM macro's
(registers, tile SRAM, caches, DRAM all cost at least that); and it adds NoC, chip-to-chip,
activation traffic and static power on top. A chip that declares its own pJ per op, an SRAM
macro below the library's smallest, or a memory cheaper per bit than that SRAM can beat the
floor — that is a claim the technology library does not back, and `tegel claim` shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tegel.hardware import load_technology
from tegel.mapping.plan import compute_class
from tegel.workload.folding import folded_graph, layer_fold
from tegel.workload.ir import Role
from tegel.workload.llm import Phase, Precision
from tegel.workload.model_config import ModelConfig
from tegel.workload.ops import work


@dataclass(frozen=True, slots=True)
class CallWork:
    """Arithmetic energy and weight bytes of one forward call of the whole batch."""

    flops: float
    arithmetic_pj: float
    weight_bytes: float


@dataclass(frozen=True, slots=True)
class EnergyFloor:
    """The floor of one workload at one node, per generated token (J), with its two parts."""

    node: str
    batch: int
    flops_per_token: float
    weight_bytes_per_token: float
    arithmetic_j_per_token: float
    weights_j_per_token: float
    sram_pj_per_bit: float

    @property
    def j_per_token(self) -> float:
        return self.arithmetic_j_per_token + self.weights_j_per_token

    def to_dict(self) -> dict[str, object]:
        return {"node": self.node, "batch": self.batch, "energy_j_per_token": self.j_per_token,
                "arithmetic_j_per_token": self.arithmetic_j_per_token,
                "weights_j_per_token": self.weights_j_per_token,
                "flops_per_token": self.flops_per_token,
                "weight_bytes_per_token": self.weight_bytes_per_token,
                "sram_pj_per_bit": self.sram_pj_per_bit}


def call_work(cfg: ModelConfig, phase: Phase, precision: Precision, node: str) -> CallWork:
    """FLOPs, arithmetic pJ at `node` and weight bytes touched by one call (all layers)."""
    tech = load_technology(node)
    graph = folded_graph(cfg, phase, precision)
    fold = layer_fold(cfg)
    flops = pj = 0.0
    weights: dict[str, float] = {}
    for op in graph.ops:
        w = work(op)
        times = fold.count(op.layer) if op.layer >= 0 else 1
        flops += w.flops * times
        if w.flops:
            pj += w.flops * tech.pj_per_op(compute_class(op)) * times
        for t, b in zip(op.inputs, w.read_bytes, strict=True):
            if t.role is Role.WEIGHT:
                key = f"{t.name}@{times}"
                weights[key] = max(weights.get(key, 0.0), b * times)
    return CallWork(flops, pj, sum(weights.values()))


def energy_floor(cfg: ModelConfig, batch: int, input_tokens: int, output_tokens: int,
                 precision: Precision, node: str) -> EnergyFloor:
    """The floor (module doc) of `batch` sequences of L in / O out at `node`."""
    tech = load_technology(node)
    sram_pj = min(tech.sram_anchor_pj_per_bit)
    prefill = call_work(cfg, Phase.prefill(batch, input_tokens), precision, node)
    steps = output_tokens - 1
    decode = (call_work(cfg, Phase.decode(batch, input_tokens + output_tokens // 2), precision,
                        node) if steps else CallWork(0.0, 0.0, 0.0))
    tokens = batch * output_tokens
    flops = prefill.flops + steps * decode.flops
    arith_j = (prefill.arithmetic_pj + steps * decode.arithmetic_pj) * 1e-12
    weight_bytes = prefill.weight_bytes + steps * decode.weight_bytes
    weights_j = weight_bytes * 8.0 * sram_pj * 1e-12
    return EnergyFloor(tech.node, batch, flops / tokens, weight_bytes / tokens, arith_j / tokens,
                       weights_j / tokens, sram_pj)
