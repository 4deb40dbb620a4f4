"""Weights from Hugging Face checkpoints, renamed and reshaped to tegel's canonical tensors.

`load_hf_folder(path)` reads `config.json` and every `*.safetensors` file of a folder;
`to_canonical(cfg, state)` maps a Hugging Face state dict (from a checkpoint, or from a live
`transformers` model) onto the weight names `build_llm_graph` uses. GPT-2's fused `c_attn`
(a Conv1D, [in, out]) is split and transposed; Mixtral experts are stacked, from either the
per-expert checkpoint layout (`w1/w2/w3`) or the fused `gate_up_proj` layout.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path

import ml_dtypes
import numpy as np

from tegel.errors import TegelError
from tegel.workload.model_config import ModelConfig, load_model_config

Array = np.ndarray


class _State:
    """A state dict with errors that name the missing checkpoint tensor."""

    def __init__(self, state: Mapping[str, Array], source: str, prefix: str = "") -> None:
        self.state, self.source, self.prefix = state, source, prefix

    def __call__(self, key: str) -> Array:
        key = self.prefix + key
        if key not in self.state:
            raise TegelError(f"{self.source}: checkpoint has no tensor {key!r}")
        return np.asarray(self.state[key], dtype=np.float32)

    def has(self, key: str) -> bool:
        return self.prefix + key in self.state


def _llama_like(cfg: ModelConfig, s: _State) -> dict[str, Array]:
    out = {"embed.weight": s("model.embed_tokens.weight"), "final_norm.weight": s("model.norm.weight")}
    if not cfg.tie_word_embeddings:
        out["lm_head.weight"] = s("lm_head.weight")
    for i in range(cfg.num_layers):
        hf, tg = f"model.layers.{i}", f"layers.{i}"
        out.update(_attention(cfg, s, hf, tg))
        if cfg.qk_norm:
            for p in ("q", "k"):
                out[f"{tg}.attn.{p}_norm.weight"] = s(f"{hf}.self_attn.{p}_norm.weight")
        if cfg.routed(i):
            out.update(_experts(cfg, s, hf, tg))
            continue
        for p in ("gate", "up", "down"):
            out[f"{tg}.mlp.{p}.weight"] = s(f"{hf}.mlp.{p}_proj.weight")
            if cfg.mlp_bias:
                out[f"{tg}.mlp.{p}.bias"] = s(f"{hf}.mlp.{p}_proj.bias")
    return out


def _attention(cfg: ModelConfig, s: _State, hf: str, tg: str) -> dict[str, Array]:
    """A Llama-style layer's two norms and its q, k, v, o projections (and their biases)."""
    out = {f"{tg}.attn_norm.weight": s(f"{hf}.input_layernorm.weight"),
           f"{tg}.mlp_norm.weight": s(f"{hf}.post_attention_layernorm.weight")}
    for p in ("q", "k", "v", "o"):
        out[f"{tg}.attn.{p}.weight"] = s(f"{hf}.self_attn.{p}_proj.weight")
        bias = cfg.o_bias if p == "o" else cfg.qkv_bias
        if bias:
            out[f"{tg}.attn.{p}.bias"] = s(f"{hf}.self_attn.{p}_proj.bias")
    return out


