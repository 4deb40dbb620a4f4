"""Model configuration: a Hugging Face `config.json`, read into one typed, family-neutral record.

Each supported `model_type` has a reader that maps its field names onto `ModelConfig`; a
missing or ill-typed field is a TegelError naming the file and the field.
"""

from __future__ import annotations

import difflib
import json
import reprlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from tegel.errors import TegelError
from tegel.workload.config_fields import _Fields, _opt_number, _short
from tegel.workload.ir import LinearScaling, QueryTemperature, RopeScaling, UnaryFn, YarnScaling
from tegel.workload.llama4 import read_layout


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """A decoder-only transformer, in the terms the graph builder needs."""

    name: str
    model_type: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    max_position_embeddings: int
    norm: str  # "rms" | "layer"
    norm_eps: float
    activation: UnaryFn
    gated_mlp: bool  # SwiGLU-style gate * up (Llama) vs up -> act -> down (GPT-2)
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool
    parallel_block: bool  # attention and MLP read the same normed input (GPT-J)
    learned_positions: bool  # absolute position embedding table (GPT-2) instead of rotary
    rotary_dim: int
    rope_theta: float
    rope_interleaved: bool
    rope_scaling: RopeScaling | YarnScaling | LinearScaling | None
    tie_word_embeddings: bool
    lm_head_bias: bool
    num_experts: int  # 0: dense MLP
    experts_per_token: int
    sliding_window: int | None
    qk_norm: bool = False  # RMS norm of each q and k head before rotary embedding (Qwen3)
    moe_normalize: bool = True  # renormalise the top-k routing weights (Mixtral; Qwen3 MoE)
    full_attention_layers: frozenset[int] = frozenset()  # layers that ignore sliding_window
    embed_scale: float = 1.0  # token embeddings times this (Gemma: sqrt(hidden_size))
    attn_scale: float | None = None  # attention's score scale; None: 1 / sqrt(head_dim)
    attn_softcap: float | None = None  # scores -> cap * tanh(scores / cap) (Gemma 2)
    final_softcap: float | None = None  # logits -> cap * tanh(logits / cap) (Gemma 2)
    sandwich_norms: bool = False  # norms also after attention and MLP, before the residual add
    local_rope_theta: float | None = None  # rotary theta of the sliding-window layers (Gemma 3)
    # Mixture-of-experts layout beyond "every layer routed" (DeepSeek-V3, Llama 4):
    dense_layers: frozenset[int] = frozenset()  # layers of an MoE model with a dense MLP
    dense_intermediate_size: int = 0  # their MLP width (0: intermediate_size)
    shared_intermediate_size: int = 0  # an always-on gated MLP beside the routed experts (0: none)
    router_scoring: str = "softmax"  # "softmax" | "sigmoid": the router's score function
    # Llama 4: chunked local attention, NoPE layers, L2 q/k norm, input-scaled experts
    attention_chunk: int | None = None  # chunk of positions the chunked layers attend within
    chunked_layers: frozenset[int] = frozenset()  # layers with chunked local attention
    nope_layers: frozenset[int] = frozenset()  # layers without rotary embedding
    nope_temperature: QueryTemperature | None = None  # query temperature of the NoPE layers
    qk_l2_norm: bool = False  # unweighted RMS norm of q and k heads after rotary (RoPE layers)
    moe_scale_input: bool = False  # routing weights scale the experts' input, not their output
    router_groups: int = 1  # group-limited routing: experts in this many groups (DeepSeek-V3)
    router_topk_groups: int = 1  # ... of which the best this many may be chosen from
    router_bias: bool = False  # a score-correction bias used for the choice only (DeepSeek-V3)
    routed_scaling_factor: float = 1.0  # routing weights times this
    # Multi-head latent attention (DeepSeek-V2/V3); kv_lora_rank 0: ordinary attention. Then
    # head_dim is the q/k head width (nope + rope), rotary_dim the rope part (the last
    # channels of each head), v_head_dim the value head width.
    kv_lora_rank: int = 0
    q_lora_rank: int = 0  # 0: q is one projection of the hidden state
    v_head_dim: int = 0

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    def routed(self, layer: int) -> bool:
        """Whether `layer`'s MLP is routed experts (else a dense MLP)."""
        return self.is_moe and layer not in self.dense_layers

    @property
    def is_mla(self) -> bool:
        """Multi-head latent attention: one latent cache entry per token and layer."""
        return self.kv_lora_rank > 0


