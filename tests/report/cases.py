"""The small cases of the report tests: the arguments of each kind, the tiny explore space,
and the number of series each chart should draw, worked out from the result itself."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

from explore.conftest import SPACE as EXPLORE_SPACE
from tegel.cli import main

MODEL = "qwen2.5-0.5b"
# the explore tests' tiny space at one clock, as a 16-point grid
SPACE = (EXPLORE_SPACE.replace("  clock_hz: {low: 0.8e9, high: 1.2e9, step: 0.4e9}\n", "")
         .replace("METHOD", "grid").replace("trials: 24", "trials: 16"))

# The arguments of each kind, as `tegel report --KIND ...` takes them.
REPORT_ARGS: dict[str, list[str]] = {
    "run": ["--run", MODEL, "--on", "h100-sxm"],
    "compare": ["--compare", MODEL, "--on", "h100-sxm,a100-80gb"],
    "curve": ["--curve", MODEL, "--on", "h100-sxm,a100-80gb", "--concurrency", "1,4,16",
              "--requests", "32"],
    "claim": ["--claim", MODEL, "--on", "craftwerk", "--vs", "h100-sxm", "--batch-on", "8",
              "--batch-vs", "8"],
}


def tegel_json(argv: list[str]) -> Any:
    """What `tegel ARGV --json` prints, parsed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*argv, "--json"]) == 0
    return json.loads(out.getvalue())


def energy_categories(breakdowns: list[dict[str, float]]) -> int:
    """Series an energy stack should have: the categories non-zero on some system."""
    return len({k for b in breakdowns for k, v in b.items() if v > 0})


def expected_series(kind: str, d: Any) -> dict[str, int]:
    """chart id -> number of series, worked out from the result itself."""
    if kind == "run":
        phases = {op["phase"] for op in d["ops"] if op["flops"] > 0}
        return {"energy": energy_categories([d["energy_breakdown_j_per_token"]]),
                f"roofline-{d['system']}": 1 + len(phases)}
    if kind == "compare":
        return {"energy": energy_categories([r["energy_breakdown_j_per_token"]
                                             for r in d["results"].values()])}
    if kind == "curve":
        return {"curve": len(d)}
    if kind == "claim":
        return {"energy": energy_categories([s["energy_breakdown_j_per_token"]
                                             for s in d["systems"].values()]),
                "tornado-energy": 2, "tornado-cost_tco": 2}
    return {"pareto": 1 + bool(d.get("refined"))}
