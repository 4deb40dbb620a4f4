"""Parameters are values: validation and calibration take a `Params`, change nothing global, and
write a calibration only where the user says — checked before any fitting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import tegel
import tegel.fidelity.calibrate as calibration
from tegel.cli import main
from tegel.errors import TegelError
from tegel.fidelity import load_entries, validate
from tegel.fidelity.calibrate import calibrate, calibration_target, write_calibration
from tegel.mapping.params import default_params, load_params

SLOWER = {"gemm_serving_fraction": 0.3, "hbm_serving_fraction": 0.5}
ENTRY: dict[str, Any] = {
    "id": "x", "system": "1x H100", "kind": "measured", "metric": "output_throughput",
    "value": 1000.0, "unit": "tokens/s", "year": 2025,
    "workload": {"model": "Llama-3.1-8B-Instruct", "precision": "fp8", "input_len": 128,
                 "output_len": 128},
}


def _subset() -> list[tuple[str, dict]]:
    """One validated entry of each group from the shipped set."""
    picked: dict[str, tuple[str, dict]] = {}
    rows = {r.case.id: r.case.group for r in validate(with_serving=False).rows}
    for name, entry in load_entries():
        group = rows.get(entry["id"])
        if group and group not in picked:
            picked[group] = (name, entry)
    return list(picked.values())


def _predictions(report) -> dict[str, float]:
    return {r.case.id: r.predicted for r in report.rows}


def test_validate_with_other_params_predicts_otherwise_and_leaves_the_defaults() -> None:
    subset = _subset()
    shipped = default_params()
    before = _predictions(validate(subset))
    slower = validate(subset, params=shipped.with_gpu(SLOWER, "test"))
    assert len(before) == 4 and slower.params == "test"
    assert all(_predictions(slower)[k] != v for k, v in before.items())
    assert default_params() == shipped
    assert _predictions(validate(subset)) == before


def test_calibrate_fits_a_value_without_changing_the_defaults(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = default_params()
    monkeypatch.setattr(calibration, "BOUNDS", {"gemm_serving_fraction": (0.4, 0.99)})
    start = shipped.with_gpu({"gemm_serving_fraction": 0.98}, "start")
    values, before, after = calibrate(start, passes=1, steps=0, entries=_subset())
    assert calibration.objective(after) <= calibration.objective(before)
    assert values["gemm_serving_fraction"] != 0.98
    assert default_params() == shipped
    written = write_calibration(values, before, after, tmp_path / "fit.yaml", base=start.source)
    doc = yaml.safe_load(written.read_text())
    assert doc["started_from"] == "start" and set(doc["parameters"]) == {"gemm_serving_fraction"}
    assert load_params(written).gpu.gemm_serving_fraction == values["gemm_serving_fraction"]


def _good_file(tmp_path: Path) -> Path:
    report = validate(load_entries([_measurements(tmp_path)]))
    values = default_params().with_gpu(SLOWER, "test").gpu_data()
    return write_calibration(values, report, report, tmp_path / "good.yaml")


def _measurements(tmp_path: Path) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump([ENTRY]))
    return path


def test_validate_cli_with_a_written_calibration(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    good, m = _good_file(tmp_path), _measurements(tmp_path)
    assert main(["validate", str(m), "--json"]) == 0
    shipped = json.loads(capsys.readouterr().out)
    assert main(["validate", str(m), "--json", "--params", str(good)]) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert (shipped["params"], fitted["params"]) == ("shipped", str(good))
    assert fitted["rows"][0]["predicted"] < shipped["rows"][0]["predicted"]
    assert main(["validate", str(m), "--params", str(good)]) == 0
    assert f"parameters: {good}" in capsys.readouterr().out


@pytest.mark.parametrize(("body", "message"), [
    (None, "no such calibration file"),
    ("parameters: [1, 2\n", "not valid YAML"),
    ("how: nothing\n", "parameters: expected a mapping"),
    ("parameters: {gemm_serving_fraction: fast}\n",
     "gemm_serving_fraction: expected a finite number"),
    ("parameters: {gemm_peak_fraction: 0.5}\n", "unknown parameter 'gemm_peak_fraction'"),
    ("parameters: {generations: {'trtllm-0.6': {gqa_kv_sharing: -1}}}\n",
     "generations.trtllm-0.6.gqa_kv_sharing: expected a non-negative number"),
    ("parameters: {generations: {'2023': {efficiency_scale: 0.9}}}\n",
     "generations.2023.efficiency_scale: removed (issue 13)"),
])
def test_a_bad_calibration_file_is_a_one_line_error_naming_file_and_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str | None, message: str) -> None:
    bad = tmp_path / "bad.yaml"
    if body is not None:
        bad.write_text(body)
    assert main(["validate", str(_measurements(tmp_path)), "--params", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tegel: error: {bad}") and message in err
    assert "\n" not in err


def test_write_target_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert calibration_target(None) == Path("gpu_calibration.yaml")
    assert calibration_target(tmp_path) == tmp_path / "gpu_calibration.yaml"
    with pytest.raises(TegelError, match="does not exist"):
        calibration_target(tmp_path / "nope" / "fit.yaml")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(TegelError, match="does not exist"):
        calibration_target(tmp_path / "a-file" / "fit.yaml")
    shipped = Path(tegel.__file__).parent / "mapping" / "data" / "gpu_calibration.yaml"
    for inside in (shipped, shipped.parent, Path(tegel.__file__).parent / ".." / "tegel" / "x.yaml"):
        with pytest.raises(TegelError, match="inside the installed tegel package"):
            calibration_target(inside)


def test_calibrate_cli_refuses_a_bad_write_path_before_fitting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def fitting(*args: object, **kwargs: object) -> None:
        raise AssertionError("fitting started before the write path was checked")

    monkeypatch.setattr(calibration, "calibrate", fitting)
    shipped = Path(tegel.__file__).parent / "mapping" / "data" / "gpu_calibration.yaml"
    text = shipped.read_text()
    for path, message in ((tmp_path / "nope" / "fit.yaml", "does not exist"),
                          (shipped, "inside the installed tegel package")):
        assert main(["validate", "--calibrate", "--write", str(path)]) == 2
        assert message in capsys.readouterr().err
    assert shipped.read_text() == text
    assert main(["validate", "--write", str(tmp_path / "fit.yaml")]) == 2
    assert "only used with --calibrate" in capsys.readouterr().err


def test_calibrate_cli_writes_to_the_current_directory_by_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    report = validate(load_entries([_measurements(tmp_path)]))
    fitted = default_params().with_gpu(SLOWER, "test").gpu_data()
    monkeypatch.setattr(calibration, "calibrate", lambda *a, **k: (fitted, report, report))
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--calibrate"]) == 0
    assert "wrote gpu_calibration.yaml" in capsys.readouterr().out
    loaded = load_params(tmp_path / "gpu_calibration.yaml").gpu
    assert loaded.gemm_serving_fraction == SLOWER["gemm_serving_fraction"]
    (tmp_path / "out").mkdir()
    assert main(["validate", "--calibrate", "--write", "out"]) == 0
    assert (tmp_path / "out" / "gpu_calibration.yaml").is_file()
