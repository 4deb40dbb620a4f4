"""The MLPerf-style rate search: the highest Poisson rate within p99 limits."""

from __future__ import annotations

import numpy as np
import pytest

from tegel.errors import TegelError
from tegel.serving.rate_search import Limits, max_rate, offline_rate
from tegel.serving.requests import Workload
from tegel.serving.serve import ServeResult, serve
from tegel.serving.workload import make_workload

MODEL, GPU = "llama-3.1-8b", "h100-sxm"


def _simulate(wl: Workload) -> ServeResult:
    return serve(MODEL, GPU, wl, "continuous")


def _at(rate: float | None) -> Workload:
    return make_workload(600, "fixed:in=512,out=64", rate_per_s=rate, seed=5)


def test_the_rate_found_meets_the_limits_and_a_little_more_breaks_them() -> None:
    limits = Limits(ttft_p99_s=0.5, tpot_p99_s=0.05)
    found = max_rate(_simulate, _at, limits)
    assert not limits.broken(found.result)
    assert float(np.percentile(found.result.ttft(), 99)) <= 0.5
    above = [rate for rate, ok in found.trail if not ok]
    assert above and min(above) <= found.rate_per_s * 1.02  # bracketed to within 1-2 %
    assert all(ok for rate, ok in found.trail if rate <= found.rate_per_s)


def test_limits_no_rate_can_meet_say_what_breaks() -> None:
    with pytest.raises(TegelError, match="TPOT p99"):
        max_rate(_simulate, _at, Limits(tpot_p99_s=1e-5))


def test_the_offline_rate_is_what_the_system_sustains_under_poisson_arrivals() -> None:
    """The offline rate (completions over the run's span, MLPerf Offline's own figure) is the
    capacity that brackets the search: a Poisson stream 10 % above it completes no faster and
    queues ever longer; 10 % below it is served as it arrives."""
    offline = serve(MODEL, GPU, make_workload(4000, "fixed:in=512,out=64", seed=5), "continuous")
    rate = offline_rate(offline)
    assert rate == pytest.approx(offline.completed / offline.outcome.span_s)
    for factor in (0.9, 1.1):
        wl = make_workload(round(factor * rate * 120), "fixed:in=512,out=64",
                           rate_per_s=factor * rate, seed=5)
        r = serve(MODEL, GPU, wl, "continuous")
        ttft, fifth = r.ttft(), r.completed // 5
        early, late = (float(np.percentile(x, 99)) for x in (ttft[:fifth], ttft[-fifth:]))
        if factor > 1:
            assert r.requests_per_s < 1.02 * rate
            assert late > 3 * early > 0  # the queue grows for the whole run
        else:
            assert r.requests_per_s == pytest.approx(factor * rate, rel=0.05)
            assert late < 2 * early + 0.5
