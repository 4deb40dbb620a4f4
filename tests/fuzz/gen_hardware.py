"""Fuzz inputs for the hardware surface (issue 18): mutated preset YAML files.

Each case starts from a shipped chip, template or system preset and applies one mutation: a type
swap, an extreme number, deep nesting, a YAML alias bomb, an unknown key, a deleted field, a long
string, a byte that is not UTF-8, a self-reference or an integer past a float. Its thunk writes the
file to a fresh folder, loads it with `load_system` and summarizes its figures; it returns the
figures (every number finite) or raises TegelError. Anything else is a finding: `NonFinite` for a
NaN or infinity among the figures, any other exception a traceback.

`generate(rng)` gives one `(label, thunk)`; `cases(seed, n)` yields `n` of them, reproducibly.
The label is `kind: detail`, the kind one of KINDS (benchmarks/fuzz.py counts findings by it).
"""

from __future__ import annotations

import json
import math
import random
import tempfile
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

KINDS = ("type_swap", "extreme_number", "deep_nesting", "alias_bomb", "unknown_key",
         "deleted_field", "long_string", "not_utf8", "self_reference", "huge_integer", "original")

EXTREMES: tuple[str, ...] = (".inf", "-.inf", ".nan", "0", "-1", "1e-300", "1e308", "-1e308",
                             "5e-324", "1.7976931348623157e308", str(2**63), str(2**1024),
                             "1e30", "0.0", "-0.0", "1e-30")
SWAPS: tuple[str, ...] = ("'text'", "''", "true", "null", "[]", "{}", "[1, 2]", "{a: 1}",
                          "'1e9'", "0x10", "2001-01-01", "~")
KEYS: tuple[str, ...] = ("Noc", "TILES", "extra", "Clock_hz", "x" * 300, "ä", "1", "cite2",
                         "kind_", "N" * 5)


class NonFinite(AssertionError):
    """A file loaded, but a figure tegel reports is NaN or infinite."""


@cache
def _presets() -> tuple[tuple[str, str], ...]:
    from tegel.hardware.loader import PRESET_DIR

    return tuple((p.stem, p.read_text(encoding="utf-8"))
                 for p in sorted(PRESET_DIR.glob("*.yaml")))


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `data` (mappings and lists), parents before children."""
    out: list[tuple[Any, ...]] = []
    items: list[tuple[Any, Any]] = []
    if isinstance(data, dict):
        items = list(data.items())
    elif isinstance(data, list):
        items = list(enumerate(data))
    for key, value in items:
        out.append((*prefix, key))
        out += _paths(value, (*prefix, key))
    return out


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        data = data[key]
    return data


_TOKEN = "__FUZZ_TOKEN__"


def _alias_bomb(rng: random.Random) -> str:
    levels = rng.randint(3, 9)
    width = rng.randint(5, 10)
    items = ["&a0 [" + ", ".join(["1"] * width) + "]"]
    items += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"


def mutate(rng: random.Random, name: str, text: str) -> tuple[str, bytes]:
    """One mutation of preset `name` (YAML `text`): `(label, file bytes)`."""
    data = yaml.safe_load(text)
    kind = rng.choice(KINDS)
    paths = _paths(data)
    numbers = [p for p in paths if isinstance(_parent(data, p)[p[-1]], int | float)]
    path = rng.choice(numbers if kind in ("extreme_number", "huge_integer") and numbers
                      else paths)
    where = ".".join(map(str, path))
    parent = _parent(data, path)
    raw: str | None = None  # YAML text that replaces the token
    if kind == "type_swap":
        raw = rng.choice(SWAPS)
    elif kind == "extreme_number":
        raw = rng.choice(EXTREMES)
    elif kind == "huge_integer":
        raw = ("-" if rng.random() < 0.3 else "") + "1" + "0" * rng.choice((20, 309, 400, 5000))
    elif kind == "deep_nesting":
        depth = rng.choice((40, 60, 400, 2000))
        opening, closing = rng.choice((("[", "]"), ("{a: ", "}")))
        raw = opening * depth + "1" + closing * depth
    elif kind == "alias_bomb":
        raw = _alias_bomb(rng)
    elif kind == "long_string":
        raw = "'" + "y" * rng.choice((300, 100_000)) + "'"
    elif kind == "unknown_key":
        target = rng.choice([data] + [_parent(data, p)[p[-1]] for p in paths
                                      if isinstance(_parent(data, p)[p[-1]], dict)])
        key = rng.choice(KEYS)
        target[key] = 1
        where = key[:20]
    elif kind == "deleted_field":
        del parent[path[-1]]
    elif kind == "self_reference":
        if data.get("kind") == "system":
            data["chip"] = "case.yaml"
            where = "chip"
        else:
            data["same_silicon_as"] = data.get("name", name)
            where = "same_silicon_as"
    if raw is not None:
        parent[path[-1]] = _TOKEN
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**6)
    if raw is not None:
        body = body.replace(f"'{_TOKEN}'", raw).replace(_TOKEN, raw)
    encoded = body.encode("utf-8")
    if kind == "not_utf8":
        at = rng.randrange(len(encoded))
        encoded = encoded[:at] + rng.choice((b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80")) + \
            encoded[at:]
    return f"{kind}: {name} {where[:40]}", encoded


def _check_finite(value: Any, where: str = "") -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise NonFinite(f"{where} = {value}")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_finite(item, f"{where}[{i}]")


def load_case(data: bytes) -> dict[str, Any]:
    """Load `data` as a hardware file the way `tegel hw validate` / `--on FILE` does; the
    figures `tegel hw show --json` prints, checked finite and JSON-serializable."""
    from tegel.hardware import load_system, summarize

    with tempfile.TemporaryDirectory(prefix="tegel-fuzz-hw-") as folder:
        path = Path(folder) / "case.yaml"
        path.write_bytes(data)
        figures = summarize(load_system(str(path)))
    _check_finite(figures)
    json.dumps(figures, allow_nan=False)
    return figures


def generate(rng: random.Random) -> tuple[str, Callable[[], Any]]:
    """One fuzz case: `(label, thunk)`; the thunk returns finite figures or raises TegelError."""
    name, text = rng.choice(_presets())
    label, data = mutate(rng, name, text)
    return label, lambda: load_case(data)


def cases(seed: int, n: int) -> Iterator[tuple[str, Callable[[], Any]]]:
    """`n` fuzz cases from `seed`, the same ones on every run."""
    rng = random.Random(seed)
    for _ in range(n):
        yield generate(rng)
