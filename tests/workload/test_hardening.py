"""Issue 18, model surfaces: config.json, safetensors folders and `tegel generate` never end in a
traceback, a hang or silent nonsense. Each class the fuzz campaign found is one test here: a
one-line TegelError naming the file and the field or tensor, or (for legitimate input) the
right answer."""

from __future__ import annotations

import json
import struct
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tegel.cli import main
from tegel.errors import TegelError
from tegel.workload.graph import GraphError
from tegel.workload.model_config import load_model_config
from tegel.workload.random_model import random_folder, write_safetensors
from tegel.workload.weights import load_hf_folder, read_safetensors


def _shipped(name: str) -> dict[str, Any]:
    text = (resources.files("tegel.workload") / "configs" / f"{name}.json").read_text()
    raw: dict[str, Any] = json.loads(text)
    return raw


def _config(tmp_path: Path, raw: object, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(raw))
    return path


def _fails(path: Path, *words: str) -> str:
    """load_model_config(path) is a one-line TegelError naming the file and every word."""
    with pytest.raises(TegelError) as err:
        load_model_config(path)
    message = str(err.value)
    assert "\n" not in message and len(message) < 400, message
    assert str(path) in message
    for word in words:
        assert word in message, message
    return message


# --- config.json ---------------------------------------------------------------------------


def test_a_billion_layers_is_refused_before_anything_is_built(tmp_path, capsys) -> None:
    """Was: `tegel inspect` ran > 60 s and ended in MemoryError."""
    path = _config(tmp_path, {**_shipped("llama-3.2-1b"), "num_hidden_layers": 10**9})
    start = time.monotonic()
    assert main(["inspect", str(path)]) == 2
    assert time.monotonic() - start < 5
    err = capsys.readouterr().err
    assert err.startswith("tegel: error:") and err.count("\n") == 1
    assert str(path) in err and "num_hidden_layers" in err


@pytest.mark.parametrize(("model", "field"), [
    ("llama-3.2-1b", "num_hidden_layers"), ("llama-3.2-1b", "hidden_size"),
    ("llama-3.2-1b", "num_attention_heads"), ("llama-3.2-1b", "vocab_size"),
    ("llama-3.2-1b", "intermediate_size"), ("mixtral-8x7b", "num_local_experts"),
    ("gpt2", "n_layer"), ("gpt2", "n_embd"), ("deepseek-v3", "n_routed_experts"),
    ("deepseek-v3", "kv_lora_rank"),
])
def test_sizes_beyond_physical_bounds_name_the_field(tmp_path, model: str, field: str) -> None:
    path = _config(tmp_path, {**_shipped(model), field: 10**9})
    _fails(path, f"'{field}'", "at most")


def test_shared_experts_beyond_the_width_bound_are_refused(tmp_path) -> None:
    """Found by benchmarks/fuzz.py: a billion shared experts made a shared MLP of 2 x 10^12
    channels, each field inside its own bound."""
    path = _config(tmp_path, {**_shipped("deepseek-v3"), "n_shared_experts": 10**9})
    _fails(path, "'n_shared_experts'", "0 to")
    path = _config(tmp_path, {**_shipped("deepseek-v3"), "n_shared_experts": 1000})
    _fails(path, "'n_shared_experts'", "channels")


def test_shipped_configs_are_inside_the_bounds() -> None:
    from tegel.workload.model_config import shipped_models
    for name in shipped_models():
        assert load_model_config(name).num_layers <= 1024


def test_graph_error_is_a_tegel_error() -> None:
    assert issubclass(GraphError, TegelError) and issubclass(GraphError, ValueError)


def test_heads_not_dividing_the_hidden_size(tmp_path) -> None:
    """Was: GraphError (a ValueError) out of the graph builder."""
    path = _config(tmp_path, {**_shipped("gpt2"), "n_head": 7})
    _fails(path, "'n_head'", "768")
    assert main(["inspect", str(path)]) == 2


def test_top_k_above_the_expert_count(tmp_path) -> None:
    path = _config(tmp_path, {**_shipped("mixtral-8x7b"), "num_experts_per_tok": 9})
    _fails(path, "'num_experts_per_tok'", "(8)")
    assert main(["inspect", str(path)]) == 2


@pytest.mark.parametrize("value", [{}, [], 3, None, "tanh"])
def test_hidden_act_of_the_wrong_type(tmp_path, value: object) -> None:
    raw = {**_shipped("llama-3.2-1b"), "hidden_act": value}
    _fails(_config(tmp_path, raw), "'hidden_act'", "silu")


def test_a_non_utf8_byte(tmp_path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b'{"model_type": "ll\xffama"}')
    _fails(path, "not UTF-8", "byte 18")


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000,
                                  '{"a": ' * 5_000 + "1" + "}" * 5_000])
