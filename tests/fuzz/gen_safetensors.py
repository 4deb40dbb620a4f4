"""Mutated safetensors folders: a small random-weight checkpoint (config.json +
model.safetensors) with its header's entries, its bytes, its data or the folder around it
damaged. `cases(seed, n)` yields (label, thunk); thunk() loads the folder as `tegel generate`
does (read, map to tegel's names, check shapes and that the weights are finite) and returns, or
raises TegelError. Anything else it raises is a finding. Used by
tests/workload/test_fuzz_model.py and benchmarks/fuzz.py."""

from __future__ import annotations

import json
import math
import random
import struct
import tempfile
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

Thunk = Callable[[], object]
FAMILIES = ("llama", "gpt2", "mixtral")
DTYPES = ("F32", "F16", "BF16", "F64", "I32", "I64", "U8", "BOOL", "F8_E4M3", "f32", "", None, 5)


@cache
def _bases() -> tuple[tuple[str, str, bytes], ...]:
    """(family, config.json text, model.safetensors bytes) of a tiny random model per family."""
    from tegel.workload.random_model import random_folder

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in FAMILIES:
            folder = Path(tmp) / family
            random_folder(family, folder, tokenizer=False)
            out.append((family, (folder / "config.json").read_text(),
                        (folder / "model.safetensors").read_bytes()))
    return tuple(out)


def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    (length,) = struct.unpack("<Q", data[:8])
    header: dict[str, Any] = json.loads(data[8 : 8 + length])
    return header, data[8 + length :]


