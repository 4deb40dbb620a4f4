"""Weights from Hugging Face checkpoints, renamed and reshaped to tegel's canonical tensors.

`load_hf_folder(path)` reads `config.json` and every `*.safetensors` file of a folder;
`to_canonical(cfg, state)` maps a Hugging Face state dict (from a checkpoint, or from a live
`transformers` model) onto the weight names `build_llm_graph` uses. GPT-2's fused `c_attn`
(a Conv1D, [in, out]) is split and transposed; Mixtral experts are stacked, from either the
per-expert checkpoint layout (`w1/w2/w3`) or the fused `gate_up_proj` layout.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
import stat
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
        value = self.state[key]
        kind = getattr(getattr(value, "dtype", None), "kind", None)
        if kind in ("b", "i", "u"):  # not a float tensor: never reinterpreted as weights
            raise TegelError(f"{self.source}: tensor {key!r} is {value.dtype} (an integer or "
                             f"boolean tensor), expected floating-point weights")
        return np.asarray(value, dtype=np.float32)

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
        names = [f"{moe}.experts.{e}.{w}.weight" for e in range(cfg.num_experts)]
        arrays = [s(name) for name in names]
        for name, a in zip(names, arrays, strict=True):
            if a.shape != arrays[0].shape:
                raise TegelError(f"{s.source}: tensor {name!r} is {a.shape}, expert 0's "
                                 f"is {arrays[0].shape}")
        return np.stack(arrays)

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
    """Map a Hugging Face state dict onto tegel's weight names (float32 arrays). A tensor of
    a rank or size the family's split or transpose cannot take is a TegelError."""
    try:
        return _MAPPERS[cfg.model_type](cfg, _State(state, source))
    except (IndexError, ValueError) as err:  # a tensor of another rank or size than the config's
        raise TegelError(f"{source}: the checkpoint's tensors do not match the {cfg.model_type} "
                         f"config ({_short(str(err))})") from None


_SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
    "F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E5M2": ml_dtypes.float8_e5m2,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
    "BOOL": np.bool_,
}


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 120
_short = _REPR.repr  # echoed names and values, truncated
_MAX_HEADER = 100_000_000  # the safetensors library's own limit on the header's length


def _bad(path: Path, what: str) -> TegelError:
    return TegelError(f"{path}: not a safetensors file ({what})")


def _entry(path: Path, name: str, entry: object, body_size: int) -> tuple[str, list[int], int, int]:
    """(dtype, shape, start, stop) of one header entry, each checked: the documented shape
    {"dtype": str, "shape": [int >= 0, ...], "data_offsets": [begin, end]}, offsets inside
    the data and a byte count of shape x dtype size."""
    where = f"tensor {_short(name)}"
    if not isinstance(entry, dict):
        raise _bad(path, f"{where}: expected an object, got {_short(entry)}")
    dtype = entry.get("dtype")
    if not isinstance(dtype, str) or dtype not in _SAFETENSORS_DTYPES:
        raise TegelError(f"{path}: {where}: unsupported dtype {_short(dtype)}")
    shape = entry.get("shape")
    if (not isinstance(shape, list) or len(shape) > 16
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 62
                       for d in shape)):
        raise _bad(path, f"{where}: 'shape' must be a list of non-negative integers, "
                   f"got {_short(shape)}")
    offsets = entry.get("data_offsets")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
        raise _bad(path, f"{where}: 'data_offsets' must be two integers, "
                   f"got {_short(offsets)}")
    start, stop = offsets
    if not 0 <= start <= stop <= body_size:
        raise _bad(path, f"{where}: data_offsets {_short(offsets)} outside the "
                   f"{body_size} bytes of data")
    size = math.prod(shape) * np.dtype(_SAFETENSORS_DTYPES[dtype]).itemsize
    if stop - start != size:
        raise _bad(path, f"{where}: {stop - start} bytes of data for shape {shape} of "
                   f"{dtype} ({size} bytes)")
    return dtype, shape, start, stop


