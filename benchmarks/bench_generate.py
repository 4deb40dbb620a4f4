"""Speed of the functional executor: 16 greedy tokens of a 125M-parameter model (GPT-2) on a
simulated dataflow chip, every GEMM split over the tiles of its region as the plan says.

Target (issue 8): <= 30 s on this machine. Random weights (no download), bf16.

    python benchmarks/bench_generate.py
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from tegel.serving.generate import generate
from tegel.workload import Phase, build_llm_graph, load_model_config

TARGET_S = 30.0


def main() -> int:
    cfg = load_model_config("gpt2")
    graph = build_llm_graph(cfg, Phase.prefill(1, 8))
    rng = np.random.default_rng(0)
    weights = {w.name: rng.normal(0, 0.02, w.shape).astype(np.float32) for w in graph.weights}
    prompt = [464, 3290, 286, 14492, 318, 257, 2106, 286]
    ok = True
    for system in ("ref-dataflow", "craftwerk"):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            gen = generate(cfg, weights, system, prompt, 16, "bf16")
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        ok &= median <= TARGET_S
        print(f"gpt2 (124M) 16 tokens on {system:13s} median {median:6.2f} s  "
              f"({gen.stats.gemm_blocks} GEMM blocks, {gen.stats.partial_sums} partial sums)  "
              f"target <= {TARGET_S:.0f} s")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
