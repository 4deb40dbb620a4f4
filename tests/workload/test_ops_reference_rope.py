"""Rotary embedding against independent implementations: rotate-half (Llama/NeoX),
rotate-every-two (GPT-J), partial rotary dims, and Llama-3 frequency scaling vs transformers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers as T
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from tegel.workload.ir import OpKind, Rope, RopeScaling
from tegel.workload.reference import rope_inv_freq
from workload.test_ops_reference import close, rand, run_one

# ---- rope ------------------------------------------------------------------------------------


def rope_rotate_half(x: torch.Tensor, pos: torch.Tensor, inv_freq: torch.Tensor,
                     heads: int, rotary_dim: int) -> torch.Tensor:
    """Llama/NeoX rotary embedding, written as transformers does (rotate_half)."""
    b, seq, _ = x.shape
    xh = x.view(b, seq, heads, -1)
    freqs = pos[..., None].double() * inv_freq.double()[None, None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos().float()[:, :, None, :], emb.sin().float()[:, :, None, :]
    rot, rest = xh[..., :rotary_dim], xh[..., rotary_dim:]
    x1, x2 = rot[..., : rotary_dim // 2], rot[..., rotary_dim // 2 :]
    rotated = torch.cat([-x2, x1], dim=-1)
    return torch.cat([rot * cos + rotated * sin, rest], dim=-1).reshape(b, seq, -1)


def rope_rotate_every_two(x: torch.Tensor, pos: torch.Tensor, inv_freq: torch.Tensor,
                          heads: int, rotary_dim: int) -> torch.Tensor:
    """GPT-J rotary embedding (rotate_every_two with interleaved sin/cos)."""
    b, seq, _ = x.shape
    xh = x.view(b, seq, heads, -1)
    freqs = pos[..., None].double() * inv_freq.double()[None, None, :]
    cos = freqs.cos().float().repeat_interleave(2, dim=-1)[:, :, None, :]
    sin = freqs.sin().float().repeat_interleave(2, dim=-1)[:, :, None, :]
    rot, rest = xh[..., :rotary_dim], xh[..., rotary_dim:]
    rotated = torch.stack([-rot[..., 1::2], rot[..., 0::2]], dim=-1).flatten(-2)
    return torch.cat([rot * cos + rotated * sin, rest], dim=-1).reshape(b, seq, -1)


def plain_inv_freq(theta: float, rotary_dim: int) -> torch.Tensor:
    return 1.0 / theta ** (torch.arange(0, rotary_dim, 2, dtype=torch.float64) / rotary_dim)


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("rotary_dim", [16, 8, 2])
def test_rope_matches_torch(interleaved: bool, rotary_dim: int) -> None:
    heads, d, theta = 3, 16, 10000.0
    rng = np.random.default_rng(13)
    x = rand(rng, 2, 5, heads * d)
    pos = rng.integers(0, 200, size=(2, 5)).astype(np.int32)  # arbitrary, per batch row
    attrs = Rope(heads, d, rotary_dim, theta, interleaved)
    (got,) = run_one(OpKind.ROPE, attrs, x, pos)
    impl = rope_rotate_every_two if interleaved else rope_rotate_half
    want = impl(torch.tensor(x), torch.tensor(pos), plain_inv_freq(theta, rotary_dim), heads,
                rotary_dim)
    close(got, want, atol=2e-5)
    if rotary_dim < d:  # the channels past rotary_dim pass through untouched
        tail = x.reshape(2, 5, heads, d)[..., rotary_dim:]
        np.testing.assert_array_equal(got.reshape(2, 5, heads, d)[..., rotary_dim:], tail)


def test_rope_at_position_zero_is_identity() -> None:
    x = np.random.default_rng(14).standard_normal((1, 3, 8)).astype(np.float32)
    (got,) = run_one(OpKind.ROPE, Rope(2, 4, 4, 10000.0), x, np.zeros((1, 3), np.int32))
    np.testing.assert_allclose(got, x, atol=1e-7)


LLAMA3 = RopeScaling(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                     original_max_position_embeddings=64)


def hf_llama3_inv_freq(theta: float, head_dim: int, s: RopeScaling) -> torch.Tensor:
    config = T.LlamaConfig(
        hidden_size=2 * head_dim, num_attention_heads=2, head_dim=head_dim,
        rope_parameters={"rope_type": "llama3", "rope_theta": theta, "factor": s.factor,
                         "low_freq_factor": s.low_freq_factor,
                         "high_freq_factor": s.high_freq_factor,
                         "original_max_position_embeddings": s.original_max_position_embeddings},
    )
    inv_freq, attention_factor = ROPE_INIT_FUNCTIONS["llama3"](config, None)
    assert attention_factor == 1.0
    return inv_freq


def test_llama3_inv_freq_matches_transformers() -> None:
    theta, d = 500000.0, 32
    attrs = Rope(2, d, d, theta, scaling=LLAMA3)
    got = rope_inv_freq(attrs)
    want = hf_llama3_inv_freq(theta, d, LLAMA3).double().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # the case exercises all three regimes: kept, divided by factor, and smoothed in between
    plain = plain_inv_freq(theta, d).numpy()
    ratio = got / plain
    assert np.isclose(ratio, 1.0).any()
    assert np.isclose(ratio, 1 / LLAMA3.factor).any()
    assert ((ratio > 1 / LLAMA3.factor + 1e-3) & (ratio < 1 - 1e-3)).any()


def test_llama3_rope_output_matches_transformers_frequencies() -> None:
    heads, d, theta = 2, 32, 500000.0
    rng = np.random.default_rng(15)
    x = rand(rng, 1, 6, heads * d)
    # modest positions: transformers' inv_freq is fp32, so angle error grows with position
    pos = np.array([[0, 1, 17, 40, 63, 90]], dtype=np.int32)
    (got,) = run_one(OpKind.ROPE, Rope(heads, d, d, theta, scaling=LLAMA3), x, pos)
    want = rope_rotate_half(torch.tensor(x), torch.tensor(pos),
                            hf_llama3_inv_freq(theta, d, LLAMA3), heads, d)
    close(got, want, atol=2e-5)