def _llama_like(f: _Fields, name: str, model_type: str) -> ModelConfig:
    """Llama, Mistral, Qwen2/3, Mixtral and Qwen3 MoE share one layout; they differ in a few
    flags."""
    heads = f.integer("num_attention_heads")
    hidden = f.integer("hidden_size")
    head_dim = f.integer("head_dim", hidden // heads)
    qwen = model_type in ("qwen2", "qwen3", "qwen3_moe")
    qwen3 = model_type in ("qwen3", "qwen3_moe")
    window = None
    if model_type in ("mistral", "mixtral") or (qwen and f.boolean("use_sliding_window", False)):
        window = f.opt_int("sliding_window")
    bias = f.boolean("attention_bias", False) if model_type == "llama" or qwen3 else False
    moe = model_type in ("mixtral", "qwen3_moe")
    intermediate = (_qwen3_moe_intermediate(f) if model_type == "qwen3_moe"
                    else f.integer("intermediate_size"))
    theta, scaling = f.rope()
    return ModelConfig(
        name=name,
        model_type=model_type,
        vocab_size=f.integer("vocab_size"),
        hidden_size=hidden,
        num_layers=f.integer("num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=f.integer("num_key_value_heads", heads),
        head_dim=head_dim,
        intermediate_size=intermediate,
        max_position_embeddings=f.integer("max_position_embeddings", 2048),
        norm="rms",
        norm_eps=f.number("rms_norm_eps", 1e-6),
        activation=f.activation("hidden_act", "silu"),
        gated_mlp=True,
        qkv_bias=model_type == "qwen2" or bias,
        o_bias=bias,
        mlp_bias=f.boolean("mlp_bias", False) if model_type == "llama" else False,
        parallel_block=False,
        learned_positions=False,
        rotary_dim=head_dim,
        rope_theta=theta,
        rope_interleaved=False,
        rope_scaling=scaling,
        tie_word_embeddings=f.boolean("tie_word_embeddings", False),
        lm_head_bias=False,
        num_experts=f.integer(_experts_key(f)) if moe else 0,
        experts_per_token=f.integer("num_experts_per_tok") if moe else 0,
        sliding_window=window,
        qk_norm=qwen3,
        moe_normalize=f.boolean("norm_topk_prob", False) if qwen3 else True,
    )


def _experts_key(f: _Fields) -> str:
    """Qwen3 MoE's published configs say `num_experts`; transformers 5 writes every MoE family's
    count as `num_local_experts` (Mixtral's name)."""
    return "num_experts" if f.raw.get("num_experts") is not None else "num_local_experts"


def _qwen3_moe_intermediate(f: _Fields) -> int:
    """Expert width of a Qwen3 MoE model whose every layer is sparse (the shipped ones); a
    mix of dense and sparse layers is refused rather than priced wrongly."""
    if f.raw.get("mlp_only_layers") not in (None, []):
        raise f._fail("mlp_only_layers", "[] (dense layers among MoE layers are not supported)")
    if f.integer("decoder_sparse_step", 1) != 1:
        raise f._fail("decoder_sparse_step", "1 (every layer a MoE layer)")
    return f.integer("moe_intermediate_size")


def _phi3(f: _Fields, name: str, model_type: str) -> ModelConfig:
    """Phi-3 and Phi-4: Llama's layout with fused qkv and gate_up projections (split when the
    weights are read), a sliding window when the config sets one, and partial rotary."""
    base = _llama_like(f, name, model_type)
    params = f.raw.get("rope_parameters")
    rope_fields = _Fields(params, f"{f.source}: rope_parameters") if isinstance(params, dict) else f
    fraction = rope_fields.number("partial_rotary_factor", 1.0)
    rotary = int(base.head_dim * fraction)
    if fraction > 1.0 or rotary % 2:
        raise rope_fields._fail("partial_rotary_factor",
                                f"at most 1 and giving an even part of head_dim {base.head_dim}")
    return replace(base, rotary_dim=rotary, sliding_window=f.opt_int("sliding_window"))


def _gemma(f: _Fields, name: str, model_type: str) -> ModelConfig:
    """Gemma 2 and Gemma 3 (text): Llama's layout with sandwich norms, sqrt(H)-scaled
    embeddings, a tanh-approximate GELU gate and sliding-window attention on some layers
    (Gemma 2: every other one from layer 0; Gemma 3: five of every six, or as `layer_types`
    says). Gemma 2 soft-caps attention scores and logits; Gemma 3 norms q and k per head and
    gives its sliding layers their own rotary theta. Gemma's RMS norms scale by (1 + weight);
    the loader adds the 1, so the graph's norms are ordinary. The 4B-27B models' global layers
    scale their rotary frequencies linearly; their multimodal `gemma3` config holds the
    language model in `text_config` (read with transformers' defaults for what it leaves out)."""
    if model_type == "gemma3":  # Gemma3ForConditionalGeneration: the language model only
        text = f.raw.get("text_config")
        if not isinstance(text, dict) or text.get("model_type", "gemma3_text") != "gemma3_text":
            raise f._fail("text_config", "an object with model_type 'gemma3_text'")
        f = _Fields({**_GEMMA3_TEXT_DEFAULTS, **text}, f"{f.source}: text_config")
        model_type = "gemma3_text"
    gemma3 = model_type == "gemma3_text"
    hidden, layers = f.integer("hidden_size"), f.integer("num_hidden_layers")
    if f.raw.get("use_bidirectional_attention"):
        raise f._fail("use_bidirectional_attention", "false (bidirectional embedders are not "
                      "decoders)")
    theta, local_theta, scaling = _gemma3_rope(f) if gemma3 else (None, None, None)
    rope_keys = ("rope_parameters", "rope_scaling", "rope_theta") if gemma3 else ()
    plain = _Fields({k: v for k, v in f.raw.items() if k not in rope_keys}, f.source)
    base = replace(_llama_like(plain, name, "llama"), model_type=model_type)
    kinds = f.raw.get("layer_types")
    if kinds is None:
        pattern = f.integer("sliding_window_pattern", 6) if gemma3 else 2
        full = [(i + 1) % pattern == 0 if gemma3 else i % 2 == 1 for i in range(layers)]
        kinds = ["full_attention" if is_full else "sliding_attention" for is_full in full]
    if (not isinstance(kinds, list) or len(kinds) != layers
            or not all(k in ("sliding_attention", "full_attention") for k in kinds)):
        raise f._fail("layer_types", f"{layers} entries of 'sliding_attention' or 'full_attention'")
    act_key = "hidden_activation" if f.raw.get("hidden_activation") is not None else "hidden_act"
    return replace(
        base,
        activation=f.activation(act_key, "gelu_pytorch_tanh"),
        tie_word_embeddings=f.boolean("tie_word_embeddings", True),
        sliding_window=f.opt_int("sliding_window"),
        full_attention_layers=frozenset(i for i, k in enumerate(kinds) if k == "full_attention"),
        embed_scale=hidden**0.5,
        attn_scale=f.number("query_pre_attn_scalar", base.head_dim) ** -0.5,
        attn_softcap=_opt_number(f, "attn_logit_softcapping"),
        final_softcap=_opt_number(f, "final_logit_softcapping"),
        sandwich_norms=True,
        qk_norm=gemma3,
        rope_theta=theta if theta is not None else base.rope_theta,
        rope_scaling=scaling if gemma3 else base.rope_scaling,
        local_rope_theta=local_theta,
    )


# The multimodal Gemma 3 checkpoints (4B-27B) write a sparse `text_config` that relies on
# transformers' Gemma3TextConfig defaults for the rest; these are those defaults (transformers
# 4.50-5.x, models/gemma3/configuration_gemma3.py). The vision tower is out of scope.
_GEMMA3_TEXT_DEFAULTS: dict[str, Any] = {
    "vocab_size": 262_208, "max_position_embeddings": 131_072, "rms_norm_eps": 1e-6,
    "rope_theta": 1_000_000.0, "rope_local_base_freq": 10_000.0, "sliding_window_pattern": 6,
    "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": True,
    "query_pre_attn_scalar": 256, "sliding_window": 4096,
}


def _gemma3_rope(f: _Fields) -> tuple[float, float, LinearScaling | None]:
    """(full-attention theta, sliding-attention theta, the full-attention layers' scaling: the
    4B-27B models' linear factor). transformers 5 writes one `rope_parameters` per layer type;
    older files give `rope_theta` + `rope_scaling` (the global layers') and
    `rope_local_base_freq`. The sliding layers are never scaled."""
    params = f.raw.get("rope_parameters")
    if isinstance(params, dict) and "full_attention" in params:
        out: list[tuple[float, RopeScaling | YarnScaling | LinearScaling | None]] = []
        for kind in ("full_attention", "sliding_attention"):
            sub = params.get(kind)
            if not isinstance(sub, dict):
                raise f._fail("rope_parameters", f"a '{kind}' entry")
            entry = _Fields({"rope_parameters": sub}, f"{f.source}: rope_parameters.{kind}")
            out.append(entry.rope())
        (theta, scaling), (local_theta, local_scaling) = out
    else:
        (theta, scaling), local_theta = f.rope(), f.number("rope_local_base_freq", 10000.0)
        local_scaling = None
    if local_scaling is not None or not isinstance(scaling, LinearScaling | None):
        raise f._fail("rope_parameters" if params else "rope_scaling",
                      "default rotary on the sliding layers and default or 'linear' on the "
                      "global ones (Gemma 3)")
    return theta, local_theta, scaling


def _llama4(f: _Fields, name: str, model_type: str) -> ModelConfig:
    """Llama 4 (Scout, Maverick). The multimodal `llama4` config holds the language model in
    `text_config`; only that is read — the vision tower (vision_config, the projector) is out
    of scope and its parameters are not in the graph. See `tegel.workload.llama4` for the
    layer kinds."""
    if model_type == "llama4":
        text = f.raw.get("text_config")
        if not isinstance(text, dict) or text.get("model_type", "llama4_text") != "llama4_text":
            raise f._fail("text_config", "an object with model_type 'llama4_text'")
        f = _Fields(text, f"{f.source}: text_config")
    layers = f.integer("num_hidden_layers")
    layout = read_layout(f, layers)
    base = _llama_like(f, name, "llama")
    experts = f.integer("num_local_experts", 16)
    top_k = f.integer("num_experts_per_tok", 1)
    if top_k > experts:
        raise f._fail("num_experts_per_tok", f"at most num_local_experts ({experts})")
    return replace(
        base,
        model_type=model_type,
        max_position_embeddings=f.integer("max_position_embeddings", 131072),
        norm_eps=f.number("rms_norm_eps", 1e-5),
        rope_interleaved=True,  # transformers rotates (0, 1), (2, 3), ... as complex pairs
        num_experts=experts,
        experts_per_token=top_k,
        moe_normalize=False,
        router_scoring="sigmoid",
        moe_scale_input=True,
        dense_layers=frozenset(range(layers)) - layout.moe_layers,
        dense_intermediate_size=f.integer("intermediate_size_mlp", 16384),
        shared_intermediate_size=base.intermediate_size,
        attention_chunk=layout.attention_chunk,
        chunked_layers=layout.chunked_layers,
        nope_layers=layout.nope_layers,
        nope_temperature=layout.temperature,
        qk_l2_norm=layout.qk_l2_norm,
    )


def _gpt2_like(f: _Fields, name: str, model_type: str) -> ModelConfig:
    """GPT-2 (learned positions, sequential block) and GPT-J (rotary, parallel block)."""
    gptj = model_type == "gptj"
    hidden, heads = f.integer("n_embd"), f.integer("n_head")
    head_dim = hidden // heads
    return ModelConfig(
        name=name,
        model_type=model_type,
        vocab_size=f.integer("vocab_size"),
        hidden_size=hidden,
        num_layers=f.integer("n_layer"),
        num_heads=heads,
        num_kv_heads=heads,
        head_dim=head_dim,
        intermediate_size=f.integer("n_inner", 4 * hidden),
        max_position_embeddings=f.integer("n_positions"),
        norm="layer",
        norm_eps=f.number("layer_norm_epsilon", 1e-5),
        activation=f.activation("activation_function", "gelu_new"),
        gated_mlp=False,
        qkv_bias=not gptj,
        o_bias=not gptj,
        mlp_bias=True,
        parallel_block=gptj,
        learned_positions=not gptj,
        rotary_dim=f.integer("rotary_dim", head_dim) if gptj else 0,
        rope_theta=10000.0,
        rope_interleaved=True,
        rope_scaling=None,
        tie_word_embeddings=f.boolean("tie_word_embeddings", not gptj),
        lm_head_bias=gptj,
        num_experts=0,
        experts_per_token=0,
        sliding_window=None,
    )


READERS: dict[str, Callable[[_Fields, str, str], ModelConfig]] = {
    "llama": _llama_like,
    "mistral": _llama_like,
    "qwen2": _llama_like,
    "qwen3": _llama_like,
    "qwen3_moe": _llama_like,
    "mixtral": _llama_like,
    "phi3": _phi3,
    "gemma2": _gemma,
    "gemma3_text": _gemma,
    "gemma3": _gemma,
    "llama4": _llama4,
    "llama4_text": _llama4,
    "gpt2": _gpt2_like,
    "gptj": _gpt2_like,
}


# DeepSeek-V3's reader lives in its own module (it imports _Fields and ModelConfig from here)
from tegel.workload.deepseek_config import read_deepseek_v3  # noqa: E402

READERS["deepseek_v3"] = read_deepseek_v3


def shipped_models() -> list[str]:
    """Names of the model configurations shipped with tegel."""
    folder = resources.files("tegel.workload") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def parse_config(raw: Mapping[str, Any], name: str, source: str) -> ModelConfig:
    """A ModelConfig from a parsed config.json; `source` names the file in errors."""
    if not isinstance(raw, Mapping):
        raise TegelError(f"{source}: expected a JSON object at the top level")
    model_type = raw.get("model_type")
    if not isinstance(model_type, str) or model_type not in READERS:
        raise TegelError(
            f"{source}: field 'model_type': unsupported {_short(model_type)}; "
            f"supported: {', '.join(sorted(READERS))}"
        )
    try:
        config = READERS[model_type](_Fields(raw, source), name, model_type)
    except TegelError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError,
            ZeroDivisionError, RecursionError) as err:  # a field of an unexpected shape
        raise TegelError(f"{source}: not a valid {model_type} config "
                         f"({type(err).__name__}: {reprlib.repr(str(err))})") from None
    _check(config, source)
    return config


def _check(config: ModelConfig, source: str) -> None:
    """What the families' readers leave to the graph builder, checked up front so that an
    impossible model is a one-line error naming the field, not a failure while building."""
    if config.num_heads % config.num_kv_heads:
        raise TegelError(f"{source}: num_attention_heads must be a multiple of num_key_value_heads")
    if config.head_dim <= 0:
        raise TegelError(f"{source}: field 'num_attention_heads': {config.num_heads} heads "
                         f"leave no head_dim of hidden_size {config.hidden_size}")
    if config.model_type in ("gpt2", "gptj") and config.hidden_size % config.num_heads:
        raise TegelError(f"{source}: field 'n_head': {config.num_heads} heads must divide "
                         f"hidden size {config.hidden_size}")
    if config.is_moe and config.experts_per_token > config.num_experts:
        raise TegelError(f"{source}: field 'num_experts_per_tok': expected at most the expert "
                         f"count ({config.num_experts}), got {config.experts_per_token}")
    for field, value in (("rotary_dim", config.rotary_dim),):
        if value > config.head_dim or value % 2:
            raise TegelError(f"{source}: field '{field}': expected an even number at most "
                             f"head_dim ({config.head_dim}), got {value}")


def _shipped_name(text: str) -> str | None:
    """The shipped model `text` names, ignoring case and a Hugging Face organisation prefix
    (`Qwen/Qwen3-8B` is `qwen3-8b`); None when it names none."""
    by_lower = {n.lower(): n for n in shipped_models()}
    key = text.strip().lower()
    return by_lower.get(key) or by_lower.get(key.rsplit("/", 1)[-1])


def _not_found(text: str, path: Path) -> TegelError:
    names = shipped_models()
    key = text.strip().lower().rsplit("/", 1)[-1]
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
    hint = ""
    if close:
        hint = f"did you mean {'one of ' if len(close) > 1 else ''}{', '.join(map(repr, close))}? "
    return TegelError(f"model {text!r}: not a shipped model and no config.json at {path}; "
                      f"{hint}shipped: {', '.join(names)} (tegel inspect --list)")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def read_json(path: Path) -> Any:
    """A JSON file's value; bytes that are not UTF-8, JSON that is not valid, nesting too deep
    to read, NaN / Infinity and integers of more digits than Python converts are TegelErrors."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise TegelError(f"{path}: byte {err.start}: not UTF-8 text") from None
    except OSError as err:
        raise TegelError(f"{path}: cannot read ({err.strerror})") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise TegelError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from None
    except RecursionError:
        raise TegelError(f"{path}: not valid JSON (nested too deeply)") from None
    except ValueError as err:  # NaN / Infinity, or an integer of > 4300 digits
        raise TegelError(f"{path}: not valid JSON ({reprlib.repr(str(err))})") from None


def load_model_config(name_or_path: str | Path) -> ModelConfig:
    """A shipped model by name (`llama-3.1-70b`, any case), a config.json path, or a model
    folder. A name that matches nothing is a TegelError suggesting the closest shipped names."""
    text_name = str(name_or_path)
    path = Path(name_or_path)
    # an exact shipped name wins over a file of that name; a loose match (case, organisation
    # prefix) only when no such file exists
    shipped = text_name if text_name in shipped_models() else None
    if shipped is None and not path.exists():
        shipped = _shipped_name(text_name)
    if shipped is not None:
        resource = resources.files("tegel.workload") / "configs" / f"{shipped}.json"
        return parse_config(json.loads(resource.read_text()), shipped, f"{shipped}.json")
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise _not_found(text_name, path)
    raw = read_json(path)
    name = path.parent.name if path.name == "config.json" else path.stem
    return parse_config(raw, name, str(path))
