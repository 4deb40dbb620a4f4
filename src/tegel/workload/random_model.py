"""Random-weight Hugging Face folders of every supported family, built without downloading.

`random_folder(family, dir, size, seed)` writes `config.json` (a shipped config of the family,
shrunk to `size`), `model.safetensors` (seeded O(1) random weights in the family's checkpoint
names) and, when the `tokenizers` package is installed, a byte-level BPE `tokenizer.json`
trained on the text tegel ships. The weights are drawn in tegel's canonical names (the graph
builder's list) and mapped back to the checkpoint layout with `from_canonical`, the inverse of
`weights.to_canonical`, so `load_hf_folder` and `transformers` read the same model.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from tegel.atomic import atomic_open, write_text
from tegel.errors import TegelError
from tegel.workload.model_config import ModelConfig, load_model_config, parse_config, shipped_models
from tegel.workload.weights import MLA_NAMES

Array = np.ndarray

# Sizes in Hugging Face field names. Norm weights ~ 1 + 0.2 N(0, 1), the rest 0.2 N(0, 1): O(1)
# activations, so every path of the model changes the logits.
SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                 max_position_embeddings=256, experts=4, experts_per_token=2,
                 moe_intermediate_size=32, sliding_window=4),
    "small": dict(vocab_size=2048, hidden_size=256, intermediate_size=512, num_hidden_layers=4,
                  num_attention_heads=8, num_key_value_heads=4, head_dim=32,
                  max_position_embeddings=1024, experts=8, experts_per_token=2,
                  moe_intermediate_size=128, sliding_window=64),
}
INIT_SCALE = 0.2
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")  # ids 0, 1, 2: pad, bos, eos
_DROP = ("_name_or_path", "auto_map", "torch_dtype", "dtype", "transformers_version",
         "quantization_config", "rope_scaling", "rope_parameters")


def family_of(text: str) -> str:
    """The model_type a family name (`qwen3-moe`, `Gemma3_Text`) or shipped model name means."""
    families = families_shipped()
    key = text.strip().lower().replace("-", "_")
    if key in families:
        return key
    if key in ("gemma3",):
        return "gemma3_text"
    if text.strip().lower() in {n.lower() for n in shipped_models()}:
        return load_model_config(text).model_type
    raise TegelError(f"family {text!r}: expected one of {', '.join(sorted(families))} "
                     "(a config's model_type) or a shipped model name (tegel inspect --list)")


def families_shipped() -> dict[str, str]:
    """model_type -> the smallest shipped model of that family (its config is the template)."""
    best: dict[str, tuple[int, str]] = {}
    for name in shipped_models():
        cfg = load_model_config(name)
        size = cfg.hidden_size * cfg.num_layers
        if cfg.model_type not in best or size < best[cfg.model_type][0]:
            best[cfg.model_type] = (size, name)
    return {family: name for family, (_, name) in best.items()}


def random_config(family: str, size: str = "tiny") -> dict[str, Any]:
    """A shipped config of `family` (a family or shipped model name) with `size`'s dimensions."""
    if size not in SIZES:
        raise TegelError(f"--size {size!r}: expected one of {', '.join(SIZES)}")
    model_type = family_of(family)
    template = (family if family.strip().lower() in {n.lower() for n in shipped_models()}
                else families_shipped()[model_type])
    resource = resources.files("tegel.workload") / "configs" / f"{load_model_config(template).name}.json"
    shipped = json.loads(resource.read_text())
    raw: dict[str, Any] = {k: v for k, v in shipped.items() if k not in _DROP}
    z = SIZES[size]
    if model_type == "llama4":
        return _llama4_config(shipped["text_config"], z)
    raw.update(vocab_size=z["vocab_size"], pad_token_id=0, bos_token_id=1, eos_token_id=2,
               torch_dtype="float32")
    if model_type in ("gpt2", "gptj"):
        raw.update(n_embd=z["hidden_size"], n_layer=z["num_hidden_layers"],
                   n_head=z["num_attention_heads"], n_positions=z["max_position_embeddings"],
                   n_ctx=z["max_position_embeddings"], n_inner=None)
        if model_type == "gptj":
            raw["rotary_dim"] = z["head_dim"] // 2
        return raw
    raw.update({k: z[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers",
                                  "num_attention_heads", "num_key_value_heads",
                                  "max_position_embeddings")})
    raw["rope_theta"] = 10000.0
    scaling = shipped.get("rope_scaling")
    if isinstance(scaling, dict) and scaling.get("rope_type") == "llama3":  # keep Llama 3's
        raw["rope_scaling"] = {**scaling, "original_max_position_embeddings": 16}
    if model_type in ("qwen3", "qwen3_moe", "gemma2", "gemma3_text") or "head_dim" in raw:
        raw["head_dim"] = z["head_dim"]
    if model_type == "mixtral":
        raw.update(num_local_experts=z["experts"], num_experts_per_tok=z["experts_per_token"])
    if model_type == "qwen3_moe":
        raw.update(num_experts=z["experts"], num_experts_per_tok=z["experts_per_token"],
                   moe_intermediate_size=z["moe_intermediate_size"])
    if raw.get("sliding_window") is not None or model_type in ("gemma2", "gemma3_text"):
        raw["sliding_window"] = z["sliding_window"]
    if model_type in ("gemma2", "gemma3_text"):
        layers = z["num_hidden_layers"]
        raw["layer_types"] = ["sliding_attention" if i % 2 == 0 else "full_attention"
                              for i in range(layers)]
        raw["query_pre_attn_scalar"] = z["head_dim"]
        raw.pop("sliding_window_pattern", None)
        if model_type == "gemma3_text":
            raw["rope_local_base_freq"] = 100.0
    if model_type == "phi3":
        raw["original_max_position_embeddings"] = z["max_position_embeddings"]
    if model_type == "deepseek_v3":
        _shrink_deepseek(raw, shipped, z)
    return raw


