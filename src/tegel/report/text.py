"""Plain-text tables and SI formatting for terminal output. Conversion to display units happens
only here, at the edge; everything upstream is SI."""

from __future__ import annotations

import math
from collections.abc import Sequence

_PREFIXES = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""),
             (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))


def si(value: float, unit: str = "", digits: int = 3) -> str:
    """`value` with an SI prefix and `digits` significant digits: si(3.35e12, 'B/s') = '3.35 TB/s'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value == 0:
        return f"0 {unit}".strip()
    magnitude = abs(value)
    scale, prefix = next(((s, p) for s, p in _PREFIXES if magnitude >= s * 0.9995), _PREFIXES[-1])
    text = f"{value / scale:.{digits}g}"
    return f"{text} {prefix}{unit}".strip()


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A left/right aligned text table; `align` gives 'l' or 'r' per column (default: first l)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(row: list[str]) -> str:
        parts = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align, strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])
