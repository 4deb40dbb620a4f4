"""Speed of the request-level serving simulator (issue 12, item 9).

Targets: 10,000 requests of Llama-3.1-8B on one H100 with continuous batching in <= 5 s; one
million requests on a 64-replica cluster (8 DGX H100 nodes, one replica per GPU) with a router
(round-robin and least-loaded) in <= 5 min; the README's MLPerf Server rate search (Llama-2-70B
on a DGX H100, each rate probed with LoadGen's 600 s minimum run of arrivals) in <= 60 s.
Reports the median of repeated runs for the first and the last (the machine is shared and
noisy) and one run per router for the second, with the simulator's own counts (iterations,
distinct phases planned), and exits non-zero if a target is missed.

    python benchmarks/bench_serve.py            # all three
    python benchmarks/bench_serve.py --quick    # the 10,000-request case only
"""

from __future__ import annotations

import statistics
import sys
import time

SINGLE_TARGET_S = 5.0
CLUSTER_TARGET_S = 300.0
SEARCH_TARGET_S = 60.0


def single(repeats: int = 3) -> tuple[float, int, int]:
    import tegel

    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        r = tegel.serve("llama-3.1-8b", "h100-sxm", rate_per_s=12.0, requests=10_000,
                        lengths="lognormal:in=1024,out=256,sigma=0.6,max_in=8000,max_out=2000",
                        scheduler="continuous", seed=seed)
        times.append(time.perf_counter() - start)
        assert r.completed == 10_000
    return statistics.median(times), r.outcome.iterations, r.preemptions


def cluster(router: str) -> tuple[float, int, float]:
    import tegel
    from tegel.hardware import load_system
    from tegel.serving.replica import SchedulerConfig

    dgx = load_system("dgx-h100")
    system = dgx.model_copy(update={"name": "8x-dgx-h100", "chip_count": 64})
    start = time.perf_counter()
    r = tegel.serve("llama-3.1-8b", system, rate_per_s=64 * 10.0, requests=1_000_000,
                    lengths="lognormal:in=1024,out=256,sigma=0.6,max_in=8000,max_out=2000",
                    scheduler=SchedulerConfig("continuous", router=router),
                    options=tegel.serving.scenario.RunOptions(tp=1, pp=1))
    elapsed = time.perf_counter() - start
    assert r.completed == 1_000_000 and r.config.parallelism.dp == 64
    return elapsed, r.outcome.iterations, r.throughput_tokens_per_s


def search(repeats: int = 3) -> tuple[float, float, int]:
    """`tegel serve llama-2-70b --on dgx-h100 --scenario mlperf-server` (the README's example):
    median seconds, the rate found (requests/s) and the requests of the run at that rate."""
    import contextlib
    import io
    import json

    from tegel.cli import main as tegel_main

    times, out = [], {}
    for _ in range(repeats):
        buf = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(buf):
            assert tegel_main(["serve", "llama-2-70b", "--on", "dgx-h100", "--scenario",
                               "mlperf-server", "--json"]) == 0
        times.append(time.perf_counter() - start)
        out = json.loads(buf.getvalue())
    return statistics.median(times), out["mlperf"]["rate_per_s"], out["completed"]


def main() -> int:
    ok = True
    t, iterations, preemptions = single()
    ok &= t <= SINGLE_TARGET_S
    print(f"10,000 requests, llama-3.1-8b on h100-sxm, continuous: {t:.2f} s median of 3 "
          f"({iterations} iterations, {preemptions} preemptions; target <= {SINGLE_TARGET_S:g} s)")
    if "--quick" not in sys.argv:
        for router in ("round-robin", "least-loaded"):
            t, iterations, tput = cluster(router)
            ok &= t <= CLUSTER_TARGET_S
            print(f"1,000,000 requests, 64 replicas ({router}): {t:.1f} s ({iterations} "
                  f"iterations, {tput:,.0f} tok/s; target <= {CLUSTER_TARGET_S:g} s)")
        t, rate, n = search()
        ok &= t <= SEARCH_TARGET_S
        print(f"MLPerf Server rate search, llama-2-70b on dgx-h100 (600 s probes): {t:.1f} s "
              f"median of 3 ({rate:.4g} req/s found, {n:,} requests at it; target <= "
              f"{SEARCH_TARGET_S:g} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