def _llama4_config(text: Mapping[str, Any], z: Mapping[str, int]) -> dict[str, Any]:
    """A text-only `llama4_text` config (the language model of a shipped multimodal one) at
    size `z`: layer 0 a chunked RoPE layer, layer 1 a NoPE layer, chunks of `sliding_window`
    positions and a temperature that rises from that position on, so every Llama 4 path
    changes the logits of a short prompt; MoE layers as the template interleaves them."""
    drop = (*_DROP, "moe_layers", "no_rope_layers", "layer_types", "_attn_implementation_autoset")
    raw: dict[str, Any] = {k: v for k, v in text.items() if k not in drop}
    layers, window = z["num_hidden_layers"], z["sliding_window"]
    raw.update(architectures=["Llama4ForCausalLM"], vocab_size=z["vocab_size"], pad_token_id=0,
               bos_token_id=1, eos_token_id=2, torch_dtype="float32",
               hidden_size=z["hidden_size"], intermediate_size=z["moe_intermediate_size"],
               intermediate_size_mlp=z["intermediate_size"], num_hidden_layers=layers,
               num_attention_heads=z["num_attention_heads"], head_dim=z["head_dim"],
               num_key_value_heads=z["num_key_value_heads"], num_local_experts=z["experts"],
               max_position_embeddings=z["max_position_embeddings"], rope_theta=10000.0,
               attention_chunk_size=window, floor_scale=window, attn_temperature_tuning=True,
               no_rope_layers=[int(i % 2 == 0) for i in range(layers)])
    scaling = text.get("rope_scaling")
    if isinstance(scaling, dict) and scaling.get("rope_type") == "llama3":  # keep Scout's
        raw["rope_scaling"] = {**scaling, "original_max_position_embeddings": 16}
    return raw


def _shrink_deepseek(raw: dict[str, Any], shipped: Mapping[str, Any], z: Mapping[str, int]) -> None:
    """DeepSeek-V3 at `z`'s size: latent attention dims from the head width, one dense layer
    then MoE layers with two expert groups of which one is chosen, YaRN kept (its original
    context shrunk like Llama 3's)."""
    d = z["head_dim"]
    raw.update(q_lora_rank=z["hidden_size"] // 2, kv_lora_rank=z["hidden_size"] // 4,
               qk_nope_head_dim=d, qk_rope_head_dim=d // 2, v_head_dim=d,
               n_routed_experts=2 * z["experts"], num_experts_per_tok=z["experts_per_token"],
               moe_intermediate_size=z["moe_intermediate_size"], n_group=2, topk_group=1,
               first_k_dense_replace=1, num_key_value_heads=z["num_attention_heads"])
    raw.pop("num_nextn_predict_layers", None)  # no multi-token-prediction weights are written
    scaling = shipped.get("rope_scaling")
    if isinstance(scaling, dict):
        raw["rope_scaling"] = {**scaling, "original_max_position_embeddings": 16}


