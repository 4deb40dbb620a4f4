"""`tegel inspect`'s figures: minimal graph bytes count the KV cache a decode step reads.

The Llama-3.1-8B case is worked by hand from the model card's numbers, not from the code.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tegel.workload import Phase, Role, build_llm_graph, load_model_config
from tegel.workload.summary import graph_min_bytes, summarize


def test_llama_3_1_8b_decode_at_batch_64_and_128k_is_memory_bound() -> None:
    """By hand (bf16, 2 bytes per element; hidden 4096, 32 layers, 32 heads / 8 KV heads of
    128, MLP 14336, vocab 128256; batch B = 64, KV length K = 131071):

    one layer's weights: q and o 4096², k and v 4096·1024, gate/up/down 3·4096·14336, two
    norms 2·4096 = 218,112,000 elements; 32 layers: 6,979,584,000. Outside the layers: the
    LM head 128256·4096 = 525,336,576, the final norm 4096 and the 64 embedding rows the
    batch looks up, 64·4096 = 262,144. Weights read: 7,505,186,816 elements = 15.01 GB.
    KV cache read: keys and values, 32 layers, B·K positions of 1024 channels:
    2·32·64·131071·1024·2 B = 1,099,503,239,168 B = 1.0995 TB.
    Written: logits 64·128256·2 B, new K and V 2·32·64·1024·2 B; ids and positions 2·64·4 B.
    FLOPs: 2 per weight multiply-add, B·2·(32·218,103,808 + 525,336,576) = 0.96 TFLOP, plus
    attention's 4·128 FLOPs per (query, key) pair and head and 5 for the softmax:
    B·32 layers·32 heads·(K + 1)·517 = 4.44 TFLOP; 5.40 TFLOP in all.
    FLOP/B = 5.40 TFLOP / 1.1145 TB = 4.85 — memory-bound on any accelerator (an H100's
    ridge is ~300 FLOP/B). Leaving out the KV reads gave 359 FLOP/B: "compute-bound".
    """
    b, k = 64, 131071
    weight_bytes = 2 * (32 * 218_112_000 + 525_336_576 + 4096 + 64 * 4096)
    kv_read = 2 * 32 * b * k * 1024 * 2
    written = b * 128256 * 2 + 2 * 32 * b * 1024 * 2
    ids = 2 * b * 4
    by_hand_bytes = weight_bytes + kv_read + written + ids
    by_hand_flops = b * 2 * (32 * 218_103_808 + 525_336_576) + b * 32 * 32 * (k + 1) * 517
    assert by_hand_bytes == 1_114_538_418_688  # 1.1145 TB
    assert by_hand_flops / by_hand_bytes == pytest.approx(4.85, abs=0.005)

    card = summarize(load_model_config("llama-3.1-8b"), prompt_tokens=16, kv_length=k, batch=b)
    decode = card["decode"]
    assert isinstance(decode, dict)
    assert decode["graph_bytes"] == by_hand_bytes
    assert decode["graph_bytes_per_token"] == pytest.approx(by_hand_bytes / b)
    # elementwise work (norms, rope, SiLU, residuals) adds 0.005 %
    assert decode["flops"] == pytest.approx(by_hand_flops, rel=1e-4)
    intensity = decode["arithmetic_intensity_flops_per_byte"]
    assert intensity == pytest.approx(by_hand_flops / by_hand_bytes, rel=1e-4)
    assert 4 < intensity < 6


def test_prefill_reads_no_cache_and_decode_reads_all_of_it() -> None:
    cfg = replace(load_model_config("llama-3.2-1b"), num_layers=2)
    empty = build_llm_graph(cfg, Phase.decode(2, 1))
    past = build_llm_graph(cfg, Phase.decode(2, 301))
    cache = sum(t.nbytes for t in past.inputs if t.role is Role.KV_CACHE)
    empty_cache = sum(t.nbytes for t in empty.inputs if t.role is Role.KV_CACHE)
    assert graph_min_bytes(past) - graph_min_bytes(empty) == pytest.approx(cache - empty_cache)
    prefill = build_llm_graph(cfg, Phase.prefill(2, 300))
    assert all(t.role is not Role.KV_CACHE for t in prefill.inputs)


def test_a_sliding_window_reads_only_the_window_of_the_cache() -> None:
    cfg = replace(load_model_config("mistral-7b"), num_layers=1)
    window = cfg.sliding_window
    assert window is not None
    k, b = 3 * window, 2
    graph = build_llm_graph(cfg, Phase.decode(b, k))
    full = build_llm_graph(replace(cfg, sliding_window=None), Phase.decode(b, k))
    per_position = 2 * b * cfg.num_kv_heads * cfg.head_dim * 2  # keys and values, bf16
    # the new position is in the window, so the step reads window - 1 cached positions
    assert graph_min_bytes(full) - graph_min_bytes(graph) == pytest.approx(
        per_position * (k - (window - 1)))
