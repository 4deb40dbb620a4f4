"""`tegel validate`: entries become scenarios or are listed with a reason; predictions are
compared with what was measured; the calibrated model meets its published-data targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tegel.cli import main
from tegel.errors import TegelError
from tegel.fidelity import Unmapped, load_entries, to_case, validate
from tegel.fidelity.calibrate import BOUNDS, FITTED_GROUPS, objective
from tegel.fidelity.validate import predict
from tegel.mapping.params import default_params

ENTRY: dict[str, Any] = {
    "id": "x", "system": "1x H100", "kind": "measured", "metric": "output_throughput",
    "value": 1000.0, "unit": "tokens/s", "year": 2025,
    "workload": {"model": "Llama-3.1-8B-Instruct", "precision": "fp8", "input_len": 128,
                 "output_len": 128},
}


@pytest.fixture(scope="module")
def report():
    return validate(with_serving=False)  # the serving group: tests/fidelity/test_serving_group.py


def test_every_shipped_entry_is_validated_or_explained(report) -> None:
    entries = load_entries()
    seen = {r.case.id for r in report.rows} | {u.id for u in (*report.unmapped, *report.failed)}
    assert seen == {e["id"] for _, e in entries}
    assert all(u.reason for u in (*report.unmapped, *report.failed))
    assert len(report.rows) >= 70


def test_calibrated_model_meets_the_targets(report) -> None:
    """Issue targets on the H100 set: throughput MAPE <= 10 % on the TensorRT-LLM fixed-length
    tables and MLPerf Offline, batch-1 TTFT within 20 %. J/token is predicted, not fitted (the GPU
    power model, hardware/data/gpu_power.yaml): ML.ENERGY measured the same model, GPU and batch
    at 0.20 J/token under vLLM 0.5.4 (v2) and 0.12 under vLLM 0.11.1 (v3); the prediction lies
    between them (docs/power.md)."""
    assert report.mape("throughput", target_only=True) < 10.0
    assert report.mape("ttft", target_only=True) < 20.0
    energy = {r.case.id: r for r in report.rows if r.case.group == "energy"}
    v2, v3 = energy["energy-mlenergy-v2-l31-8b-h100-bs64"], energy["energy-mlenergy-v3-l31-8b-h100-bs64"]
    assert v3.case.measured <= v3.predicted <= v2.case.measured


def test_fixed_length_tables_map_to_max_throughput() -> None:
    case = to_case(ENTRY)
    assert not isinstance(case, Unmapped)
    assert (case.batch, case.input_tokens, case.output_tokens, case.precision) == ("auto", 128, 128, "fp8")
    assert case.chips == 1 and case.group == "throughput"


def test_tp_in_the_system_name_sets_the_chip_count() -> None:
    case = to_case({**ENTRY, "system": "H100 (TP2)"})
    assert not isinstance(case, Unmapped) and (case.chips, case.tp) == (2, 2)


def test_a_server_entry_runs_at_most_the_engine_batch_its_submission_states() -> None:
    """The MLPerf Server path searches the largest static batch under the TPOT limit; the
    engine cannot hold more sequences than its config's gpu_batch_size."""
    w = {**ENTRY["workload"], "scenario": "Server", "latency_constraint": "p99 TTFT<=2 s, p99 TPOT<=200 ms"}
    entry = {**ENTRY, "metric": "throughput_server", "workload": w}
    free = to_case(entry)
    capped = to_case({**entry, "workload": {**w, "max_batch_per_replica": 96}})
    assert not isinstance(free, Unmapped) and not isinstance(capped, Unmapped)
    assert (free.batch, capped.batch) == ("server", "server")
    assert free.max_batch == 2048 and capped.max_batch == 96
    assert "at most 96 sequences per replica" in capped.approximation
    wide = predict(free, default_params())
    narrow = predict(capped, default_params())
    assert "batch 96," in narrow.scenario and "batch 96," not in wide.scenario


def test_concurrency_ttft_is_unmapped_with_a_reason() -> None:
    w = {**ENTRY["workload"], "concurrency": 25}
    case = to_case({**ENTRY, "metric": "ttft_latency", "unit": "ms", "workload": w})
    assert isinstance(case, Unmapped) and "queueing" in case.reason