def test_deep_nesting(tmp_path, text: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(text)
    _fails(path)


def test_huge_integers(tmp_path) -> None:
    base = _shipped("llama-3.2-1b")
    _fails(_config(tmp_path, {**base, "hidden_size": 10**400}, "a.json"), "'hidden_size'", "...")
    _fails(_config(tmp_path, {**base, "rope_theta": 10**400}, "b.json"), "'rope_theta'", "finite")
    path = tmp_path / "c.json"  # more digits than Python converts from text
    path.write_text(json.dumps(base)[:-1] + ', "x": ' + "9" * 5000 + "}")
    _fails(path, "not valid JSON")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers(tmp_path, literal: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_shipped("llama-3.2-1b"))[:-1] + f', "rope_theta": {literal}}}')
    _fails(path)


def test_a_field_of_an_unexpected_shape_is_still_a_tegel_error(tmp_path) -> None:
    raw = {**_shipped("gemma-3-1b-it"), "layer_types": [{}] * 26}
    _fails(_config(tmp_path, raw), "layer_types")


# --- safetensors ---------------------------------------------------------------------------


def _raw_file(path: Path, header: object, body: bytes = b"", length: int | None = None) -> Path:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + body)
    return path


F32x2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
BODY = np.array([1.5, -2.0], "<f4").tobytes()


@pytest.mark.parametrize(("header", "body", "length", "words"), [
    (b"", b"", 0, "not JSON"),
    ([1, 2], BODY, None, "list"),
    ({"w": {"dtype": "F32", "shape": [2]}}, BODY, None, "data_offsets"),
    ({"w": {**F32x2, "data_offsets": [0, 16]}}, BODY, None, "outside"),
    ({"w": {**F32x2, "data_offsets": [-8, 0]}}, BODY, None, "outside"),
    ({"w": {**F32x2, "data_offsets": [0.0, 8.0]}}, BODY, None, "two integers"),
    ({"w": {**F32x2, "data_offsets": [0, 8, 16]}}, BODY, None, "two integers"),
    ({"w": {**F32x2, "shape": [3]}}, BODY, None, "8 bytes of data for shape [3]"),
    ({"w": {**F32x2, "shape": [-2]}}, BODY, None, "non-negative"),
    ({"w": {**F32x2, "shape": "2"}}, BODY, None, "non-negative"),
    ({"w": [0, 8]}, BODY, None, "expected an object"),
    ({"w": {**F32x2, "dtype": ["F32"]}}, BODY, None, "unsupported dtype"),
    ({"a": F32x2, "b": {**F32x2, "data_offsets": [4, 12]}}, BODY + BODY, None, "overlaps"),
    ({"a": F32x2, "b": {**F32x2, "data_offsets": [12, 20]}}, BODY + BODY + BODY[:4], None,
     "gap"),
    ({"w": F32x2}, BODY + b"\0" * 8, None, "after the last tensor"),
    ({"w": F32x2}, BODY, 10**12, "header length"),
    ({"w": F32x2}, BODY[:4], None, "outside"),  # truncated data
    (b"[" * 10_000 + b"]" * 10_000, b"", None, "not JSON"),
])
def test_malformed_safetensors(tmp_path, header: object, body: bytes, length: int | None,
                               words: str) -> None:
    path = _raw_file(tmp_path / "m.safetensors", header, body, length)
    with pytest.raises(TegelError, match=r"m\.safetensors") as err:
        read_safetensors(path)
    assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("size", [0, 3, 7])
def test_empty_and_truncated_files(tmp_path, size: int) -> None:
    good = _raw_file(tmp_path / "good.safetensors", {"w": F32x2}, BODY).read_bytes()
    path = tmp_path / "t.safetensors"
    path.write_bytes(good[:size])
    with pytest.raises(TegelError, match="too short"):
        read_safetensors(path)
    path.write_bytes(good[:-3])  # cut inside the data
    with pytest.raises(TegelError, match="outside"):
        read_safetensors(path)


def test_a_well_formed_file_still_reads(tmp_path) -> None:
    header = {"__metadata__": {"format": "pt"}, "b": {**F32x2, "data_offsets": [8, 16]},
              "a": F32x2}
    path = _raw_file(tmp_path / "ok.safetensors", header, BODY + BODY[::-1])
    out = read_safetensors(path)
    assert out["a"].tolist() == [1.5, -2.0] and set(out) == {"a", "b"}
    write_safetensors(tmp_path / "w.safetensors", {"x": np.zeros((0, 3), np.float32)})
    assert read_safetensors(tmp_path / "w.safetensors")["x"].shape == (0, 3)


