"""Where points are evaluated: in this process, on a local process pool, or on a Ray cluster.

Each executor takes a batch of tasks and yields results as they finish (any order; the search
puts them back in trial order). Workers build one `Evaluator` per space and keep it (the loaded
template, system, model and assumptions; the engine's caches warm up per worker). Workers
ignore SIGINT: Ctrl-C reaches the driver, which stores what has finished and stops them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from tegel.errors import TegelError
from tegel.explore.point import Evaluator, PointResult, Task
from tegel.explore.space import Space

_EVALUATOR: Evaluator | None = None


def _evaluator(space: Space) -> Evaluator:
    global _EVALUATOR
    if _EVALUATOR is None or _EVALUATOR.space != space:
        _EVALUATOR = Evaluator(space)
    return _EVALUATOR


def evaluate_chunk(space: Space, tasks: list[Task], at_operating_point: bool | None
                   ) -> list[PointResult]:
    """Evaluate tasks in this process (the function every worker runs)."""
    ev = _evaluator(space)
    return [ev.evaluate(t, at_operating_point) for t in tasks]


def _chunks(tasks: list[Task], workers: int) -> list[list[Task]]:
    """Small chunks (about four per worker) keep workers busy and the overhead low."""
    size = max(1, len(tasks) // (4 * workers))
    return [tasks[i:i + size] for i in range(0, len(tasks), size)]


class Executor(Protocol):
    workers: int

    def run(self, tasks: list[Task], at_operating_point: bool | None = None
            ) -> Iterator[list[PointResult]]: ...
    def close(self) -> None: ...


class Inline:
    """In this process, one point after another (tests, debugging, one worker)."""

    def __init__(self, space: Space) -> None:
        self.space, self.workers = space, 1

    def run(self, tasks: list[Task], at_operating_point: bool | None = None
            ) -> Iterator[list[PointResult]]:
        for t in tasks:
            yield evaluate_chunk(self.space, [t], at_operating_point)

    def close(self) -> None:
        return None


def _quiet_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class LocalPool:
    """A process pool on this machine (forked workers: the engine's imports are shared)."""

    def __init__(self, space: Space, workers: int | None = None) -> None:
        self.space = space
        self.workers = workers or os.cpu_count() or 1
        ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_quiet_worker)

    def run(self, tasks: list[Task], at_operating_point: bool | None = None
            ) -> Iterator[list[PointResult]]:
        pending: set[Future[list[PointResult]]] = {
            self._pool.submit(evaluate_chunk, self.space, chunk, at_operating_point)
            for chunk in _chunks(tasks, self.workers)}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    yield f.result()
        finally:
            for f in pending:
                f.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Tasks on a Ray cluster: `address` None starts a local one (`workers` CPUs), "auto" joins
    the one this machine belongs to, or a `ray://host:port` / `host:port` address."""

    def __init__(self, space: Space, address: str | None = None,
                 workers: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise TegelError("--executor ray needs Ray: pip install 'tegel[explore]' "
                             "(or pip install ray)") from None
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "logging_level": "ERROR"}
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = workers or os.cpu_count() or 1
            ray.init(**kwargs)
        self.workers = workers or int(ray.cluster_resources().get("CPU", 1))
        self._space_ref = ray.put(space)
        self._remote = ray.remote(num_cpus=1, max_retries=2)(evaluate_chunk)

    def run(self, tasks: list[Task], at_operating_point: bool | None = None
            ) -> Iterator[list[PointResult]]:
        ray = self._ray
        pending = [self._remote.remote(self._space_ref, chunk, at_operating_point)
                   for chunk in _chunks(tasks, self.workers)]
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    yield ray.get(ref)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()


def make_executor(kind: str, space: Space, workers: int | None = None,
                  address: str | None = None) -> Executor:
    if kind == "local":
        return Inline(space) if workers == 1 else LocalPool(space, workers)
    if kind == "inline":
        return Inline(space)
    if kind == "ray":
        return RayExecutor(space, address, workers)
    raise TegelError(f"--executor: expected local or ray, got {kind!r}")
