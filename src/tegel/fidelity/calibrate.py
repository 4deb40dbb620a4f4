"""Fit the GPU policy's efficiency parameters on published H100 measurements.

Objective: the mean over the timed metric groups (throughput, TTFT, TPOT) of each group's MAPE
on its target set. Energy is not fitted: GPU energy per FLOP is a hardware property
(hardware/data/gpu_power.yaml), so the J/token entries are predictions. Method: coordinate
descent — a golden-section search on each parameter within its bounds, in turn, for a few
passes. Deterministic; a few minutes on two cores. Only H100 entries are used: other GPUs are
predicted from their own specifications with the fitted parameters.

Candidates are values, not state: each is a `Params` (`params.with_gpu(...)`) handed to
`validate`, so nothing global changes while fitting, and the result is written only where the
user says (`write_calibration`), never into the installed package.
"""

from __future__ import annotations

import datetime
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tegel.errors import TegelError
from tegel.fidelity.cases import load_entries
from tegel.fidelity.validate import Report, validate
from tegel.mapping.params import Params

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
    "generations.2023": (0.2, 1.2),
    "generations.2024": (0.3, 1.2),
    # collectives before TensorRT-LLM's custom all-reduce (2024) went through NCCL
    "generations.2023.collective_overhead_s": (0.0, 1.0e-4),
}
FITTED_GROUPS = ("throughput", "ttft", "tpot")  # energy is predicted, not fitted
DEFAULT_WRITE = "gpu_calibration.yaml"  # in the current directory
_GOLDEN = (math.sqrt(5) - 1) / 2


def objective(report: Report) -> float:
    """Mean of the fitted groups' MAPEs (percent), each over its target-set entries."""
    values = [report.mape(g, target_only=True) for g in FITTED_GROUPS]
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


def calibrate(params: Params, files: list[str] | None = None, passes: int = 2, steps: int = 10,
              progress: Callable[[str], None] | None = None) -> tuple[dict[str, Any], Report, Report]:
    """(fitted GPU values as a data mapping, report before, report after), starting from
    `params`, on the shipped H100 entries plus those of `files` (e.g. written by
    benchmarks/gpu/measure.py on an H100). `params` itself is not changed."""
    entries = load_entries() + (load_entries(list(files)) if files else [])
    values = params.gpu_data()
    for key in BOUNDS:  # start earlier generations at the current software's values
        if key.startswith("generations.") and _get(values, key, -1) < 0:
            field = _generation_key(key)[1]
            values = _with(values, key, 1.0 if field == "efficiency_scale" else values[field])

    def report(v: dict[str, Any]) -> Report:
        # the serving group is out of sample: never run, never in the objective
        return validate(entries, params=params.with_gpu(v, "calibration"), with_serving=False)

    before = report(values)
    best = objective(before)
    for _ in range(passes):
        for key, (lo, hi) in BOUNDS.items():
            a, b = lo, hi
            c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
            fc, fd = objective(report(_with(values, key, c))), objective(report(_with(values, key, d)))
            for _ in range(steps):
                if fc < fd:
                    b, d, fd = d, c, fc
                    c = b - _GOLDEN * (b - a)
                    fc = objective(report(_with(values, key, c)))
                else:
                    a, c, fc = c, d, fd
                    d = a + _GOLDEN * (b - a)
                    fd = objective(report(_with(values, key, d)))
            x, fx = (c, fc) if fc < fd else (d, fd)
            if fx < best:
                values, best = _with(values, key, x), fx
            if progress:
                progress(f"{key} = {_get(values, key, x):.4g}  objective {best:.2f}%")
    return values, before, report(values)


def _package_dir() -> Path:
    import tegel

    return Path(tegel.__file__).resolve().parent


def calibration_target(path: str | Path | None) -> Path:
    """Where a calibration will be written: `path` (a file, or a directory to hold
    gpu_calibration.yaml; None: ./gpu_calibration.yaml), checked before any fitting: its
    directory must exist and be writable, and it must not lie inside the installed tegel
    package (the shipped calibration changes by review, not by a run)."""
    target = Path(path) if path is not None else Path(DEFAULT_WRITE)
    if target.is_dir():
        target = target / DEFAULT_WRITE
    resolved = target.resolve()
    if resolved.is_relative_to(_package_dir()):
        raise TegelError(f"{target}: inside the installed tegel package ({_package_dir()}); "
                         "write the calibration elsewhere and use it with --params")
    folder = resolved.parent
    if not folder.is_dir():
        raise TegelError(f"{target}: directory {folder} does not exist")
    if target.exists() and not target.is_file():
        raise TegelError(f"{target}: exists and is not a regular file")
    try:  # a real probe: permission bits say nothing for root or on read-only mounts
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".tegel-write-check-"):
            pass
    except OSError as err:
        raise TegelError(f"{target}: cannot write in {folder}: {err.strerror}") from None
    return target


def write_calibration(values: dict[str, Any], before: Report, after: Report, path: Path,
                      base: str = "shipped") -> Path:
    """Write the fitted parameters and how they were obtained to `path` (checked by
    `calibration_target`); `base` names the parameters the fit started from. Returns the path
    written; `tegel validate --params PATH` and `load_params(PATH)` read it back."""
    target = calibration_target(path)
    fitted = {k: values[k] for k in BOUNDS if not k.startswith("generations.")}
    fitted["generations"] = values.get("generations") or {}
    doc = {
        "how": ("Fitted by `tegel validate --calibrate` on the shipped H100 measurements "
                "(src/tegel/fidelity/data/h100_measurements.yaml) only: coordinate descent with "
                "golden-section searches, objective = mean over throughput, TTFT and TPOT of "
                "the target-set MAPE (energy is predicted, not fitted). Other GPUs use these "
                "values with their own specifications."),
        "date": datetime.date.today().isoformat(),
        "started_from": base,
        "objective_percent": {"before": objective(before), "after": objective(after)},
        "mape_percent_after": {g: after.mape(g) for g in (*FITTED_GROUPS, "energy")},
        "parameters": fitted,
    }
    try:
        target.write_text("# Written by `tegel validate --calibrate`; do not edit by hand.\n"
                          + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    except OSError as err:
        raise TegelError(f"{target}: cannot write: {err.strerror}") from None
    return target
