"""A design space as a file: the knobs of a chip template and its system, the workload, the
service level, constraints, objectives and the search (docs/explore.md).

A parameter is named by its path in the template (`rows`, `tile.macs_per_cycle`,
`offchip.stacks`, `noc.topology`, `node`, `clock_hz`) or is one of the system and workload knobs
`system.chip_count` and `workload.precision`. Its values are a list (`values: [...]`) or a range
(`low`, `high`, optional `step` and `log`); a range of integers with an integer step is an
integer parameter. Every error names the file, the line, the field and what was expected.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tegel.errors import TegelError
from tegel.explore.metrics import CONSTRAINTS, METRICS
from tegel.hardware.loader import resolve_path
from tegel.hardware.template import ChipTemplate
from tegel.hardware.yamlio import LineDict, format_validation_error, locate, read_yaml

Value = int | float | str | bool
SYSTEM_PARAMS = ("system.chip_count",)
WORKLOAD_PARAMS = ("workload.precision", "workload.batch")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Param(_Model):
    """One knob: a list of values, or a range [low, high] (optionally stepped or logarithmic)."""

    values: list[Value] | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = Field(default=None, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> Param:
        if self.values is not None:
            if self.low is not None or self.high is not None or self.step is not None:
                raise ValueError("give either values or low/high, not both")
            if not self.values:
                raise ValueError("values: expected at least one value")
            if len({json.dumps(v) for v in self.values}) != len(self.values):
                raise ValueError("values: expected each value once")
            return self
        if self.low is None or self.high is None:
            raise ValueError("expected values: [...] or low and high")
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low <= self.high):
            raise ValueError(f"expected finite low <= high, got {self.low:g} > {self.high:g}")
        if self.log and self.low <= 0:
            raise ValueError("log: a logarithmic range needs low > 0")
        return self

    @property
    def is_int(self) -> bool:
        """A range whose ends and step are whole numbers (a step is needed: 1 if not given)."""
        ends = [self.low, self.high, self.step or 1.0]
        return self.values is None and all(float(x or 0).is_integer() for x in ends) and (
            self.step is not None and float(self.step).is_integer())

    def grid(self) -> list[Value]:
        """Every value of a list or a stepped range (a continuous range has no grid)."""
        if self.values is not None:
            return list(self.values)
        if self.step is None or self.low is None or self.high is None:
            raise TegelError("a continuous range has no grid")
        n = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        raw = [self.low + i * self.step for i in range(n)]
        out: list[Value] = [round(v) for v in raw] if self.is_int else list(raw)
        return out


class WorkloadSpec(_Model):
    model: str
    input_tokens: int = Field(default=1024, ge=1)
    output_tokens: int = Field(default=256, ge=1)
    precision: str | None = None  # None: each design's default (bf16 where it has it)


class SloSpec(_Model):
    min_tokens_per_s_per_user: float = Field(ge=0)
    max_ttft_s: float | None = Field(default=None, gt=0)


class EvaluateSpec(_Model):
    """`operating_point`: highest throughput at the SLO (`serving/operating.py`);
    `fixed_batch`: one static `tegel run` at `batch` (the fast analytical objective)."""

    kind: Literal["operating_point", "fixed_batch"] = "operating_point"
    batch: int | None = Field(default=None, ge=1)
    # fixed_batch: this many of the best feasible points (by the first objective) are evaluated
    # again at the SLO's operating point after the search
    refine_top: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _batch(self) -> EvaluateSpec:
        if self.kind == "operating_point" and self.refine_top:
            raise ValueError("refine_top: only a fixed_batch search is refined")
        return self


class SearchSpec(_Model):
    method: Literal["grid", "random", "tpe", "nsga2"] = "random"
    trials: int = Field(default=100, ge=1)
    seed: int = Field(default=0, ge=0)
    batch: int = Field(default=32, ge=1)  # trials asked together (NSGA-II: the population)


class SpaceFile(_Model):
    kind: Literal["explore_space"]
    name: str
    description: str = ""
    template: str
    system: str | None = None  # a system whose chip the design replaces (links, host, racks)
    parameters: dict[str, Param]
    workload: WorkloadSpec
    slo: SloSpec | None = None
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)
    constraints: dict[str, float] = Field(default_factory=dict)
    objectives: dict[str, Literal["min", "max"]]
    search: SearchSpec = Field(default_factory=SearchSpec)
    baseline: str | None = None
    target_tokens_per_s: float = Field(default=1.0e6, gt=0)  # the footprint is sized for it


@dataclass(frozen=True, slots=True)
class Space:
    """A validated space: the file's content, where it came from, and resolved paths."""

    spec: SpaceFile
    path: Path
    template_path: Path
    system_path: Path | None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.spec.parameters)

    @property
    def objectives(self) -> tuple[tuple[str, str], ...]:
        return tuple(self.spec.objectives.items())

    @property
    def evaluation_hash(self) -> str:
        """What a point's result depends on besides its parameters (not the search settings)."""
        d = self.spec.model_dump(exclude={"search", "description", "name", "baseline"})
        d["template_text"] = self.template_path.read_text(encoding="utf-8")
        if self.system_path is not None:
            d["system_text"] = self.system_path.read_text(encoding="utf-8")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def column(name: str) -> str:
    """The SQL column of a parameter or metric name: dots become underscores."""
    return name.replace(".", "_")