def test_other_gpus_map_to_their_presets_and_form_factors_without_one_are_listed() -> None:
    """Other GPUs are validated (never fitted) on their own presets; parts without a preset
    (NVL and PCIe cards other than the H100's, Grace Hopper) are listed with the reason."""
    for system in ("H200 NVL", "1x GH200-144GB", "A100 PCIe 80GB"):
        case = to_case({**ENTRY, "system": system})
        assert isinstance(case, Unmapped) and "preset" in case.reason
    expected = {"8x B200": ("b200", 8), "H200 (TP2)": ("h200", 2), "MI300X": ("mi300x", 1),
                "4x A100-SXM4-80GB": ("a100-80gb", 4), "H100 (TP2)": ("h100-sxm", 2),
                "8x H100-NVL-94GB": ("h100-nvl", 8), "8x H100-PCIe-80GB": ("h100-pcie", 8),
                "GB200 (TP1)": ("gb200-gpu", 1)}
    for system, (gpu, chips) in expected.items():
        case = to_case({**ENTRY, "system": system})
        assert not isinstance(case, Unmapped) and (case.gpu, case.chips) == (gpu, chips)
    assert isinstance(to_case({**ENTRY, "system": "8x Gaudi3"}), Unmapped)


def test_a_wrong_prediction_shows_as_error(tmp_path: Path) -> None:
    """The same scenario measured 10x faster must come out as a -90 % error."""
    path = tmp_path / "m.yaml"
    fast = {**ENTRY, "id": "fast", "value": 1e9}
    path.write_text(yaml.safe_dump([ENTRY, fast]))
    rows = {r.case.id: r for r in validate(load_entries([path])).rows}
    assert rows["fast"].predicted == pytest.approx(rows["x"].predicted)
    assert rows["fast"].error < -0.99