def read_safetensors(path: Path) -> dict[str, Array]:
    """Every tensor of a .safetensors file, memory-mapped (bf16 and fp8 via ml_dtypes).

    Format: 8-byte little-endian header length, a JSON header of name -> {dtype, shape,
    data_offsets}, then the raw little-endian data. Read defensively: a regular file only;
    the header an object of that shape; offsets inside the data, contiguous and
    non-overlapping from 0 to its end; each tensor's byte count its shape times its dtype's
    size. Anything else is a TegelError naming the file and the tensor.
    """
    try:
        info = path.stat()
    except OSError as err:
        raise TegelError(f"{path}: cannot read ({err.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise TegelError(f"{path}: not a regular file")
    if info.st_size < 8:
        raise _bad(path, f"{info.st_size} bytes, too short for a header")
    try:
        data = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as err:
        raise TegelError(f"{path}: cannot read ({err})") from None
    (length,) = struct.unpack("<Q", bytes(data[:8]))
    if length > min(_MAX_HEADER, data.size - 8):
        raise _bad(path, f"header length {length} beyond the file's {data.size} bytes")
    try:
        header = json.loads(bytes(data[8 : 8 + length]).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _bad(path, "header is not JSON") from None
    if not isinstance(header, dict):
        raise _bad(path, f"header is a {type(header).__name__}, not an object")
    body = data[8 + length :]
    entries = {name: _entry(path, name, entry, body.size)
               for name, entry in header.items() if name != "__metadata__"}
    end = 0
    for name, (_, _, start, stop) in sorted(entries.items(), key=lambda kv: kv[1][2:]):
        if start != end:
            what = "overlaps the tensor before it" if start < end else "leaves a gap before it"
            raise _bad(path, f"tensor {_short(name)}: data_offsets [{start}, {stop}] "
                       f"{what} (which ends at {end})")
        end = stop
    if end != body.size:
        raise _bad(path, f"{body.size - end} bytes of data after the last tensor")
    out: dict[str, Array] = {}
    for name, (dtype, shape, start, stop) in entries.items():
        out[name] = body[start:stop].view(_SAFETENSORS_DTYPES[dtype]).reshape(shape)
    return out


def load_hf_folder(folder: str | Path) -> tuple[ModelConfig, dict[str, Array]]:
    """Config and canonical weights of a Hugging Face-format folder (config.json + *.safetensors)."""
    path = Path(folder)
    cfg = load_model_config(path)
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise TegelError(f"{path}: no *.safetensors weight files")
    state: dict[str, Array] = {}
    where: dict[str, str] = {}
    for file in files:
        for name, tensor in read_safetensors(file).items():
            if name in state:
                raise TegelError(f"{path}: tensor {_short(name)} is in both "
                                 f"{where[name]} and {file.name}")
            state[name], where[name] = tensor, file.name
    _check_layers(cfg, state, str(path))
    weights = to_canonical(cfg, state, str(path))
    _check_shapes(cfg, weights, str(path))
    return cfg, weights


def _check_shapes(cfg: ModelConfig, weights: Mapping[str, Array], source: str) -> None:
    """Every weight the config's graph needs, of the shape it needs: a checkpoint of another
    size is an error naming the tensor when it is read, not in the middle of a run."""
    from tegel.workload.llm import Phase, build_llm_graph

    for t in build_llm_graph(cfg, Phase.decode(1, 1)).weights:
        value = weights.get(t.name)
        if value is None:
            raise TegelError(f"{source}: no weight {t.name!r} for {cfg.name}")
        if tuple(value.shape) != t.shape:
            raise TegelError(f"{source}: weight {t.name!r}: shape {tuple(value.shape)}, the "
                             f"config needs {t.shape}")


_LAYER = re.compile(r"(?:language_model\.)?(?:model\.layers|transformer\.h)\.(\d+)\.")


def _check_layers(cfg: ModelConfig, state: Mapping[str, Array], source: str) -> None:
    """A checkpoint with layers the config does not have is the wrong checkpoint for it (or the
    wrong config): an error naming the first such tensor, not a model that silently drops them.
    DeepSeek-V3's multi-token-prediction layer (index num_hidden_layers) is allowed."""
    limit = cfg.num_layers + (1 if cfg.model_type == "deepseek_v3" else 0)
    for name in state:
        match = _LAYER.match(name)
        if match and int(match.group(1)) >= limit:
            raise TegelError(f"{source}: tensor {_short(name)} is of layer "
                             f"{match.group(1)}, but the config has {cfg.num_layers} layers "
                             f"(num_hidden_layers)")
