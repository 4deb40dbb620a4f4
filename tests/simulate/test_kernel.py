"""The simulation kernel: events in (time, priority, sequence) order, resources that serve one
holder at a time in (priority, arrival) order, and runs that repeat exactly."""

from __future__ import annotations

from simulate.cases import compile_phase, system
from tegel.evaluate.simulator import Kernel, Resource, run_simulation
from tegel.evaluate.trace import TraceRecorder


def test_events_run_in_time_priority_sequence_order() -> None:
    k = Kernel()
    seen: list[str] = []
    k.at(2.0, seen.append, "late")
    k.at(1.0, seen.append, "low", priority=5)
    k.at(1.0, seen.append, "first")
    k.at(1.0, seen.append, "second")
    k.at(0.0, lambda _: k.at(1.0, seen.append, "nested"), None)
    assert k.run() == 2.0
    assert seen == ["first", "second", "nested", "low", "late"]
    assert k.events == 6


def test_resource_serves_one_at_a_time_by_priority_then_arrival() -> None:
    k = Kernel()
    r = Resource(k, "link")
    done: list[tuple[str, float, float]] = []

    def finish(name: str, start: float) -> None:
        done.append((name, start, k.now))

    r.use(1.0, finish, "a")
    r.use(1.0, finish, "b", priority=2)
    r.use(1.0, finish, "c", priority=1)
    r.use(1.0, finish, "d", priority=1)
    k.run()
    assert done == [("a", 0.0, 1.0), ("c", 1.0, 2.0), ("d", 2.0, 3.0), ("b", 3.0, 4.0)]
    assert r.busy_s == 4.0 and not r.busy


def test_acquire_holds_until_release() -> None:
    k = Kernel()
    r = Resource(k, "region")
    log: list[tuple[str, float]] = []

    def hold(name: str) -> None:
        log.append((name, k.now))
        k.at(2.0, lambda _: r.release(), None)

    r.acquire(hold, "x")
    r.acquire(hold, "y")
    r.use(0.5, lambda name, start: log.append((name, start)), "z")
    k.run()
    assert log == [("x", 0.0), ("y", 2.0), ("z", 4.0)]
    assert r.busy_s == 4.5


def test_same_plan_same_timeline() -> None:
    plan = compile_phase("llama-3.1-8b", "craftwerk", "decode", stages=4, batch=4)
    runs = []
    for _ in range(2):
        rec = TraceRecorder()
        result = run_simulation(plan, system("craftwerk"), tokens=2, tracer=rec)
        runs.append((rec.spans, result.events, result.makespan_s, result.busy_s))
    assert runs[0] == runs[1]
    assert runs[0][1] > 1000 and len(runs[0][0]) > 1000