def _llama4(cfg: ModelConfig, s: _State) -> dict[str, Array]:
    """Llama 4: `Llama4ForCausalLM` names, under `language_model.` in the multimodal
    checkpoints (whose vision tower is skipped). Each layer's `feed_forward` is a dense MLP or
    the MoE: `router`, a `shared_expert` MLP and fused experts `gate_up_proj` [E, H, 2F]
    (gate then up along the last axis) and `down_proj` [E, F, H], both stored input-major:
    transposed here to tegel's [E, F, H] and [E, H, F]."""
    if s.has("language_model.model.embed_tokens.weight"):
        s = _State(s.state, s.source, "language_model.")
    out = {"embed.weight": s("model.embed_tokens.weight"), "final_norm.weight": s("model.norm.weight")}
    if not cfg.tie_word_embeddings:
        out["lm_head.weight"] = s("lm_head.weight")
    e, f, h = cfg.num_experts, cfg.intermediate_size, cfg.hidden_size
    for i in range(cfg.num_layers):
        hf, tg = f"model.layers.{i}", f"layers.{i}"
        ff = f"{hf}.feed_forward"
        out.update(_attention(cfg, s, hf, tg))
        if not cfg.routed(i):
            for p in ("gate", "up", "down"):
                out[f"{tg}.mlp.{p}.weight"] = s(f"{ff}.{p}_proj.weight")
            continue
        gate_up, down = s(f"{ff}.experts.gate_up_proj"), s(f"{ff}.experts.down_proj")
        if gate_up.shape != (e, h, 2 * f) or down.shape != (e, f, h):
            raise TegelError(f"{s.source}: {s.prefix}{ff}.experts: gate_up_proj "
                             f"{gate_up.shape} / down_proj {down.shape}, expected "
                             f"{(e, h, 2 * f)} / {(e, f, h)}")
        out[f"{tg}.moe.router.weight"] = s(f"{ff}.router.weight")
        out[f"{tg}.moe.w_gate"] = gate_up[:, :, :f].transpose(0, 2, 1).copy()
        out[f"{tg}.moe.w_up"] = gate_up[:, :, f:].transpose(0, 2, 1).copy()
        out[f"{tg}.moe.w_down"] = down.transpose(0, 2, 1).copy()
        for p in ("gate", "up", "down"):
            out[f"{tg}.moe.shared.{p}.weight"] = s(f"{ff}.shared_expert.{p}_proj.weight")
    return out


def _phi3(cfg: ModelConfig, s: _State) -> dict[str, Array]:
    """Llama's names, after splitting Phi-3's fused `qkv_proj` ([q; k; v] rows) and
    `gate_up_proj` ([gate; up] rows)."""
    q_rows, kv_rows = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
    f = cfg.intermediate_size
    split = dict(s.state)
    for i in range(cfg.num_layers):
        hf = f"model.layers.{i}"
        qkv = s(f"{hf}.self_attn.qkv_proj.weight")
        if qkv.shape[0] != q_rows + 2 * kv_rows:
            raise TegelError(f"{s.source}: {hf}.self_attn.qkv_proj.weight has {qkv.shape[0]} "
                             f"rows, expected {q_rows + 2 * kv_rows}")
        ends = (q_rows, q_rows + kv_rows, q_rows + 2 * kv_rows)
        for p, start, stop in zip("qkv", (0, *ends[:2]), ends, strict=True):
            split[f"{hf}.self_attn.{p}_proj.weight"] = qkv[start:stop]
        gate_up = s(f"{hf}.mlp.gate_up_proj.weight")
        split[f"{hf}.mlp.gate_proj.weight"] = gate_up[:f]
        split[f"{hf}.mlp.up_proj.weight"] = gate_up[f:]
    return _llama_like(cfg, _State(split, s.source))


def _gemma2(cfg: ModelConfig, s: _State) -> dict[str, Array]:
    """Llama's names with Gemma 2's (and Gemma 3's) four norms per layer, each stored as `w` for
    a scale of (1 + w), as are Gemma 3's q/k norms: tegel's norms hold the scale itself."""
    renamed = dict(s.state)
    for i in range(cfg.num_layers):
        hf = f"model.layers.{i}"
        # Llama's mlp_norm is `post_attention_layernorm`; Gemma 2's is `pre_feedforward_layernorm`
        renamed[f"{hf}.post_attention_layernorm.weight"] = s(f"{hf}.pre_feedforward_layernorm.weight")
    out = _llama_like(cfg, _State(renamed, s.source))
    for i in range(cfg.num_layers):
        hf, tg = f"model.layers.{i}", f"layers.{i}"
        out[f"{tg}.post_attn_norm.weight"] = s(f"{hf}.post_attention_layernorm.weight")
        out[f"{tg}.post_mlp_norm.weight"] = s(f"{hf}.post_feedforward_layernorm.weight")
    for key in [k for k in out if k.endswith("norm.weight")]:
        out[key] = out[key] + np.float32(1.0)
    return out


