"""One point: evaluated by the engine of `tegel run`/`claim`; errors and violations recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from explore.conftest import write_space
from tegel.economics.evaluate import Workload, evaluate_system
from tegel.explore.point import Evaluator, Task
from tegel.explore.report import ruled_out
from tegel.explore.space import load_space
from tegel.serving.run import run

PARAMS = {"rows": 32, "cols": 32, "tile.macs_per_cycle": 128, "clock_hz": 1.2e9,
          "workload.batch": 4}


def test_a_point_is_what_the_engine_says(space_file: Path) -> None:
    ev = Evaluator(load_space(space_file))
    task = Task(0, PARAMS)
    r = ev.evaluate(task)
    assert r.error is None and r.feasible
    design = ev.design(PARAMS, task.key)
    assert design.system.chip.tiles.rows == 32 and design.system.chip.clock_hz == 1.2e9
    direct = run("qwen2.5-0.5b", design.system, 4, 128, 32)
    assert r.metrics["energy_j_per_token"] == pytest.approx(direct.energy_j_per_token, rel=1e-12)
    assert r.metrics["tokens_per_j"] == pytest.approx(1 / direct.energy_j_per_token, rel=1e-12)
    w = Workload(ev.workload().model, 128, 32, direct.precision, 10.0, 1e6)
    econ = evaluate_system(w, design.system, ev.assumptions, 4)
    assert r.metrics["usd_per_mtoken"] == pytest.approx(econ.tco.usd_per_mtoken, rel=1e-12)
    assert r.metrics["die_area_mm2"] == design.system.chip.die_area_mm2
    # more tiles of the same kind: more area and power, never less
    bigger = ev.evaluate(Task(1, {**PARAMS, "rows": 64, "cols": 64}))
    assert bigger.metrics["area_mm2"] > r.metrics["area_mm2"]
    assert bigger.metrics["package_power_w"] > r.metrics["package_power_w"]


def test_an_error_is_stored_with_its_message(space_file: Path) -> None:
    r = Evaluator(load_space(space_file)).evaluate(Task(0, {**PARAMS, "tile.macs_per_cycle": -1}))
    assert not r.feasible and r.error is not None
    assert "macs_per_cycle" in r.error


def test_violations_and_what_rules_points_out(tmp_path: Path) -> None:
    path = write_space(tmp_path, **{"max_die_area_mm2: 858": "max_die_area_mm2: 40"})
    ev = Evaluator(load_space(path))
    small = ev.evaluate(Task(0, {**PARAMS, "rows": 16, "cols": 16}))
    big = ev.evaluate(Task(1, PARAMS))
    assert small.metrics["die_area_mm2"] < 40 < big.metrics["die_area_mm2"]
    assert "max_die_area_mm2" not in small.violated
    assert big.violated == ("max_die_area_mm2",)
    summary = ruled_out([small, big])
    assert summary["constraints"]["max_die_area_mm2"]["points"] == 1
    assert summary["constraints"]["max_die_area_mm2"]["share"] == 0.5


def test_slo_binds_and_screens(tmp_path: Path) -> None:
    path = write_space(tmp_path, **{"min_tokens_per_s_per_user: 10":
                                    "min_tokens_per_s_per_user: 1.0e6"})
    r = Evaluator(load_space(path)).evaluate(Task(0, PARAMS))
    assert "slo_tokens_per_s_per_user" in r.violated and r.error is None
