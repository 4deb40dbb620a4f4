"""Fit the GPU policy's efficiency parameters on published H100 measurements.

Objective: the mean over metric groups (throughput, TTFT, TPOT, energy) of each group's MAPE
on the shipped H100 entries. Method: coordinate descent — a golden-section search on each
parameter within its bounds, in turn, for a few passes. Deterministic; a few minutes on two
cores. Only H100 entries are used: other GPUs are predicted from their own specifications with
the fitted parameters.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tegel.fidelity.cases import GROUPS, load_entries
from tegel.fidelity.validate import Report, validate
from tegel.mapping.gpu import gpu_params_data, gpu_params_override

# parameter -> (low, high); "generations.YEAR" fits that year's efficiency scale,
# "generations.YEAR.FIELD" that year's own value of FIELD
BOUNDS: dict[str, tuple[float, float]] = {
    "gemm_peak_fraction": (0.4, 0.95),
    "attention_peak_fraction": (0.2, 0.9),
    "hbm_bandwidth_fraction": (0.5, 0.95),
    "kernel_overhead_s": (0.0, 2.0e-5),
    "collective_overhead_s": (0.0, 4.0e-5),
    "request_overhead_s": (0.0, 1.0e-2),
    "moe_gemm_efficiency": (0.05, 1.0),
    "compute_power_share": (0.2, 1.0),
    "generations.2023": (0.2, 1.2),
    "generations.2024": (0.3, 1.2),
    # collectives before TensorRT-LLM's custom all-reduce (2024) went through NCCL
    "generations.2023.collective_overhead_s": (0.0, 1.0e-4),
}
_GOLDEN = (math.sqrt(5) - 1) / 2


def objective(report: Report) -> float:
    """Mean of the groups' MAPEs (percent), each over its target-set entries (docs/fidelity.md)."""
    values = [report.mape(g, target_only=True) for g in GROUPS]
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else math.inf


def _generation_key(key: str) -> tuple[str, str]:
    """'generations.2023' -> ('2023', 'efficiency_scale'); 'generations.2023.x' -> ('2023', 'x')."""
    parts = key.split(".")
    return parts[1], parts[2] if len(parts) > 2 else "efficiency_scale"


def _with(values: dict[str, Any], key: str, x: float) -> dict[str, Any]:
    out = dict(values)
    if key.startswith("generations."):
        year, field = _generation_key(key)
        gens = {k: dict(v) for k, v in (out.get("generations") or {}).items()}
        gens.setdefault(year, {})[field] = x
        out["generations"] = gens
    else:
        out[key] = x
    return out


def _get(values: dict[str, Any], key: str, default: float) -> float:
    if key.startswith("generations."):
        year, field = _generation_key(key)
        gen = (values.get("generations") or {}).get(year) or {}
        return float(gen[field]) if field in gen else default
    return float(values[key])


def calibrate(files: list[str] | None = None, passes: int = 2, steps: int = 10,
              progress: Callable[[str], None] | None = None) -> tuple[dict[str, Any], Report, Report]:
    """(fitted parameters, report before, report after) on the shipped H100 entries, plus the
    entries of `files` (e.g. written by benchmarks/gpu/measure.py on an H100)."""
    entries = load_entries() + (load_entries(list(files)) if files else [])
    values = gpu_params_data()
    for key in BOUNDS:  # start earlier generations at the current software's values
        if key.startswith("generations.") and _get(values, key, -1) < 0:
            field = _generation_key(key)[1]
            values = _with(values, key, 1.0 if field == "efficiency_scale" else values[field])

    def score(v: dict[str, Any]) -> float:
        with gpu_params_override(v):
            return objective(validate(entries))

    with gpu_params_override(values):
        before = validate(entries)
    best = objective(before)
    for _ in range(passes):
        for key, (lo, hi) in BOUNDS.items():
            a, b = lo, hi
            c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
            fc, fd = score(_with(values, key, c)), score(_with(values, key, d))
            for _ in range(steps):
                if fc < fd:
                    b, d, fd = d, c, fc
                    c = b - _GOLDEN * (b - a)
                    fc = score(_with(values, key, c))
                else:
                    a, c, fc = c, d, fd
                    d = a + _GOLDEN * (b - a)
                    fd = score(_with(values, key, d))
            x, fx = (c, fc) if fc < fd else (d, fd)
            if fx < best:
                values, best = _with(values, key, x), fx
            if progress:
                progress(f"{key} = {_get(values, key, x):.4g}  objective {best:.2f}%")
    with gpu_params_override(values):
        after = validate(entries)
    return values, before, after


def write_calibration(values: dict[str, Any], before: Report, after: Report, path: Path) -> None:
    """The fitted parameters and how they were obtained, as the calibration data file."""
    fitted = {k: values[k] for k in BOUNDS if not k.startswith("generations.")}
    fitted["generations"] = values.get("generations") or {}
    doc = {
        "how": ("Fitted by `tegel validate --calibrate` on the shipped H100 measurements "
                "(src/tegel/fidelity/data/h100_measurements.yaml) only: coordinate descent with "
                "golden-section searches, objective = mean over metric groups of the MAPE. "
                "Other GPUs use these values with their own specifications."),
        "date": datetime.date.today().isoformat(),
        "objective_percent": {"before": objective(before), "after": objective(after)},
        "mape_percent_after": {g: after.mape(g) for g in GROUPS},
        "parameters": fitted,
    }
    path.write_text("# Written by `tegel validate --calibrate`; do not edit by hand.\n"
                    + yaml.safe_dump(doc, sort_keys=False))
