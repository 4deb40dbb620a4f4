"""The highest arrival rate a system sustains within p99 latency limits (MLPerf Server and
Interactive: the scheduled rate is raised until a p99 limit breaks).

Workloads are made with common random numbers (the same seed scales the same gaps), so the
p99 figures move smoothly with the rate and a bisection converges. The upper bracket is the
offline rate (every request at t = 0): no arrival rate is served faster than that.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tegel.errors import TegelError
from tegel.serving.requests import Workload
from tegel.serving.serve import ServeResult


@dataclass(frozen=True, slots=True)
class Limits:
    """p99 limits (None: no limit)."""

    ttft_p99_s: float | None = None
    tpot_p99_s: float | None = None
    e2e_p99_s: float | None = None

    def broken(self, r: ServeResult) -> list[str]:
        """The limits `r` breaks, each as 'name p99 value > limit'."""
        out = []
        for name, values, limit in (("TTFT", r.ttft(), self.ttft_p99_s),
                                    ("TPOT", r.tpot(), self.tpot_p99_s),
                                    ("e2e", r.e2e(), self.e2e_p99_s)):
            if limit is not None and values.size and float(np.percentile(values, 99)) > limit:
                out.append(f"{name} p99 {float(np.percentile(values, 99)):.3g} s > {limit:g} s")
        if r.dropped:
            out.append(f"{r.dropped} request(s) dropped")
        return out


@dataclass(frozen=True, slots=True)
class RateSearch:
    """The run at the highest rate found within the limits, and the search's trail."""

    rate_per_s: float
    result: ServeResult
    offline_rate_per_s: float
    trail: tuple[tuple[float, bool], ...]  # (rate, within limits)


def offline_rate(r: ServeResult) -> float:
    """Completed requests per second of a run with every request at t = 0: completions over the
    run's span, as MLPerf Offline reports its throughput. (Completions come in waves of the
    batch, so a rate between two percentiles of the completion times is biased: it counts one
    wave more than the time it spans holds — about +20 % on an H100 Llama-2-70B run of three
    waves — where the span counts every wave with its ramp and drain.)"""
    return r.requests_per_s


def max_rate(simulate: Callable[[Workload], ServeResult], workload_at: Callable[[float | None], Workload],
             limits: Limits, *, steps: int = 10,
             progress: Callable[[str], None] | None = None) -> RateSearch:
    """The highest rate within `limits`: the offline run's completion rate brackets it (raised
    while it still passes), then bisection (module doc)."""
    offline = offline_rate(simulate(workload_at(None)))
    trail: list[tuple[float, bool]] = []
    best: ServeResult | None = None

    def trial(rate: float) -> bool:
        nonlocal best
        r = simulate(workload_at(rate))
        broken = limits.broken(r)
        trail.append((rate, not broken))
        if progress is not None:
            progress(f"rate {rate:.4g}/s: {', '.join(broken) or 'within limits'}")
        if not broken and (best is None or rate > trail_best()):
            best = r
        return not broken

    def trail_best() -> float:
        return max((x for x, ok in trail[:-1] if ok), default=0.0)

    lo, hi = 0.0, 1.1 * offline
    for _ in range(4):  # a short run may sustain more than the offline rate for a while
        if not trial(hi):
            break
        lo, hi = hi, 2 * hi
    else:
        raise TegelError(f"the limits hold even at {lo:.4g} req/s ({len(trail)} doublings of "
                         "the offline rate): the run is too short to show an overload; give "
                         "more --requests")
    for _ in range(steps):
        mid = (lo + hi) / 2 if lo else hi / 2
        if trial(mid):
            lo = mid
        else:
            hi = mid
        if lo and hi / lo < 1.01:
            break
    if best is None or not lo:
        low = simulate(workload_at(max(hi, 1e-6)))
        raise TegelError("no arrival rate meets the limits; even at a low rate: "
                         + ", ".join(limits.broken(low) or ["(search did not converge)"]))
    assert math.isfinite(lo)
    return RateSearch(lo, best, offline, tuple(trail))
