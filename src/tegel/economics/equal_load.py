"""Both systems serving the same load at the service level, each charged for all it occupies.

The max-throughput comparison of `claim` runs each system flat out at its operating point; a
buyer with a given demand buys whole systems and runs them at that demand. Here the load R
(tokens/s; default: the slower system's throughput at its operating point, so that system runs
exactly as in the max-throughput comparison) is served by n = ceil(R / its top throughput)
systems of each kind, each at R / n:

- at its own operating point where R / n is that point's throughput;
- else at the fewest sequences in flight on the operating point's split whose closed-loop
  throughput reaches R / n (`closed_loop_point`; fewer users only serve each faster and
  sooner, so the service level holds), with power read between that point and the one below
  it (or the idle system below concurrency 1) at R / n — the system alternating between the
  two, or idling, in the share of time that delivers exactly R / n. Energy per token is that
  power / (R / n): every watt of the whole system, busy or idle, is charged to the load.

TCO, footprint and ratios follow as for the operating points (`cost_run`, footprint sized for
R). Static batches (a fixed `--batch-on/--batch-vs`) have no closed loop: no equal-load
comparison then.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from tegel.economics.assumptions import Assumptions
from tegel.economics.evaluate import SystemEconomics, Workload, cost_run, ratios
from tegel.economics.served import Repriced, Served, ServingPoint
from tegel.errors import TegelError
from tegel.mapping.params import Params, default_params
from tegel.serving.curve import CurvePoint, closed_loop_point
from tegel.serving.operating import OperatingPoint

RELATIVE = 1e-9  # a load this close to a point's throughput is that point


@dataclass(frozen=True, slots=True)
class AtLoad:
    """One system's share of the load: how many systems, each at what concurrency (the point
    that reaches the load), throughput, speed per user and p99 TTFT there, and its economics."""

    systems: int
    concurrency: int
    tokens_per_s_per_user: float
    ttft_p99_s: float
    economics: SystemEconomics
    basis: str

    def to_dict(self) -> dict[str, object]:
        e = self.economics
        return {"systems": self.systems, "concurrency": self.concurrency,
                "throughput_per_system_tokens_per_s": e.result.throughput_tokens_per_s,
                "tokens_per_s_per_user": self.tokens_per_s_per_user,
                "ttft_p99_s": self.ttft_p99_s, "basis": self.basis,
                "energy_j_per_token": e.result.energy_j_per_token,
                "power_per_system_w": e.result.power_w, "idle_w": e.system.idle_w,
                "usd_per_mtoken": e.tco.usd_per_mtoken,
                "capital_usd_per_mtoken": e.tco.capital_usd_per_mtoken,
                "footprint": e.footprint.to_dict()}


@dataclass(frozen=True, slots=True)
class EqualLoad:
    """The equal-load comparison: the load, why it was chosen, each side and the ratios."""

    tokens_per_s: float
    basis: str
    on: AtLoad
    vs: AtLoad

    @property
    def ratios(self) -> dict[str, float]:
        return ratios(self.on.economics, self.vs.economics)

    def to_dict(self) -> dict[str, object]:
        r = self.ratios
        return {"tokens_per_s": self.tokens_per_s, "basis": self.basis,
                "systems": {self.on.economics.system.name: self.on.to_dict(),
                            self.vs.economics.system.name: self.vs.to_dict()},
                "ratios": {"energy": r["energy"],
                           "cost": {"tco": r["cost_tco"], "capital": r["cost_capital"]},
                           "footprint": {"racks": r["racks"], "kw": r["kw"],
                                         "serving_kw": r["serving_kw"]}}}


def equal_load(w: Workload, on: SystemEconomics, vs: SystemEconomics, a: Assumptions,
               tokens_per_s: float | None = None, *,
               params: Params | None = None) -> EqualLoad:
    """A and B serving the same load at the service level (module doc); `tokens_per_s` None:
    the slower system's throughput at its operating point."""
    for s in (on, vs):
        if not isinstance(s.result, ServingPoint):
            raise TegelError("equal load: needs both systems at operating points (a fixed "
                             "--batch-on/--batch-vs runs static batches)")
    top = {s.system.name: s.result.throughput_tokens_per_s for s in (on, vs)}
    if tokens_per_s is None:
        slower = min((on, vs), key=lambda s: s.result.throughput_tokens_per_s)
        load = slower.result.throughput_tokens_per_s
        basis = f"{slower.system.name}'s top throughput at the service level"
    else:
        if not (tokens_per_s > 0 and math.isfinite(tokens_per_s)):
            raise TegelError(f"--equal-load: expected a positive number of tokens/s, got "
                             f"{tokens_per_s:g}")
        load, basis = tokens_per_s, "given (--equal-load)"
    sized = Workload(w.model, w.input_tokens, w.output_tokens, w.precision,
                     w.min_tokens_per_s_per_user, load, w.max_ttft_s, w.scheduler)
    sides = [_at_load(sized, s, load, top[s.system.name], a, params) for s in (on, vs)]
    return EqualLoad(load, basis, sides[0], sides[1])


