"""The GPU policy's data files: its parameters with their ranges, and each chip's microbenchmarks.

`data/gpu.yaml` holds every parameter of the GPU policy as `{value, low, high, fitted, meaning,
source}` (a bare number is an assumption) and the earlier software stacks, each setting the
fields whose feature differs, with its source; `gpu_values` flattens it to {name: value} and
`gpu_fitted_ranges` says what calibration may fit and within which bounds.

`data/gpu_chips.yaml` holds, per chip preset, the throughput of the largest GEMMs its vendor
library reached and the STREAM Triad bandwidth, each beside the peak of the part measured and
its source. They are chip properties, never fitted; the GPU policy (`mapping.gpu`) multiplies
them by the serving shares fitted on H100 (`GpuParams`), so what differs between GPUs comes
from their own measurements, not from their LLM results.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

import yaml

from tegel.errors import TegelError

_FILE = "mapping/data/gpu_chips.yaml"
GPU_FILE = "mapping/data/gpu.yaml"
_ENTRY_KEYS = frozenset({"value", "low", "high", "fitted", "meaning", "source"})


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TegelError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _entry_value(name: str, entry: Any, source: str) -> Any:
    """The value of one parameter entry, checked against its range."""
    if not isinstance(entry, Mapping):
        return entry
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown or "value" not in entry:
        raise TegelError(f"{source}: {name}: expected {{value, low, high, fitted, meaning, "
                         f"source}}, got {', '.join(sorted(entry))}")
    value = _number(entry["value"], f"{source}: {name}.value")
    low = _number(entry.get("low", value), f"{source}: {name}.low")
    high = _number(entry.get("high", value), f"{source}: {name}.high")
    if not low <= value <= high:
        raise TegelError(f"{source}: {name}: value {value:g} outside its range [{low:g}, {high:g}]")
    if entry.get("fitted") and not entry.get("source"):
        raise TegelError(f"{source}: {name}: a fitted parameter needs the source of its range")
    return value


def gpu_values(doc: Mapping[str, Any], source: str = GPU_FILE) -> dict[str, Any]:
    """{name: value} of a gpu.yaml document; `generations` becomes {year: {field: value}}
    (its `stack` names are descriptions, dropped)."""
    out = {name: _entry_value(name, entry, source) for name, entry in doc.items()
           if name != "generations"}
    gens = doc.get("generations") or {}
    if not isinstance(gens, Mapping):
        raise TegelError(f"{source}: generations: expected a mapping of year -> fields")
    out["generations"] = {
        str(name): {k: v if k in ("years", "pattern") else
                    _entry_value(f"generations.{name}.{k}", v, source)
                    for k, v in (body or {}).items() if k != "stack"}
        for name, body in gens.items()}
    return out


def merge_gpu_values(base: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `values` on top; a generation's fields are merged field by field (a
    calibration that fits one field of a year keeps the year's cited others)."""
    out = {**base, **{k: v for k, v in values.items() if k != "generations"}}
    gens = {str(y): dict(f) for y, f in (base.get("generations") or {}).items()}
    new = values.get("generations")
    if new is not None:
        if not isinstance(new, Mapping):
            raise TegelError("generations: expected a mapping of year -> fields")
        for year, body in new.items():
            if not isinstance(body, Mapping):
                raise TegelError(f"generations.{year}: expected a mapping of fields")
            gens.setdefault(str(year), {}).update(body)
    out["generations"] = gens
    return out


