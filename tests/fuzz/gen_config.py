"""Mutated config.json files: the shipped configurations with fields set to hostile values,
deleted, or the file's bytes damaged. `cases(seed, n)` yields (label, thunk); thunk() reads the
file as `tegel inspect` does (parse, then build the decode graph) and returns, or raises
TegelError. Anything else it raises, or a non-finite or out-of-bounds config it returns, is a
finding. Used by tests/workload/test_fuzz_model.py and benchmarks/fuzz.py."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import tempfile
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

Thunk = Callable[[], object]

HOSTILE: tuple[Any, ...] = (
    0, -1, 1, 2, 3, 7, 10**9, 10**18, 10**400, -(10**400), 1e308, 1e-300, 0.5, -0.0,
    math.inf, -math.inf, math.nan, "", "x", "silu", "llama", "A" * 300, {}, [], [1], [{}],
    [0, 1], None, True, False, {"rope_type": "llama3"}, {"rope_type": "yarn", "factor": 0},
    {"rope_type": "linear", "factor": math.inf}, [[[[[]]]]], {"a": {"b": {"c": None}}},
)
LAYER_LISTS = ("layer_types", "moe_layers", "no_rope_layers")


@cache
def _bases() -> tuple[tuple[str, str], ...]:
    """(name, JSON text) of every shipped config, shrunk to two layers where that still parses
    (so that the graph each example builds stays small)."""
    from tegel.errors import TegelError
    from tegel.workload.model_config import parse_config, shipped_models

    out = []
    for name in shipped_models():
        raw = json.loads((resources.files("tegel.workload") / "configs" / f"{name}.json")
                         .read_text())
        small = json.loads(json.dumps(raw))
        for holder in (small, small.get("text_config")):
            if isinstance(holder, dict):
                for key in ("num_hidden_layers", "n_layer"):
                    if key in holder:
                        holder[key] = 2
                for key in LAYER_LISTS:
                    if isinstance(holder.get(key), list):
                        holder[key] = holder[key][:2]
                if "first_k_dense_replace" in holder:
                    holder["first_k_dense_replace"] = 1
        try:
            parse_config(small, name, name)
            raw = small
        except TegelError:
            pass
        out.append((name, json.dumps(raw)))
    return tuple(out)


def _keys(raw: dict[str, Any]) -> list[str]:
    keys = sorted(raw)
    for _, text in _bases():
        keys += sorted(json.loads(text))
    return sorted(set(keys))


def _mutate_fields(rng: random.Random, raw: dict[str, Any]) -> str:
    target = raw
    if isinstance(raw.get("text_config"), dict) and rng.random() < 0.7:
        target = raw["text_config"]
    labels = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        key = rng.choice(_keys(target))
        if rng.random() < 0.15:
            target.pop(key, None)
            labels.append(f"del {key}")
            continue
        value = rng.choice(HOSTILE)
        if isinstance(target.get(key), int) and not isinstance(target.get(key), bool) \
                and rng.random() < 0.3:
            value = rng.choice((target[key] + 1, target[key] - 1, target[key] * 2,
                                target[key] // 3, -target[key]))
        target[key] = value
        labels.append(f"{key}={str(value)[:40]}")
    return ", ".join(labels)


def _mutate_bytes(rng: random.Random, text: str) -> tuple[str, bytes]:
    data = text.encode()
    kind = rng.choice(("truncate", "byte", "nest", "digits", "constant", "empty", "bom"))
    if kind == "truncate":
        return kind, data[: rng.randrange(len(data))]
    if kind == "byte":
        i = rng.randrange(len(data))
        byte = bytes([rng.choice((0x00, 0x80, 0xFF, 0xC3, 0x22, 0x7B))])
        return kind, data[:i] + byte + data[i + 1 :]
    if kind == "nest":
        depth = rng.choice((10, 400, 5_000, 50_000))
        nest = b"[" * depth + b"]" * depth
        return f"nest {depth}", b'{"model_type": "llama", "x": ' + nest + b"}"
    if kind == "digits":
        digits = rng.choice((20, 400, 4_299, 5_000))
        key = rng.choice(("hidden_size", "vocab_size", "rope_theta", "num_hidden_layers"))
        raw = json.loads(text)
        raw[key] = 0
        text = json.dumps(raw).replace(f'"{key}": 0', f'"{key}": ' + "9" * digits)
        return f"digits {key} {digits}", text.encode()
    if kind == "constant":
        const = rng.choice(("NaN", "Infinity", "-Infinity", "1e999", "-1e999"))
        raw = json.loads(text)
        key = rng.choice(sorted(raw))
        raw[key] = 0
        text = json.dumps(raw).replace(f'"{key}": 0', f'"{key}": {const}')
        return f"{key}={const}", text.encode()
    if kind == "bom":
        return kind, b"\xef\xbb\xbf" + data
    return kind, b""


def check_config(cfg: object) -> None:
    """A config that parsed: every number in it finite, every size within the bounds."""
    for field in dataclasses.fields(cfg):  # type: ignore[arg-type]
        value = getattr(cfg, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise AssertionError(f"config field {field.name} is {value}")
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= 1 << 31:
            raise AssertionError(f"config field {field.name} is {value}")


def _thunk(data: bytes) -> Thunk:
    def run() -> object:
        from tegel.workload.llm import Phase, build_llm_graph
        from tegel.workload.model_config import load_model_config

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "config.json"
            path.write_bytes(data)
            cfg = load_model_config(path)
        check_config(cfg)
        if cfg.num_layers <= 64:  # the graph is what inspect and run build next
            return build_llm_graph(cfg, Phase.decode(1, 16))
        return cfg

    return run


def cases(seed: int, n: int) -> Iterator[tuple[str, Thunk]]:
    """`n` mutated config.json files, the same ones for the same seed."""
    rng = random.Random(seed)
    bases = _bases()
    for _ in range(n):
        name, text = rng.choice(bases)
        if rng.random() < 0.75:
            raw = json.loads(text)
            label = _mutate_fields(rng, raw)
            data = json.dumps(raw).encode()
        else:
            label, data = _mutate_bytes(rng, text)
        yield f"config {name}: {label}", _thunk(data)
