"""Out-of-sample figures for the H100 set: k-fold calibration grouped by publication.

The entries of one publication — one source title in one year (MLPerf v4.1, a TensorRT-LLM
performance table, the NIM sweeps, ...) — share their software, harness and often their
configurations, so they are held out together: fold i's parameters are fitted
(`calibrate.calibrate`) on every entry outside fold i, and predict the entries inside it.

A calibration takes minutes, so the k fits are made once (`make_folds`, run by `tegel validate
--calibrate --folds K --write-folds DIR`) and shipped as data (fidelity/data/folds/), one file
per fold with the record of how it was made: date, objective, the groups and the entry ids it
held out, a digest of the data it was fitted with. `tegel validate` only evaluates them
(`validate(..., folds=load_folds())`): each entry predicted by the fold that did not see it.

Folds are assigned deterministically: groups by size (entries, then title), each to the fold
with the fewest entries so far (ties: the lowest index).
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tegel.atomic import write_text
from tegel.errors import TegelError
from tegel.fidelity.calibrate import (
    BOUNDS,
    FITTED_GROUPS,
    OBJECTIVE,
    calibrate,
    h100_only,
    objective,
    uncalibrated_values,
)
from tegel.fidelity.cases import dataset_lengths, load_entries
from tegel.fidelity.validate import Report
from tegel.mapping.gpu_data import gpu_fitted_ranges, gpu_values, shipped_chip_table
from tegel.mapping.params import Params

FOLD_GLOB = "fold-*.yaml"


def group_of(entry: dict[str, Any]) -> str:
    """The publication an entry belongs to: its source title and year."""
    title = str(entry.get("source", {}).get("title", "")) or "(no source)"
    return f"{title} [{entry.get('year', '?')}]"


def assign_folds(entries: Iterable[tuple[str, dict[str, Any]]], k: int) -> list[list[str]]:
    """The groups (publications) of each of k folds, balanced by entry count."""
    sizes: dict[str, int] = {}
    for _, e in entries:
        sizes[group_of(e)] = sizes.get(group_of(e), 0) + 1
    if not 2 <= k <= len(sizes):
        raise TegelError(f"--folds {k}: expected 2 to {len(sizes)} (the number of publications)")
    folds: list[list[str]] = [[] for _ in range(k)]
    counts = [0] * k
    for group in sorted(sizes, key=lambda g: (-sizes[g], g)):
        i = counts.index(min(counts))
        folds[i].append(group)
        counts[i] += sizes[group]
    return folds


@dataclass(frozen=True, slots=True)
class Fold:
    """One fold's fit: the parameters fitted without its held-out entries, and its record."""

    index: int
    held_out_groups: tuple[str, ...]
    held_out_ids: tuple[str, ...]
    parameters: dict[str, Any]
    record: dict[str, Any]  # how it was made: date, objective, digest, ...


# Workload fields only the serving group reads (`fidelity/serving.py`), which `--calibrate` never
# runs: a change to them cannot change a fit, so they stay out of its digest.
SERVING_ONLY = frozenset({"max_tokens_per_iteration"})