def random_canonical(cfg: ModelConfig, seed: int) -> dict[str, Array]:
    """Seeded random weights in tegel's canonical names and shapes (the graph builder's list)."""
    from tegel.workload.llm import Phase, build_llm_graph

    rng = np.random.default_rng(seed)
    out: dict[str, Array] = {}
    for w in build_llm_graph(cfg, Phase.prefill(1, 1)).weights:
        value = INIT_SCALE * rng.standard_normal(w.shape, dtype=np.float32)
        out[w.name] = value + np.float32(1.0) if w.name.endswith("norm.weight") else value
    return out


def from_canonical(cfg: ModelConfig, w: Mapping[str, Array]) -> dict[str, Array]:
    """The family's checkpoint tensors for canonical weights: the inverse of `to_canonical`."""
    if cfg.model_type in ("gpt2", "gptj"):
        return _gpt_checkpoint(cfg, w)
    if cfg.model_type in ("llama4", "llama4_text"):
        return _llama4_checkpoint(cfg, w)
    if cfg.model_type == "deepseek_v3":
        return _deepseek_checkpoint(cfg, w)
    gemma = cfg.model_type in ("gemma2", "gemma3_text")
    # Gemma stores each norm as w for a scale of (1 + w)
    c = {k: (v - np.float32(1.0) if gemma and k.endswith("norm.weight") else v) for k, v in w.items()}
    out = {"model.embed_tokens.weight": c["embed.weight"], "model.norm.weight": c["final_norm.weight"]}
    if "lm_head.weight" in c:
        out["lm_head.weight"] = c["lm_head.weight"]
    for i in range(cfg.num_layers):
        hf, tg = f"model.layers.{i}", f"layers.{i}"
        out[f"{hf}.input_layernorm.weight"] = c[f"{tg}.attn_norm.weight"]
        if gemma:
            out[f"{hf}.pre_feedforward_layernorm.weight"] = c[f"{tg}.mlp_norm.weight"]
            out[f"{hf}.post_attention_layernorm.weight"] = c[f"{tg}.post_attn_norm.weight"]
            out[f"{hf}.post_feedforward_layernorm.weight"] = c[f"{tg}.post_mlp_norm.weight"]
        else:
            out[f"{hf}.post_attention_layernorm.weight"] = c[f"{tg}.mlp_norm.weight"]
        for key, value in c.items():
            for part in ("attn.", "mlp."):
                if key.startswith(f"{tg}.{part}") and (part == "mlp." or "norm" not in key):
                    proj, kind = key[len(tg) + len(part) + 1 :].split(".")
                    module = "self_attn" if part == "attn." else "mlp"
                    out[f"{hf}.{module}.{proj}_proj.{kind}"] = value
            if key.startswith(f"{tg}.attn.") and key.endswith("_norm.weight"):
                out[f"{hf}.self_attn.{key.split('.')[-2]}.weight"] = value
        if cfg.routed(i):
            out.update(_experts_checkpoint(cfg, c, hf, tg))
        if cfg.model_type == "phi3":
            _fuse_phi3(out, hf)
    return out


def _experts_checkpoint(cfg: ModelConfig, c: Mapping[str, Array], hf: str, tg: str) -> dict[str, Array]:
    mixtral = cfg.model_type == "mixtral"
    moe = f"{hf}.block_sparse_moe" if mixtral else f"{hf}.mlp"
    names = ("w1", "w3", "w2") if mixtral else ("gate_proj", "up_proj", "down_proj")
    out = {f"{moe}.gate.weight": c[f"{tg}.moe.router.weight"]}
    for name, part in zip(names, ("w_gate", "w_up", "w_down"), strict=True):
        for e in range(cfg.num_experts):
            out[f"{moe}.experts.{e}.{name}.weight"] = c[f"{tg}.moe.{part}"][e]
    return out


