"""LLM graphs from shipped configs: published parameter counts, FLOP closed forms, config errors,
and the Hugging Face folder loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tegel.errors import TegelError
from tegel.workload import (
    DType,
    Phase,
    Precision,
    build_llm_graph,
    interpret,
    load_model_config,
    shipped_models,
    verify,
)
from tegel.workload.summary import active_parameters, summarize
from tegel.workload.weights import load_hf_folder
from workload.hf_models import tiny_model

# Published parameter counts (model cards / papers), in billions; tolerance 0.5 %.
PUBLISHED_B = {
    "llama-2-7b": 6.74,
    "llama-2-70b": 68.98,
    "llama-3.1-8b": 8.03,
    "llama-3.1-70b": 70.55,
    "llama-3.1-405b": 405.85,
    "mixtral-8x7b": 46.70,
    "gpt2": 0.1244,
    "qwen2.5-7b": 7.62,
    # Qwen3 model cards (huggingface.co/Qwen/Qwen3-8B, -32B, -30B-A3B): "Number of Parameters"
    "qwen3-8b": 8.2,
    "qwen3-32b": 32.8,
    "qwen3-30b-a3b": 30.5,
    # huggingface.co/microsoft/phi-4: "Model size 14.7B params" (the safetensors total)
    "phi-4": 14.7,
    # huggingface.co/google/gemma-2-2b-it: "Model size 2.61B params"
    "gemma-2-2b-it": 2.61,
    # Gemma 3 technical report (arXiv 2503.19786), Table 1: 1B = 302 M embedding + 698 M other
    "gemma-3-1b-it": 1.0,
}

REQUIRED = {"gpt2", "gpt-j-6b", "llama-2-7b", "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b",
            "llama-3.1-405b", "llama-3.3-70b", "mistral-7b", "mixtral-8x7b", "qwen2.5-7b",
            "qwen2.5-72b", "qwen3-8b", "qwen3-32b", "qwen3-30b-a3b",
            "phi-4", "gemma-2-2b-it", "gemma-3-1b-it"}


def test_every_required_config_is_shipped() -> None:
    assert set(shipped_models()) >= REQUIRED


@pytest.mark.parametrize("name", sorted(PUBLISHED_B))
def test_parameter_count_matches_published(name: str) -> None:
    graph = build_llm_graph(load_model_config(name), Phase.decode(1, 1))
    assert graph.parameter_count / 1e9 == pytest.approx(PUBLISHED_B[name], rel=0.005)


def test_mixtral_active_parameters_match_published() -> None:
    cfg = load_model_config("mixtral-8x7b")
    graph = build_llm_graph(cfg, Phase.decode(1, 1))
    assert active_parameters(graph, cfg) / 1e9 == pytest.approx(12.88, rel=0.005)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_shipped_model_builds_verified_prefill_and_decode(name: str) -> None:
    cfg = load_model_config(name)
    for phase in (Phase.prefill(2, 16), Phase.decode(3, 100)):
        graph = verify(build_llm_graph(cfg, phase))
        assert graph.outputs[0].shape == (phase.batch, 1, cfg.vocab_size)
        caches = [t for t in graph.outputs[1:]]
        assert len(caches) == 2 * cfg.num_layers
        assert all(t.shape[1] == phase.past_tokens + phase.new_tokens for t in caches)


def test_dense_decode_flops_follow_the_closed_form() -> None:
    """Decode FLOPs = 2 x (non-embedding parameters) + attention 4*D*H*(K+1) per layer + small
    elementwise work; the matmul part must be exact."""
    cfg = load_model_config("llama-3.1-8b")
    k = 1000
    card = summarize(cfg, prompt_tokens=16, kv_length=k)
    params = build_llm_graph(cfg, Phase.decode(1, 1)).parameter_count
    embed = cfg.vocab_size * cfg.hidden_size
    norms = (2 * cfg.num_layers + 1) * cfg.hidden_size
    gemm = 2.0 * (params - embed - norms)  # untied head: every non-embedding matrix once
    attention = 4.0 * cfg.head_dim * cfg.num_heads * (k + 1) * cfg.num_layers
    flops = card["decode"]["flops_per_token"]
    assert gemm + attention < flops < (gemm + attention) * 1.002


def test_kv_cache_bytes_per_token_for_llama_3_1_70b() -> None:
    card = summarize(load_model_config("llama-3.1-70b"), 16, 16)
    assert card["kv_cache_bytes_per_token"] == 2 * 80 * 8 * 128 * 2  # K and V, 80 layers, bf16


def test_precision_sets_weight_and_cache_bytes() -> None:
    cfg = load_model_config("llama-3.1-8b")
    fp8 = Precision(DType.FP8_E4M3, DType.BF16, DType.FP8_E4M3)
    graph = build_llm_graph(cfg, Phase.decode(1, 10), fp8)
    big = [w for w in graph.weights if w.numel > cfg.hidden_size]
    assert all(w.dtype is DType.FP8_E4M3 for w in big)
    assert all(t.dtype is DType.FP8_E4M3 for t in graph.outputs[1:])


def _write_config(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return path


def test_unsupported_model_type_names_the_field(tmp_path: Path) -> None:
    path = _write_config(tmp_path, {"model_type": "bert", "hidden_size": 8})
    with pytest.raises(TegelError, match=r"config.json: field 'model_type': unsupported 'bert'"):
        load_model_config(path)


def test_missing_field_names_the_field(tmp_path: Path) -> None:
    raw = json.loads(Path(load_model_config.__code__.co_filename).parent.joinpath(
        "configs", "llama-3.1-8b.json").read_text())
    del raw["intermediate_size"]
    with pytest.raises(TegelError, match=r"field 'intermediate_size': expected a positive integer"):
        load_model_config(_write_config(tmp_path, raw))


def test_unsupported_rope_scaling_is_an_error(tmp_path: Path) -> None:
    raw = {"model_type": "llama", "hidden_size": 8, "intermediate_size": 8, "vocab_size": 8,
           "num_hidden_layers": 1, "num_attention_heads": 2,
           "rope_scaling": {"rope_type": "yarn", "factor": 4.0}}
    with pytest.raises(TegelError, match="rope_scaling"):
        load_model_config(_write_config(tmp_path, raw))


def test_bad_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{\n  "model_type": "llama",\n  oops\n}')
    with pytest.raises(TegelError, match=r"config.json: line 3"):
        load_model_config(path)


@pytest.mark.parametrize("family", ["mixtral", "gpt2", "qwen2", "qwen3", "qwen3-moe",
                                    "phi3", "gemma2", "gemma3"])
def test_hf_folder_loader_feeds_real_weights(family: str, tmp_path: Path) -> None:
    model, _ = tiny_model(family, seed=3)
    model.save_pretrained(tmp_path)
    cfg, weights = load_hf_folder(tmp_path)
    ids = np.array([[5, 17, 3, 9]])
    feeds = {"input_ids": ids, "position_ids": np.arange(4)[None], **weights}
    logits = interpret(build_llm_graph(cfg, Phase.prefill(1, 4), Precision.uniform(DType.FP32),
                                       "all"), feeds)["logits"]
    with torch.no_grad():
        expected = model(torch.tensor(ids)).logits.numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)


def test_hf_folder_without_weights_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text((Path(__file__).parents[2] / "src/tegel/workload/"
                                           "configs/gpt2.json").read_text())
    with pytest.raises(TegelError, match=r"no \*\.safetensors"):
        load_hf_folder(tmp_path)


def test_safetensors_reader_handles_bf16_and_fp8(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from tegel.workload.weights import read_safetensors

    tensors = {"a": torch.randn(3, 5).bfloat16(), "b": torch.randn(4).to(torch.float8_e4m3fn),
               "c": torch.arange(6, dtype=torch.int32).reshape(2, 3)}
    save_file(tensors, tmp_path / "m.safetensors")
    got = read_safetensors(tmp_path / "m.safetensors")
    for name, t in tensors.items():
        np.testing.assert_array_equal(got[name].astype(np.float32), t.float().numpy())


def test_corrupt_safetensors_is_an_error(tmp_path: Path) -> None:
    from tegel.workload.weights import read_safetensors

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(TegelError, match=r"bad\.safetensors: not a safetensors file"):
        read_safetensors(bad)