def point_key(params: dict[str, Value]) -> str:
    """A point's identity: a hash of its parameter values (canonical JSON)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:20]


def load_space(path: str | Path) -> Space:
    """Read and check a space file; TegelError names file, line, field and what was expected."""
    p = Path(path)
    raw = read_yaml(p)
    source = str(p)
    try:
        spec = SpaceFile.model_validate(raw)
    except ValidationError as err:
        raise TegelError(format_validation_error(err, raw, source, SpaceFile)) from None
    template_path = _resolve(raw, "template", spec.template, p, source)
    system_path = None if spec.system is None else _resolve(raw, "system", spec.system, p, source)
    _check(spec, raw, source, template_path, system_path)
    return Space(spec, p, template_path, system_path)


def _resolve(raw: LineDict, field: str, name: str, p: Path, source: str) -> Path:
    try:
        return resolve_path(name, p.parent).resolve()
    except TegelError as err:
        raise TegelError(f"{source}:{locate(raw, (field,))}: {field}: {err}") from None


def _fail(raw: LineDict, loc: tuple[str, ...], source: str, what: str) -> TegelError:
    return TegelError(f"{source}:{locate(raw, loc)}: {'.'.join(loc)}: {what}")


def _check(spec: SpaceFile, raw: LineDict, source: str, template_path: Path,
           system_path: Path | None) -> None:
    """What pydantic cannot see: parameter paths, known metric and constraint names, kinds."""
    template_raw = read_yaml(template_path)
    if template_raw.get("kind") != "chip_template":
        raise _fail(raw, ("template",), source,
                    f"expected a chip_template, {template_path} is a {template_raw.get('kind')!r}")
    try:
        template = ChipTemplate.model_validate(template_raw).model_dump()
    except ValidationError as err:
        raise TegelError(format_validation_error(err, template_raw, str(template_path),
                                                 ChipTemplate)) from None
    if system_path is not None and read_yaml(system_path).get("kind") != "system":
        raise _fail(raw, ("system",), source, f"expected a system file or preset ({system_path})")
    columns: dict[str, str] = {}
    for name, param in spec.parameters.items():
        loc = ("parameters", name)
        if name not in SYSTEM_PARAMS + WORKLOAD_PARAMS and not _has_path(template, name):
            raise _fail(raw, loc, source, f"not a field of template {spec.template} (expected a "
                        f"path such as rows, tile.macs_per_cycle, offchip.stacks, or one of "
                        f"{', '.join(SYSTEM_PARAMS + WORKLOAD_PARAMS)})")
        if name == "system.chip_count" and system_path is None and param.grid() != [1]:
            raise _fail(raw, loc, source, "several chips need a `system:` (its links and host)")
        if spec.search.method == "grid" and param.values is None and param.step is None:
            raise _fail(raw, loc, source, "grid search needs values or a step")
        if column(name) in columns:
            raise _fail(raw, loc, source, f"same column as {columns[column(name)]!r}")
        columns[column(name)] = name
    for name in spec.objectives:
        if name not in METRICS:
            raise _fail(raw, ("objectives", name), source,
                        f"unknown metric; expected one of {', '.join(METRICS)}")
    for name in spec.constraints:
        if name not in CONSTRAINTS:
            raise _fail(raw, ("constraints", name), source,
                        f"unknown constraint; expected one of {', '.join(CONSTRAINTS)}")
    batch_param = "workload.batch" in spec.parameters
    if spec.evaluate.kind == "fixed_batch" and (spec.evaluate.batch is None) != batch_param:
        raise _fail(raw, ("evaluate",), source, "fixed_batch needs evaluate.batch or a "
                    "workload.batch parameter (one of the two)")
    if spec.evaluate.kind == "operating_point" and batch_param:
        raise _fail(raw, ("parameters", "workload.batch"), source,
                    "an operating point chooses its own concurrency; no batch parameter")
    if (spec.evaluate.kind == "operating_point" or spec.evaluate.refine_top) and spec.slo is None:
        raise _fail(raw, ("evaluate",), source, "operating_point needs an `slo:`")
    if spec.search.method == "tpe" and len(spec.objectives) != 1:
        raise _fail(raw, ("search", "method"), source,
                    "tpe optimises one objective; use nsga2 for several")


def _has_path(doc: Any, dotted: str) -> bool:
    node = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return not isinstance(node, dict | list)
