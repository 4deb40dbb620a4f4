"""LLM inference on a system: prefill of L tokens, then O decode steps, for a batch of users.

One configuration (parallelism, batch per replica, stages) is planned with the system's mapping
policy and evaluated — analytically or in the event simulator — into an `Evaluated`: time to
first token, time per output token, and the energy of one replica serving its share.

Approximations (docs/design.md): a static batch — every sequence has the same input and output
length; decode is evaluated once at the mean KV length L + O/2 (decode work is linear in K, so
this is the average step up to roofline kinks); the transformer layers are identical, so one is
planned and repeated. Memory: a sequence of a static batch holds its full context; one of an
in-flight batch (batch "auto", or `RunOptions.in_flight`) on a stack that pages its KV cache
holds its prompt + half its output on average (`kv_tokens_held`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

from tegel.evaluate.analytical import PhaseCost, evaluate
from tegel.evaluate.cost import CATEGORIES, Category
from tegel.hardware import System
from tegel.mapping.compiled import CompiledPlan
from tegel.mapping.params import Params
from tegel.mapping.plan import Parallelism, PlanRequest, llm_request
from tegel.mapping.registry import policy_for
from tegel.mapping.sharding import shard_graph
from tegel.serving.scenario import RunOptions, Scenario
from tegel.workload.folding import folded_graph, kv_layout, layer_fold, model_weight_bytes
from tegel.workload.ir import OpKind
from tegel.workload.llm import Phase, Precision
from tegel.workload.model_config import ModelConfig

PREFILL_CHUNK_TOKENS = 8192  # activations are sized for chunked prefill of this many tokens
_STATIC = CATEGORIES.index(Category.STATIC)


@dataclass(frozen=True, slots=True)
class Memory:
    """Bytes per chip of one replica, and what the chip offers."""

    weights_bytes: float
    kv_cache_bytes: float
    activation_bytes: float
    capacity_bytes: float

    @property
    def total_bytes(self) -> float:
        return self.weights_bytes + self.kv_cache_bytes + self.activation_bytes

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.capacity_bytes


def kv_tokens_held(s: Scenario, pages_on_demand: float) -> float:
    """KV-cache tokens one sequence holds. In a static batch (`pages_on_demand` 0) its full
    context: the prompt and every beam's output. In an engine that batches in flight and
    allocates KV pages as a sequence grows (1; Kwon et al., PagedAttention, SOSP 2023), the
    sequences of a steady batch are spread evenly over their decode progress, so by Little's
    law each holds the prompt + half the output on average."""
    return s.input_tokens + s.beams * s.output_tokens * (1.0 - pages_on_demand / 2.0)


def pages_on_demand(s: Scenario, system: System, params: Params,
                    options: RunOptions | None) -> float:
    """Whether (1) or not (0) the run's sequences hold KV pages on demand: an in-flight batch
    (batch "auto", or `options.in_flight`) on a software stack that pages its KV cache."""
    if options is None or (s.batch is not None and not options.in_flight):
        return 0.0
    return policy_for(system.chip).kv_pages_on_demand(params, options.software)


def kv_cache_bytes_per_chip(cfg: ModelConfig, precision: Precision, tokens: float,
                            tp: int) -> float:
    """KV-cache bytes of one sequence of `tokens` positions on each of `tp` chips: each layer's
    cache (`kv_layout`: its elements per token, up to its window) divided as tensor
    parallelism divides that layer's cache write (`sharding.shard_graph`: by KV heads, at most
    tp ways; a cache every chip needs whole, such as MLA's latent, not at all)."""
    layout = kv_layout(cfg)
    divs = _kv_divisors(cfg, tp)
    fold = layer_fold(cfg)
    return sum(precision.kv_cache.nbytes(lay.elements_per_token)
               * (tokens if lay.window is None else min(tokens, lay.window)) / divs[rep]
               for lay, rep in zip(layout.layers, fold.pattern, strict=True))


@lru_cache(maxsize=256)
def _kv_divisors(cfg: ModelConfig, tp: int) -> dict[int, float]:
    """Representative layer -> how many ways tensor parallelism divides its KV cache."""
    graph = folded_graph(cfg, Phase(1, 1, 1), Precision())
    shards = shard_graph(graph, tp)
    out: dict[int, float] = {}
    for op in graph.ops:
        if op.kind is OpKind.KV_CACHE_WRITE:
            out[op.layer] = shards[op.name].write_div[0]
    return {r: out.get(r, 1.0) for r in layer_fold(cfg).representatives}


def memory_per_chip(s: Scenario, system: System, par: Parallelism, batch_per_replica: int,
                    params: Params, options: RunOptions | None = None) -> Memory:
    """Weights, KV cache and transient activations on each chip of a replica. With beam
    search the beams of a sequence share the prompt's cache and keep their own generated part;
    `options` say whether the batch runs in flight with a paged KV cache (None: static)."""
    cfg, p = s.model, s.precision
    weights = model_weight_bytes(cfg, p) / (par.tp * par.pp)
    cached = kv_tokens_held(s, pages_on_demand(s, system, params, options))
    kv = batch_per_replica * kv_cache_bytes_per_chip(cfg, p, cached, par.tp) / par.pp
    tokens = min(batch_per_replica * s.input_tokens, PREFILL_CHUNK_TOKENS)
    width = 4 * cfg.hidden_size + (3 * cfg.intermediate_size + cfg.vocab_size) / par.tp
    activations = p.activations.nbytes(int(tokens * width))
    capacity = policy_for(system.chip).usable_memory_bytes(system.chip, params)
    return Memory(weights, kv, activations, capacity)