def inputs_digest() -> str:
    """SHA-256 of what a fold's fit depends on besides the code: each H100 entry's figures
    (not its source's address or kind, nor the serving-only fields), the GPU parameters' values
    and ranges (gpu.yaml), every chip's microbenchmark shares and all-reduce sweep
    (gpu_chips.yaml) and the MLPerf data sets' lengths that the MLPerf entries' scenarios
    take (mlperf_datasets.yaml). Comments and citations do not count."""
    entries = [{k: e.get(k) for k in ("id", "system", "metric", "value", "unit", "year",
                                        "kind")}
               | {"source": e.get("source", {}).get("title"),
                  "workload": {k: v for k, v in (e.get("workload") or {}).items()
                               if k not in SERVING_ONLY}}
               for _, e in load_entries()]
    text = (resources.files("tegel.mapping") / "data" / "gpu.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    gpu = {"values": gpu_values(doc), "ranges": gpu_fitted_ranges(doc)}
    chips = [[r.chip, list(r.gemm), r.hbm_fraction, r.allreduce_fraction,
              list(r.allreduce_by_bytes)] for r in shipped_chip_table().rates]
    lengths = {name: {k: v for k, v in d.items() if k.endswith("_mean") or k.endswith("_max")
                      or k in ("samples", "beams")}
               for name, d in dataset_lengths().items()}
    blob = json.dumps([entries, gpu, chips, lengths], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def make_folds(params: Params, k: int, passes: int = 2, steps: int = 10,
               progress: Callable[[str], None] | None = None) -> list[Fold]:
    """Fit k folds of the shipped H100 entries (minutes each). Each starts from `params` with
    the fitted parameters at gpu.yaml's values — never from a calibration that saw its
    held-out entries."""
    entries, _ = h100_only(load_entries())
    params = params.with_gpu(uncalibrated_values(), "gpu.yaml values")
    out = []
    for i, groups in enumerate(assign_folds(entries, k)):
        held = [(n, e) for n, e in entries if group_of(e) in groups]
        train = [(n, e) for n, e in entries if group_of(e) not in groups]
        if progress:
            progress(f"fold {i + 1}/{k}: holding out {len(held)} entries ({'; '.join(groups)})")
        values, before, after = calibrate(params, passes=passes, steps=steps, progress=progress,
                                          entries=train)
        record = _record(before, after, len(train), passes, steps)
        out.append(Fold(i + 1, tuple(groups), tuple(e["id"] for _, e in held), values, record))
    return out


def _record(before: Report, after: Report, trained: int, passes: int, steps: int) -> dict:
    return {
        "date": datetime.date.today().isoformat(),
        "how": ("`tegel validate --calibrate --folds K --write-folds DIR`: fidelity.calibrate "
                f"(coordinate descent, {passes} passes of {steps} golden-section steps per "
                "parameter, within the ranges of mapping/data/gpu.yaml) on the shipped H100 "
                "entries outside this fold; the serving group is never fitted"),
        "objective": f"{OBJECTIVE} (percent)",
        "objective_percent": {"before": objective(before), "after": objective(after)},
        "training_mape_percent": {g: after.mape(g) for g in FITTED_GROUPS},
        "training_entries": trained,
        "inputs_sha256": inputs_digest(),
    }


def write_folds(folds: list[Fold], folder: Path) -> list[Path]:
    """One YAML file per fold in `folder` (created; stale fold files removed)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(FOLD_GLOB):
        old.unlink()
    paths = []
    for f in folds:
        doc = {**f.record, "fold": f.index, "of": len(folds),
               "held_out_groups": list(f.held_out_groups),
               "held_out_ids": list(f.held_out_ids),
               "parameters": {k: f.parameters[k] for k in BOUNDS}}
        path = folder / f"fold-{f.index}.yaml"
        write_text(path, "# Written by `tegel validate --calibrate --folds`; do not edit by "
                   "hand.\n" + yaml.safe_dump(doc, sort_keys=False), "--write-folds")
        paths.append(path)
    return paths


def shipped_folds_dir() -> Path:
    return Path(str(resources.files("tegel.fidelity") / "data" / "folds"))


def load_folds(folder: Path | None = None) -> list[Fold]:
    """The folds written in `folder` (default: the shipped ones); [] if there are none."""
    folder = folder or shipped_folds_dir()
    out = []
    for path in sorted(folder.glob(FOLD_GLOB)):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or not {"fold", "held_out_ids", "parameters"} <= set(doc):
            raise TegelError(f"{path}: not a fold file (fold, held_out_ids, parameters)")
        record = {k: v for k, v in doc.items()
                  if k not in ("fold", "held_out_groups", "held_out_ids", "parameters")}
        out.append(Fold(int(doc["fold"]), tuple(doc.get("held_out_groups") or ()),
                        tuple(doc["held_out_ids"]), dict(doc["parameters"]), record))
    ids = [i for f in out for i in f.held_out_ids]
    if len(ids) != len(set(ids)):
        raise TegelError(f"{folder}: an entry is held out by more than one fold")
    return sorted(out, key=lambda f: f.index)
