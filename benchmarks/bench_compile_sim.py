"""Speed of the event simulator and the spatial compiler (issue 6).

Targets: the kernel processes >= 1 M events/s on a synthetic workload (chains of requests on
shared resources, most of them queued); compiling and simulating one decode step of
Llama-3.1-8B on CRAFTWERK (16,384 tiles) takes <= 10 s — measured for the plan `tegel run`
picks and for a deep pipeline (32 stages, 32 micro-batches, 4 consecutive tokens). Reports
medians of repeated measurements and exits non-zero if a target is missed.

    python benchmarks/bench_compile_sim.py
"""

from __future__ import annotations

import statistics
import sys
import time

from tegel.evaluate.simulator import Kernel, Resource, run_simulation
from tegel.hardware import load_system
from tegel.mapping.compiler import compile_llm
from tegel.mapping.plan import Parallelism
from tegel.workload import Phase, Precision, load_model_config

EVENTS_TARGET_PER_S = 1.0e6
COMPILE_SIM_TARGET_S = 10.0


def kernel_events_per_s(events: int = 1_000_000, chains: int = 256, resources: int = 64) -> float:
    """Chains of fixed-time requests hopping over shared resources (4 chains per resource, so
    most requests wait in a queue); events processed per second of wall time."""
    k = Kernel()
    pool = [Resource(k, f"r{i}") for i in range(resources)]
    durations = [((i * 7919) % 1000 + 1) * 1e-9 for i in range(1024)]
    left = [events - chains]

    def step(arg: tuple[int, int], start: float) -> None:
        chain, i = arg
        if left[0] > 0:
            left[0] -= 1
            pool[(chain * 31 + i) % resources].use(durations[(chain + i) % 1024], step, (chain, i + 1))

    for c in range(chains):
        pool[c % resources].use(durations[c], step, (c, 0))
    start = time.perf_counter()
    k.run()
    return k.events / (time.perf_counter() - start)


def compile_and_simulate_s(stages: int, batch: int, tokens: int) -> tuple[float, int, float]:
    """(seconds, events, simulated time per token) of compiling and simulating decode steps
    of Llama-3.1-8B on CRAFTWERK, model and system loading included."""
    start = time.perf_counter()
    cfg = load_model_config("llama-3.1-8b")
    system = load_system("craftwerk")
    micro = min(batch, stages)
    plan = compile_llm(cfg, system, Phase.decode(batch // micro, 1152), Precision(), Parallelism(),
                       stages, micro)
    result = run_simulation(plan, system, tokens=tokens)
    return time.perf_counter() - start, result.events, result.cost.time_s


def main() -> int:
    rates = [kernel_events_per_s() for _ in range(5)]
    rate = statistics.median(rates)
    print(f"kernel, synthetic 1M events        median {rate / 1e6:6.2f} M events/s   "
          f"target >= {EVENTS_TARGET_PER_S / 1e6:.0f} M")
    ok = rate >= EVENTS_TARGET_PER_S
    for label, stages, batch, tokens in (("chosen plan (2 stages, batch 1)", 2, 1, 1),
                                         ("32 stages, 32 micro-batches, 4 tokens", 32, 32, 4)):
        runs = [compile_and_simulate_s(stages, batch, tokens) for _ in range(3)]
        seconds = statistics.median(r[0] for r in runs)
        events, per_token = runs[0][1], runs[0][2]
        print(f"llama-3.1-8b decode on craftwerk, {label}: compile + simulate median "
              f"{seconds:6.3f} s ({events} events, {per_token * 1e6:.1f} µs/token)   "
              f"target <= {COMPILE_SIM_TARGET_S:.0f} s")
        ok = ok and seconds <= COMPILE_SIM_TARGET_S
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