def gpu_fitted_ranges(doc: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """{parameter: (low, high)} of the entries of a gpu.yaml document marked `fitted`."""
    return {name: (float(e["low"]), float(e["high"])) for name, e in doc.items()
            if isinstance(e, Mapping) and e.get("fitted")}


def check_fitted(values: Mapping[str, Any], ranges: Mapping[str, tuple[float, float]],
                 source: str) -> None:
    """A calibration's values must be fitted parameters, each inside its range."""
    for name, value in values.items():
        if name == "generations":
            continue
        if name not in ranges:
            raise TegelError(f"{source}: {name} is not a fitted GPU parameter; fitted: "
                             f"{', '.join(sorted(ranges))}")
        lo, hi = ranges[name]
        number = _number(value, f"{source}: {name}")
        if not lo <= number <= hi:
            raise TegelError(f"{source}: {name} = {number:g} outside its range [{lo:g}, {hi:g}] "
                             f"({GPU_FILE})")


@dataclass(frozen=True, slots=True)
class ChipRates:
    """Measured shares of one GPU's peaks: (compute class, GEMM share) pairs, the HBM share and
    the all-reduce bus bandwidth as a share of its node's scale-up link rate (above 1 where the
    switch reduces in-network); `measured` is False for the default a chip without
    microbenchmarks runs at."""

    chip: str
    gemm: tuple[tuple[str, float], ...]
    hbm_fraction: float
    measured: bool = True
    allreduce_fraction: float = 1.0
    # (message bytes, bus bandwidth / the largest message's) of nccl-tests' all-reduce sweep,
    # ascending; empty: the large-message share at every size
    allreduce_by_bytes: tuple[tuple[float, float], ...] = ()
    sibling: str = ""  # the card of the same die whose GEMM and HBM shares these are

    def allreduce_share_at(self, message_bytes: float) -> float:
        """Bus bandwidth of an all-reduce of `message_bytes` as a share of the largest
        message's (`allreduce_fraction` x link rate): the measured sweep interpolated linearly
        in log(size), clamped at its ends; 1 without a sweep."""
        return log_interpolate(self.allreduce_by_bytes, message_bytes)

    def gemm_fraction(self, compute_class: str) -> float:
        """The measured GEMM share of peak in `compute_class` (a class not measured takes the
        share of the one the data file assumes for it, else the first measured one)."""
        shares = dict(self.gemm)
        if compute_class in shares:
            return shares[compute_class]
        return self.gemm[0][1]


@dataclass(frozen=True, slots=True)
class ChipTable:
    """Every chip's measured rates, and the default for chips without measurements."""

    rates: tuple[ChipRates, ...]
    default: ChipRates

    def of(self, chip: str) -> ChipRates:
        """The rates measured on `chip` (its preset name), else the default."""
        return next((r for r in self.rates if r.chip == chip), self.default)


def log_interpolate(points: tuple[tuple[float, float], ...], x: float) -> float:
    """y at `x` of (x, y) `points` (x ascending), linear in log(x), clamped at the ends; 1.0
    without points."""
    if not points:
        return 1.0
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x <= x1:
            t = math.log(x / x0) / math.log(x1 / x0)
            return y0 + t * (y1 - y0)
    return points[-1][1]


def _sweep(entry: Mapping[str, Any], where: str) -> tuple[tuple[float, float], ...]:
    """The `by_message_bytes` sweep of an allreduce entry as (bytes, share of the largest
    message's bus bandwidth), ascending; () when the entry has none."""
    sweep = entry.get("by_message_bytes")
    if sweep is None:
        return ()
    if not isinstance(sweep, Mapping) or len(sweep) < 2:
        raise TegelError(f"{where}.by_message_bytes: expected a mapping of message bytes -> bus "
                         "bytes/s with at least two sizes")
    top = float(entry["achieved_bus_bytes_per_s"])
    points = []
    for size, bw in sweep.items():
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                   and v > 0 for v in (size, bw)):
            raise TegelError(f"{where}.by_message_bytes: expected positive numbers, got "
                             f"{size!r}: {bw!r}")
        points.append((float(size), float(bw) / top))
    points.sort()
    if points[-1][1] != 1.0:
        raise TegelError(f"{where}.by_message_bytes: its largest message must be the one "
                         f"achieved_bus_bytes_per_s states ({top:g})")
    return tuple(points)