def _llama4_checkpoint(cfg: ModelConfig, c: Mapping[str, Array]) -> dict[str, Array]:
    """`Llama4ForCausalLM` names: `feed_forward` MLPs, experts fused input-major
    (`gate_up_proj` [E, H, 2F], `down_proj` [E, F, H])."""
    out = {"model.embed_tokens.weight": c["embed.weight"], "model.norm.weight": c["final_norm.weight"]}
    if "lm_head.weight" in c:
        out["lm_head.weight"] = c["lm_head.weight"]
    for i in range(cfg.num_layers):
        hf, tg = f"model.layers.{i}", f"layers.{i}"
        ff = f"{hf}.feed_forward"
        out[f"{hf}.input_layernorm.weight"] = c[f"{tg}.attn_norm.weight"]
        out[f"{hf}.post_attention_layernorm.weight"] = c[f"{tg}.mlp_norm.weight"]
        for p in ("q", "k", "v", "o"):
            for kind in ("weight", "bias"):
                if f"{tg}.attn.{p}.{kind}" in c:
                    out[f"{hf}.self_attn.{p}_proj.{kind}"] = c[f"{tg}.attn.{p}.{kind}"]
        mlp, dense = (f"{tg}.moe.shared", f"{ff}.shared_expert") if cfg.routed(i) else (
            f"{tg}.mlp", ff)
        for p in ("gate", "up", "down"):
            out[f"{dense}.{p}_proj.weight"] = c[f"{mlp}.{p}.weight"]
        if cfg.routed(i):
            gate_up = np.concatenate([c[f"{tg}.moe.w_gate"], c[f"{tg}.moe.w_up"]], axis=1)
            out[f"{ff}.experts.gate_up_proj"] = gate_up.transpose(0, 2, 1)
            out[f"{ff}.experts.down_proj"] = c[f"{tg}.moe.w_down"].transpose(0, 2, 1)
            out[f"{ff}.router.weight"] = c[f"{tg}.moe.router.weight"]
    return out


def _deepseek_checkpoint(cfg: ModelConfig, c: Mapping[str, Array]) -> dict[str, Array]:
    """DeepSeek-V3's published layout: per-expert Linears, `mlp.gate` with its score-correction
    bias, `shared_experts`, the latent attention's modules by their checkpoint names."""
    modules = {tegel: hf for hf, tegel in MLA_NAMES}
    out = {"model.embed_tokens.weight": c["embed.weight"], "model.norm.weight": c["final_norm.weight"],
           "lm_head.weight": c["lm_head.weight"]}
    for i in range(cfg.num_layers):
        hf, tg = f"model.layers.{i}", f"layers.{i}"
        out[f"{hf}.input_layernorm.weight"] = c[f"{tg}.attn_norm.weight"]
        out[f"{hf}.post_attention_layernorm.weight"] = c[f"{tg}.mlp_norm.weight"]
        for tegel, module in modules.items():
            if f"{tg}.attn.{tegel}.weight" in c:
                out[f"{hf}.self_attn.{module}.weight"] = c[f"{tg}.attn.{tegel}.weight"]
        mlp = f"{tg}.moe.shared" if cfg.routed(i) else f"{tg}.mlp"
        target = f"{hf}.mlp.shared_experts" if cfg.routed(i) else f"{hf}.mlp"
        for p in ("gate", "up", "down"):
            out[f"{target}.{p}_proj.weight"] = c[f"{mlp}.{p}.weight"]
        if cfg.routed(i):
            out.update(_experts_checkpoint(cfg, c, hf, tg))
            out[f"{hf}.mlp.gate.e_score_correction_bias"] = c[f"{tg}.moe.router.score_bias"]
    return out


def _fuse_phi3(out: dict[str, Array], hf: str) -> None:
    parts = [out.pop(f"{hf}.self_attn.{p}_proj.weight") for p in "qkv"]
    out[f"{hf}.self_attn.qkv_proj.weight"] = np.concatenate(parts)
    parts = [out.pop(f"{hf}.mlp.{p}_proj.weight") for p in ("gate", "up")]
    out[f"{hf}.mlp.gate_up_proj.weight"] = np.concatenate(parts)


