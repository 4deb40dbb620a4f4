"""Llama 4 (Scout, Maverick): how its layers differ, read from a `llama4_text` config.

Llama 4 interleaves layer kinds (transformers' `Llama4TextModel`):
- RoPE layers (`no_rope_layers[i] == 1`) rotate q and k (interleaved pairs), L2-normalise
  each q and k head after the rotation when `use_qk_norm`, and attend within chunks of
  `attention_chunk_size` positions (`layer_types` "chunked_attention");
- NoPE layers (every `no_rope_layer_interval`-th) skip the rotation and the norm, attend over
  the whole causal past, and scale each query by a temperature that grows with its position
  (`attn_temperature_tuning`, `floor_scale`, `attn_scale`);
- MoE layers (`moe_layers`, or every `interleave_moe_layer_step`-th) route each token to
  its top-k experts by sigmoid of the router logits (unnormalised), scale the expert's input
  by that score, and add a shared expert of the experts' width; the other layers have a
  dense MLP of width `intermediate_size_mlp`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tegel.workload.ir import QueryTemperature

if TYPE_CHECKING:
    from tegel.workload.config_fields import _Fields


@dataclass(frozen=True, slots=True)
class Llama4Layout:
    """Which layers are of which kind, and the parameters of the kinds."""

    moe_layers: frozenset[int]
    nope_layers: frozenset[int]
    chunked_layers: frozenset[int]
    attention_chunk: int | None
    temperature: QueryTemperature | None  # on the NoPE layers; None when tuning is off
    qk_l2_norm: bool  # on the RoPE layers


def _layer_list(f: _Fields, key: str, layers: int) -> list[int] | None:
    """A list of layer indices (or of 0/1 flags) from `key`; None when absent or empty."""
    value = f.raw.get(key)
    if value is None or value == []:
        return None
    if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise f._fail(key, f"a list of integers in 0..{layers - 1}")
    return value


def read_layout(f: _Fields, layers: int) -> Llama4Layout:
    """The layer kinds of a `llama4_text` config, with transformers' defaults for missing
    fields (every layer MoE; every fourth layer NoPE; chunks of 8192; tuning on)."""
    moe = _layer_list(f, "moe_layers", layers)
    if moe is None:
        step = f.integer("interleave_moe_layer_step", 1)
        moe = list(range(step - 1, layers, step))
    if any(i >= layers for i in moe):
        raise f._fail("moe_layers", f"layer indices below num_hidden_layers {layers}")
    rope_flags = _layer_list(f, "no_rope_layers", layers)
    if rope_flags is None:
        interval = f.integer("no_rope_layer_interval", 4)
        rope_flags = [int((i + 1) % interval != 0) for i in range(layers)]
    if len(rope_flags) < layers or any(v > 1 for v in rope_flags):
        raise f._fail("no_rope_layers", f"at least {layers} flags of 1 (RoPE) or 0 (NoPE)")
    nope = frozenset(i for i in range(layers) if not rope_flags[i])
    chunk = None if f.raw.get("attention_chunk_size", 8192) is None else f.integer(
        "attention_chunk_size", 8192)
    kinds = f.raw.get("layer_types")
    if kinds is None:
        chunked = frozenset() if chunk is None else frozenset(range(layers)) - nope
    elif (not isinstance(kinds, list) or len(kinds) != layers
          or not all(k in ("chunked_attention", "full_attention") for k in kinds)
          or (chunk is None and "chunked_attention" in kinds)):
        raise f._fail("layer_types", f"{layers} entries of 'chunked_attention' (with an "
                      "attention_chunk_size) or 'full_attention'")
    else:
        chunked = frozenset(i for i, k in enumerate(kinds) if k == "chunked_attention")
    return Llama4Layout(
        moe_layers=frozenset(moe),
        nope_layers=nope,
        chunked_layers=chunked,
        attention_chunk=chunk,
        temperature=_temperature(f),
        qk_l2_norm=f.boolean("use_qk_norm", True),
    )


def _temperature(f: _Fields) -> QueryTemperature | None:
    """Temperature tuning, when on. Published configs write `attn_temperature_tuning` as an
    integer (Scout: 4), which transformers reads as true when non-zero."""
    tuning = f.raw.get("attn_temperature_tuning", True)
    if not isinstance(tuning, (bool, int)):
        raise f._fail("attn_temperature_tuning", "true, false or an integer")
    if not tuning:
        return None
    return QueryTemperature(f.number("floor_scale", 8192.0), f.number("attn_scale", 0.1))
