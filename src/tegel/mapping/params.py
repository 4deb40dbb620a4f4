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
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tegel.errors import TegelError
from tegel.mapping.gpu_data import (
    GPU_FILE,
    ChipRates,
    ChipTable,
    check_fitted,
    gpu_fitted_ranges,
    gpu_values,
    merge_gpu_values,
    shipped_chip_table,
)


@dataclass(frozen=True, slots=True)
class Generation:
    """An earlier GPU software stack: its name, the fields it sets differently from the current
    stack (`own`), each a feature difference that mapping/data/gpu.yaml cites (no scale on
    achieved rates: those were fudge factors), and which measurements ran it: those whose
    software text matches `pattern`, else those of `years`."""

    name: str
    own: tuple[tuple[str, float], ...] = ()
    years: tuple[int, ...] = ()
    pattern: str = ""


@dataclass(frozen=True, slots=True)
class GpuParams:
    """Parameters of the GPU policy for one software stack. A chip's achieved rates are its own
    measured microbenchmark shares (`chips`, mapping/data/gpu_chips.yaml, never fitted) times
    the serving shares here, which are fitted on H100 only (mapping/data/gpu_calibration.yaml);
    meanings, plausible ranges and sources: mapping/data/gpu.yaml and docs/fidelity.md."""

    software: str
    gemm_serving_fraction: float  # achieved / microbenchmark GEMM rate inside a serving engine
    attention_serving_fraction: float  # attention kernels' rate / the chip's GEMM rate
    hbm_serving_fraction: float  # achieved / STREAM bandwidth of streaming kernels
    l2_bandwidth_fraction: float
    # share of L2 bandwidth a decode attention kernel of one thread block per query head (not
    # GQA-aware: gqa_kv_sharing < 1) reaches
    per_head_attention_l2_fraction: float
    tile_m: int
    tile_n: int
    small_tile_m: int
    split_k_min_k: int
    kernel_overhead_s: float
    iteration_overhead_s: float  # the engine's host work per forward call (schedule, sample)
    l2_resident_fraction: float
    collective_overhead_s: float
    memory_usable_fraction: float
    request_overhead_s: float
    moe_gemm_efficiency: float
    custom_allreduce_max_bytes: float  # larger all-reduces go through NCCL / RCCL
    custom_allreduce_max_bytes_tp2: float  # the same between two GPUs
    # features of the stack (gpu.yaml, each with its source; generations set them per stack)
    gqa_kv_sharing: float  # 1: decode attention reads a KV head once per query group
    beam_kv_sharing: float  # 1: the beams of a request read their shared prompt cache once
    fp8_context_attention: float  # 1: prefill attention in FP8 when the KV cache is FP8
    kv_pages_on_demand: float  # 1: in-flight batching, KV pages held as sequences grow
    in_flight_batching: float  # 1: finished requests replaced at once; 0: static batches
    generations: tuple[Generation, ...] = ()
    chips: ChipTable = field(default_factory=shipped_chip_table)

    def for_software(self, software: str | None) -> GpuParams:
        """These parameters as software generation `software` ran: a generation's name, or a
        year (the stack of that year, else of the nearest later one); None: the current one."""
        if software is not None and software.isdigit():
            software = self.later_generation(software)
        if software is None or software == self.software:
            return self
        gen = next((g for g in self.generations if g.name == software), None)
        if gen is None:
            known = ", ".join([self.software, *(g.name for g in self.generations)])
            raise TegelError(f"unknown GPU software generation {software!r}; known: {known}")
        own: dict[str, Any] = dict(gen.own)  # numeric fields, checked when read
        return replace(self, software=software, **own)

    def later_generation(self, year: str | None) -> str | None:
        """The generation a measurement ran: `year` itself when it names one, else the one of
        that year or the nearest later year (None: the current software)."""
        if year is None or any(g.name == year for g in self.generations):
            return year
        if not year.isdigit():
            raise TegelError(f"unknown GPU software generation {year!r}")
        later = sorted((min(y for y in g.years if y >= int(year)), g.name)
                       for g in self.generations if any(y >= int(year) for y in g.years))
        return later[0][1] if later else None

    def rates(self, chip: str, same_silicon_as: str | None = None) -> ChipRates:
        """The microbenchmark shares measured on chip preset `chip`; a chip without its own
        that names a card of the same die (`same_silicon_as`) takes that card's measured GEMM
        and HBM shares (the same die, memory controller and vendor library; its power limit is
        priced apart, evaluate/terms.py), the default's all-reduce (a property of the node);
        else the stated default."""
        own = self.chips.of(chip)
        if own.measured or not same_silicon_as:
            return own
        sibling = self.chips.of(same_silicon_as)
        if not sibling.measured:
            return own
        return replace(own, gemm=sibling.gemm, hbm_fraction=sibling.hbm_fraction,
                       measured=True, sibling=sibling.chip)