def test_not_a_regular_file(tmp_path) -> None:
    (tmp_path / "x.safetensors").mkdir()
    with pytest.raises(TegelError, match="not a regular file"):
        read_safetensors(tmp_path / "x.safetensors")
    (tmp_path / "d.safetensors").symlink_to(tmp_path / "missing")
    with pytest.raises(TegelError, match=r"d\.safetensors: cannot read"):
        read_safetensors(tmp_path / "d.safetensors")


@pytest.fixture
def tiny(tmp_path) -> Path:
    random_folder("llama", tmp_path / "m", tokenizer=False)
    return tmp_path / "m"


def _state(folder: Path) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in read_safetensors(folder / "model.safetensors").items()}


def test_folder_errors_name_the_file(tiny: Path) -> None:
    (tiny / "x.safetensors").mkdir()
    with pytest.raises(TegelError, match=r"x\.safetensors: not a regular file"):
        load_hf_folder(tiny)


def test_a_float_tensor_labelled_i32_is_not_reinterpreted(tiny: Path) -> None:
    state = _state(tiny)
    (tiny / "model.safetensors").unlink()
    header: dict[str, Any] = {}
    body = b""
    for name in sorted(state):
        blob = state[name].astype("<f4").tobytes()
        kind = "I32" if name == "model.norm.weight" else "F32"
        header[name] = {"dtype": kind, "shape": list(state[name].shape),
                        "data_offsets": [len(body), len(body) + len(blob)]}
        body += blob
    _raw_file(tiny / "model.safetensors", header, body)
    with pytest.raises(TegelError, match=r"'model\.norm\.weight' is int32"):
        load_hf_folder(tiny)


def test_duplicate_tensors_across_shards(tiny: Path) -> None:
    state = _state(tiny)
    write_safetensors(tiny / "model-2.safetensors", {"model.norm.weight": state["model.norm.weight"]})
    with pytest.raises(TegelError, match=r"'model\.norm\.weight' is in both "
                       r"model-2\.safetensors and model\.safetensors"):
        load_hf_folder(tiny)


def test_a_checkpoint_with_more_layers_than_the_config(tiny: Path) -> None:
    """Was: a 1-layer config over a 2-layer checkpoint silently ignored the extra layer."""
    raw = json.loads((tiny / "config.json").read_text())
    assert raw["num_hidden_layers"] >= 2
    (tiny / "config.json").write_text(json.dumps({**raw, "num_hidden_layers": 1}))
    with pytest.raises(TegelError, match=r"tensor 'model\.layers\.1\..*' is of layer 1, but the "
                       "config has 1 layers"):
        load_hf_folder(tiny)


def test_a_checkpoint_with_fewer_layers_than_the_config(tiny: Path) -> None:
    raw = json.loads((tiny / "config.json").read_text())
    layers = raw["num_hidden_layers"]
    (tiny / "config.json").write_text(json.dumps({**raw, "num_hidden_layers": layers + 1}))
    with pytest.raises(TegelError, match=f"checkpoint has no tensor 'model.layers.{layers}."):
        load_hf_folder(tiny)


def test_a_checkpoint_of_another_shape(tiny: Path) -> None:
    state = _state(tiny)
    name = "model.layers.0.self_attn.k_proj.weight"
    assert state[name].shape[0] != state[name].shape[1]
    state[name] = state[name].T.copy()
    write_safetensors(tiny / "model.safetensors", state)
    with pytest.raises(TegelError, match=r"weight 'layers\.0\.attn\.k\.weight': shape"):
        load_hf_folder(tiny)


def test_an_intact_folder_still_loads(tiny: Path) -> None:
    cfg, weights = load_hf_folder(tiny)
    assert cfg.model_type == "llama" and "layers.0.attn.q.weight" in weights
    assert all(np.isfinite(w).all() for w in weights.values())


# --- generate ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_weights_do_not_generate_token_zero(tiny: Path, capsys,
                                                       value: float) -> None:
    """Was: all-NaN or inf weights generated tokens 0,0,0,0 with exit 0."""
    state = _state(tiny)
    state["model.norm.weight"][:] = value
    write_safetensors(tiny / "model.safetensors", state)
    argv = ["generate", str(tiny), "--on", "h100-sxm", "--prompt-ids", "1,2", "--precision",
            "fp32", "--max-new-tokens", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "model.norm.weight" not in err  # tegel's name, after renaming
    assert "'final_norm.weight' has" in err and "non-finite" in err


def test_non_finite_logits_are_an_error(tiny: Path) -> None:
    """Finite weights whose logits overflow float32: an error, not argmax over infinities."""
    from tegel.serving.generate import generate

    cfg, weights = load_hf_folder(tiny)
    weights["final_norm.weight"] = np.full_like(weights["final_norm.weight"], 3e38)
    assert all(np.isfinite(w).all() for w in weights.values())
    with pytest.raises(TegelError, match="step 1 gives non-finite logits"):
        generate(cfg, weights, "h100-sxm", [1, 2], 2, "fp32")
