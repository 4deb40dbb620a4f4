"""A run in a worker process, given the same non-default parameters, gives exactly the in-process
answer (DESIGN: parameters are values; nothing hidden in globals or caches keyed by path)."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

import tegel
from tegel.mapping.params import Params, default_params, load_params
from tegel.serving.run import run
from tegel.serving.scenario import RunOptions

# (model, system, batch, input, output, precision, options): one GPU and one dataflow system,
# multi-chip, a fixed batch and "auto"
JOBS: list[tuple[Any, ...]] = [
    ("llama-3.1-8b", "h100-sxm", 8, 512, 128, "fp8", RunOptions()),
    ("llama-3.3-70b", "dgx-h100", "auto", 1024, 256, "fp8", RunOptions(tp=4, max_batch_per_replica=64)),
    ("llama-2-70b", "dgx-h100", 1, 2048, 1, "fp8", RunOptions(tp=4, software="2023")),
    ("llama-3.1-8b", "craftwerk-station", 1, 1024, 256, None, RunOptions()),
]


def _run(job: tuple[Any, ...], params: Params) -> dict[str, Any]:
    model, system, batch, lin, lout, precision, options = job
    return tegel.run(model, system, batch, lin, lout, precision, options=options,
                     params=params).to_dict()


def _calibration(tmp_path: Path) -> Params:
    """Non-default parameters read the way users get them (a calibration file), with a
    dataflow assumption changed too."""
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump({"parameters": {
        "gemm_serving_fraction": 0.42, "hbm_serving_fraction": 0.7, "kernel_overhead_s": 9e-6,
        "generations": {"trtllm-0.6": {"collective_overhead_s": 5e-5}}}}))
    params = load_params(path)
    return replace(params, dataflow=replace(params.dataflow, step_overhead_s=3e-6))


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_a_worker_process_gives_exactly_the_in_process_result(tmp_path: Path, method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    params = _calibration(tmp_path)
    assert params != default_params() and pickle.loads(pickle.dumps(params)) == params
    here = [_run(job, params) for job in JOBS]
    assert here != [_run(job, default_params()) for job in JOBS]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method)) as pool:
        # the worker calls tegel's own function (importable there, unlike a test module's)
        futures = [pool.submit(run, *job[:6], options=job[6], params=params) for job in JOBS]
        there = [f.result().to_dict() for f in futures]
    assert there == here
