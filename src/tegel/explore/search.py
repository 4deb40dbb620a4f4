"""Search strategies: which points to evaluate next, seeded.

Every strategy hands out trials in batches and is told the results in trial order. A batch's
size is the space's `search.batch`, never the number of workers, so the same seed gives the same
points (and, the engine being deterministic, the same results) on any executor. Resuming
replays the search from its first trial, answering from the store what it already holds.

- grid: every combination, in the order the parameters are listed (the first varies slowest);
- random: trial i draws from a generator seeded by (seed, i);
- tpe: Optuna's TPE sampler (one objective); nsga2: Optuna's NSGA-II (several; population = batch).
Optuna samplers see constraint violations through `constraints_func` (feasible first).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from tegel.explore.metrics import CONSTRAINTS, violation
from tegel.explore.point import PointResult, Task
from tegel.explore.space import Param, Space, Value

_WORST = 1.0e300  # objective value told for a point without metrics (Optuna refuses NaN)


class Strategy(Protocol):
    def ask(self) -> list[Task]: ...  # the next batch; [] when done
    def tell(self, tasks: list[Task], results: list[PointResult]) -> None: ...


class Grid:
    def __init__(self, space: Space, trials: int) -> None:
        axes = [p.grid() for p in space.spec.parameters.values()]
        self._names = space.names
        self._points: Iterator[tuple[Value, ...]] = itertools.islice(itertools.product(*axes),
                                                                     trials)
        self._batch = space.spec.search.batch
        self._trial = 0

    def ask(self) -> list[Task]:
        out = []
        for values in itertools.islice(self._points, self._batch):
            out.append(Task(self._trial, dict(zip(self._names, values, strict=True))))
            self._trial += 1
        return out

    def tell(self, tasks: list[Task], results: list[PointResult]) -> None:
        return None


def _draw(p: Param, rng: np.random.Generator) -> Value:
    if p.values is not None:
        return p.values[int(rng.integers(len(p.values)))]
    assert p.low is not None and p.high is not None
    if p.step is not None:
        grid = p.grid()
        return grid[int(rng.integers(len(grid)))]
    if p.log:
        return float(math.exp(rng.uniform(math.log(p.low), math.log(p.high))))
    return float(rng.uniform(p.low, p.high))


class Random:
    def __init__(self, space: Space, trials: int) -> None:
        self._space, self._trials = space, trials
        self._trial = 0

    def ask(self) -> list[Task]:
        spec = self._space.spec
        end = min(self._trials, self._trial + spec.search.batch)
        out = []
        for i in range(self._trial, end):
            rng = np.random.default_rng([spec.search.seed, i])
            out.append(Task(i, {n: _draw(p, rng) for n, p in spec.parameters.items()}))
        self._trial = end
        return out

    def tell(self, tasks: list[Task], results: list[PointResult]) -> None:
        return None


def _distribution(p: Param) -> Any:
    import optuna.distributions as d

    if p.values is not None:
        return d.CategoricalDistribution(p.values)
    assert p.low is not None and p.high is not None
    if p.is_int:
        return d.IntDistribution(int(p.low), int(p.high), step=1 if p.log else int(p.step or 1),
                                 log=p.log)
    return d.FloatDistribution(p.low, p.high, step=None if p.log else p.step, log=p.log)


class OptunaSearch:
    """TPE or NSGA-II through Optuna's ask-and-tell interface, in memory."""

    def __init__(self, space: Space, trials: int) -> None:
        import optuna

        optuna.logging.set_verbosity(logging.WARNING)
        self._space, self._trials = space, trials
        spec = space.spec.search
        self._objectives = space.objectives
        self._limits = space.spec.constraints
        # Optuna >= 5 reads constraints set on the trial; older versions take a function
        self._set_constraint = hasattr(optuna.trial.Trial, "set_constraint")
        extra: dict[str, Any] = {} if self._set_constraint else {"constraints_func": _constraints}
        if spec.method == "tpe":
            sampler: Any = optuna.samplers.TPESampler(seed=spec.seed, **extra)
        else:
            sampler = optuna.samplers.NSGAIISampler(seed=spec.seed, population_size=spec.batch,
                                                    **extra)
        self._study = optuna.create_study(
            sampler=sampler, directions=[_direction(s) for _, s in self._objectives])
        self._dists = {n: _distribution(p) for n, p in space.spec.parameters.items()}
        self._asked: dict[int, Any] = {}
        self._next = 0

    def ask(self) -> list[Task]:
        end = min(self._trials, self._next + self._space.spec.search.batch)
        out = []
        for i in range(self._next, end):
            trial = self._study.ask(self._dists)
            self._asked[i] = trial
            out.append(Task(i, {n: _plain(trial.params[n]) for n in self._dists}))
        self._next = end
        return out

    def tell(self, tasks: list[Task], results: list[PointResult]) -> None:
        import optuna

        for task, r in zip(tasks, results, strict=True):
            trial = self._asked.pop(task.trial)
            if r.error is not None:
                self._study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            violations = self._violations(r)
            if self._set_constraint:
                for i, v in enumerate(violations):
                    trial.set_constraint(f"c{i}", v)
            else:
                trial.set_user_attr("constraints", violations)
            values = [r.metrics.get(m, math.nan) for m, _ in self._objectives]
            values = [v if math.isfinite(v) else (_WORST if s == "min" else -_WORST)
                      for v, (_, s) in zip(values, self._objectives, strict=True)]
            self._study.tell(trial, values)

    def _violations(self, r: PointResult) -> list[float]:
        """One value per constraint (> 0: violated); engine-found violations count as 1."""
        out = [violation(n, r.metrics[CONSTRAINTS[n].metric], lim)
               if CONSTRAINTS[n].metric in r.metrics else (1.0 if n in r.violated else 0.0)
               for n, lim in self._limits.items()]
        other = [v for v in r.violated if v not in self._limits]
        return [*out, 1.0 if other else 0.0]


def _constraints(trial: Any) -> list[float]:
    return list(trial.user_attrs.get("constraints", [0.0]))


def _direction(sense: str) -> Any:
    return "maximize" if sense == "max" else "minimize"


def _plain(value: Any) -> Value:
    """Optuna hands back numpy scalars for some distributions; the store wants plain values."""
    if isinstance(value, np.generic):
        return value.item()
    return value


STRATEGIES = {"grid": Grid, "random": Random, "tpe": OptunaSearch, "nsga2": OptunaSearch}


def strategy_for(space: Space, trials: int) -> Strategy:
    kind: Any = STRATEGIES[space.spec.search.method]
    return kind(space, trials)
