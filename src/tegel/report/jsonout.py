"""The one way tegel emits JSON: strict (no bare NaN / Infinity, which are not JSON), and a
non-finite figure is an error naming where it is rather than a `NaN` in the output."""

from __future__ import annotations

import json
import math
from typing import Any

from tegel.errors import TegelError


def nonfinite_path(value: Any, path: str = "") -> str | None:
    """The path (`a.b[2]`) of the first non-finite float in `value`, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path or "value")
    if isinstance(value, dict):
        for k, v in value.items():
            found = nonfinite_path(v, f"{path}.{k}" if path else str(k))
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = nonfinite_path(v, f"{path}[{i}]")
            if found:
                return found
    return None


def require_finite(value: Any, what: str = "result") -> None:
    """Raise a TegelError naming the first non-finite figure of `value`."""
    path = nonfinite_path(value)
    if path is not None:
        raise TegelError(f"{what}: {path} is not a finite number (the inputs give no answer "
                         "for it; check the figures it depends on)")


def dumps(obj: Any, what: str = "result", **kwargs: Any) -> str:
    """json.dumps with allow_nan=False; a non-finite figure is a TegelError naming it."""
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError:
        require_finite(obj, what)
        raise