@dataclass(frozen=True, slots=True)
class DataflowParams:
    """Assumptions of the dataflow policy (the spatial compiler's placement and rates) and what
    a deployed system adds to the compiled plan (`mapping.lower` applies them to its steps):
    the host round trip of every forward call (and of every hop on a link that passes through
    host servers), the fixed cost of a pipeline hand-off and of a collective between chips, and
    the achieved shares of NoC and memory bandwidth. Values, ranges and sources:
    `data/dataflow.yaml`; fitted ones: `data/dataflow_calibration.yaml`."""

    compute_peak_fraction: float
    sram_weight_fraction: float
    sram_bandwidth_fraction: float
    offchip_bandwidth_fraction: float
    step_overhead_s: float
    noc_bandwidth_fraction: float = 1.0
    host_round_trip_s: float = 0.0
    stage_handoff_s: float = 0.0
    collective_sync_s: float = 0.0


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
                if f.name not in ("generations", "chips")}
        data["generations"] = {g.name: {**dict(g.own), "years": list(g.years),
                                        "pattern": g.pattern} for g in self.gpu.generations}
        return data

    def with_gpu(self, values: Mapping[str, Any], source: str) -> Params:
        """A copy with GPU fields (and `generations`) replaced from a data mapping."""
        merged = merge_gpu_values(self.gpu_data(), values)
        return replace(self, gpu=_gpu_from(merged, source, self.gpu.chips), source=source)

    def with_dataflow(self, values: Mapping[str, Any], source: str) -> Params:
        """A copy with dataflow fields replaced from a data mapping (a calibration's values)."""
        merged = {f.name: getattr(self.dataflow, f.name) for f in fields(DataflowParams)}
        merged.update(values)
        return replace(self, dataflow=DataflowParams(**_typed(DataflowParams, merged, source)),
                       source=source)


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


def _gpu_from(data: Mapping[str, Any], source: str, chips: ChipTable | None = None) -> GpuParams:
    values = _typed(GpuParams, data, source, skip=("generations", "chips"))
    raw = data.get("generations") or {}
    if not isinstance(raw, Mapping):
        raise TegelError(f"{source}: generations: expected a mapping of year -> fields")
    gens = []
    for year, body in sorted(raw.items(), key=lambda kv: str(kv[0])):
        where = f"{source}: generations.{year}"
        if not isinstance(body, Mapping):
            raise TegelError(f"{where}: expected a mapping of fields")
        own = []
        years = body.get("years") or []
        if not isinstance(years, list) or not all(isinstance(y, int) for y in years):
            raise TegelError(f"{where}.years: expected a list of years")
        pattern = str(body.get("pattern") or "")
        for key, value in sorted(body.items()):
            if key in ("years", "pattern"):
                continue
            if key == "efficiency_scale":
                raise TegelError(f"{where}.efficiency_scale: removed (issue 13): a software "
                                 "generation sets the fields whose feature differs, with a "
                                 "source, not a scale on achieved rates (docs/fidelity.md)")
            if key not in values or key == "software":
                raise TegelError(f"{where}: unknown field {key!r}")
            number = _number(value, f"{where}.{key}")
            if number < 0:
                raise TegelError(f"{where}.{key}: expected a non-negative number, got {value!r}")
            own.append((str(key), number))
        gens.append(Generation(str(year), tuple(own), tuple(years), pattern))
    return GpuParams(**values, generations=tuple(gens), chips=chips or shipped_chip_table())


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
    doc = _read(folder / "gpu.yaml", GPU_FILE)
    gpu = gpu_values(doc)
    fitted = folder / "gpu_calibration.yaml"
    if fitted.is_file():  # values fitted by `tegel validate --calibrate` replace the defaults
        where = "mapping/data/gpu_calibration.yaml"
        values = calibration_values(_read(fitted, where), where)
        check_fitted(values, gpu_fitted_ranges(doc), where)
        gpu = merge_gpu_values(gpu, values)
    dataflow = _dataflow_values(_read(folder / "dataflow.yaml", DATAFLOW_FILE), DATAFLOW_FILE)
    fitted = folder / "dataflow_calibration.yaml"
    if fitted.is_file():  # values fitted by tools/calibrate_dataflow.py replace the defaults
        where = "mapping/data/dataflow_calibration.yaml"
        dataflow.update(_dataflow_calibration(_read(fitted, where), where))
    return gpu, dataflow


