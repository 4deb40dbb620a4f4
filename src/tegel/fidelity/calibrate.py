"""Fit the GPU policy's serving parameters on published H100 measurements.

What is fitted, and within which bounds, is the data file's to say: the entries of
mapping/data/gpu.yaml marked `fitted`, each inside its stated plausible range (`BOUNDS` reads
them). Everything else — each chip's microbenchmark shares (gpu_chips.yaml), the earlier
software stacks' cited features, the assumptions — is held fixed.

Objective: the mean over the timed metric groups (throughput, TTFT, TPOT) of each group's MAPE
over every H100 entry of the group (the target set is what targets are stated on, not all the
data there is to fit on: the older TensorRT-LLM pages outside it are the only H100 entries that
run some kernels, e.g. the per-query-head decode attention). Energy is not fitted: GPU energy
per FLOP is a hardware property (hardware/data/gpu_power.yaml), so the J/token entries are
predictions. Method: coordinate descent — a golden-section search on each parameter within its
bounds, in turn, for a few passes. Deterministic; a few minutes on two cores. Only H100
entries are fitted (entries of other GPUs given to it are left out and counted): other GPUs are
predicted from their own specifications and microbenchmarks with the fitted serving shares.

Candidates are values, not state: each is a `Params` (`params.with_gpu(...)`) handed to
`validate`, so nothing global changes while fitting, and the result is written only where the
user says (`write_calibration`), never into the installed package. `fidelity/folds.py` runs the
same fit k times, each without one group of publications, for the out-of-sample figures.
"""

from __future__ import annotations

import datetime
import math
import tempfile
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tegel.errors import TegelError
from tegel.fidelity.cases import CALIBRATION_GPU, Unmapped, load_entries, read_entry
from tegel.fidelity.fitting import coordinate_descent, write_fitted
from tegel.fidelity.validate import Report, validate
from tegel.mapping.gpu_data import gpu_fitted_ranges
from tegel.mapping.params import Params

FITTED_GROUPS = ("throughput", "ttft", "tpot")  # energy is predicted, not fitted
OBJECTIVE = "mean over throughput, TTFT and TPOT of the MAPE over every H100 entry"
DEFAULT_WRITE = "gpu_calibration.yaml"  # in the current directory


def fitted_bounds() -> dict[str, tuple[float, float]]:
    """{parameter: (low, high)}: the entries of the shipped gpu.yaml marked `fitted`."""
    text = (resources.files("tegel.mapping") / "data" / "gpu.yaml").read_text(encoding="utf-8")
    return gpu_fitted_ranges(yaml.safe_load(text))


BOUNDS: dict[str, tuple[float, float]] = fitted_bounds()


def uncalibrated_values() -> dict[str, float]:
    """The fitted parameters at the values gpu.yaml states (before any calibration)."""
    text = (resources.files("tegel.mapping") / "data" / "gpu.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    return {k: float(doc[k]["value"]) for k in BOUNDS}


def objective(report: Report) -> float:
    """Mean of the fitted groups' MAPEs (percent), each over every entry of the group."""
    values = [report.mape(g) for g in FITTED_GROUPS]
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else math.inf


def h100_only(entries: Iterable[tuple[str, dict[str, Any]]]) -> tuple[list[tuple[str, dict]], int]:
    """(the entries measured on H100, how many others were left out)."""
    kept, dropped = [], 0
    for name, entry in entries:
        stated = read_entry(entry)
        if isinstance(stated, Unmapped) or stated.gpu == CALIBRATION_GPU:
            kept.append((name, entry))  # unmapped ones are listed by validate, never fitted
        else:
            dropped += 1
    return kept, dropped


def calibrate(params: Params, files: list[str] | None = None, passes: int = 2, steps: int = 10,
              progress: Callable[[str], None] | None = None,
              entries: list[tuple[str, dict[str, Any]]] | None = None
              ) -> tuple[dict[str, Any], Report, Report]:
    """(fitted GPU values as a data mapping, report before, report after), starting from
    `params`, on `entries` (default: the shipped H100 entries plus those of `files`, e.g.
    written by benchmarks/gpu/measure.py on an H100); only H100 entries are fitted. `params`
    itself is not changed."""
    if entries is None:
        entries = load_entries() + (load_entries(list(files)) if files else [])
    entries, dropped = h100_only(entries)
    if dropped and progress:
        progress(f"{dropped} entries of other GPUs left out: calibration fits H100 only")
    values = {k: v for k, v in params.gpu_data().items() if k in BOUNDS}

    def report(v: dict[str, Any]) -> Report:
        # the serving group is out of sample: never run, never in the objective
        return validate(entries, params=params.with_gpu(v, "calibration"), with_serving=False)

    before = report(values)
    values = coordinate_descent(values, BOUNDS, lambda v: objective(report(v)),
                                objective(before), passes, steps, progress)
    return values, before, report(values)


def _package_dir() -> Path:
    import tegel

    return Path(tegel.__file__).resolve().parent


def refuse_package_path(path: Path) -> None:
    """A fit is never written into the installed package (the shipped one changes by review)."""
    if path.resolve().is_relative_to(_package_dir()):
        raise TegelError(f"{path}: inside the installed tegel package ({_package_dir()}); "
                         "write the calibration elsewhere and use it with --params")


def calibration_target(path: str | Path | None) -> Path:
    """Where a calibration will be written: `path` (a file, or a directory to hold
    gpu_calibration.yaml; None: ./gpu_calibration.yaml), checked before any fitting: its
    directory must exist and be writable, and it must not lie inside the installed tegel
    package (the shipped calibration changes by review, not by a run)."""
    target = Path(path) if path is not None else Path(DEFAULT_WRITE)
    if target.is_dir():
        target = target / DEFAULT_WRITE
    refuse_package_path(target)
    resolved = target.resolve()
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
    fitted = {k: values[k] for k in BOUNDS}
    doc = {
        "how": ("Fitted by `tegel validate --calibrate` on the shipped H100 measurements "
                "(src/tegel/fidelity/data/h100_measurements.yaml) only: coordinate descent with "
                "golden-section searches within the ranges of mapping/data/gpu.yaml, objective "
                f"= {OBJECTIVE} (energy is predicted, not fitted). Other GPUs use these "
                "values with their own specifications and microbenchmarks (mapping/data/gpu_chips.yaml)."),
        "date": datetime.date.today().isoformat(),
        "started_from": base,
        "objective_percent": {"before": objective(before), "after": objective(after)},
        "mape_percent_after": {g: after.mape(g) for g in (*FITTED_GROUPS, "energy")},
        "parameters": fitted,
    }
    return write_fitted(target, "`tegel validate --calibrate`", doc)
