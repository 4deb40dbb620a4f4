"""LLM inference on a system: prefill of L tokens, then O decode steps, for a batch of users.

`run` chooses (or takes) the parallelism and the batch, plans prefill and decode with the
system's mapping policy, evaluates both, and derives the figures a buyer asks for: time to
first token, time per output token, throughput, J/token, power and memory footprint.

Approximations (docs/design.md): a static batch — every sequence has the same input and output
length; decode is evaluated once at the mean KV length L + O/2 (decode work is linear in K, so
this is the average step up to roofline kinks); the transformer layers are identical, so one is
planned and repeated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

from tegel.errors import TegelError
from tegel.evaluate.analytical import PhaseCost, evaluate
from tegel.hardware import System
from tegel.mapping.dataflow import dataflow_params, plan_dataflow
from tegel.mapping.gpu import gpu_params, plan_gpu
from tegel.mapping.plan import Parallelism, Plan
from tegel.workload.ir import Graph
from tegel.workload.llm import Phase, Precision, build_llm_graph
from tegel.workload.model_config import ModelConfig

PREFILL_CHUNK_TOKENS = 8192  # activations are sized for chunked prefill of this many tokens


@lru_cache(maxsize=512)
def folded_graph(cfg: ModelConfig, phase: Phase, precision: Precision) -> Graph:
    """The graph of `phase` with one transformer layer (the plan repeats it num_layers times)."""
    return build_llm_graph(replace(cfg, num_layers=1), phase, precision)


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


def model_weight_bytes(cfg: ModelConfig, precision: Precision) -> float:
    """Bytes of all weights in the precision's formats (layers x one layer + the rest)."""
    one = folded_graph(cfg, Phase(1, 1, 0), precision)
    per_layer = sum(w.nbytes for w in one.weights if w.name.startswith("layers.0."))
    rest = sum(w.nbytes for w in one.weights if not w.name.startswith("layers.0."))
    return per_layer * cfg.num_layers + rest


def memory_per_chip(cfg: ModelConfig, system: System, par: Parallelism, batch_per_replica: int,
                    context_tokens: int, input_tokens: int, precision: Precision,
                    beams: int = 1) -> Memory:
    """Weights, KV cache and transient activations on each chip of a replica. With beam
    search the beams of a sequence share the prompt's cache and keep their own generated part."""
    chip = system.chip
    shards = par.tp * par.pp
    weights = model_weight_bytes(cfg, precision) / shards
    kv_token = precision.kv_cache.nbytes(cfg.kv_cache_elements_per_token())
    cached = input_tokens + beams * (context_tokens - input_tokens)
    kv = batch_per_replica * cached * kv_token / (min(par.tp, cfg.num_kv_heads) * par.pp)
    tokens = min(batch_per_replica * input_tokens, PREFILL_CHUNK_TOKENS)
    width = 4 * cfg.hidden_size + (3 * cfg.intermediate_size + cfg.vocab_size) / par.tp
    activations = precision.activations.nbytes(int(tokens * width))
    if chip.architecture == "gpu":
        capacity = chip.offchip_usable_bytes * gpu_params().memory_usable_fraction
    else:
        sram = sum(lv.total_bytes for lv in chip.levels() if lv.scope != "offchip")
        capacity = chip.offchip_usable_bytes + sram * dataflow_params().sram_weight_fraction
    return Memory(weights, kv, activations, capacity)


