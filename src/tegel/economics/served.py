"""What economics reads of a system serving a workload, one interface (`Served`) for both ways
it can be placed: a static batch (`RunResult`, `tegel run`) or an operating point of its
serving curve at a service level (`ServingPoint`).

A `ServingPoint` presents an `OperatingPoint` as economics reads a run, recomputing nothing:
throughput and per-user speed are the curve point's steady state (`CurvePoint`); energy per
token, its breakdown and power are the serving run's own, over its whole span (`ServeResult`,
ramp and drain included). With the point's max(4 x concurrency, 64) requests the two agree:
energy per token x steady throughput / power is 1.00-1.02 at the worked example's points.

`Repriced` reads a served point with what economics prices replaced, the timing kept: a system
with one figure moved (`lerp` between two simulations of it) or another load (equal load).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tegel.hardware import System
from tegel.mapping.plan import Parallelism
from tegel.serving.operating import OperatingPoint
from tegel.serving.run import RunResult
from tegel.workload.llm import Precision


class Served(Protocol):
    """A system serving the workload, as TCO, footprint, floor and claim read it."""

    @property
    def system(self) -> System: ...
    @property
    def batch(self) -> int: ...  # sequences in flight (a static batch, or the concurrency)
    @property
    def precision(self) -> Precision: ...
    @property
    def parallelism(self) -> Parallelism: ...
    @property
    def chips_busy(self) -> int: ...
    @property
    def chips_idle(self) -> int: ...
    @property
    def throughput_tokens_per_s(self) -> float: ...
    @property
    def tokens_per_s_per_user(self) -> float: ...
    @property
    def energy_j_per_token(self) -> float: ...
    @property
    def energy_breakdown_j_per_token(self) -> dict[str, float]: ...
    @property
    def power_w(self) -> float: ...


@dataclass(frozen=True, slots=True)
class ServingPoint:
    """An operating point read as a run (module doc)."""

    op: OperatingPoint

    @property
    def system(self) -> System:
        return self.op.point.result.system

    @property
    def batch(self) -> int:
        return self.op.point.concurrency

    @property
    def precision(self) -> Precision:
        return self.op.point.result.precision

    @property
    def parallelism(self) -> Parallelism:
        return self.op.point.result.parallelism

    @property
    def chips_busy(self) -> int:
        return self.op.point.result.chips_busy

    @property
    def chips_idle(self) -> int:
        return self.op.point.result.chips_idle

    @property
    def throughput_tokens_per_s(self) -> float:
        return self.op.point.throughput_tokens_per_s

    @property
    def tokens_per_s_per_user(self) -> float:
        return self.op.point.tokens_per_s_per_user

    @property
    def energy_j_per_token(self) -> float:
        return self.op.point.energy_j_per_token

    @property
    def energy_breakdown_j_per_token(self) -> dict[str, float]:
        return self.op.point.result.energy_breakdown_j_per_token

    @property
    def power_w(self) -> float:
        return self.op.point.power_w


def service_fields(r: Served) -> dict[str, object]:
    """How a system served, for the claim's JSON: split, concurrency, p99 TTFT (a static
    batch's TTFT is every request's), and the operating point with its search (None: static)."""
    if isinstance(r, ServingPoint):
        op = r.op.to_dict()
        return {"parallelism": op["parallelism"], "concurrency": r.batch,
                "ttft_p99_s": r.op.point.ttft_p99_s, "operating_point": op}
    if not isinstance(r, RunResult):
        raise TypeError(f"not a run or an operating point: {type(r).__name__}")
    return {"parallelism": r.to_dict()["parallelism"], "concurrency": r.batch,
            "ttft_p99_s": r.ttft_s, "operating_point": None}


@dataclass(frozen=True, slots=True)
class Repriced:
    """A served point read on another system or at another load, timing as `base` served it:
    the same split, concurrency and scheduler; the system economics prices (`moved`: one figure
    moved, same timing), throughput, energy per token, its breakdown and power replaced. Built by
    `lerp` (a figure between two simulated values: energy and power are affine in it while the
    timing does not change) and by the equal-load comparison (`equal_load.py`)."""

    base: Served
    moved: System
    throughput: float
    energy: float  # J per token
    power: float  # W
    breakdown: dict[str, float]

    @property
    def system(self) -> System:
        return self.moved

    @property
    def batch(self) -> int:
        return self.base.batch

    @property
    def precision(self) -> Precision:
        return self.base.precision

    @property
    def parallelism(self) -> Parallelism:
        return self.base.parallelism

    @property
    def chips_busy(self) -> int:
        return self.base.chips_busy

    @property
    def chips_idle(self) -> int:
        return self.base.chips_idle

    @property
    def throughput_tokens_per_s(self) -> float:
        return self.throughput

    @property
    def tokens_per_s_per_user(self) -> float:
        return self.base.tokens_per_s_per_user

    @property
    def energy_j_per_token(self) -> float:
        return self.energy

    @property
    def energy_breakdown_j_per_token(self) -> dict[str, float]:
        return self.breakdown

    @property
    def power_w(self) -> float:
        return self.power


def lerp(a: Served, b: Served, t: float, system: System) -> Repriced:
    """`a` + t x (`b` - `a`) in energy per token, its breakdown and power, on `system`; `a` and
    `b` must share their timing (the same requests served at the same throughput)."""
    keys = set(a.energy_breakdown_j_per_token) | set(b.energy_breakdown_j_per_token)
    ea, eb = a.energy_breakdown_j_per_token, b.energy_breakdown_j_per_token
    return Repriced(a, system, a.throughput_tokens_per_s,
                    a.energy_j_per_token + t * (b.energy_j_per_token - a.energy_j_per_token),
                    a.power_w + t * (b.power_w - a.power_w),
                    {k: ea.get(k, 0.0) + t * (eb.get(k, 0.0) - ea.get(k, 0.0)) for k in keys})


def same_timing(a: Served, b: Served) -> bool:
    """Whether two servings of the same requests ran on the same clock (throughput and speed
    per user equal to 1e-9): then energy and power are affine in any energy figure between."""
    def close(x: float, y: float) -> bool:
        return abs(x - y) <= 1e-9 * max(abs(x), abs(y), 1e-30)

    return (close(a.throughput_tokens_per_s, b.throughput_tokens_per_s)
            and close(a.tokens_per_s_per_user, b.tokens_per_s_per_user))
