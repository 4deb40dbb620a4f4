"""The end of a run and `tegel explore show`: Pareto front, what rules points out, the refined
points, and the best design against the baseline — as JSON (the text is `tegel.report.explore`)."""

from __future__ import annotations

from typing import Any

from tegel.explore.point import PointResult
from tegel.explore.report import against, pareto, point_dict, ruled_out
from tegel.explore.run import ExploreResult, best_by_tokens_per_j
from tegel.explore.space import Space
from tegel.explore.store import Store


def against_baseline(points: tuple[PointResult, ...] | list[PointResult],
             refined: tuple[PointResult, ...] | list[PointResult],
             objectives: list[tuple[str, str]], base: dict[str, float] | None
             ) -> dict[str, Any] | None:
    """The best design by tokens/J (refined at the operating point where there are refined
    points) against the baseline."""
    best = best_by_tokens_per_j(points, refined)
    if base is None or best is None:
        return None
    return {"best": point_dict(best), **against(best, base, points)}


def at_edges(space: Space, params: dict[str, Any]) -> list[str]:
    """The numeric parameters whose value is the lowest or highest the space allows: the search
    would have gone further that way."""
    out = []
    for name, p in space.spec.parameters.items():
        v = params.get(name)
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        values = ([x for x in p.values if isinstance(x, int | float)] if p.values is not None
                  else [p.low, p.high])
        numbers = [float(x) for x in values if x is not None]
        if len(numbers) > 1 and v >= max(numbers):
            out.append(f"{name}={v:g} (highest)")
        elif len(numbers) > 1 and v <= min(numbers):
            out.append(f"{name}={v:g} (lowest)")
    return out


def summary_dict(r: ExploreResult) -> dict[str, Any]:
    objectives = list(r.space.objectives)
    front = pareto(r.points, objectives)
    return {"space": r.space.spec.name, "store": str(r.store_path), "trials": r.trials,
            "trials_done": r.trials_done, "distinct_points": len(r.points),
            "evaluated": r.evaluated, "reused": r.reused, "interrupted": r.interrupted,
            "wall_s": r.wall_s, "objectives": dict(objectives),
            "pareto": [point_dict(p) for p in front],
            "ruled_out": ruled_out(r.points),
            "refined": [point_dict(p) for p in r.refined],
            "baseline": {"name": r.space.spec.baseline, "label": r.baseline_label,
                         "metrics": r.baseline},
            "against_baseline": against_baseline(r.points, r.refined, objectives, r.baseline),
            "best_at_space_edges": edges_of_best(r)}


def edges_of_best(r: ExploreResult) -> list[str]:
    a = against_baseline(r.points, r.refined, list(r.space.objectives), r.baseline)
    return [] if a is None else at_edges(r.space, a["best"]["params"])


def from_store(store: Store) -> tuple[dict[str, Any], list[PointResult], list[PointResult],
                                       list[tuple[str, str]], dict[str, float] | None]:
    meta = store.meta()
    objectives = [(n, s) for n, s in meta["objectives"]]
    base = meta.get("baseline")
    return (meta, store.all(), store.all("refined"), objectives,
            None if base is None else dict(base["metrics"]))


def show_dict(store: Store, pareto_only: bool = False) -> dict[str, Any]:
    meta, points, refined, objectives, base = from_store(store)
    front = pareto(points, objectives)
    out: dict[str, Any] = {"space": meta.get("space"), "store": str(store.path),
                           "objectives": dict(objectives),
                           "pareto": [point_dict(p) for p in front]}
    if not pareto_only:
        out.update(points=len(points), ruled_out=ruled_out(points),
                   refined=[point_dict(p) for p in refined],
                   baseline=meta.get("baseline"),
                   against_baseline=against_baseline(points, refined, objectives, base))
    return out