def max_batch(s: Scenario, system: System, par: Parallelism, limit: int, params: Params,
              options: RunOptions | None = None) -> int:
    """Largest batch per replica that fits memory, at most `limit` (0 if not even one fits);
    `options` as for `memory_per_chip`."""
    one = memory_per_chip(s, system, par, 1, params, options)
    if not one.fits:
        return 0
    per_seq = one.kv_cache_bytes
    spare = one.capacity_bytes - one.weights_bytes - one.activation_bytes - per_seq
    # activations are bounded by the prefill chunk, so they grow no further with batch
    spare -= (memory_per_chip(s, system, par, limit, params, options).activation_bytes
              - one.activation_bytes)
    return max(1, min(limit, 1 + int(spare // per_seq))) if per_seq > 0 else limit


@dataclass(frozen=True, slots=True)
class Config:
    """One way to serve a scenario: the parallelism, sequences per replica, pipeline stages."""

    parallelism: Parallelism
    batch_per_replica: int
    stages: int  # GPUs: pp; dataflow chips: pp x regions per chip


@dataclass(frozen=True, slots=True)
class Evaluated:
    """One configuration evaluated: both phases' costs of one replica, and its memory."""

    config: Config
    prefill: PhaseCost
    decode: PhaseCost
    memory: Memory
    output_tokens: int
    request_overhead_s: float = 0.0  # host work before the first token (GPU serving stacks)
    compiled: tuple[CompiledPlan, CompiledPlan] | None = None  # spatial policies: the plans

    @property
    def parallelism(self) -> Parallelism:
        return self.config.parallelism

    @property
    def batch_per_replica(self) -> int:
        return self.config.batch_per_replica

    @property
    def ttft_s(self) -> float:
        return self.prefill.time_s + self.request_overhead_s

    @property
    def e2e_s(self) -> float:
        return self.ttft_s + (self.output_tokens - 1) * self.decode.time_s

    @property
    def throughput_tokens_per_s(self) -> float:
        return self.parallelism.dp * self.batch_per_replica * self.output_tokens / self.e2e_s

    def replica_energy_by_category_j(self) -> tuple[float, ...]:
        """Energy of one replica serving its batch end to end: prefill, O - 1 decode steps and
        static power while the host does its per-request work (the chips idle, not off)."""
        steps = self.output_tokens - 1
        energy = [p + steps * d for p, d in zip(self.prefill.cost.energy_by_category_j,
                                                self.decode.cost.energy_by_category_j, strict=True)]
        energy[_STATIC] += self.prefill.static_w * self.request_overhead_s
        return tuple(energy)

    def replica_host_energy_j(self) -> float:
        """The hosts' part of the replica's static energy over the run."""
        return ((self.prefill.time_s + self.request_overhead_s) * self.prefill.host_w
                + (self.output_tokens - 1) * self.decode.time_s * self.decode.host_w)


def phase_requests(s: Scenario, system: System, config: Config,
                   software: str | None) -> tuple[PlanRequest, PlanRequest]:
    """The plan requests of prefill and of a decode step at the mean KV length: micro-batches
    fill the stages (at most one sequence each)."""
    out = []
    for prefill in (True, False):
        sequences = config.batch_per_replica * (1 if prefill else s.beams)
        micro = min(sequences, config.stages)
        b = math.ceil(sequences / micro)
        phase = (Phase.prefill(b, s.input_tokens) if prefill else
                 Phase(b, 1, s.input_tokens + s.output_tokens // 2, s.beams, s.input_tokens))
        req = llm_request(s.model, system, phase, config.parallelism, config.stages, micro)
        out.append(replace(req, software=software))
    return out[0], out[1]


def evaluate_config(s: Scenario, system: System, config: Config, options: RunOptions,
                    params: Params) -> Evaluated:
    """Plan and evaluate prefill and decode of one configuration with the system's policy, in
    the analytical evaluator or (options.sim == "event") the event simulator."""
    policy = policy_for(system.chip)
    costs, compiled = [], []
    for req in phase_requests(s, system, config, options.software):
        planned = policy.plan(folded_graph(s.model, req.phase, s.precision), system, req, params)
        if options.sim == "event":
            from tegel.evaluate.simulator import simulate

            costs.append(simulate(planned.compiled or planned.plan, system,
                                  lowered=planned.plan))
        else:
            costs.append(evaluate(planned.plan, system))
        if planned.compiled is not None:
            compiled.append(planned.compiled)
    memory = memory_per_chip(s, system, config.parallelism, config.batch_per_replica, params,
                             options)
    overhead = policy.request_overhead_s(params, options.software)
    return Evaluated(config, costs[0], costs[1], memory, s.output_tokens, overhead,
                     (compiled[0], compiled[1]) if len(compiled) == 2 else None)
