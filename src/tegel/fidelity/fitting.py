"""What the GPU and the dataflow calibrations share: the search and the file they write.

`coordinate_descent` moves one parameter at a time to the minimum of a golden-section search
within its range, keeping a move only when it lowers the cost, for `passes` rounds. It is
deterministic. `write_fitted` writes a fitted file with a header saying what wrote it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tegel.atomic import write_text

_GOLDEN = (math.sqrt(5) - 1) / 2
V = TypeVar("V")


def coordinate_descent(values: dict[str, V], ranges: Mapping[str, tuple[float, float]],
                       cost: Callable[[dict[str, Any]], float], start_cost: float,
                       passes: int, steps: int, progress: Callable[[str], None] | None = None,
                       label: str = "objective") -> dict[str, Any]:
    """`values` with each parameter of `ranges` moved, in turn, to the best of a golden-section
    search of `steps` steps within (low, high), when that lowers `cost` below the best so far
    (`start_cost`: the cost of `values`, which the caller has already computed)."""
    out: dict[str, Any] = dict(values)
    best = start_cost
    for _ in range(passes):
        for key, (lo, hi) in ranges.items():
            a, b = lo, hi
            c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
            fc = cost({**out, key: c})
            fd = cost({**out, key: d})
            for _ in range(steps):
                if fc < fd:
                    b, d, fd = d, c, fc
                    c = b - _GOLDEN * (b - a)
                    fc = cost({**out, key: c})
                else:
                    a, c, fc = c, d, fd
                    d = a + _GOLDEN * (b - a)
                    fd = cost({**out, key: d})
            x, fx = (c, fc) if fc < fd else (d, fd)
            if fx < best:
                out, best = {**out, key: x}, fx
            if progress:
                progress(f"{key} = {out[key]:.4g}  {label} {best:.2f}%")
    return out


def write_fitted(target: Path, writer: str, doc: dict[str, Any]) -> Path:
    """Write `doc` as YAML to `target` under a header naming `writer`; a clear error if the
    file cannot be written."""
    write_text(target, f"# Written by {writer}; do not edit by hand.\n"
               + yaml.safe_dump(doc, sort_keys=False), "--write")  # whole, or not at all
    return target