def _median_sweep(sweeps: list[tuple[tuple[float, float], ...]]) -> tuple[tuple[float, float], ...]:
    """At the sizes of the first sweep, the median of every sweep's share (a chip without a
    sweep of its own runs at it)."""
    if not sweeps:
        return ()
    return tuple((size, statistics.median(log_interpolate(sw, size) for sw in sweeps))
                 for size, _ in sweeps[0])


def _share(entry: Any, achieved: str, peak: str, where: str, most: float = 1.0) -> float:
    """achieved / peak of a measurement entry, at most `most` (an all-reduce's bus bandwidth may
    exceed the link rate where the switch reduces in-network, at most twice: it halves what
    each GPU sends)."""
    if not isinstance(entry, Mapping) or achieved not in entry or peak not in entry:
        raise TegelError(f"{where}: expected {{{achieved}, {peak}, source}}")
    a, p = entry[achieved], entry[peak]
    if not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
               and x > 0 for x in (a, p)):
        raise TegelError(f"{where}: expected positive numbers, got {a!r} / {p!r}")
    if a > most * p:
        bound = "the peak" if most == 1.0 else f"{most:g} x the link rate"
        raise TegelError(f"{where}: achieved {a:g} exceeds {bound} ({p:g})")
    if not entry.get("source"):
        raise TegelError(f"{where}: missing source")
    return float(a) / float(p)


def chip_table(doc: Mapping[str, Any], source: str = _FILE) -> ChipTable:
    """The table of a gpu_chips document (the shipped file's format)."""
    chips = doc.get("chips")
    default = doc.get("default")
    if not isinstance(chips, Mapping) or not isinstance(default, Mapping):
        raise TegelError(f"{source}: expected 'chips' and 'default' mappings")
    default_allreduce = _number(default.get("allreduce", 1.0), f"{source}: default.allreduce")
    if not 0 < default_allreduce <= 2:
        raise TegelError(f"{source}: default.allreduce: expected a share in (0, 2], got "
                         f"{default_allreduce:g}")
    out = []
    sweeps: list[tuple[tuple[float, float], ...]] = []
    for name, body in chips.items():
        where = f"{source}: chips.{name}"
        gemm = body.get("gemm") if isinstance(body, Mapping) else None
        if not isinstance(gemm, Mapping) or not gemm:
            raise TegelError(f"{where}.gemm: expected a mapping of format -> measurement")
        shares = {cls: _share(e, "achieved_flops_per_s", "peak_flops_per_s", f"{where}.gemm.{cls}")
                  for cls, e in gemm.items()}
        for cls, like in (body.get("assume") or {}).items():
            if like not in shares:
                raise TegelError(f"{where}.assume.{cls}: {like!r} is not a measured format")
            shares.setdefault(str(cls), shares[like])
        hbm = _share(body.get("hbm"), "achieved_bytes_per_s", "peak_bytes_per_s", f"{where}.hbm")
        allreduce = default_allreduce
        sweep: tuple[tuple[float, float], ...] = ()
        if "allreduce" in body:
            allreduce = _share(body["allreduce"], "achieved_bus_bytes_per_s", "link_bytes_per_s",
                               f"{where}.allreduce", most=2.0)
            sweep = _sweep(body["allreduce"], f"{where}.allreduce")
            if sweep:
                sweeps.append(sweep)
        out.append(ChipRates(str(name), tuple(shares.items()), hbm, True, allreduce, sweep))
    fallback = ChipRates("default", (("*", float(default["gemm"])),), float(default["hbm"]), False,
                         default_allreduce, _median_sweep(sweeps))
    # a chip without a sweep of its own runs at the median one
    out = [r if r.allreduce_by_bytes else replace(r, allreduce_by_bytes=fallback.allreduce_by_bytes)
           for r in out]
    return ChipTable(tuple(out), fallback)


@cache
def shipped_chip_table() -> ChipTable:
    """The table of the shipped data/gpu_chips.yaml (a value: cached by nothing but the file)."""
    text = (resources.files("tegel.mapping") / "data" / "gpu_chips.yaml").read_text(encoding="utf-8")
    return chip_table(yaml.safe_load(text))
