"""What a model costs before any hardware: parameters, weight and KV-cache bytes, FLOPs and
minimal bytes per token for prefill and decode (the figures `tegel inspect` prints)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tegel.workload.dtypes import DType
from tegel.workload.folding import kv_layout
from tegel.workload.ir import Graph, OpKind
from tegel.workload.llm import Phase, Precision, build_llm_graph
from tegel.workload.model_config import ModelConfig
from tegel.workload.ops import has_past, work

WEIGHT_FORMATS = (DType.FP32, DType.BF16, DType.FP8_E4M3, DType.FP4_E2M1, DType.INT4)


@dataclass(frozen=True, slots=True)
class PhaseFigures:
    """FLOPs and bytes of one forward call, in total and per new token."""

    batch: int
    new_tokens: int
    kv_length: int
    flops: float
    op_bytes: float  # every op reads its inputs and writes its outputs once (no fusion)
    graph_bytes: float  # weights, caches and inputs read once, outputs written once
    flops_per_token: float
    graph_bytes_per_token: float
    arithmetic_intensity_flops_per_byte: float


def graph_min_bytes(graph: Graph) -> float:
    """Bytes any implementation must move: each graph input (weights, KV cache, ids) read once —
    only the part some op touches — and each graph output written once.

    A KV-cache append updates its past cache in place, so the cache it returns *is* the past
    cache plus the new entries: a read of it (by attention) reads the past cache from memory,
    less the new entries, which this call made and may still hold.
    """
    external = {t.name: t for t in (*graph.inputs, *graph.weights)}
    outputs = {t.name for t in graph.outputs}
    in_place: dict[str, tuple[str, float]] = {}  # appended cache -> (past input, new bytes)
    read: dict[str, float] = {}
    written = 0.0
    for op in graph.ops:
        w = work(op)
        for t, b in zip(op.inputs, w.read_bytes, strict=True):
            name, fresh = in_place.get(t.name, (t.name, 0.0))
            if name in external:
                past = min(max(b - fresh, 0.0), external[name].nbytes)
                read[name] = max(read.get(name, 0.0), past)
        if op.kind is OpKind.KV_CACHE_WRITE and has_past(op):
            past_name, fresh = in_place.get(op.inputs[0].name, (op.inputs[0].name, 0.0))
            new = sum(t.numel for t in op.inputs[1:])
            in_place[op.outputs[0].name] = (past_name, fresh + op.outputs[0].dtype.nbytes(new))
        written += sum(b for t, b in zip(op.outputs, w.write_bytes, strict=True) if t.name in outputs)
    return sum(read.values()) + written


def phase_figures(graph: Graph, phase: Phase) -> PhaseFigures:
    flops = sum(work(op).flops for op in graph.ops)
    op_bytes = sum(work(op).bytes_read + work(op).bytes_written for op in graph.ops)
    graph_bytes = graph_min_bytes(graph)
    tokens = phase.batch * phase.new_tokens
    return PhaseFigures(phase.batch, phase.new_tokens, phase.past_tokens, flops, op_bytes,
                        graph_bytes, flops / tokens, graph_bytes / tokens, flops / graph_bytes)


def active_parameters(graph: Graph, cfg: ModelConfig) -> float:
    """Parameters used per token: expert weights count with weight top_k / num_experts."""
    experts = {t.name for op in graph.ops if op.kind is OpKind.MOE_EXPERTS for t in op.inputs[3:]}
    share = cfg.experts_per_token / cfg.num_experts if cfg.is_moe else 1.0
    return sum(w.numel * (share if w.name in experts else 1.0) for w in graph.weights)


def summarize(cfg: ModelConfig, prompt_tokens: int = 2048, kv_length: int = 4096,
              batch: int = 1, precision: Precision | None = None) -> dict[str, object]:
    """The model card of `tegel inspect`, as a JSON-ready dict (SI units, names carry them)."""
    precision = precision or Precision()
    decode0 = build_llm_graph(cfg, Phase(batch, 1, 0), precision)
    prefill_phase = Phase.prefill(batch, prompt_tokens)
    decode_phase = Phase.decode(batch, kv_length)
    prefill = phase_figures(build_llm_graph(cfg, prefill_phase, precision), prefill_phase)
    decode = phase_figures(build_llm_graph(cfg, decode_phase, precision), decode_phase)
    params = decode0.parameter_count
    kv_elements = kv_layout(cfg).elements_per_token
    return {
        "model": cfg.name,
        "model_type": cfg.model_type,
        "parameters": params,
        "active_parameters": round(active_parameters(decode0, cfg)),
        "layers": cfg.num_layers,
        "hidden_size": cfg.hidden_size,
        "attention_heads": cfg.num_heads,
        "kv_heads": cfg.num_kv_heads,
        "head_dim": cfg.head_dim,
        # multi-head latent attention: one latent of this width (+ the shared rope key) per token
        "kv_latent_dim": cfg.kv_lora_rank,
        "vocab_size": cfg.vocab_size,
        "experts": cfg.num_experts,
        "experts_per_token": cfg.experts_per_token,
        "precision": {k: v.value for k, v in asdict(precision).items()},
        "weight_bytes": {d.value: d.nbytes(params) for d in WEIGHT_FORMATS},
        "kv_cache_bytes_per_token": DType.BF16.nbytes(kv_elements),
        "kv_cache_bytes_per_token_by_format": {
            d.value: d.nbytes(kv_elements) for d in (DType.BF16, DType.FP8_E4M3, DType.FP4_E2M1)
        },
        "decode_flops_per_token": phase_figures(decode0, Phase(batch, 1, 0)).flops_per_token,
        "prefill": asdict(prefill),
        "decode": asdict(decode),
    }
