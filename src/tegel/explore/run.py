"""The driver: ask the search for a batch, answer what the store knows, evaluate the rest on the
executor, store them, tell the search — until the trials are done or Ctrl-C.

A point asked twice (a discrete space searched by TPE or NSGA-II asks again) is evaluated once.
Resuming replays the same seeded search: the store answers every point it holds, so a run
killed part-way and run again evaluates exactly the points it had not stored.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tegel.explore.executors import Executor, make_executor
from tegel.explore.point import PointResult, Task, baseline_metrics
from tegel.explore.search import strategy_for
from tegel.explore.space import Space
from tegel.explore.store import Store


@dataclass(frozen=True, slots=True)
class Progress:
    """What the progress line shows after each finished chunk."""

    trials_done: int
    trials: int
    evaluated: int  # points evaluated in this run (not read from the store)
    feasible: int
    elapsed_s: float
    best: PointResult | None

    @property
    def eta_s(self) -> float:
        if self.evaluated == 0 or self.trials_done == 0:
            return math.nan
        return self.elapsed_s / self.trials_done * (self.trials - self.trials_done)


@dataclass(frozen=True, slots=True)
class ExploreResult:
    """A finished (or interrupted) exploration: what the store now holds for it."""

    space: Space
    store_path: Path
    trials: int
    trials_done: int
    evaluated: int  # points evaluated in this run
    reused: int  # trials answered by the store (resumed, or asked again)
    points: tuple[PointResult, ...]  # every distinct point of the trials done, trial order
    refined: tuple[PointResult, ...]
    baseline: dict[str, float] | None
    baseline_label: str | None  # the baseline system and the number format it ran in
    interrupted: bool
    wall_s: float

    def _repr_html_(self) -> str:
        """An HTML table for notebooks (`tegel.report.notebook`)."""
        from tegel.report.notebook import explore_html

        return explore_html(self)


def default_store(space: Space) -> Path:
    return space.path.with_suffix(".duckdb")


def best_of(points: list[PointResult] | tuple[PointResult, ...], space: Space
            ) -> PointResult | None:
    """The feasible point best on the first objective."""
    name, sense = space.objectives[0]
    ok = [p for p in points if p.feasible and name in p.metrics]
    if not ok:
        return None
    sign = 1.0 if sense == "max" else -1.0
    return max(ok, key=lambda p: sign * p.metrics[name])


def explore(space: Space, *, trials: int | None = None, store_path: Path | None = None,
            executor: str = "local", workers: int | None = None, address: str | None = None,
            allow_mixed: bool = False, baseline: bool = True,
            progress: Callable[[Progress], None] | None = None) -> ExploreResult:
    """Run (or resume) the search of `space`; KeyboardInterrupt stops it with what is done
    stored (`interrupted` True)."""
    start = time.perf_counter()
    n = trials or space.spec.search.trials
    if space.spec.search.method == "grid":
        n = min(n, math.prod(len(p.grid()) for p in space.spec.parameters.values()))
    path = store_path or default_store(space)
    store = Store(path, space, allow_mixed=allow_mixed, seed=space.spec.search.seed)
    ex: Executor | None = None
    by_key: dict[str, PointResult] = {}
    evaluated = reused = done = 0
    interrupted = False
    try:
        search = strategy_for(space, n)
        best: PointResult | None = None
        while batch := search.ask():
            results = store.known(sorted({t.key for t in batch}))
            results.update({k: by_key[k] for t in batch if (k := t.key) in by_key})
            todo = list({t.key: t for t in batch if t.key not in results}.values())
            reused += len(batch) - len(todo)
            if todo:
                ex = ex or make_executor(executor, space, workers, address)
                for chunk in ex.run(todo):
                    store.add(chunk)
                    results.update({r.key: r for r in chunk})
                    evaluated += len(chunk)
                    best = _better(best, chunk, space)
                    if progress:
                        progress(Progress(done + sum(t.key in results for t in batch), n,
                                          evaluated, _feasible(by_key, results),
                                          time.perf_counter() - start, best))
            for t in batch:
                by_key.setdefault(t.key, results[t.key])
            search.tell(batch, [results[t.key] for t in batch])
            done += len(batch)
            best = _better(best, [results[t.key] for t in batch], space)
            if progress:
                progress(Progress(done, n, evaluated, _feasible(by_key, {}),
                                  time.perf_counter() - start, best))
        refined = _refine(space, store, list(by_key.values()), ex, executor, workers, address)
        base, label = _baseline(space, store, list(by_key.values()), refined) if baseline \
            else (None, None)
    except KeyboardInterrupt:
        interrupted = True
        refined, base, label = [], None, None
    finally:
        if ex is not None:
            ex.close()
    points = tuple(sorted(by_key.values(), key=lambda p: p.trial))
    store.close()
    return ExploreResult(space, path, n, done, evaluated, reused, points, tuple(refined), base,
                         label, interrupted, time.perf_counter() - start)


def _feasible(by_key: dict[str, PointResult], more: dict[str, PointResult]) -> int:
    return sum(p.feasible for p in {**by_key, **more}.values())


def _better(best: PointResult | None, chunk: list[PointResult], space: Space
            ) -> PointResult | None:
    return best_of([*([best] if best else []), *chunk], space)


def _refine(space: Space, store: Store, points: list[PointResult], ex: Executor | None,
            executor: str, workers: int | None, address: str | None) -> list[PointResult]:
    """The `refine_top` best feasible points (first objective) at the SLO's operating point."""
    top = space.spec.evaluate.refine_top
    if not top:
        return []
    name, sense = space.objectives[0]
    ok = sorted((p for p in points if p.feasible and name in p.metrics),
                key=lambda p: p.metrics[name], reverse=sense == "max")[:top]
    known = store.known([p.key for p in ok], "refined")
    todo = [Task(p.trial, p.params) for p in ok if p.key not in known]
    if todo:
        ex = ex or make_executor(executor, space, workers, address)
        for chunk in ex.run(todo, at_operating_point=True):
            store.add(chunk, "refined")
            known.update({r.key: r for r in chunk})
    return [known[p.key] for p in ok]


