"""Speed of the main job: `import tegel` and one `tegel.run` of Llama-3.1-70B on dgx-h100.

Targets (issue 4): import <= 1 s; one run (prefill + decode, parallelism chosen automatically)
<= 20 ms after import. Reports medians of repeated measurements (the machine is shared and
noisy) and exits non-zero if a target is missed.

    python benchmarks/bench_run.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

IMPORT_TARGET_S = 1.0
RUN_TARGET_S = 0.020
DATAFLOW_TARGET_S = 1.0  # a parallelism search over compiled plans of an 8-chip station


def import_time_s(repeats: int = 5) -> float:
    code = "import time; t = time.perf_counter(); import tegel; print(time.perf_counter() - t)"
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  check=True).stdout) for _ in range(repeats)]
    return statistics.median(times)


def run_times_s(repeats: int = 30) -> tuple[float, float]:
    """(first call, median of later calls) of one run, each with fresh model/system objects."""
    import tegel

    start = time.perf_counter()
    tegel.run("llama-3.1-70b", "dgx-h100", batch=8, input_tokens=1024, output_tokens=256)
    first = time.perf_counter() - start
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        tegel.run("llama-3.1-70b", "dgx-h100", batch=1 + i % 8, input_tokens=1024 + i,
                  output_tokens=256)
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def dataflow_run_s(repeats: int = 5) -> float:
    """Median of a run on a dataflow station: every candidate is compiled by the spatial compiler
    (stages, regions, splits, homes, routes) and lowered before it is priced."""
    import tegel

    times = []
    for i in range(repeats):
        start = time.perf_counter()
        tegel.run("llama-3.1-70b", "craftwerk-station", batch=1 + i, input_tokens=1024,
                  output_tokens=256)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    imp = import_time_s()
    first, median = run_times_s()
    dataflow = dataflow_run_s()
    print(f"import tegel            median {imp * 1e3:8.1f} ms   target <= {IMPORT_TARGET_S * 1e3:.0f} ms")
    print(f"run llama-3.1-70b dgx   first  {first * 1e3:8.1f} ms   (loads presets and configs)")
    print(f"run llama-3.1-70b dgx   median {median * 1e3:8.1f} ms   target <= {RUN_TARGET_S * 1e3:.0f} ms")
    print(f"run llama-3.1-70b craftwerk-station median {dataflow * 1e3:8.1f} ms   (compiled "
          f"plans; target <= {DATAFLOW_TARGET_S * 1e3:.0f} ms)")
    ok = imp <= IMPORT_TARGET_S and median <= RUN_TARGET_S and dataflow <= DATAFLOW_TARGET_S
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
