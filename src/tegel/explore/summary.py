"""The end of a run and `tegel explore show`: Pareto table, what rules points out, the refined
points, and the best design against the baseline — as text and as JSON."""

from __future__ import annotations

from typing import Any

from tegel.explore.point import PointResult
from tegel.explore.report import (
    against,
    against_text,
    pareto,
    pareto_table,
    point_dict,
    ruled_out,
    ruled_out_text,
)
from tegel.explore.run import ExploreResult, best_by_tokens_per_j
from tegel.explore.space import Space
from tegel.explore.store import Store


def _against(points: tuple[PointResult, ...] | list[PointResult],
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
            "against_baseline": _against(r.points, r.refined, objectives, r.baseline),
            "best_at_space_edges": _edges_of_best(r)}


def _edges_of_best(r: ExploreResult) -> list[str]:
    a = _against(r.points, r.refined, list(r.space.objectives), r.baseline)
    return [] if a is None else at_edges(r.space, a["best"]["params"])


def _text(name: str, points: tuple[PointResult, ...] | list[PointResult],
          refined: tuple[PointResult, ...] | list[PointResult],
          objectives: list[tuple[str, str]], params: list[str],
          base: dict[str, float] | None, baseline: str | None) -> list[str]:
    front = pareto(points, objectives)
    out = [f"Pareto front of {name}: {len(front)} of {len(points):,} points "
           f"({', '.join(f'{s} {n}' for n, s in objectives)})"]
    if front:
        out.append(pareto_table(front, objectives, params))
    else:
        out.append("no feasible point: what rules them out")
    out.append(ruled_out_text(ruled_out(points)))
    if refined:
        out.append(f"\nat the SLO's operating point (the {len(refined)} best by "
                   f"{objectives[0][0]}):")
        out.append(pareto_table(refined, objectives, params, limit=len(refined)))
    a = _against(points, refined, objectives, base)
    if a is not None and baseline:
        out.append("")
        out.append(against_text(a, baseline))
    return out


def summary_text(r: ExploreResult) -> str:
    head = (f"{r.trials_done:,}/{r.trials:,} trials, {len(r.points):,} distinct points "
            f"({r.evaluated:,} evaluated now, {r.reused:,} answered by the store), "
            f"{r.wall_s:.1f} s; store {r.store_path}")
    if r.interrupted:
        head += "\ninterrupted: what finished is stored; run the same command to resume"
    lines = _text(r.space.spec.name, r.points, r.refined, list(r.space.objectives),
                  list(r.space.names), r.baseline, r.baseline_label)
    edges = _edges_of_best(r)
    if edges:
        lines.append(f"  at the space's edge (the search would go further): {', '.join(edges)}")
    return "\n".join([head, *lines])


def _from_store(store: Store) -> tuple[dict[str, Any], list[PointResult], list[PointResult],
                                       list[tuple[str, str]], dict[str, float] | None]:
    meta = store.meta()
    objectives = [(n, s) for n, s in meta["objectives"]]
    base = meta.get("baseline")
    return (meta, store.all(), store.all("refined"), objectives,
            None if base is None else dict(base["metrics"]))


def show_dict(store: Store, pareto_only: bool = False) -> dict[str, Any]:
    meta, points, refined, objectives, base = _from_store(store)
    front = pareto(points, objectives)
    out: dict[str, Any] = {"space": meta.get("space"), "store": str(store.path),
                           "objectives": dict(objectives),
                           "pareto": [point_dict(p) for p in front]}
    if not pareto_only:
        out.update(points=len(points), ruled_out=ruled_out(points),
                   refined=[point_dict(p) for p in refined],
                   baseline=meta.get("baseline"),
                   against_baseline=_against(points, refined, objectives, base))
    return out


def show_text(store: Store, pareto_only: bool = False) -> str:
    meta, points, refined, objectives, base = _from_store(store)
    params = list(meta["parameters"])
    if pareto_only:
        front = pareto(points, objectives)
        return pareto_table(front, objectives, params, limit=len(front))
    saved = meta.get("baseline") or {}
    name = saved.get("label") or saved.get("name")
    return "\n".join(_text(str(meta.get("space")), points, refined, objectives, params, base,
                           name))
