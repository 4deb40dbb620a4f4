"""Issue 18, CLI arguments and outputs: every nonsense flag is a one-line `tegel: error:` naming
the flag (exit 2), no command prints a non-finite figure, and output paths are checked before any
work and written through a temporary file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from tests.cli.one_line import fails as _fails

from tegel.cli import main
from tegel.errors import TegelError
from tegel.report import jsonout

CLAIM = ("claim", "llama-3.1-8b", "--on", "h100-sxm", "--vs", "h100-sxm", "--no-tornado")


@pytest.mark.parametrize(("argv", "flag"), [
    ([*CLAIM, "--target", "inf"], "--target"),
    ([*CLAIM, "--target", "nan"], "--target"),
    ([*CLAIM, "--target", "0"], "--target"),
    ([*CLAIM, "--years", "inf"], "--years"),
    ([*CLAIM, "--years", "-1"], "--years"),
    ([*CLAIM, "--rack-power-kw", "inf"], "--rack-power-kw"),
    ([*CLAIM, "--pue", "inf"], "--pue"),
    ([*CLAIM, "--utilization", "2"], "--utilization"),
    ([*CLAIM, "--rows", "-5"], "--rows"),
    ([*CLAIM, "--input", "0"], "--input"),
    ([*CLAIM, "--input", "1e3"], "--input"),
    (["plan", "llama-3.1-8b", "--on", "ref-dataflow", "--stages", str(10**12)], "--stages"),
    (["run", "llama-3.1-8b", "--on", "h100-sxm", "--max-batch", "-1"], "--max-batch"),
    (["serve", "llama-3.1-8b", "--on", "h100-sxm", "--rate", "inf"], "--rate"),
    (["serve", "llama-3.1-8b", "--on", "h100-sxm", "--cv", "-1"], "--cv"),
])
def test_nonsense_flag_values_are_one_line_errors(capsys, argv, flag):
    err = _fails(capsys, argv, flag)
    assert "Traceback" not in err


def test_stages_beyond_what_the_model_allows_is_refused_not_clipped(capsys):
    err = _fails(capsys, ["plan", "llama-3.1-8b", "--on", "ref-dataflow", "--stages", "1000"],
                 "--stages 1000", "at most 32")
    assert "32" in err


def test_write_without_calibrate_is_an_error(capsys):
    _fails(capsys, ["validate", "--write", "x.yaml"], "--write", "--calibrate")


def test_set_to_infinity_is_an_error_naming_the_figure_not_tco_inf(capsys):
    err = _fails(capsys, ["cost", "h100-sxm", "--model", "llama-3.1-8b", "--set", "pue=inf"],
                 "--set", "finite number")
    assert "$inf" not in err and "nan" not in err.lower().replace("finite", "")


def test_json_helper_refuses_nan_and_names_where():
    assert json.loads(jsonout.dumps({"a": [1.0, 2]})) == {"a": [1.0, 2]}
    with pytest.raises(TegelError, match=r"x\.y\[1\]"):
        jsonout.dumps({"x": {"y": [1.0, math.inf]}})
    with pytest.raises(TegelError, match="nan_here"):
        jsonout.require_finite({"ok": 1.0, "nan_here": math.nan})
    jsonout.require_finite({"ok": 1.0, "none": None, "s": "inf"})


def test_no_bare_json_dumps_left_in_cli_or_report():
    """Every JSON output goes through tegel.report.jsonout (allow_nan=False)."""
    root = Path(__file__).resolve().parents[2] / "src" / "tegel"
    offenders = [str(p) for d in ("cli", "report") for p in (root / d).glob("*.py")
                 if p.name != "jsonout.py" and "json.dumps(" in p.read_text().replace(
                     "jsonout.dumps(", "")]
    assert offenders == []


# ---- outputs -------------------------------------------------------------------------------

RUN_EVENT = ["run", "llama-3.1-8b", "--on", "h100-sxm", "--sim", "event", "--input", "64",
             "--output", "4", "--batch", "1"]


def test_empty_trace_is_refused(capsys):
    _fails(capsys, [*RUN_EVENT, "--trace", ""], "--trace", "empty")


def test_trace_to_a_folder_is_refused_up_front(capsys, tmp_path, monkeypatch):
    import tegel.cli.run_cmd as run_cmd

    monkeypatch.setattr(run_cmd, "_run", lambda *a: pytest.fail("ran before checking --trace"))
    _fails(capsys, [*RUN_EVENT, "--trace", str(tmp_path)], "--trace", "folder")
    _fails(capsys, [*RUN_EVENT, "--trace", str(tmp_path / "missing" / "t.json")],
           "--trace", "does not exist")


def test_write_into_a_missing_folder_fails_before_calibrating(capsys, tmp_path, monkeypatch):
    import tegel.fidelity.calibrate as calibrate

    monkeypatch.setattr(calibrate, "calibrate", lambda *a, **k: pytest.fail("fitted first"))
    _fails(capsys, ["validate", "--calibrate", "--write", str(tmp_path / "no" / "c.yaml")],
           "--write", "does not exist")


def test_output_over_an_input_is_refused(capsys, tmp_path):
    system = tmp_path / "mine.yaml"
    system.write_text((Path(__file__).resolve().parents[2] / "src/tegel/hardware/data/presets/"
                       "h100-sxm.yaml").read_text())
    before = system.read_bytes()
    _fails(capsys, [*RUN_EVENT[:3], str(system), *RUN_EVENT[4:], "--trace", str(system)],
           "--trace", "input")
    assert system.read_bytes() == before


def test_a_failed_write_leaves_no_partial_file(capsys, tmp_path, monkeypatch):
    """A full disk half-way through: the target is untouched and no temporary file is left."""
    from tegel import atomic as outputs

    target = tmp_path / "trace.json"
    target.write_text("old")

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, text):
            self.f.write(text[: len(text) // 2])
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

    real = outputs.atomic_open

    def full(path, flag, mode="w"):
        import contextlib

        @contextlib.contextmanager
        def cm():
            with real(path, flag, mode) as f:
                yield Full(f)
        return cm()

    monkeypatch.setattr(outputs, "atomic_open", full)
    with pytest.raises(TegelError, match="No space left"):
        outputs.write_text(target, "x" * 1000, "-o")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["trace.json"]


def test_atomic_path_removes_the_temporary_file_on_error(tmp_path):
    from tegel.atomic import atomic_path

    target = tmp_path / "t.json"
    with pytest.raises(RuntimeError), atomic_path(target, "--trace") as tmp:
        tmp.write_text("{")
        raise RuntimeError("simulator died")
    assert list(tmp_path.iterdir()) == []


def test_trace_is_written_whole(capsys, tmp_path):
    target = tmp_path / "t.json"
    assert main([*RUN_EVENT, "--trace", str(target)]) == 0
    capsys.readouterr()
    assert json.loads(target.read_text())
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]


def test_report_output_to_a_folder_is_refused(capsys, tmp_path):
    _fails(capsys, ["report", "--run", "llama-3.1-8b", "--on", "h100-sxm", "-o", str(tmp_path)],
           "-o", "folder")
