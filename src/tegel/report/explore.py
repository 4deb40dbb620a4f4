"""`tegel explore` and `tegel explore show`: a search's summary, a store's contents and SQL
answers as text (the JSON dicts are `tegel.explore.summary`)."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

from tegel.explore.point import PointResult
from tegel.explore.report import pareto, ruled_out
from tegel.explore.run import ExploreResult
from tegel.explore.store import Store
from tegel.explore.summary import against_baseline, edges_of_best, from_store
from tegel.report.progress import Bar
from tegel.report.text import si, table


def ruled_out_text(r: dict[str, Any]) -> str:
    n = r["points"]
    lines = [f"{r['feasible']:,} of {n:,} points feasible"
             + (f"; {r['errors']:,} failed with an error (stored with the message)"
                if r["errors"] else "")]
    for name, c in r["constraints"].items():
        lines.append(f"  {name:<32} rules out {c['points']:>7,} ({c['share']:6.1%}); "
                     f"{c['only_this']:,} by itself")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def pareto_rows(front: Sequence[PointResult], objectives: Sequence[tuple[str, str]],
                names: Sequence[str], limit: int = 15) -> tuple[list[str], list[list[Any]]]:
    """(headers, rows) of the first `limit` points of a front: trial, objectives, parameters,
    binding constraints."""
    obj = [n for n, _ in objectives]
    heads = ["trial", *obj, *names, "binding"]
    rows = [[p.trial, *(_fmt(p.metrics[m]) for m in obj), *(_fmt(p.params[n]) for n in names),
             ",".join(p.binding) or "-"] for p in front[:limit]]
    return heads, rows


def pareto_table(front: Sequence[PointResult], objectives: Sequence[tuple[str, str]],
                 names: Sequence[str], limit: int = 15) -> str:
    heads, rows = pareto_rows(front, objectives, names, limit)
    more = f"\n({len(front) - limit} more on the front)" if len(front) > limit else ""
    return table(heads, rows) + more


def against_text(a: dict[str, Any], baseline: str) -> str:
    lines = [f"best tokens/J {a['best_tokens_per_j']:.4g} vs {baseline} "
             f"{a['baseline_tokens_per_j']:.4g}: {a['ratio']:.1f}x",
             f"  energy floor at this node and batch: {si(a['floor_j_per_token'], 'J')}/token "
             f"-> at most {a['floor_ratio']:.0f}x for any design",
             "  best design's energy per token: " + ", ".join(
                 f"{k} {v:.0%}" for k, v in a["energy_share"].items() if v >= 0.005),
             f"  binding at the best design: {', '.join(a['binding']) or 'none'}",
             f"  verdict: {a['verdict']}"]
    return "\n".join(lines)


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
    a = against_baseline(points, refined, objectives, base)
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
    edges = edges_of_best(r)
    if edges:
        lines.append(f"  at the space's edge (the search would go further): {', '.join(edges)}")
    return "\n".join([head, *lines])


def show_text(store: Store, pareto_only: bool = False) -> str:
    meta, points, refined, objectives, base = from_store(store)
    params = list(meta["parameters"])
    if pareto_only:
        front = pareto(points, objectives)
        return pareto_table(front, objectives, params, limit=len(front))
    saved = meta.get("baseline") or {}
    name = saved.get("label") or saved.get("name")
    return "\n".join(_text(str(meta.get("space")), points, refined, objectives, params, base,
                           name))


def sql_text(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """`tegel explore show --sql`: the answer as a table (floats to 4 significant digits)."""
    return table(columns, [[_fmt(v) for v in r] for r in rows])


class ExploreProgress:
    """A search's progress (`explore(progress=...)`): trials done with ETA and the best feasible
    point so far on the bar; without a bar (stderr not a terminal) a line on stderr per tenth
    of the trials, for logs."""

    def __init__(self, objective: tuple[str, str], bar: Bar) -> None:
        self.objective = objective
        self.bar = bar
        self._tenth = -1

    def __call__(self, p: Any) -> None:
        name = self.objective[0]
        best = (f"best {name} {p.best.metrics[name]:.4g} (trial {p.best.trial})" if p.best
                else "no feasible point yet")
        if self.bar.enabled:
            self.bar.update(p.trials_done, p.trials, f"{p.evaluated:,} evaluated, "
                            f"{p.feasible:,} feasible; {best}")
            return
        frac = p.trials_done / p.trials
        if sys.stderr.isatty() or int(10 * frac) == self._tenth:
            return
        self._tenth = int(10 * frac)
        eta = "" if math.isnan(p.eta_s) else f" ETA {_duration(p.eta_s)}"
        bar = "#" * int(20 * frac)
        print(f"[{bar:<20}] {p.trials_done:,}/{p.trials:,} trials, {p.evaluated:,} evaluated, "
              f"{p.feasible:,} feasible, {_duration(p.elapsed_s)}{eta}; {best}",
              file=sys.stderr, flush=True)


def _duration(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
