"""Benchmark of `tegel explore` (issue 14): design points per hour for the analytical LLM
objective at a fixed batch on the local process pool, and Ray with two workers against one.

    python benchmarks/bench_explore.py [--points 3000] [--runs 3] [--workers 2] [--json]

Each run is a whole `explore()` (search, evaluation, store) of a fresh random sample of CRAFTWERK
designs (a new seed per run: nothing is answered from a store or a warm cache of an earlier run)
for Llama-3.1-70B at batch 8, 1024+256 tokens. Medians of the runs are reported. Targets: >= 100,000
points/hour on a 2-core machine; Ray 2 workers / 1 worker >= 1.8x.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

SPACE = """\
kind: explore_space
name: bench
template: craftwerk
parameters:
  rows: {{low: 32, high: 160, step: 8}}
  cols: {{low: 32, high: 160, step: 8}}
  tile.macs_per_cycle: {{values: [32, 64, 128, 256]}}
  tile.sram_bytes: {{values: [131072, 262144, 524288]}}
  noc.link_bytes_per_cycle: {{values: [32, 64, 128]}}
  offchip.stacks: {{low: 4, high: 16, step: 1}}
  clock_hz: {{low: 0.6e9, high: 1.6e9}}
workload: {{model: llama-3.1-70b, input_tokens: 1024, output_tokens: 256}}
evaluate: {{kind: fixed_batch, batch: 8}}
constraints: {{max_die_area_mm2: 858}}
objectives: {{tokens_per_j: max, usd_per_mtoken: min}}
search: {{method: random, trials: {points}, seed: {seed}, batch: 256}}
"""


def one_run(folder: Path, points: int, seed: int, executor: str, workers: int) -> float:
    """Points per hour of one exploration (wall clock, store included)."""
    from tegel.explore import explore, load_space

    path = folder / f"bench-{executor}-{workers}-{seed}.yaml"
    path.write_text(SPACE.format(points=points, seed=seed))
    space = load_space(path)
    start = time.perf_counter()
    r = explore(space, store_path=path.with_suffix(".duckdb"), executor=executor,
                workers=workers, baseline=False)
    wall = time.perf_counter() - start
    return r.evaluated / wall * 3600.0


def ray_rate(folder: Path, points: int, runs: int, cpus: int, seed0: int) -> list[float]:
    import ray

    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        one_run(folder, 64, 10_000 + cpus, "ray", cpus)  # workers started and warmed
        return [one_run(folder, points, seed0 + i, "ray", cpus) for i in range(runs)]
    finally:
        ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=3000,
                    help="points per run (3000: long enough that starting a run, the space sent "
                         "to every worker and its evaluator built, does not dominate)")
    ap.add_argument("--runs", type=int, default=3, help="runs per configuration (3)")
    ap.add_argument("--workers", type=int, default=2, help="local pool workers (2)")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray comparison")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out: dict[str, object] = {"points_per_run": args.points, "runs": args.runs}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        local = [one_run(folder, args.points, 100 + i, "local", args.workers)
                 for i in range(args.runs)]
        out["local_points_per_hour"] = local
        out["local_median_points_per_hour"] = statistics.median(local)
        if not args.no_ray:
            one = ray_rate(folder, args.points, args.runs, 1, 200)
            two = ray_rate(folder, args.points, args.runs, 2, 300)
            out["ray_1_worker_points_per_hour"] = one
            out["ray_2_workers_points_per_hour"] = two
            out["ray_speedup_median"] = statistics.median(two) / statistics.median(one)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"local pool, {args.workers} workers: median {out['local_median_points_per_hour']:,.0f} "
          f"points/hour (runs: {', '.join(f'{x:,.0f}' for x in local)}; target >= 100,000)")
    if not args.no_ray:
        print(f"Ray 1 worker: median {statistics.median(one):,.0f} points/hour; 2 workers: "
              f"median {statistics.median(two):,.0f}; speed-up {out['ray_speedup_median']:.2f}x "
              f"(target >= 1.8x)")


if __name__ == "__main__":
    main()
