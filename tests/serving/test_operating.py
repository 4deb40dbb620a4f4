"""The operating point at a service level: the search, its bound on splits, its errors."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from tegel.economics.energy_knobs import system_at
from tegel.errors import TegelError
from tegel.hardware import load_system
from tegel.mapping.params import default_params
from tegel.serving.operating import (
    ServiceLevel,
    candidate_splits,
    find_operating_point,
    served_again,
)
from tegel.serving.scenario import RunOptions
from tegel.workload.model_config import load_model_config

CFG = load_model_config("llama-3.1-8b")
IN, OUT = 512, 64
LEVEL = ServiceLevel(50.0)


@pytest.fixture(scope="module")
def dgx():  # type: ignore[no-untyped-def]
    system = load_system("dgx-h100")
    return system, find_operating_point(CFG, system, IN, OUT, LEVEL)


def test_the_operating_point_meets_the_service_level_and_is_the_best_simulated(dgx) -> None:  # type: ignore[no-untyped-def]
    _, op = dgx
    p = op.point
    assert p.tokens_per_s_per_user >= 50.0 and p.ttft_p99_s <= 2.0
    met = [q for s in op.searched for q in s.points if LEVEL.meets(q)]
    assert p.throughput_tokens_per_s == max(q.throughput_tokens_per_s for q in met)
    # every degree of the split is fixed, so the point can be served again as it was
    assert op.options.tp and op.options.pp and op.options.ep and op.options.stages
    assert p.result.config.parallelism.tp == op.options.tp


def test_a_split_is_skipped_only_when_its_bound_cannot_win(dgx) -> None:  # type: ignore[no-untyped-def]
    _, op = dgx
    bounds = [s.bound_tokens_per_s for s in op.searched]
    assert bounds == sorted(bounds, reverse=True)  # searched best bound first
    for s in op.searched:
        if not s.points:
            assert s.bound_tokens_per_s * 1.05 < op.point.throughput_tokens_per_s
    # and the bound holds where it was simulated: serving never beats the static batch
    for s in op.searched:
        for q in s.points:
            if not math.isinf(s.bound_tokens_per_s):
                assert q.throughput_tokens_per_s <= s.bound_tokens_per_s * 1.05


def test_served_again_on_the_same_system_is_the_same_point(dgx) -> None:  # type: ignore[no-untyped-def]
    system, op = dgx
    again = served_again(CFG, op, system)
    assert again.point.to_dict() == op.point.to_dict()
    hotter = system_at(system, {"host_w_per_node": 1.5 * system.host.host_w_per_node})
    warmer = served_again(CFG, op, hotter).point
    assert warmer.concurrency == op.point.concurrency
    assert warmer.throughput_tokens_per_s == pytest.approx(op.point.throughput_tokens_per_s)
    assert warmer.energy_j_per_token > op.point.energy_j_per_token


def test_a_speed_no_split_reaches_names_the_speed() -> None:
    with pytest.raises(TegelError, match=r"per-user speed binds \(splits simulated: tp") as err:
        find_operating_point(CFG, load_system("dgx-h100"), IN, OUT, ServiceLevel(1e5))
    assert "dgx-h100 reaches at most" in str(err.value)


def test_a_ttft_no_split_meets_names_the_ttft() -> None:
    with pytest.raises(TegelError, match="the TTFT limit binds"):
        find_operating_point(CFG, load_system("h100-sxm"), IN, OUT, ServiceLevel(50.0, 1e-4))


def test_a_tighter_level_gives_a_lower_concurrency(dgx) -> None:  # type: ignore[no-untyped-def]
    system, op = dgx
    fast = find_operating_point(CFG, system, IN, OUT, ServiceLevel(100.0))
    assert fast.point.tokens_per_s_per_user >= 100.0
    assert fast.point.throughput_tokens_per_s < op.point.throughput_tokens_per_s


def test_parameters_reach_the_search() -> None:
    p = default_params()
    slow = replace(p, gpu=replace(p.gpu, gemm_serving_fraction=p.gpu.gemm_serving_fraction / 2))
    system = load_system("h100-sxm")
    base = find_operating_point(CFG, system, IN, OUT, LEVEL)
    moved = find_operating_point(CFG, system, IN, OUT, LEVEL, params=slow)
    assert moved.point.to_dict() != base.point.to_dict()


def test_fixed_degrees_are_the_only_split_tried() -> None:
    system = load_system("dgx-h100")
    assert candidate_splits(CFG, system, RunOptions(tp=2)) == [RunOptions(tp=2)]
    splits = candidate_splits(CFG, system)
    assert splits[0] == RunOptions() and RunOptions(tp=8) in splits and RunOptions(pp=2) in splits
    op = find_operating_point(CFG, system, IN, OUT, LEVEL, options=RunOptions(tp=2))
    assert [s.options.tp for s in op.searched] == [2]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"min_tokens_per_s_per_user": -1.0}, "--min-tokens-per-s-per-user"),
    ({"min_tokens_per_s_per_user": 50.0, "max_ttft_s": 0.0}, "--max-ttft"),
    ({"min_tokens_per_s_per_user": 50.0, "max_ttft_s": math.inf}, "--max-ttft"),
])
def test_a_bad_level_is_a_clear_error(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(TegelError, match=message):
        ServiceLevel(**kwargs)


def test_the_limit_is_stated_and_never_scaled() -> None:
    assert ServiceLevel(50.0).ttft_limit_s == 2.0
    assert "not scaled" not in ServiceLevel(50.0).ttft_basis(1024)
    assert "not scaled to these 4,096-token prompts" in ServiceLevel(50.0).ttft_basis(4096)
    assert ServiceLevel(50.0, 0.5).ttft_basis(4096) == "given (--max-ttft)"
    assert ServiceLevel(50.0).to_dict(1024)["max_ttft_s"] == 2.0
