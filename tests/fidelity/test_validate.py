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
    tables and MLPerf Offline, batch-1 TTFT within 20 %, J/token within 25 % of ML.ENERGY v3."""
    assert report.mape("throughput", target_only=True) < 10.0
    assert report.mape("ttft", target_only=True) < 20.0
    energy = [r for r in report.rows if r.case.group == "energy" and "-v3-" in r.case.id]
    assert energy and abs(energy[0].error) < 0.25


def test_fixed_length_tables_map_to_max_throughput() -> None:
    case = to_case(ENTRY)
    assert not isinstance(case, Unmapped)
    assert (case.batch, case.input_tokens, case.output_tokens, case.precision) == ("auto", 128, 128, "fp8")
    assert case.chips == 1 and case.group == "throughput"


def test_tp_in_the_system_name_sets_the_chip_count() -> None:
    case = to_case({**ENTRY, "system": "H100 (TP2)"})
    assert not isinstance(case, Unmapped) and (case.chips, case.tp) == (2, 2)


def test_concurrency_ttft_is_unmapped_with_a_reason() -> None:
    w = {**ENTRY["workload"], "concurrency": 25}
    case = to_case({**ENTRY, "metric": "ttft_latency", "unit": "ms", "workload": w})
    assert isinstance(case, Unmapped) and "queueing" in case.reason


def test_other_gpus_and_form_factors_are_not_validated() -> None:
    assert isinstance(to_case({**ENTRY, "system": "8x H100-NVL-94GB"}), Unmapped)
    assert isinstance(to_case({**ENTRY, "system": "8x B200"}), Unmapped)


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
    """Energy is predicted from the hardware, not fitted: it is not in the objective."""
    groups = [report.mape(g, True) for g in ("throughput", "ttft", "tpot")]
    assert FITTED_GROUPS == ("throughput", "ttft", "tpot")
    assert objective(report) == pytest.approx(sum(groups) / 3)
    assert all(lo < hi for lo, hi in BOUNDS.values())
    assert "compute_power_share" not in BOUNDS


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


def test_software_generations_scale_and_override() -> None:
    params = default_params().with_gpu(
        {"generations": {"2023": {"efficiency_scale": 0.5, "collective_overhead_s": 1e-3}}}, "test")
    now = params.gpu
    old = now.for_software("2023")
    assert old.software == "2023" and now.for_software(None) is now
    assert old.gemm_peak_fraction == pytest.approx(0.5 * now.gemm_peak_fraction)
    assert old.hbm_bandwidth_fraction == pytest.approx(0.5 * now.hbm_bandwidth_fraction)
    assert old.kernel_overhead_s == now.kernel_overhead_s  # not scaled, not its own
    assert old.collective_overhead_s == 1e-3
    assert now.collective_overhead_s == default_params().gpu.collective_overhead_s
    with pytest.raises(TegelError, match="unknown GPU software generation '1999'"):
        now.for_software("1999")


def test_a_measurement_runs_the_generation_of_its_year_or_the_next() -> None:
    gpu = default_params().with_gpu({"generations": {"2023": {}, "2024": {}}}, "test").gpu
    assert [gpu.later_generation(y) for y in ("2022", "2023", "2024", "2025", None)] == [
        "2023", "2023", "2024", None, None]