def _gpt_checkpoint(cfg: ModelConfig, c: Mapping[str, Array]) -> dict[str, Array]:
    gptj = cfg.model_type == "gptj"
    out = {"transformer.wte.weight": c["embed.weight"], "transformer.ln_f.weight": c["final_norm.weight"],
           "transformer.ln_f.bias": c["final_norm.bias"]}
    if gptj:
        out.update({"lm_head.weight": c["lm_head.weight"], "lm_head.bias": c["lm_head.bias"]})
    else:
        out["transformer.wpe.weight"] = c["pos_embed.weight"]
    for i in range(cfg.num_layers):
        hf, tg = f"transformer.h.{i}", f"layers.{i}"
        norms = (("ln_1", "attn_norm"),) if gptj else (("ln_1", "attn_norm"), ("ln_2", "mlp_norm"))
        for src, dst in norms:
            out[f"{hf}.{src}.weight"] = c[f"{tg}.{dst}.weight"]
            out[f"{hf}.{src}.bias"] = c[f"{tg}.{dst}.bias"]
        if gptj:
            for src, dst in (("q_proj", "q"), ("k_proj", "k"), ("v_proj", "v"), ("out_proj", "o")):
                out[f"{hf}.attn.{src}.weight"] = c[f"{tg}.attn.{dst}.weight"]
            for src, dst in (("fc_in", "up"), ("fc_out", "down")):
                out[f"{hf}.mlp.{src}.weight"] = c[f"{tg}.mlp.{dst}.weight"]
                out[f"{hf}.mlp.{src}.bias"] = c[f"{tg}.mlp.{dst}.bias"]
            continue
        # GPT-2's Conv1D layers store [in, out]; tegel's linear weights are [out, in]
        out[f"{hf}.attn.c_attn.weight"] = np.concatenate([c[f"{tg}.attn.{p}.weight"] for p in "qkv"]).T
        out[f"{hf}.attn.c_attn.bias"] = np.concatenate([c[f"{tg}.attn.{p}.bias"] for p in "qkv"])
        for src, dst in (("attn.c_proj", "attn.o"), ("mlp.c_fc", "mlp.up"), ("mlp.c_proj", "mlp.down")):
            out[f"{hf}.{src}.weight"] = c[f"{tg}.{dst}.weight"].T
            out[f"{hf}.{src}.bias"] = c[f"{tg}.{dst}.bias"]
    return out


def write_safetensors(path: Path, tensors: Mapping[str, Array]) -> None:
    """float32 tensors as a .safetensors file (the layout `weights.read_safetensors` reads)."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset, blobs = 0, []
    for name in sorted(tensors):
        blob = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with atomic_open(path, "make-model DIR", "wb") as f:  # whole, or not at all
        f.write(struct.pack("<Q", len(text)) + text)
        for blob in blobs:
            f.write(blob)


def write_tokenizer(folder: Path, vocab_size: int) -> bool:
    """A byte-level BPE tokenizer of at most `vocab_size` tokens, trained on the text tegel ships;
    False (and nothing written) when the `tokenizers` package is not installed."""
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError:
        return False
    text = (resources.files("tegel.serving") / "data" / "sample.txt").read_text()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(text.splitlines(), trainer=trainer)
    write_text(folder / "tokenizer.json", tok.to_str(pretty=True), "make-model DIR")
    pad, bos, eos = SPECIAL_TOKENS
    write_text(folder / "tokenizer_config.json", json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "pad_token": pad, "bos_token": bos,
         "eos_token": eos}, indent=2) + "\n", "make-model DIR")
    return True


FOLDER_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def random_folder(family: str, folder: str | Path, size: str = "tiny", seed: int = 0,
                  tokenizer: bool = True) -> tuple[ModelConfig, list[str]]:
    """Write a random-weight Hugging Face folder; (its config, the files written)."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise TegelError(f"{path}: expected a folder (or a path to create), found a file")
    raw = random_config(family, size)
    cfg = parse_config(raw, path.name or "model", f"{family} ({size})")
    path.mkdir(parents=True, exist_ok=True)
    write_text(path / "config.json", json.dumps(raw, indent=2) + "\n", "make-model DIR")
    write_safetensors(path / "model.safetensors", from_canonical(cfg, random_canonical(cfg, seed)))
    written = ["config.json", "model.safetensors"]
    if tokenizer and write_tokenizer(path, cfg.vocab_size):
        written += ["tokenizer.json", "tokenizer_config.json"]
    return cfg, written