def _join(header: object, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def _mutate_entry(rng: random.Random, header: dict[str, Any], body: bytes) -> tuple[str, bytes]:
    names = sorted(k for k in header if k != "__metadata__")
    name = rng.choice(names)
    entry = header[name]
    kind = rng.choice(("dtype", "shape", "offsets", "drop-field", "drop", "copy", "entry",
                       "swap-offsets"))
    if kind == "dtype":
        entry["dtype"] = rng.choice(DTYPES)
    elif kind == "shape":
        shape = entry["shape"]
        entry["shape"] = rng.choice((shape[::-1], [*shape, 1], shape[:-1], [-1, *shape[1:]],
                                     [math.prod(shape)], [2**70], [1.5], "x", None, [],
                                     [0, *shape]))
    elif kind == "offsets":
        start, stop = entry["data_offsets"]
        delta = rng.choice((1, -1, 4, -4, 8, 2**63, -(2**63)))
        entry["data_offsets"] = rng.choice(([start + delta, stop + delta], [start, stop + delta],
                                            [stop, start], [float(start), stop], [start],
                                            [start, stop, stop], "0-8", None))
    elif kind == "drop-field":
        entry.pop(rng.choice(("dtype", "shape", "data_offsets")))
    elif kind == "drop":
        del header[name]
    elif kind == "copy":
        header[name + ".copy"] = dict(entry)
    elif kind == "entry":
        header[name] = rng.choice(([0, 8], "F32", None, 3, {}))
    else:
        other = header[rng.choice(names)]
        entry["data_offsets"], other["data_offsets"] = other["data_offsets"], entry["data_offsets"]
    return f"{kind} {name}", _join(header, body)


def _mutate_data(rng: random.Random, header: dict[str, Any], body: bytes) -> tuple[str, bytes]:
    name = rng.choice(sorted(k for k in header if k != "__metadata__"))
    start, stop = header[name]["data_offsets"]
    value = rng.choice((math.nan, math.inf, -math.inf, 3e38))
    count = rng.choice((1, (stop - start) // 4))
    data = bytearray(body)
    data[start : start + 4 * count] = struct.pack("<f", value) * count
    return f"data {name} x{count}={value}", _join(header, bytes(data))


def _mutate_bytes(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    kind = rng.choice(("truncate", "byte", "length", "empty", "append", "header"))
    if kind == "truncate":
        return kind, data[: rng.randrange(len(data))]
    if kind == "byte":
        (length,) = struct.unpack("<Q", data[:8])
        i = rng.randrange(8 + length)  # the length prefix or the header
        return f"byte {i}", data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]
    if kind == "length":
        length = rng.choice((0, 1, 7, len(data), 2**31, 2**63, 2**64 - 1))
        return f"length {length}", struct.pack("<Q", length) + data[8:]
    if kind == "append":
        return kind, data + b"\0" * rng.choice((1, 4, 8, 1000))
    if kind == "header":
        _, body = _split(data)
        header: object = rng.choice(([1, 2], "x", 3, None, {"__metadata__": {}},
                                     {"a": {"b": {}}}))
        return f"header {header}", _join(header, body)
    return kind, b""


def _folder_case(rng: random.Random, config: str, data: bytes
                 ) -> tuple[str, Callable[[Path], None]]:
    """A damage to the folder: extra shards, non-files, a config that does not match."""
    kind = rng.choice(("shard-dup", "shard-split", "dir", "symlink", "layers+1", "layers-1",
                       "no-file", "hidden"))
    raw = json.loads(config)
    key = "n_layer" if "n_layer" in raw else "num_hidden_layers"
    header, body = _split(data)

    def write(folder: Path) -> None:
        (folder / "config.json").write_text(config)
        (folder / "model.safetensors").write_bytes(data)
        if kind == "shard-dup":
            name = rng.choice(sorted(k for k in header if k != "__metadata__"))
            (folder / "model-2.safetensors").write_bytes(_join({name: header[name]}, body))
        elif kind == "shard-split":  # a legitimate split into two shards
            names = sorted(k for k in header if k != "__metadata__")
            for i, part in enumerate((names[::2], names[1::2])):
                sub, blob, at = {}, b"", 0
                for n in part:
                    start, stop = header[n]["data_offsets"]
                    sub[n] = {**header[n], "data_offsets": [at, at + stop - start]}
                    blob += body[start:stop]
                    at += stop - start
                (folder / f"model-{i}.safetensors").write_bytes(_join(sub, blob))
            (folder / "model.safetensors").unlink()
        elif kind == "dir":
            (folder / "x.safetensors").mkdir()
        elif kind == "symlink":
            (folder / "y.safetensors").symlink_to(folder / "missing")
        elif kind in ("layers+1", "layers-1"):
            raw[key] += 1 if kind == "layers+1" else -1
            (folder / "config.json").write_text(json.dumps(raw))
        elif kind == "no-file":
            (folder / "model.safetensors").unlink()
        else:
            (folder / ".model.safetensors").write_bytes(b"junk")

    return kind, write


def _thunk(config: str, data: bytes | None, write: Callable[[Path], None] | None) -> Thunk:
    def run() -> object:
        from tegel.serving.generate import _check_finite_weights
        from tegel.workload.weights import load_hf_folder

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "m"
            folder.mkdir()
            if write is not None:
                write(folder)
            else:
                assert data is not None
                (folder / "config.json").write_text(config)
                (folder / "model.safetensors").write_bytes(data)
            cfg, weights = load_hf_folder(folder)
        _check_finite_weights(cfg, weights)  # what generate checks first
        return cfg, weights

    return run


def cases(seed: int, n: int) -> Iterator[tuple[str, Thunk]]:
    """`n` damaged safetensors folders, the same ones for the same seed."""
    rng = random.Random(seed)
    bases = _bases()
    for _ in range(n):
        family, config, data = rng.choice(bases)
        roll = rng.random()
        if roll < 0.15:
            label, write = _folder_case(rng, config, data)
            yield f"safetensors {family}: folder {label}", _thunk(config, None, write)
            continue
        if roll < 0.6:
            header, body = _split(data)
            label, mutated = _mutate_entry(rng, header, body)
        elif roll < 0.75:
            header, body = _split(data)
            label, mutated = _mutate_data(rng, header, body)
        else:
            label, mutated = _mutate_bytes(rng, data)
        yield f"safetensors {family}: {label}", _thunk(config, mutated, None)
