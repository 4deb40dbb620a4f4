"""Gemma 3 4B-27B: linear rotary scaling on the global layers only, the multimodal `gemma3`
config read for its language model, and the 27B's parameters counted as transformers counts
them (the logits of a scaled tiny model against transformers are in
test_transformers_equivalence.py, entry `gemma3-linear`)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import transformers as T

from tegel.errors import TegelError
from tegel.workload import Phase, build_llm_graph, load_model_config
from tegel.workload.ir import LinearScaling, Rope
from tegel.workload.model_config import parse_config

SHIPPED = Path(__file__).parents[2] / "src" / "tegel" / "workload" / "configs" / "gemma-3-27b-it.json"


def _hub_multimodal() -> dict:
    """google/gemma-3-27b-it's config.json as published: a sparse text_config (SOURCES.md)."""
    return {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
            "text_config": {"head_dim": 128, "hidden_size": 5376, "intermediate_size": 21504,
                            "model_type": "gemma3_text", "num_attention_heads": 32,
                            "num_hidden_layers": 62, "num_key_value_heads": 16,
                            "query_pre_attn_scalar": 168,
                            "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
                            "sliding_window": 1024},
            "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152}}


def test_only_the_global_layers_are_scaled() -> None:
    cfg = load_model_config("gemma-3-27b-it")
    assert cfg.rope_scaling == LinearScaling(8.0)
    graph = build_llm_graph(replace(cfg, num_layers=6), Phase(1, 1, 3))
    ropes = {op.layer: op.attrs for op in graph.ops if isinstance(op.attrs, Rope)}
    for layer, attrs in ropes.items():
        full = layer in cfg.full_attention_layers
        assert (attrs.scaling == LinearScaling(8.0)) == full
        assert attrs.theta == (1e6 if full else 1e4)


def test_the_multimodal_config_reads_as_its_language_model() -> None:
    hub = parse_config(_hub_multimodal(), "gemma-3-27b-it", "hub config.json")
    shipped = load_model_config("gemma-3-27b-it")
    assert replace(hub, name=shipped.name) == shipped


def test_a_multimodal_config_without_a_text_model_names_the_field() -> None:
    raw = _hub_multimodal()
    raw["text_config"] = {"model_type": "siglip_vision_model"}
    with pytest.raises(TegelError, match="text_config"):
        parse_config(raw, "x", "x/config.json")


def test_scaled_rotary_on_the_sliding_layers_is_refused() -> None:
    raw = json.loads(SHIPPED.read_text())
    raw.pop("rope_scaling")
    raw["rope_parameters"] = {"sliding_attention": {"rope_type": "linear", "factor": 2.0,
                                                    "rope_theta": 1e4},
                              "full_attention": {"rope_type": "default", "rope_theta": 1e6}}
    with pytest.raises(TegelError, match="rope_parameters"):
        parse_config(raw, "x", "x/config.json")


def test_27b_parameters_are_transformers_count() -> None:
    raw = json.loads(SHIPPED.read_text())
    with torch.device("meta"):
        model = T.Gemma3ForCausalLM(T.Gemma3TextConfig(**raw))
    expected = sum(p.numel() for p in model.parameters())
    graph = build_llm_graph(load_model_config("gemma-3-27b-it"), Phase(1, 1, 0))
    assert graph.parameter_count == expected
    assert abs(expected / 27.0e9 - 1) < 0.02  # "27B" (the published total adds a 0.4 B vision tower)