def test_validate_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump([ENTRY]))
    assert main(["validate", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"][0]["id"] == "x" and "throughput" in out["summary"]
    assert out["summary"]["throughput"]["entries"] == 1


def test_bad_measurement_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump([{"id": "y", "system": "1x H100"}]))
    with pytest.raises(TegelError, match=r"bad.yaml: entry 1: missing field\(s\) workload"):
        load_entries([path])
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2


def test_objective_is_the_mean_of_the_fitted_group_mapes(report) -> None:
    """Energy is predicted from the hardware, not fitted: it is not in the objective. The fit
    sees every H100 entry of a group, not only the target set (which leaves out the only
    entries that run the per-query-head decode kernel). What is fitted is what gpu.yaml marks
    `fitted`, within its stated range; the shipped calibration stays inside those ranges;
    per-chip microbenchmarks are never fitted."""
    groups = [report.mape(g) for g in ("throughput", "ttft", "tpot")]
    assert FITTED_GROUPS == ("throughput", "ttft", "tpot")
    assert objective(report) == pytest.approx(sum(groups) / 3)
    assert report.mape("throughput") != report.mape("throughput", True)
    assert all(lo < hi for lo, hi in BOUNDS.values())
    assert "compute_power_share" not in BOUNDS and not any("generations" in k for k in BOUNDS)
    gpu = default_params().gpu
    assert all(lo <= getattr(gpu, k) <= hi for k, (lo, hi) in BOUNDS.items())
    assert set(BOUNDS) == {"gemm_serving_fraction", "attention_serving_fraction",
                           "hbm_serving_fraction", "kernel_overhead_s", "iteration_overhead_s",
                           "collective_overhead_s", "request_overhead_s", "moe_gemm_efficiency",
                           "per_head_attention_l2_fraction"}


def test_measure_script_skips_without_cuda() -> None:
    import subprocess
    import sys

    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the script would measure it")

    script = Path(__file__).parents[2] / "benchmarks/gpu/measure.py"
    done = subprocess.run([sys.executable, str(script), "--out", "/dev/null"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "skipped" in done.stderr


def test_software_generations_set_cited_fields_and_nothing_else() -> None:
    """An earlier stack changes only the fields it names (each a cited feature); no scale on
    achieved rates exists any more, and a calibration file that sets one is refused."""
    params = default_params().with_gpu(
        {"generations": {"trtllm-0.6": {"collective_overhead_s": 1e-3}}}, "test")
    now = params.gpu
    old = now.for_software("trtllm-0.6")
    assert old.software == "trtllm-0.6" and now.for_software(None) is now
    assert (old.gqa_kv_sharing, old.fp8_context_attention) == (0.0, 0.0)  # cited, kept
    assert old.collective_overhead_s == 1e-3 != now.collective_overhead_s
    for name in ("gemm_serving_fraction", "hbm_serving_fraction", "kernel_overhead_s"):
        assert getattr(old, name) == getattr(now, name)
    with pytest.raises(TegelError, match="unknown GPU software generation '1999-x'"):
        now.for_software("1999-x")
    with pytest.raises(TegelError, match="efficiency_scale: removed"):
        default_params().with_gpu({"generations": {"2024": {"efficiency_scale": 0.67}}}, "x")


def test_a_measurement_runs_the_stack_its_software_names_else_its_year_or_the_next() -> None:
    gpu = default_params().gpu
    assert [gpu.later_generation(y) for y in ("2022", "2023", "2024", "2025", None)] == [
        "trtllm-0.6", "trtllm-0.6", "trtllm-0.12", None, None]
    assert gpu.later_generation("trtllm-0.8") == "trtllm-0.8"

    def stack(software: str, year: int = 2024) -> str | None:
        entry = {**ENTRY, "year": year, "workload": {**ENTRY["workload"], "software": software}}
        case = to_case(entry)
        assert not isinstance(case, Unmapped)
        return case.software

    assert stack("TensorRT-LLM v0.8.0, gptSessionBenchmark") == "trtllm-0.8"
    assert stack("TensorRT-LLM v0.8.0, TRTLLM_ENABLE_XQA=1") == "trtllm-0.8-xqa"
    assert stack("TensorRT 10.2") == "trtllm-0.12"
    assert stack("TensorRT-LLM v1.0", 2025) is None


def test_a_static_batch_mlperf_entry_decodes_each_batch_to_its_longest_request() -> None:
    """An MLPerf Offline entry of 2023 runs the static-batch stack (`in_flight_batching` 0): its
    batches of GPT-J requests (69 output tokens on average, at most 128) decode 128 steps, of
    which 69 per request count; the same entry of 2024 (in-flight) decodes the mean. The same
    rule as the power group's (cases.decoded_output_tokens)."""
    import importlib
    from dataclasses import replace

    from tegel.fidelity.cases import gpu_system

    engine = importlib.import_module("tegel.fidelity.validate")  # the module, not its function
    entry = {"id": "gptj-2023", "system": "8x H100-SXM-80GB (NVIDIA DGX H100)",
             "workload": {"model": "GPT-J-6B (MLPerf gptj)", "precision": "fp8",
                          "scenario": "Offline", "software": "TensorRT 9.0",
                          "max_batch_per_replica": 32},
             "metric": "throughput_offline", "value": 7335.7, "unit": "tokens/s",
             "accelerators": 8, "year": 2023, "kind": "measured"}
    static = to_case(entry)
    in_flight = to_case({**entry, "year": 2024})
    assert not isinstance(static, Unmapped) and not isinstance(in_flight, Unmapped)
    assert (static.output_tokens, static.longest_output_tokens) == (69, 128)
    params = default_params()
    slow, fast = predict(static, params), predict(in_flight, params)
    assert fast.predicted > 1.4 * slow.predicted
    padded = replace(static, output_tokens=128, longest_output_tokens=None)
    run_128 = engine._run(padded, gpu_system("h100-sxm", 8), "auto", params)
    assert slow.predicted == pytest.approx(run_128.throughput_tokens_per_s * 69 / 128)


def test_every_fitted_parameter_moves_an_entry_the_objective_counts() -> None:
    """A fitted parameter that no entry of the objective depends on is left where it started
    by the fit, a value that only looks fitted. Each one, moved from its low to its high bound,
    changes the prediction of at least one H100 entry of a fitted group (the objective counts
    every such entry: the per-query-head kernel's L2 share is seen only by the older pages,
    outside the target set)."""
    from tegel.fidelity.cases import CALIBRATION_GPU

    params = default_params()
    cases = [c for _, e in load_entries() if not isinstance(c := to_case(e), Unmapped)
             and c.gpu == CALIBRATION_GPU and c.group in FITTED_GROUPS and c.batch != "server"]
    for name, (lo, hi) in BOUNDS.items():
        low, high = params.with_gpu({name: lo}, "low"), params.with_gpu({name: hi}, "high")
        assert any(abs(predict(c, low).predicted / predict(c, high).predicted - 1) > 1e-3
                   for c in cases), name
