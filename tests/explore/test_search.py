"""Searches are seeded: the same seed gives the same points and results on any executor."""

from __future__ import annotations

from pathlib import Path

import pytest

from explore.conftest import write_space
from tegel.explore import explore, load_space
from tegel.explore.report import pareto
from tegel.explore.search import strategy_for


def _asked(path: Path, trials: int) -> list[dict]:
    s = strategy_for(load_space(path), trials)
    out = []
    while batch := s.ask():
        out += [t.params for t in batch]
    return out


def test_grid_enumerates_every_point(tmp_path: Path) -> None:
    points = _asked(write_space(tmp_path, "grid"), 1000)
    assert len(points) == 2 * 2 * 2 * 2 * 2
    assert len({tuple(p.values()) for p in points}) == len(points)


def test_random_is_seeded(tmp_path: Path) -> None:
    path = write_space(tmp_path, "random")
    assert _asked(path, 20) == _asked(path, 20)
    (tmp_path / "other").mkdir()
    other = write_space(tmp_path / "other", "random", **{"seed: 3": "seed: 4"})
    assert _asked(other, 20) != _asked(path, 20)


@pytest.mark.parametrize("method", ["tpe", "nsga2"])
def test_optuna_is_seeded_and_resumable(tmp_path: Path, method: str) -> None:
    extra = {"usd_per_mtoken: min": ""} if method == "tpe" else {}
    path = write_space(tmp_path, method, **extra)
    space = load_space(path)
    a = explore(space, trials=16, store_path=tmp_path / "a.duckdb", executor="inline")
    b = explore(space, trials=16, store_path=tmp_path / "b.duckdb", executor="local", workers=2)
    assert [p.params for p in a.points] == [p.params for p in b.points]
    assert [p.metrics for p in a.points] == [p.metrics for p in b.points]
    again = explore(space, trials=16, store_path=tmp_path / "a.duckdb", executor="inline")
    assert again.evaluated == 0 and [p.key for p in again.points] == [p.key for p in a.points]


def test_pareto_front_is_not_dominated(tmp_path: Path) -> None:
    space = load_space(write_space(tmp_path, "grid"))
    r = explore(space, store_path=tmp_path / "g.duckdb", executor="inline")
    front = pareto(r.points, space.objectives)
    assert front and len(front) < len(r.points)
    feasible = [p for p in r.points if p.feasible]
    for f in front:
        assert not any(p.metrics["tokens_per_j"] > f.metrics["tokens_per_j"]
                       and p.metrics["usd_per_mtoken"] < f.metrics["usd_per_mtoken"]
                       for p in feasible)
    best = max(feasible, key=lambda p: p.metrics["tokens_per_j"])
    assert front[0].metrics["tokens_per_j"] == best.metrics["tokens_per_j"]
