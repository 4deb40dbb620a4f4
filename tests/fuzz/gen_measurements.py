"""Fuzz cases for measurement files (`tegel validate FILE`): the shipped entry format with
fields dropped, retyped or given nonsense values, broken YAML, non-UTF-8 bytes and deep nesting.
thunk() reads the file (load_entries) and maps every entry (to_case): it returns the cases or
raises TegelError."""

from __future__ import annotations

import copy
import random
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

GOOD = {"id": "fz", "system": "8x H100-SXM-80GB (NVIDIA DGX H100)", "metric": "throughput_offline",
        "value": 24524.9, "unit": "tokens/s", "accelerators": 8, "kind": "measured",
        "workload": {"model": "Llama-2-70B-chat", "precision": "fp8", "scenario": "Offline",
                     "tensor_parallel": 2}, "year": 2024}
FIELDS = ("id", "system", "metric", "value", "unit", "accelerators", "workload", "kind", "year")
NASTY: tuple[object, ...] = (0, -1, 1, 0.0, -0.0, 1e-300, 1e308, float("inf"), float("nan"),
                             10**400, True, None, "", "fast", "x" * 5000, [], {}, [1, 2], {"a": 1},
                             "ms", "tokens/s", "J/token", "ttft_latency", "0x H100", "1e3",
                             "llama", "8x H100-SXM-80GB")
RAW = (b"- id: \xff\xfe\n", b"[" * 3000 + b"]" * 3000, b"- &a [*a]\n", b"{}", b"- 1\n- 2\n",
       b"a: [b\n", b"", b"- !!python/object/apply:os.system ['true']\n",
       b"- id: a\n  value: .nan\n")


def _text(rng: random.Random) -> bytes:
    if rng.random() < 0.1:
        return rng.choice(RAW)
    entries = []
    for _ in range(rng.randint(1, 3)):
        e: dict[str, object] = copy.deepcopy(GOOD)
        for _ in range(rng.randint(1, 3)):
            field = rng.choice(FIELDS)
            roll = rng.random()
            if roll < 0.15:
                e.pop(field, None)
            elif field == "workload" and roll < 0.6:
                w = dict(GOOD["workload"])  # type: ignore[call-overload]
                w[rng.choice(("model", "precision", "tensor_parallel", "software"))] = (
                    rng.choice(NASTY))
                e["workload"] = w
            else:
                e[field] = rng.choice(NASTY)
        entries.append(e)
    try:
        return yaml.safe_dump(entries, allow_unicode=True).encode()
    except (yaml.YAMLError, OverflowError):
        return b"- id: x\n"


def read(data: bytes) -> object:
    """load_entries + to_case on a file holding `data` (the path of `tegel validate FILE`)."""
    from tegel.fidelity.cases import load_entries, to_case

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.yaml"
        p.write_bytes(data)
        return [to_case(e) for _, e in load_entries([p])]


def cases(seed: int, n: int) -> Iterator[tuple[str, Callable[[], object]]]:
    rng = random.Random(seed)
    for i in range(n):
        data = _text(rng)
        yield f"measurements #{i} {data[:80]!r}", (lambda data=data: read(data))