def max_batch(cfg: ModelConfig, system: System, par: Parallelism, context_tokens: int,
              input_tokens: int, precision: Precision, limit: int, beams: int = 1) -> int:
    """Largest batch per replica that fits memory (0 if not even one sequence fits)."""
    one = memory_per_chip(cfg, system, par, 1, context_tokens, input_tokens, precision, beams)
    if not one.fits:
        return 0
    per_seq = one.kv_cache_bytes
    spare = one.capacity_bytes - one.weights_bytes - one.activation_bytes - per_seq
    # activations are bounded by the prefill chunk, so they grow no further with batch
    full_act = memory_per_chip(cfg, system, par, limit, context_tokens, input_tokens, precision,
                               beams)
    spare -= full_act.activation_bytes - one.activation_bytes
    return max(1, min(limit, 1 + int(spare // per_seq))) if per_seq > 0 else limit


@dataclass(frozen=True, slots=True)
class Scenario:
    """What is asked: a model, a system, a batch (None: as large as fits), lengths, formats."""

    model: ModelConfig
    system: System
    batch: int | None
    input_tokens: int
    output_tokens: int
    precision: Precision
    max_batch: int = 2048
    beams: int = 1  # beam search: each sequence decodes `beams` hypotheses (MLPerf GPT-J: 4)
    software: str | None = None  # GPU software generation (None: current)


def _plans(s: Scenario, par: Parallelism, batch_per_replica: int, stages: int | None
           ) -> tuple[Plan, Plan]:
    cfg, system, chip = s.model, s.system, s.system.chip
    link_latency = system.scale_up.latency_s if system.scale_up else 0.0
    plans = []
    for phase_kind in ("prefill", "decode"):
        n_stages = par.pp if chip.architecture == "gpu" else stages or par.pp
        sequences = batch_per_replica * (s.beams if phase_kind == "decode" else 1)
        micro = min(sequences, n_stages)
        b = math.ceil(sequences / micro)
        phase = (Phase.prefill(b, s.input_tokens) if phase_kind == "prefill"
                 else Phase(b, 1, s.input_tokens + s.output_tokens // 2, s.beams, s.input_tokens))
        graph = folded_graph(cfg, phase, s.precision)
        if chip.architecture == "gpu":
            topology = system.scale_up.topology if system.scale_up else "switch"
            plans.append(plan_gpu(graph, chip, system.name, phase, par, cfg.num_layers,
                                  cfg.num_kv_heads, link_latency, micro, topology, s.software))
        else:
            weights = model_weight_bytes(cfg, s.precision) / par.chips_per_replica
            topology = system.scale_up.topology if system.scale_up else "switch"
            plans.append(plan_dataflow(graph, chip, system.name, phase, par, cfg.num_layers,
                                       n_stages, weights, link_latency, micro, cfg.num_kv_heads,
                                       topology))
    return plans[0], plans[1]


@dataclass(frozen=True, slots=True)
class Evaluated:
    """One configuration evaluated: the parallelism, batch and both phases' costs."""

    parallelism: Parallelism
    batch_per_replica: int
    prefill: PhaseCost
    decode: PhaseCost
    memory: Memory
    output_tokens: int
    request_overhead_s: float = 0.0  # host work before the first token (GPU serving stacks)

    @property
    def ttft_s(self) -> float:
        return self.prefill.time_s + self.request_overhead_s

    @property
    def e2e_s(self) -> float:
        return self.ttft_s + (self.output_tokens - 1) * self.decode.time_s

    @property
    def throughput_tokens_per_s(self) -> float:
        return (self.parallelism.dp * self.batch_per_replica * self.output_tokens / self.e2e_s)


def evaluate_config(s: Scenario, par: Parallelism, batch_per_replica: int,
                    stages: int | None = None, sim: str = "analytical") -> Evaluated:
    """Plan and evaluate prefill and decode for one parallelism and batch. sim="event":
    compile the same phases, stages and micro-batches with the spatial compiler and play them
    in the event simulator (dataflow chips only)."""
    context = s.input_tokens + s.output_tokens
    mem = memory_per_chip(s.model, s.system, par, batch_per_replica, context, s.input_tokens,
                          s.precision, s.beams)
    prefill_plan, decode_plan = _plans(s, par, batch_per_replica, stages)
    if sim == "event":
        from tegel.evaluate.simulator import simulate
        from tegel.mapping.compiler import compile_llm

        pre, dec = (simulate(compile_llm(s.model, s.system, p.phase, s.precision, par, p.stages,
                                         p.microbatches), s.system)
                    for p in (prefill_plan, decode_plan))
        return Evaluated(par, batch_per_replica, pre, dec, mem, s.output_tokens)
    overhead = gpu_params(s.software).request_overhead_s if s.system.chip.architecture == "gpu" else 0.0
    return Evaluated(par, batch_per_replica, evaluate(prefill_plan, s.system),
                     evaluate(decode_plan, s.system), mem, s.output_tokens, overhead)


def candidate_parallelisms(s: Scenario, tp: int | None, pp: int | None, ep: int | None
                           ) -> list[Parallelism]:
    """Parallelisms to consider: the flags where given, otherwise power-of-two tensor
    parallelism (within a node on GPUs) times pipeline parallelism — powers of two on GPUs,
    any divisor up to the layer count on dataflow chips (a 576-chip Groq system is 8 x 72)."""
    chips = s.system.chip_count
    gpu = s.system.chip.architecture == "gpu"
    powers = [2**i for i in range(int(math.log2(chips)) + 1) if chips % 2**i == 0]
    out = []
    for t in [tp] if tp else powers:
        if t > s.system.chips_per_node and gpu and not tp:
            continue
        rest = chips // t if chips % t == 0 else 0
        stages = powers if gpu else [d for d in range(1, min(rest, s.model.num_layers) + 1)
                                     if rest % d == 0]
        for p_ in [pp] if pp else stages:
            if chips % (t * p_):
                continue
            # MoE: experts split over the tensor-parallel chips (all-to-all) or sharded like
            # dense weights (all-reduce); dense models have no experts to place
            for e in [ep] if ep else ([1, t] if s.model.is_moe and t > 1 else [1]):
                if t % e:
                    raise TegelError(f"--ep {e} must divide --tp {t}")
                out.append(Parallelism(t, p_, e, chips // (t * p_)))
    if not out:
        raise TegelError(f"no parallelism with tp={tp} pp={pp} fits {chips} chips of {s.system.name}")
    return out
