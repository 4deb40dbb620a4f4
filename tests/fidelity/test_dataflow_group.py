"""The dataflow group: its data file, its parameters' ranges and calibration, and the state of
its accuracy (train and held out apart)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tegel.errors import TegelError
from tegel.fidelity.dataflow import (
    TARGET_ERROR,
    TARGET_OVER,
    load_dataflow_cases,
    validate_dataflow,
    write_dataflow_calibration,
)
from tegel.hardware import load_system
from tegel.mapping.params import dataflow_fitted_ranges, default_params, load_params

DATA = Path(__file__).parents[2] / "src" / "tegel" / "mapping" / "data"


def test_entries_are_split_and_sourced() -> None:
    cases = load_dataflow_cases()
    sets = {c.set for c in cases}
    assert sets == {"train", "held_out", "excluded"}
    for c in cases:
        assert c.source.get("title") and str(c.source.get("url", "")).startswith("https://"), c.id
        assert c.set != "excluded" or c.reason, c.id
    held = {c.system for c in cases if c.set == "held_out"}
    train = {c.system for c in cases if c.set == "train"}
    assert held - train, "some held-out system is never fitted at all"


def test_bad_entries_name_themselves(tmp_path: Path) -> None:
    bad = tmp_path / "speeds.yaml"
    bad.write_text("- {id: x, set: dev, model: m, system: s, precision: bf16, "
                   "tokens_per_s_per_user: 1, source: {title: t, url: u}}\n")
    with pytest.raises(TegelError, match="x: set 'dev'"):
        load_dataflow_cases(bad)
    bad.write_text("- {id: y, set: excluded, model: m, system: s, precision: bf16, "
                   "tokens_per_s_per_user: 1, source: {title: t, url: u}}\n")
    with pytest.raises(TegelError, match="y: an excluded entry needs its reason"):
        load_dataflow_cases(bad)


def test_fitted_parameters_have_ranges_and_the_calibration_respects_them() -> None:
    ranges = dataflow_fitted_ranges()
    assert set(ranges) == {"host_round_trip_s", "stage_handoff_s", "collective_sync_s"}
    doc = yaml.safe_load((DATA / "dataflow_calibration.yaml").read_text())
    assert doc["policy"] == "dataflow" and doc["date"] and doc["objective_percent"]
    shipped = default_params().dataflow
    for name, value in doc["parameters"].items():
        lo, hi = ranges[name]
        assert lo <= value <= hi and getattr(shipped, name) == value
    every = yaml.safe_load((DATA / "dataflow.yaml").read_text())
    for name, entry in every.items():  # every parameter states its meaning, range and source
        assert {"value", "low", "high", "meaning", "source"} <= set(entry), name


def test_a_written_calibration_loads_back(tmp_path: Path) -> None:
    report = validate_dataflow(sets=())
    path = write_dataflow_calibration({"host_round_trip_s": 1e-4}, report, report, report,
                                      tmp_path / "flow.yaml")
    assert load_params(path).dataflow.host_round_trip_s == 1e-4
    path.write_text(path.read_text().replace("host_round_trip_s: 0.0001", "host_round_trip_s: 5.0"))
    with pytest.raises(TegelError, match="outside its range"):
        load_params(path)


def test_seventy_b_runs_on_four_cs3_systems_through_hosts() -> None:
    system = load_system("cerebras-cs3x4")
    assert system.chip_count == 4 and system.scale_up is not None and system.scale_up.via_host


def test_accuracy_train_and_held_out() -> None:
    """The state the docs report: training entries fitted to a few per cent, every scored entry
    within 35 % (SambaNova, its weights split between SRAM and HBM, is the worst, -24 %), none
    over-predicted by 1.5x: issue 13's target."""
    report = validate_dataflow()
    assert not report.failed
    assert {r.case.set for r in report.rows} == {"train", "held_out"}
    assert report.mape("train") < 6.0
    assert report.mape("held_out") < 25.0
    for r in report.rows:
        assert r.predicted <= TARGET_OVER * r.case.measured, r.case.id
        assert abs(r.error) <= TARGET_ERROR, r.case.id
    assert report.meets_target()
