"""The mapping policies' parameters as one immutable value: no globals, no caches keyed by path.

`Params` holds what turns peak figures into achieved ones — the GPU policy's efficiencies per
software generation (`data/gpu.yaml`, fitted values in `data/gpu_calibration.yaml`) and the
dataflow policy's assumptions (`data/dataflow.yaml`). It is frozen and picklable, so a worker
process given the same `Params` computes exactly what the parent would. `default_params()` reads
the shipped files; `load_params(path)` applies a calibration written by `tegel validate
--calibrate --write PATH` on top of them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tegel.errors import TegelError

SCALED_BY_GENERATION = ("gemm_peak_fraction", "attention_peak_fraction", "hbm_bandwidth_fraction")


@dataclass(frozen=True, slots=True)
class Generation:
    """An earlier GPU software generation (keyed by year): its achieved shares of peak compute
    and bandwidth are the current ones x `efficiency_scale`; `own` sets fields of its own."""

    year: str
    efficiency_scale: float = 1.0
    own: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class GpuParams:
    """Achieved-vs-peak parameters of the GPU policy for one software generation."""

    software: str
    gemm_peak_fraction: float
    attention_peak_fraction: float
    hbm_bandwidth_fraction: float
    l2_bandwidth_fraction: float
    tile_m: int
    tile_n: int
    small_tile_m: int
    split_k_min_k: int
    kernel_overhead_s: float
    l2_resident_fraction: float
    collective_overhead_s: float
    memory_usable_fraction: float
    request_overhead_s: float
    moe_gemm_efficiency: float
    generations: tuple[Generation, ...] = ()

    def for_software(self, software: str | None) -> GpuParams:
        """These parameters as software generation `software` ran (None: the current one)."""
        if software is None or software == self.software:
            return self
        gen = next((g for g in self.generations if g.year == software), None)
        if gen is None:
            known = ", ".join([self.software, *(g.year for g in self.generations)])
            raise TegelError(f"unknown GPU software generation {software!r}; known: {known}")
        scaled = {k: getattr(self, k) * gen.efficiency_scale for k in SCALED_BY_GENERATION}
        return replace(self, software=software, **{**scaled, **dict(gen.own)})

    def later_generation(self, year: str | None) -> str | None:
        """The generation a measurement from `year` ran: that year's, else the nearest later one
        (None: the current software)."""
        if year is None:
            return None
        later = sorted(g.year for g in self.generations if g.year >= year)
        return later[0] if later else None


@dataclass(frozen=True, slots=True)
class DataflowParams:
    """Assumptions of the dataflow policy (the spatial compiler's placement and rates)."""

    compute_peak_fraction: float
    sram_weight_fraction: float
    sram_bandwidth_fraction: float
    offchip_bandwidth_fraction: float
    step_overhead_s: float


@dataclass(frozen=True, slots=True)
class Params:
    """Everything a run needs besides the workload and the hardware; `source` says where the
    values came from (for reports)."""

    gpu: GpuParams
    dataflow: DataflowParams
    source: str = "shipped"

    def gpu_data(self) -> dict[str, Any]:
        """The GPU parameters as the data-file mapping (for calibration and reports)."""
        data = {f.name: getattr(self.gpu, f.name) for f in fields(GpuParams)
                if f.name != "generations"}
        data["generations"] = {g.year: {"efficiency_scale": g.efficiency_scale, **dict(g.own)}
                               for g in self.gpu.generations}
        return data

    def with_gpu(self, values: Mapping[str, Any], source: str) -> Params:
        """A copy with GPU fields (and `generations`) replaced from a data mapping."""
        merged = {**self.gpu_data(), **values}
        return replace(self, gpu=_gpu_from(merged, source), source=source)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TegelError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _typed(cls: type, data: Mapping[str, Any], source: str, skip: tuple[str, ...] = ()) -> dict:
    """The fields of `cls` from `data`, each checked: unknown or missing keys name the file."""
    names = {f.name: f for f in fields(cls) if f.name not in skip}
    unknown = sorted(set(data) - set(names) - set(skip))
    if unknown:
        raise TegelError(f"{source}: unknown parameter {unknown[0]!r}; expected one of "
                         f"{', '.join(sorted(names))}")
    out: dict[str, Any] = {}
    for name, f in names.items():
        if name not in data:
            if f.default is not dataclasses.MISSING:
                continue
            raise TegelError(f"{source}: missing parameter {name!r}")
        value = data[name]
        if f.type in ("str", str):
            out[name] = str(value)
        elif f.type in ("int", int):
            number = _number(value, f"{source}: {name}")
            if number != int(number) or number < 1:
                raise TegelError(f"{source}: {name}: expected a positive integer, got {value!r}")
            out[name] = int(number)
        else:
            number = _number(value, f"{source}: {name}")
            if number < 0:
                raise TegelError(f"{source}: {name}: expected a non-negative number, got {value!r}")
            out[name] = number
    return out


def _gpu_from(data: Mapping[str, Any], source: str) -> GpuParams:
    values = _typed(GpuParams, data, source, skip=("generations",))
    raw = data.get("generations") or {}
    if not isinstance(raw, Mapping):
        raise TegelError(f"{source}: generations: expected a mapping of year -> fields")
    gens = []
    for year, body in sorted(raw.items(), key=lambda kv: str(kv[0])):
        where = f"{source}: generations.{year}"
        if not isinstance(body, Mapping):
            raise TegelError(f"{where}: expected a mapping of fields")
        own = []
        for key, value in sorted(body.items()):
            if key == "efficiency_scale":
                continue
            if key not in values or key == "software":
                raise TegelError(f"{where}: unknown field {key!r}")
            number = _number(value, f"{where}.{key}")
            if number < 0:
                raise TegelError(f"{where}.{key}: expected a non-negative number, got {value!r}")
            own.append((str(key), number))
        scale = _number(body.get("efficiency_scale", 1.0), f"{where}.efficiency_scale")
        if scale <= 0:
            raise TegelError(f"{where}.efficiency_scale: expected a positive number, got {scale!r}")
        gens.append(Generation(str(year), scale, tuple(own)))
    return GpuParams(**values, generations=tuple(gens))


def _read(path: Path | Any, source: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise TegelError(f"{source}: cannot read: {err}") from None
    return dict(_parse(text, source))


@lru_cache(maxsize=16)
def _parse(text: str, source: str) -> dict[str, Any]:
    """YAML text -> mapping, cached by content (the text itself is the key)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(err, "problem", None) or "cannot parse"
        raise TegelError(f"{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise TegelError(f"{source}: expected a mapping at the top level")
    return data


def _shipped() -> tuple[dict[str, Any], dict[str, Any]]:
    folder = resources.files("tegel.mapping") / "data"
    gpu = _read(folder / "gpu.yaml", "mapping/data/gpu.yaml")
    fitted = folder / "gpu_calibration.yaml"
    if fitted.is_file():  # values fitted by `tegel validate --calibrate` replace the defaults
        gpu.update(calibration_values(_read(fitted, "mapping/data/gpu_calibration.yaml"),
                                      "mapping/data/gpu_calibration.yaml"))
    return gpu, _read(folder / "dataflow.yaml", "mapping/data/dataflow.yaml")


def calibration_values(doc: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The `parameters` mapping of a calibration file."""
    values = doc.get("parameters")
    if not isinstance(values, Mapping):
        raise TegelError(f"{source}: parameters: expected a mapping (a file written by "
                         "`tegel validate --calibrate --write`)")
    return dict(values)


def default_params() -> Params:
    """The shipped parameters (read afresh: a value, not a global)."""
    gpu, dataflow = _shipped()
    return Params(_gpu_from(gpu, "mapping/data/gpu.yaml"),
                  DataflowParams(**_typed(DataflowParams, dataflow, "mapping/data/dataflow.yaml")))


def load_params(path: str | Path | None) -> Params:
    """The shipped parameters with a calibration file's fitted values on top (None: shipped)."""
    base = default_params()
    if path is None:
        return base
    p = Path(path)
    if not p.is_file():
        raise TegelError(f"{p}: no such calibration file")
    return base.with_gpu(calibration_values(_read(p, str(p)), str(p)), str(p))


__all__ = ["DataflowParams", "Generation", "GpuParams", "Params", "default_params", "load_params"]
