"""tegel's reference execution of an LLM graph equals Hugging Face `transformers` in fp32.

For each family: prefill of L tokens (logits at every position and the KV caches), then one
decode step on top of those caches. Weights are random, made in the test.
"""

from __future__ import annotations

import numpy as np
import pytest

from tegel.workload import Phase, Precision, build_llm_graph, interpret
from tegel.workload.dtypes import DType
from tegel.workload.weights import to_canonical
from workload.hf_models import TINY, decode_matches, prefill_matches, state_numpy, tiny_model

FP32 = Precision.uniform(DType.FP32)
BATCH, PROMPT = 2, 7
TOL = 1e-4


def _hf_cache(past, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys and values of one layer as [B, K, Hkv*D] (transformers keeps [B, Hkv, K, D])."""
    entry = past.layers[layer]
    keys, values = entry.keys, entry.values
    b, h, k, d = keys.shape
    return tuple(t.permute(0, 2, 1, 3).reshape(b, k, h * d).numpy() for t in (keys, values))


# DeepSeek's latent cache is one tensor per layer, checked in test_deepseek.py
@pytest.mark.parametrize("family", sorted(f for f in TINY if TINY[f].model_type != "deepseek_v3"))
def test_prefill_and_decode_match_transformers(family: str) -> None:
    p = prefill_matches(family, BATCH, PROMPT, TOL)
    cfg, got = p.cfg, p.got
    for layer in range(cfg.num_layers):
        hf_k, hf_v = _hf_cache(p.hf.past_key_values, layer)
        # a sliding-window (or chunked) cache in transformers keeps only the newest window - 1
        # positions
        kept = hf_k.shape[1]
        windows = {w - 1 for w in (cfg.sliding_window, cfg.attention_chunk) if w is not None}
        assert kept == PROMPT or kept in windows
        np.testing.assert_allclose(got[f"present.{layer}.k"][:, -kept:], hf_k, atol=TOL, rtol=0)
        np.testing.assert_allclose(got[f"present.{layer}.v"][:, -kept:], hf_v, atol=TOL, rtol=0)
    decode_matches(p, TOL)


def test_last_token_logits_equal_the_last_row_of_all_logits() -> None:
    model, cfg = tiny_model("llama")
    weights = to_canonical(cfg, state_numpy(model))
    ids = np.arange(10).reshape(2, 5) % cfg.vocab_size
    feeds = {"input_ids": ids, "position_ids": np.broadcast_to(np.arange(5), ids.shape), **weights}
    every = interpret(build_llm_graph(cfg, Phase.prefill(2, 5), FP32, "all"), feeds)["logits"]
    last = interpret(build_llm_graph(cfg, Phase.prefill(2, 5), FP32, "last"), feeds)["logits"]
    np.testing.assert_allclose(last, every[:, -1:], atol=1e-5, rtol=0)