DATAFLOW_FILE = "mapping/data/dataflow.yaml"


def _dataflow_values(doc: Mapping[str, Any], source: str) -> dict[str, Any]:
    """{name: value} of the dataflow file, whose entries are `{value, low, high, fitted,
    meaning, source}` mappings (a bare number is a value without a range); a value outside its
    range names the entry."""
    out: dict[str, Any] = {}
    for name, entry in doc.items():
        if not isinstance(entry, Mapping):
            out[name] = entry
            continue
        if "value" not in entry:
            raise TegelError(f"{source}: {name}: missing 'value'")
        value = _number(entry["value"], f"{source}: {name}.value")
        low = _number(entry.get("low", value), f"{source}: {name}.low")
        high = _number(entry.get("high", value), f"{source}: {name}.high")
        if not low <= value <= high:
            raise TegelError(f"{source}: {name}: value {value:g} outside its range "
                             f"[{low:g}, {high:g}]")
        out[name] = value
    return out


def dataflow_fitted_ranges() -> dict[str, tuple[float, float]]:
    """{parameter: (low, high)} of the dataflow parameters marked `fitted` in the shipped file:
    what tools/calibrate_dataflow.py may fit, and within which range."""
    folder = resources.files("tegel.mapping") / "data"
    doc = _read(folder / "dataflow.yaml", DATAFLOW_FILE)
    return {name: (float(e["low"]), float(e["high"])) for name, e in doc.items()
            if isinstance(e, Mapping) and e.get("fitted")}


def uncalibrated_dataflow() -> dict[str, Any]:
    """The central values of the fitted dataflow parameters (before any calibration)."""
    folder = resources.files("tegel.mapping") / "data"
    values = _dataflow_values(_read(folder / "dataflow.yaml", DATAFLOW_FILE), DATAFLOW_FILE)
    return {name: values[name] for name in dataflow_fitted_ranges()}


def _dataflow_calibration(doc: Mapping[str, Any], source: str) -> dict[str, Any]:
    values = calibration_values(doc, source)
    ranges = dataflow_fitted_ranges()
    for name, value in values.items():
        if name not in ranges:
            raise TegelError(f"{source}: {name} is not a fitted dataflow parameter; fitted: "
                             f"{', '.join(sorted(ranges))}")
        lo, hi = ranges[name]
        if not lo <= _number(value, f"{source}: {name}") <= hi:
            raise TegelError(f"{source}: {name} = {value:g} outside its range [{lo:g}, {hi:g}]")
    return values


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
                  DataflowParams(**_typed(DataflowParams, dataflow, DATAFLOW_FILE)))


def load_params(path: str | Path | None) -> Params:
    """The shipped parameters with a calibration file's fitted values on top (None: shipped)."""
    base = default_params()
    if path is None:
        return base
    p = Path(path)
    if not p.is_file():
        raise TegelError(f"{p}: no such calibration file")
    doc = _read(p, str(p))
    if doc.get("policy") == "dataflow":  # written by tools/calibrate_dataflow.py
        return base.with_dataflow(_dataflow_calibration(doc, str(p)), str(p))
    return base.with_gpu(calibration_values(doc, str(p)), str(p))


__all__ = ["DataflowParams", "Generation", "GpuParams", "Params", "dataflow_fitted_ranges",
           "default_params", "load_params", "uncalibrated_dataflow"]