def _experts(cfg: ModelConfig, s: _State, hf: str, tg: str) -> dict[str, Array]:
    f = cfg.intermediate_size
    if s.has(f"{hf}.mlp.experts.gate_up_proj"):  # transformers >= 5 module layout
        gate_up = s(f"{hf}.mlp.experts.gate_up_proj")
        return {
            f"{tg}.moe.router.weight": s(f"{hf}.mlp.gate.weight"),
            f"{tg}.moe.w_gate": gate_up[:, :f],
            f"{tg}.moe.w_up": gate_up[:, f:],
            f"{tg}.moe.w_down": s(f"{hf}.mlp.experts.down_proj"),
        }
    # checkpoint layout: one Linear per expert (Mixtral's w1/w3/w2, Qwen3 MoE's gate/up/down)
    mixtral = cfg.model_type == "mixtral"
    moe = f"{hf}.block_sparse_moe" if mixtral else f"{hf}.mlp"
    names = ("w1", "w3", "w2") if mixtral else ("gate_proj", "up_proj", "down_proj")

    def stack(w: str) -> Array:
        return np.stack([s(f"{moe}.experts.{e}.{w}.weight") for e in range(cfg.num_experts)])

    return {
        f"{tg}.moe.router.weight": s(f"{moe}.gate.weight"),
        f"{tg}.moe.w_gate": stack(names[0]),
        f"{tg}.moe.w_up": stack(names[1]),
        f"{tg}.moe.w_down": stack(names[2]),
    }


# DeepSeek-V3 attention: Hugging Face module -> tegel's name under layers.{i}.attn
MLA_NAMES = (("q_a_proj", "q_a"), ("q_a_layernorm", "q_a_norm"), ("q_b_proj", "q_b"),
              ("q_proj", "q"), ("kv_a_proj_with_mqa", "kv_a"), ("kv_a_layernorm", "kv_a_norm"),
              ("kv_b_proj", "kv_b"), ("o_proj", "o"))


def _deepseek_v3(cfg: ModelConfig, s: _State) -> dict[str, Array]:
    """DeepSeek-V3/R1: latent attention's projections and norms (q_a/q_a_layernorm/q_b, or q
    when q_lora_rank is null), dense MLPs on the first layers, then routed experts (the
    published per-expert layout `experts.{e}.gate_proj` or transformers 5's fused
    `gate_up_proj`), the router's score-correction bias and the shared experts. The
    multi-token-prediction layer (index num_hidden_layers in the checkpoint) is ignored."""
    out = {"embed.weight": s("model.embed_tokens.weight"), "final_norm.weight": s("model.norm.weight")}
    if not cfg.tie_word_embeddings:
        out["lm_head.weight"] = s("lm_head.weight")
    for i in range(cfg.num_layers):
        hf, tg = f"model.layers.{i}", f"layers.{i}"
        out[f"{tg}.attn_norm.weight"] = s(f"{hf}.input_layernorm.weight")
        out[f"{tg}.mlp_norm.weight"] = s(f"{hf}.post_attention_layernorm.weight")
        for src, dst in MLA_NAMES:
            if src.startswith("q_a") or src == "q_b_proj":
                if not cfg.q_lora_rank:
                    continue
            elif src == "q_proj" and cfg.q_lora_rank:
                continue
            out[f"{tg}.attn.{dst}.weight"] = s(f"{hf}.self_attn.{src}.weight")
        if not cfg.routed(i):
            for p in ("gate", "up", "down"):
                out[f"{tg}.mlp.{p}.weight"] = s(f"{hf}.mlp.{p}_proj.weight")
            continue
        out.update(_experts(cfg, s, hf, tg))
        out[f"{tg}.moe.router.score_bias"] = s(f"{hf}.mlp.gate.e_score_correction_bias")
        for p in ("gate", "up", "down"):
            out[f"{tg}.moe.shared.{p}.weight"] = s(f"{hf}.mlp.shared_experts.{p}_proj.weight")
    return out


def _gpt2(cfg: ModelConfig, s: _State) -> dict[str, Array]:
    h = cfg.hidden_size
    out = {
        "embed.weight": s("transformer.wte.weight"),
        "pos_embed.weight": s("transformer.wpe.weight"),
        "final_norm.weight": s("transformer.ln_f.weight"),
        "final_norm.bias": s("transformer.ln_f.bias"),
    }
    for i in range(cfg.num_layers):
        hf, tg = f"transformer.h.{i}", f"layers.{i}"
        for src, dst in (("ln_1", "attn_norm"), ("ln_2", "mlp_norm")):
            out[f"{tg}.{dst}.weight"] = s(f"{hf}.{src}.weight")
            out[f"{tg}.{dst}.bias"] = s(f"{hf}.{src}.bias")
        qkv_w, qkv_b = s(f"{hf}.attn.c_attn.weight"), s(f"{hf}.attn.c_attn.bias")
        for j, p in enumerate(("q", "k", "v")):
            out[f"{tg}.attn.{p}.weight"] = qkv_w[:, j * h : (j + 1) * h].T.copy()
            out[f"{tg}.attn.{p}.bias"] = qkv_b[j * h : (j + 1) * h]
        # Conv1D stores [in, out]; tegel's linear weights are [out, in]
        for src, dst in (("attn.c_proj", "attn.o"), ("mlp.c_fc", "mlp.up"), ("mlp.c_proj", "mlp.down")):
            out[f"{tg}.{dst}.weight"] = s(f"{hf}.{src}.weight").T.copy()
            out[f"{tg}.{dst}.bias"] = s(f"{hf}.{src}.bias")
    return out


