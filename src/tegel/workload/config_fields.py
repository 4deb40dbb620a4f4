"""Typed access to a Hugging Face `config.json` dict: `_Fields` reads a field as a bounded
integer, a finite number, a flag, an activation or rotary scaling, and names the file and the
field when it is missing, ill-typed or beyond the generous physical bounds below. The family
readers (`model_config`, `deepseek_config`, `llama4`) read every field through it.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from typing import Any

from tegel.errors import TegelError
from tegel.workload.ir import LinearScaling, RopeScaling, UnaryFn, YarnScaling


class _Fields:
    """Typed access to a config dict; errors name the file and the field."""

    def __init__(self, raw: Mapping[str, Any], source: str) -> None:
        self.raw, self.source = raw, source

    def _fail(self, key: str, expected: str) -> TegelError:
        got = self.raw.get(key, "<missing>")
        return TegelError(f"{self.source}: field '{key}': expected {expected}, "
                          f"got {_short(got)}")

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.raw.get(key, default)
        if value is None and default is not None:
            value = default
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self._fail(key, "a positive integer")
        bound = _INT_BOUNDS.get(key, _MAX_INT)
        if value > bound:
            raise self._fail(key, f"a positive integer at most {bound:,}")
        return value

    def opt_int(self, key: str) -> int | None:
        return None if self.raw.get(key) is None else self.integer(key)

    def number(self, key: str, default: float | None = None) -> float:
        value = self.raw.get(key)
        value = default if value is None else value
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
                or value > _MAX_NUMBER or not math.isfinite(value)):
            raise self._fail(key, "a finite positive number")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value

    def activation(self, key: str, default: str) -> UnaryFn:
        name = self.raw.get(key, default)
        if not isinstance(name, str) or name not in _ACTIVATIONS:
            raise self._fail(key, "one of " + ", ".join(sorted(_ACTIVATIONS)))
        return _ACTIVATIONS[name]

    def rope(self, yarn: bool = False
             ) -> tuple[float, RopeScaling | YarnScaling | LinearScaling | None]:
        """(theta, scaling) from `rope_theta` + `rope_scaling`, or transformers 5's
        `rope_parameters` (which holds both). YaRN only where the family allows it."""
        key = "rope_parameters" if self.raw.get("rope_parameters") is not None else "rope_scaling"
        scaling = self.raw.get(key)
        params = self.raw.get("rope_parameters")
        theta_source = _Fields(params, f"{self.source}: {key}") if isinstance(params, dict) else self
        theta = theta_source.number("rope_theta", 10000.0)
        if scaling is None:
            return theta, None
        kind = scaling.get("rope_type", scaling.get("type")) if isinstance(scaling, dict) else None
        if kind == "default":
            return theta, None
        if kind in ("longrope", "su"):
            raise self._fail(key, "null or a rope_type of 'default' or 'llama3' (LongRoPE, as in "
                             "Phi-3-128k, Phi-3.5 and Phi-4-mini, is not supported: its "
                             "frequencies switch with the sequence length)")
        sub = _Fields(scaling, f"{self.source}: {key}")
        if kind == "yarn" and yarn:
            return theta, YarnScaling(
                factor=sub.number("factor"),
                original_max_position_embeddings=sub.integer("original_max_position_embeddings"),
                beta_fast=sub.number("beta_fast", 32.0),
                beta_slow=sub.number("beta_slow", 1.0),
                mscale=sub.number("mscale", 1.0),
                mscale_all_dim=_opt_number(sub, "mscale_all_dim") or 0.0,
            )
        if kind == "linear":
            return theta, LinearScaling(sub.number("factor"))
        if kind != "llama3":
            allowed = "'default', 'linear', 'llama3'" + (" or 'yarn'" if yarn else "")
            raise self._fail(key, f"null or a rope_type of {allowed}")
        return theta, RopeScaling(
            factor=sub.number("factor"),
            low_freq_factor=sub.number("low_freq_factor"),
            high_freq_factor=sub.number("high_freq_factor"),
            original_max_position_embeddings=sub.integer("original_max_position_embeddings"),
        )


def _short(value: object) -> str:
    """`value`'s repr, truncated: an error line never echoes a huge or deep value whole."""
    return _REPR.repr(value)


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80


# Generous physical bounds, checked before anything is built: the largest published models
# are far inside them (a few hundred layers, hidden 2^15, vocab ~260k, 256 experts), and a
# config beyond them would build graphs that no longer fit in memory.
_MAX_INT = 1 << 31  # any other integer field (positions, windows, ranks, ...)
_MAX_NUMBER = 1e30  # any positive number field (theta, eps, scales, caps)
_LAYERS, _WIDTH, _HEADS, _VOCAB, _EXPERTS = 1024, 1 << 20, 1 << 14, 1 << 24, 1 << 14
MAX_WIDTH, MAX_EXPERTS = _WIDTH, _EXPERTS  # for family readers that combine fields
_INT_BOUNDS = {
    "num_hidden_layers": _LAYERS, "n_layer": _LAYERS,
    "hidden_size": _WIDTH, "n_embd": _WIDTH, "intermediate_size": _WIDTH, "n_inner": _WIDTH,
    "moe_intermediate_size": _WIDTH, "intermediate_size_mlp": _WIDTH, "head_dim": _WIDTH,
    "rotary_dim": _WIDTH, "kv_lora_rank": _WIDTH, "q_lora_rank": _WIDTH, "v_head_dim": _WIDTH,
    "qk_nope_head_dim": _WIDTH, "qk_rope_head_dim": _WIDTH,
    "num_attention_heads": _HEADS, "n_head": _HEADS, "num_key_value_heads": _HEADS,
    "vocab_size": _VOCAB,
    "num_local_experts": _EXPERTS, "num_experts": _EXPERTS, "n_routed_experts": _EXPERTS,
    "num_experts_per_tok": _EXPERTS, "n_group": _EXPERTS, "topk_group": _EXPERTS,
}


_ACTIVATIONS = {
    "silu": UnaryFn.SILU,
    "swish": UnaryFn.SILU,
    "gelu": UnaryFn.GELU,
    "gelu_new": UnaryFn.GELU_TANH,
    "gelu_pytorch_tanh": UnaryFn.GELU_TANH,
    "relu": UnaryFn.RELU,
}


def _opt_number(f: _Fields, key: str) -> float | None:
    return None if f.raw.get(key) is None else f.number(key)
