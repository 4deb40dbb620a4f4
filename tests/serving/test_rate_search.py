"""The MLPerf-style rate search: the highest Poisson rate within p99 limits."""

from __future__ import annotations

import numpy as np
import pytest

from tegel.errors import TegelError
from tegel.serving.rate_search import Limits, max_rate
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