def _gptj(cfg: ModelConfig, s: _State) -> dict[str, Array]:
    out = {
        "embed.weight": s("transformer.wte.weight"),
        "final_norm.weight": s("transformer.ln_f.weight"),
        "final_norm.bias": s("transformer.ln_f.bias"),
        "lm_head.weight": s("lm_head.weight"),
        "lm_head.bias": s("lm_head.bias"),
    }
    for i in range(cfg.num_layers):
        hf, tg = f"transformer.h.{i}", f"layers.{i}"
        out[f"{tg}.attn_norm.weight"] = s(f"{hf}.ln_1.weight")
        out[f"{tg}.attn_norm.bias"] = s(f"{hf}.ln_1.bias")
        for src, dst in (("q_proj", "q"), ("k_proj", "k"), ("v_proj", "v"), ("out_proj", "o")):
            out[f"{tg}.attn.{dst}.weight"] = s(f"{hf}.attn.{src}.weight")
        for src, dst in (("fc_in", "up"), ("fc_out", "down")):
            out[f"{tg}.mlp.{dst}.weight"] = s(f"{hf}.mlp.{src}.weight")
            out[f"{tg}.mlp.{dst}.bias"] = s(f"{hf}.mlp.{src}.bias")
    return out


_MAPPERS = {"llama": _llama_like, "mistral": _llama_like, "qwen2": _llama_like,
            "qwen3": _llama_like, "qwen3_moe": _llama_like, "mixtral": _llama_like,
            "phi3": _phi3, "gemma2": _gemma2, "llama4": _llama4, "llama4_text": _llama4,
            "gemma3_text": _gemma2, "gpt2": _gpt2, "gptj": _gptj, "deepseek_v3": _deepseek_v3}


def to_canonical(
    cfg: ModelConfig, state: Mapping[str, Array], source: str = "state dict"
) -> dict[str, Array]:
    """Map a Hugging Face state dict onto tegel's weight names (float32 arrays)."""
    return _MAPPERS[cfg.model_type](cfg, _State(state, source))


_SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
    "F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E5M2": ml_dtypes.float8_e5m2,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
    "BOOL": np.bool_,
}


def read_safetensors(path: Path) -> dict[str, Array]:
    """Every tensor of a .safetensors file, memory-mapped (bf16 and fp8 via ml_dtypes).

    Format: 8-byte little-endian header length, a JSON header of name -> {dtype, shape,
    data_offsets}, then the raw little-endian data.
    """
    data = np.memmap(path, dtype=np.uint8, mode="r")
    if data.size < 8:
        raise TegelError(f"{path}: not a safetensors file (too short)")
    (length,) = struct.unpack("<Q", bytes(data[:8]))
    try:
        header = json.loads(bytes(data[8 : 8 + length]))
    except (ValueError, UnicodeDecodeError):
        raise TegelError(f"{path}: not a safetensors file (bad header)") from None
    body = data[8 + length :]
    out: dict[str, Array] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry.get("dtype") not in _SAFETENSORS_DTYPES:
            raise TegelError(f"{path}: tensor {name!r}: unsupported dtype {entry.get('dtype')!r}")
        start, stop = entry["data_offsets"]
        raw = body[start:stop]
        out[name] = raw.view(_SAFETENSORS_DTYPES[entry["dtype"]]).reshape(entry["shape"])
    return out


def load_hf_folder(folder: str | Path) -> tuple[ModelConfig, dict[str, Array]]:
    """Config and canonical weights of a Hugging Face-format folder (config.json + *.safetensors)."""
    path = Path(folder)
    cfg = load_model_config(path)
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise TegelError(f"{path}: no *.safetensors weight files")
    state: dict[str, Array] = {}
    for file in files:
        state.update(read_safetensors(file))
    return cfg, to_canonical(cfg, state, str(path))
