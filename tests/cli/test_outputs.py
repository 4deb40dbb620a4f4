"""Issue 18, outputs: a command that writes a file refuses, before any work, to overwrite an
existing file unless `--force` is given, and never overwrites one of its own inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli.one_line import fails as _fails

from tegel.cli import main

RUN_EVENT = ["run", "llama-3.1-8b", "--on", "h100-sxm", "--sim", "event", "--input", "64",
             "--output", "4", "--batch", "1"]
PRESET = Path(__file__).resolve().parents[2] / "src/tegel/hardware/data/presets/h100-sxm.yaml"


def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a command gets as far as evaluating anything."""
    import tegel.cli.run_cmd as run_cmd

    monkeypatch.setattr(run_cmd, "_run", lambda *a: pytest.fail("ran before checking"))


def test_trace_over_an_existing_file_needs_force(capsys, tmp_path, monkeypatch):
    target = tmp_path / "t.json"
    target.write_text("keep me")
    with monkeypatch.context() as m:
        _no_work(m)
        _fails(capsys, [*RUN_EVENT, "--trace", str(target)], "--trace", "exists", "--force")
    assert target.read_text() == "keep me"
    assert main([*RUN_EVENT, "--trace", str(target), "--force"]) == 0
    capsys.readouterr()
    assert json.loads(target.read_text())["traceEvents"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]  # no temporary file left


def test_force_never_overwrites_an_input(capsys, tmp_path):
    system = tmp_path / "mine.yaml"
    system.write_text(PRESET.read_text())
    before = system.read_bytes()
    argv = [*RUN_EVENT[:3], str(system), *RUN_EVENT[4:]]
    _fails(capsys, [*argv, "--trace", str(system), "--force"], "--trace", "input")
    _fails(capsys, [*argv, "--plot", str(system), "--force"], "--plot", "input")
    assert system.read_bytes() == before


def test_report_over_an_existing_page_is_refused_before_running(capsys, tmp_path, monkeypatch):
    import tegel.cli.report_cmd as report_cmd

    page = tmp_path / "r.html"
    page.write_text("old page")
    monkeypatch.setattr(report_cmd, "_json_of", lambda *a, **k: pytest.fail("ran first"))
    _fails(capsys, ["report", "--run", "llama-3.1-8b", "--on", "h100-sxm", "-o", str(page)],
           "-o", "exists", "--force")
    assert page.read_text() == "old page"


def test_report_refuses_to_write_over_its_from_file(capsys, tmp_path):
    src = tmp_path / "result.json"
    src.write_text("{}")
    _fails(capsys, ["report", "--from", str(src), "-o", str(src), "--force"], "-o", "input")
    assert src.read_text() == "{}"


def test_calibration_over_an_existing_file_is_refused_before_fitting(capsys, tmp_path,
                                                                     monkeypatch):
    import tegel.fidelity.calibrate as calibrate

    monkeypatch.setattr(calibrate, "calibrate", lambda *a, **k: pytest.fail("fitted first"))
    old = tmp_path / "fit.yaml"
    old.write_text("# an earlier fit\n")
    _fails(capsys, ["validate", "--calibrate", "--write", str(old)], "--write", "exists",
           "--force")
    (tmp_path / "gpu_calibration.yaml").write_text("# another\n")
    _fails(capsys, ["validate", "--calibrate", "--write", str(tmp_path)],
           "gpu_calibration.yaml", "exists")
    # the calibration a fit starts from is an input, --force or not
    _fails(capsys, ["validate", "--calibrate", "--params", str(old), "--write", str(old),
                    "--force"], "--write", "input")
    assert old.read_text() == "# an earlier fit\n"


def test_fold_files_in_the_folder_need_force(capsys, tmp_path, monkeypatch):
    import tegel.fidelity.folds as folds

    monkeypatch.setattr(folds, "make_folds", lambda *a, **k: pytest.fail("fitted first"))
    (tmp_path / "fold-1.yaml").write_text("# an earlier fold\n")
    _fails(capsys, ["validate", "--calibrate", "--folds", "2", "--write-folds", str(tmp_path)],
           "--write-folds", "fold-1.yaml", "--force")


def test_make_model_over_an_existing_model_needs_force(capsys, tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    _fails(capsys, ["make-model", "llama", str(folder)], "make-model DIR", "config.json",
           "--force")
    assert (folder / "config.json").read_text() == "{}"
    onnx = tmp_path / "r.onnx"
    onnx.write_bytes(b"old")
    _fails(capsys, ["make-model", "resnet18", str(onnx)], "exists", "--force")
    assert onnx.read_bytes() == b"old"
    assert main(["make-model", "llama", str(folder), "--no-tokenizer", "--force"]) == 0
    capsys.readouterr()
    assert json.loads((folder / "config.json").read_text())["model_type"] == "llama"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]


def test_a_new_folder_for_make_model_is_no_overwrite(capsys, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")  # files make-model does not write are no matter
    assert main(["make-model", "llama", str(folder), "--no-tokenizer"]) == 0
    capsys.readouterr()
    assert (folder / "notes.txt").read_text() == "mine"


def test_parquet_and_plot_over_existing_files_need_force(capsys, tmp_path):
    old = tmp_path / "points.parquet"
    old.write_bytes(b"old")
    _fails(capsys, ["explore", "show", str(tmp_path / "s.duckdb"), "--parquet", str(old)],
           "--parquet", "exists", "--force")
    png = tmp_path / "c.png"
    png.write_bytes(b"old")
    _fails(capsys, ["curve", "llama-3.1-8b", "--on", "h100-sxm", "--plot", str(png)],
           "--plot", "exists", "--force")
    _fails(capsys, ["claim", "llama-3.1-8b", "--on", "h100-sxm", "--vs", "a100-80gb",
                    "--plot", str(png)], "--plot", "exists", "--force")
    assert png.read_bytes() == b"old"


def test_requests_out_over_an_existing_file_needs_force(capsys, tmp_path):
    old = tmp_path / "reqs.jsonl"
    old.write_text("old\n")
    _fails(capsys, ["serve", "llama-3.1-8b", "--on", "h100-sxm", "--requests-out", str(old)],
           "--requests-out", "exists", "--force")


@pytest.mark.parametrize("flag", ["--trace", "--lengths"])
def test_serve_empty_input_flags_are_errors(capsys, flag):
    _fails(capsys, ["serve", "llama-3.1-8b", "--on", "h100-sxm", flag, ""], flag, "empty")


def test_explore_empty_store_is_an_error_not_an_in_memory_run(capsys):
    space = Path(__file__).resolve().parents[2] / "examples" / "craftwerk-70b.yaml"
    _fails(capsys, ["explore", str(space), "--store", "", "--trials", "1"], "--store", "empty")
