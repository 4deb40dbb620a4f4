"""Space files: what they accept, and line-numbered errors for what they do not."""

from __future__ import annotations

from pathlib import Path

import pytest

from explore.conftest import write_space
from tegel.errors import TegelError
from tegel.explore.space import Param, load_space


def test_loads_and_resolves_the_template(space_file: Path) -> None:
    space = load_space(space_file)
    assert space.names == ("rows", "cols", "tile.macs_per_cycle", "clock_hz", "workload.batch")
    assert space.template_path.name == "craftwerk.yaml"
    assert space.spec.parameters["clock_hz"].grid() == pytest.approx([0.8e9, 1.2e9])
    assert space.objectives == (("tokens_per_j", "max"), ("usd_per_mtoken", "min"))


def test_integer_ranges_are_integers() -> None:
    p = Param(low=4, high=16, step=4)
    assert p.is_int and p.grid() == [4, 8, 12, 16]
    assert all(isinstance(v, int) for v in p.grid())


@pytest.mark.parametrize(("old", "new", "line", "expected"), [
    ("tile.macs_per_cycle:", "tile.macs_per_cycel:", 7, "not a field of template craftwerk"),
    ("tokens_per_j: max", "tokens_per_joule: max", 14, "unknown metric"),
    ("max_die_area_mm2: 858", "max_die_mm2: 858", 13, "unknown constraint"),
    ("slo: {min_tokens_per_s_per_user: 10}", "slo: {min_tokens_per_s_per_user: fast}", 11,
     "expected a number"),
    ("rows: {values: [16, 32]}", "rows: {values: []}", 5, "at least one value"),
    ("template: craftwerk", "template: no-such-chip", 3, "no preset or file named"),
    ("template: craftwerk", "template: dgx-h100", 3, "expected a chip_template"),
])
def test_errors_name_file_line_and_field(tmp_path: Path, old: str, new: str, line: int,
                                        expected: str) -> None:
    path = write_space(tmp_path, **{old: new})
    with pytest.raises(TegelError) as err:
        load_space(path)
    assert str(err.value).startswith(f"{path}:{line}:")
    assert expected in str(err.value)


def test_grid_needs_a_step_and_tpe_one_objective(tmp_path: Path) -> None:
    path = write_space(tmp_path, "grid", **{"step: 0.4e9": "log: false"})
    with pytest.raises(TegelError, match=r":8: parameters.clock_hz: grid search needs"):
        load_space(path)
    with pytest.raises(TegelError, match="tpe optimises one objective"):
        load_space(write_space(tmp_path, "tpe"))


def test_several_chips_need_a_system(tmp_path: Path) -> None:
    path = write_space(tmp_path, extra="", **{
        "  workload.batch:": "  system.chip_count: {values: [1, 2]}\n  workload.batch:"})
    with pytest.raises(TegelError, match="several chips need a `system:`"):
        load_space(path)