def best_by_tokens_per_j(points: Sequence[PointResult], refined: Sequence[PointResult]
                         ) -> PointResult | None:
    """The design the comparison with the baseline is about: the feasible point with the most
    tokens/J, among those refined at the operating point where there are any."""
    pool = [p for p in (refined or points) if p.feasible and "tokens_per_j" in p.metrics]
    return max(pool, key=lambda p: p.metrics["tokens_per_j"]) if pool else None


def _baseline(space: Space, store: Store, points: Sequence[PointResult],
              refined: Sequence[PointResult]) -> tuple[dict[str, float] | None, str | None]:
    """The baseline system's metrics on the same workload and evaluation, in the number format
    of the best design (like for like: a GPU serves fp8 too), and its label; stored once per
    format."""
    name = space.spec.baseline
    if name is None:
        return None, None
    best = best_by_tokens_per_j(points, refined)
    chosen = best.params.get("workload.precision") if best is not None else None
    precision = str(chosen) if chosen is not None else space.spec.workload.precision
    label = f"{name} ({precision or 'its default format'})"
    meta = store.meta()
    saved = meta.get("baseline")
    if (saved and saved.get("name") == name and saved.get("engine") == store.version
            and saved.get("precision") == precision):
        return dict(saved["metrics"]), label
    metrics = baseline_metrics(space, name, at_operating_point=bool(
        space.spec.evaluate.kind == "operating_point" or space.spec.evaluate.refine_top),
        precision=precision)
    store.set_meta("baseline", {"name": name, "engine": store.version, "precision": precision,
                                "label": label, "metrics": metrics})
    return metrics, label