def _at_load(w: Workload, s: SystemEconomics, load: float, top: float, a: Assumptions,
             params: Params | None) -> AtLoad:
    assert isinstance(s.result, ServingPoint)
    op = s.result.op
    n = math.ceil(load / top * (1 - RELATIVE))
    share = load / n
    if abs(share - top) <= RELATIVE * top:
        p = op.point
        return AtLoad(n, p.concurrency, p.tokens_per_s_per_user, p.ttft_p99_s,
                      cost_run(w, s.result, a, "its operating point"),
                      "its operating point")
    r = op.point.result

    def at(c: int) -> CurvePoint:
        return closed_loop_point(w.model, s.system, c, w.input_tokens, w.output_tokens,
                                 r.scheduler, r.precision, op.options, params or default_params())

    below, above = _bracket(at, share, op.point)
    served = _between(s.result, below, above, share)
    return AtLoad(n, above.concurrency, above.tokens_per_s_per_user, above.ttft_p99_s,
                  cost_run(w, served, a, "fewest sequences reaching the load"),
                  f"between concurrency {below.concurrency if below else 0} and "
                  f"{above.concurrency} on its operating split, at {share:,.0f} tokens/s")


def _bracket(at: Callable[[int], CurvePoint], share: float,
             top: CurvePoint) -> tuple[CurvePoint | None, CurvePoint]:
    """The points at c - 1 and c, c the fewest sequences whose throughput reaches `share`
    (None below concurrency 1: the idle system)."""
    points: dict[int, CurvePoint] = {top.concurrency: top}

    def point(c: int) -> CurvePoint:
        if c not in points:
            points[c] = at(c)
        return points[c]

    lo, hi, c = 0, top.concurrency, 1
    while c < hi:
        if point(c).throughput_tokens_per_s >= share:
            hi = c
            break
        lo, c = c, 2 * c
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if point(mid).throughput_tokens_per_s >= share else (mid, hi)
    return (point(lo) if lo else None), point(hi)


def _between(base: Served, below: CurvePoint | None, above: CurvePoint,
             share: float) -> Repriced:
    """Power at `share` read between two points (or the idle system and a point), linear in
    throughput; energy per token = that power / share; the breakdown the same mix per category."""
    system = base.system
    hi_w = above.power_w
    hi_t = above.throughput_tokens_per_s
    hi_cat = {k: v * hi_t for k, v in above.result.energy_breakdown_j_per_token.items()}
    if below is None:
        lo_t, lo_w, lo_cat = 0.0, system.idle_w, {"static": system.idle_w}
    else:
        lo_t, lo_w = below.throughput_tokens_per_s, below.power_w
        lo_cat = {k: v * lo_t for k, v in below.result.energy_breakdown_j_per_token.items()}
    t = (share - lo_t) / (hi_t - lo_t) if hi_t > lo_t else 1.0
    power = lo_w + t * (hi_w - lo_w)
    cats = {k: lo_cat.get(k, 0.0) + t * (hi_cat.get(k, 0.0) - lo_cat.get(k, 0.0))
            for k in set(lo_cat) | set(hi_cat)}
    total = sum(cats.values()) or 1.0
    energy = power / share
    return Repriced(ServingPoint(_op_at(base, above)), system, share, energy, power,
                    {k: v / total * energy for k, v in cats.items()})


def _op_at(base: Served, point: CurvePoint) -> OperatingPoint:
    """The base operating point moved to `point` (same split and service level)."""
    assert isinstance(base, ServingPoint)
    return replace(base.op, point=point)
