"""Issue 18, hardware surface: every class of bad hardware YAML the fuzz campaign found is one
`tegel: error:` line naming file, line and field (never a traceback, hang or huge message), and
nonsense figures are refused with the reason; an edited file is never served from the cache."""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from pathlib import Path

import pytest

from tegel.cli import main
from tegel.errors import TegelError, short
from tegel.hardware import load_chip, load_system, validate_file
from tegel.hardware.loader import PRESET_DIR, list_presets

H100 = (PRESET_DIR / "h100-sxm.yaml").read_text()
MAX_MESSAGE = 1000  # characters; the alias bomb's message was 100 KB


def _file(tmp_path: Path, old: str, new: str, name: str = "chip.yaml") -> Path:
    assert old in H100, old
    path = tmp_path / name
    path.write_text(H100.replace(old, new, 1))
    return path


def _error(target: str | Path, seconds: float = 1.0) -> str:
    """The TegelError message loading `target` gives, checked to be one short line, in time."""
    start = time.perf_counter()
    with pytest.raises(TegelError) as info:
        load_system(str(target))
    assert time.perf_counter() - start < seconds
    message = str(info.value)
    assert "\n" not in message and len(message) < MAX_MESSAGE, message[:300]
    return message


def _alias_bomb(levels: int = 9) -> str:
    """`clock_hz:` holding ten lists of ten aliases each, `levels` deep: 10^levels items."""
    lines = ["clock_hz:", "  - &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for prev, name in itertools.pairwise("abcdefghijklmnop"[:levels]):
        lines.append(f"  - &{name} [{', '.join([f'*{prev}'] * 10)}]")
    return "\n".join(lines) + "\n"


# --- hang / memory ---------------------------------------------------------------------------

def test_alias_bomb_in_a_number_field_is_refused_at_once(tmp_path: Path) -> None:
    bomb = _alias_bomb()
    assert len(bomb) < 500  # the example: 462 bytes
    path = _file(tmp_path, "clock_hz: 1.83e9\n", bomb)
    message = _error(path)
    assert message.startswith(f"{path}:15: clock_hz.4: expands (through YAML aliases)")


def test_alias_bomb_through_hw_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, "clock_hz: 1.83e9\n", _alias_bomb())
    start = time.perf_counter()
    assert main(["hw", "validate", str(path)]) == 2
    assert time.perf_counter() - start < 1.0
    err = capsys.readouterr().err
    assert err.startswith("tegel: error: ") and err.count("\n") == 1 and len(err) < MAX_MESSAGE


def test_a_small_list_where_a_number_belongs_is_named_and_its_echo_cut(tmp_path: Path) -> None:
    path = _file(tmp_path, "clock_hz: 1.83e9\n", _alias_bomb(levels=3))  # 1,000 items: allowed
    message = _error(path)
    assert ":10: clock_hz: expected a number in Hz" in message
    assert "..." in message and len(message) < 300


def test_short_cuts_every_kind_of_echoed_value() -> None:
    nested: list[object] = [1]
    for _ in range(1000):
        nested = [nested] * 10  # 10^1000 items if walked; short must not walk them
    assert len(short(nested)) <= 80
    assert len(short("x" * 10**6)) <= 80
    assert short(10**400) == "<an integer of about 400 digits>"
    assert len(short(-(10**5000))) < 80  # past int's 4,300-digit str() limit
    assert short(1.5) == "1.5" and short("ab") == "'ab'"


# --- tracebacks ------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [331, 2000])  # the file: 331 levels raised RecursionError
@pytest.mark.parametrize("opening", ["[", "{a: "])
def test_nesting_too_deep_is_an_error_not_a_recursion_error(
    tmp_path: Path, opening: str, depth: int
) -> None:
    closing = "]" if opening == "[" else "}"
    deep = f"clock_hz: {opening * depth}1{closing * depth}\n"
    message = _error(_file(tmp_path, "clock_hz: 1.83e9\n", deep))
    assert ":10: nested more than" in message


def test_a_byte_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "chip.yaml"
    path.write_bytes(H100.encode().replace(b"NVIDIA H100 SXM5 80 GB (", b"NVIDIA \xff(", 1))
    assert _error(path) == f"{path}:5: not UTF-8 text (byte 0xff at offset 235)"


def test_unknown_key_with_a_capital_letter_is_named(tmp_path: Path) -> None:
    message = _error(_file(tmp_path, "tdp_w: 700\n", "tdp_w: 700\nNoc: 1\n"))
    assert ":14: Noc: unknown field 'Noc'; did you mean 'noc'?" in message


def test_nested_unknown_capital_key_names_itself_not_its_section(tmp_path: Path) -> None:
    message = _error(_file(tmp_path, "  topology: crossbar\n",
                           "  topology: crossbar\n  Topology: mesh\n"))
    assert "noc.Topology: unknown field 'Topology'; did you mean 'topology'?" in message
    assert "did you mean 'noc'" not in message


def test_system_whose_chip_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("kind: system\nname: loop\nchip: loop.yaml\nchip_count: 2\n")
    message = _error(path)
    assert message.startswith(f"{path}: refers back to itself (loop.yaml -> loop.yaml)")


def test_two_systems_naming_each_other(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("kind: system\nname: a\nchip: b.yaml\nchip_count: 2\n")
    (tmp_path / "b.yaml").write_text("kind: system\nname: b\nchip: a.yaml\nchip_count: 2\n")
    assert "a.yaml -> b.yaml -> a.yaml" in _error(tmp_path / "a.yaml")


def test_chip_same_silicon_as_itself(tmp_path: Path) -> None:
    path = _file(tmp_path, "tdp_w: 700\n", "tdp_w: 700\nsame_silicon_as: h100-sxm\n")
    assert "same_silicon_as: names the chip itself" in _error(path)


@pytest.mark.parametrize(("old", "new", "field"), [
    ("clock_hz: 1.83e9\n", f"clock_hz: {10**400}\n", ":10: clock_hz: expected a finite number"),
    ("  year: 2022\n", f"  year: {10**400}\n", "sources.nv-h100-spec.year: expected an integer"),
])
def test_huge_integers_are_refused_not_an_overflow(
    tmp_path: Path, old: str, new: str, field: str
) -> None:
    message = _error(_file(tmp_path, old, new))
    assert field in message and "<an integer of about 400 digits>" in message


@pytest.mark.parametrize("name", ["x" * 300, "x" * 300 + ".yaml", "d/" + "x" * 300 + ".yaml"])
def test_names_over_255_characters(name: str) -> None:
    message = _error(name)
    assert "x" * 100 in message or "xxx..." in message
    with pytest.raises(TegelError):
        validate_file(name)
    with pytest.raises(TegelError):
        load_chip(name)


def test_replica_count_too_large_to_build() -> None:
    assert "expected at most 10^7 chips" in _error("9" * 30 + "xh100-sxm")


# --- plausibility ------------------------------------------------------------------------------

@pytest.mark.parametrize(("old", "new", "expected"), [
    ("clock_hz: 1.83e9\n", "clock_hz: .inf\n", ":10: clock_hz: expected a finite number in Hz"),
    ("clock_hz: 1.83e9\n", "clock_hz: .nan\n", ":10: clock_hz: expected a finite number in Hz"),
    ("clock_hz: 1.83e9\n", "clock_hz: 1e-300\n",
     ":10: clock_hz: expected a value from 1000 to 1e+12 Hz (a physically generous bound)"),
    ("clock_hz: 1.83e9\n", "clock_hz: 1e308\n", ":10: clock_hz: expected a value from 1000"),
    ("  bandwidth_bytes_per_s: 3.35e12\n", "  bandwidth_bytes_per_s: 1e308\n",
     "offchip.bandwidth_bytes_per_s: expected a value from 1e-20 to 1e+20"),
    ("idle_w: 70\n", "idle_w: 800\n", ":14: idle_w: expected at most tdp_w (700 W), got 800"),
    ("die_area_mm2: 814\n", "die_area_mm2: 900\n",
     ":11: die_area_mm2: one compute die of 900 mm^2 exceeds the 858 mm^2 reticle"),
])
def test_nonsense_figures_are_refused_with_the_reason(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert expected in _error(_file(tmp_path, old, new))


def test_tile_grid_is_bounded_before_anything_is_built(tmp_path: Path) -> None:
    grid = "tiles:\n  rows: 1\n  cols: 132\n"
    path = _file(tmp_path, grid, "tiles:\n  rows: 10000\n  cols: 10000\n")
    message = _error(path)
    assert "tiles: rows x cols: expected at most 100,000 a side and 10,000,000 tiles" in message
    path = _file(tmp_path, grid, f"tiles:\n  rows: {10**15}\n  cols: {10**15}\n")  # 10^30
    assert "tiles.rows: expected an integer of at most 1e+09" in _error(path)


def test_wafer_scale_die_loads_only_when_marked(tmp_path: Path) -> None:
    wse = (PRESET_DIR / "cerebras-wse3.yaml").read_text()
    assert load_chip("cerebras-wse3").die_area_mm2 == 46225
    path = tmp_path / "wse.yaml"
    path.write_text(wse.replace("  wafer_scale: true\n", "", 1).replace(
        "name: cerebras-wse3", "name: wse", 1))
    assert "exceeds the 858 mm^2 reticle" in _error(path)


def test_every_preset_loads_with_finite_figures() -> None:
    for info in list_presets():
        system = load_system(info.name)
        for value in (system.chip.clock_hz, system.chip.tdp_w, system.tdp_w, system.idle_w,
                      system.chip.die_area_mm2, system.offchip_bytes_per_s):
            assert math.isfinite(value), info.name
        assert system.chip.idle_w <= system.chip.tdp_w, info.name


# --- stale cache -------------------------------------------------------------------------------

def test_an_edited_file_is_read_again_in_the_same_process(tmp_path: Path) -> None:
    path = tmp_path / "chip.yaml"
    path.write_text(H100)
    assert load_chip(str(path)).tdp_w == 700
    path.write_text(H100.replace("tdp_w: 700\n", "tdp_w: 650\n"))
    assert load_chip(str(path)).tdp_w == 650
    assert load_system(str(path)).chip.tdp_w == 650
    path.write_text(H100.replace("tdp_w: 700\n", "tdp_w: [\n"))  # broken: an error, not old chip
    with pytest.raises(TegelError, match="not valid YAML"):
        load_chip(str(path))
    path.write_text(H100)
    assert load_chip(str(path)).tdp_w == 700


def test_an_edit_keeping_size_and_mtime_is_still_seen(tmp_path: Path) -> None:
    """The cache compares content, so an edit that another process makes within the same
    second (same size, same modification time) is not served from the cache."""
    path = tmp_path / "chip.yaml"
    path.write_text(H100)
    assert load_chip(str(path)).tdp_w == 700
    stat = path.stat()
    path.write_text(H100.replace("tdp_w: 700\n", "tdp_w: 650\n"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert load_chip(str(path)).tdp_w == 650


def test_a_system_sees_an_edit_to_the_chip_file_it_names(tmp_path: Path) -> None:
    chip = tmp_path / "chip.yaml"
    chip.write_text(H100)
    system = tmp_path / "node.yaml"
    system.write_text("kind: system\nname: node\nchip: chip.yaml\nchip_count: 2\n"
                      "chips_per_node: 2\n")
    assert load_system(str(system)).chip.tdp_w == 700
    chip.write_text(H100.replace("tdp_w: 700\n", "tdp_w: 650\n"))
    assert load_system(str(system)).chip.tdp_w == 650
    chip.write_text(H100.replace("tdp_w: 700\n", "tdp_w: -1\n"))
    with pytest.raises(TegelError, match="tdp_w"):
        load_system(str(system))


def test_hw_show_json_never_emits_a_bare_nan(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tegel.hardware

    monkeypatch.setattr(tegel.hardware, "summarize", lambda system: {"clock_hz": math.nan})
    assert main(["hw", "show", "h100-sxm", "--json"]) == 2
    captured = capsys.readouterr()
    assert "NaN" not in captured.out
    assert captured.err.startswith("tegel: error: h100-sxm: clock_hz is not a finite number")
    assert captured.err.count("\n") == 1  # one line, naming the target and the figure


# --- the CLI: exit 2, one line, never NaN --------------------------------------------------------

_BAD_FILES = {
    "alias_bomb": ("clock_hz: 1.83e9\n", _alias_bomb()),
    "deep": ("clock_hz: 1.83e9\n", "clock_hz: " + "[" * 400 + "1" + "]" * 400 + "\n"),
    "inf": ("clock_hz: 1.83e9\n", "clock_hz: .inf\n"),
    "tiny": ("clock_hz: 1.83e9\n", "clock_hz: 1e-300\n"),
    "huge_int": ("clock_hz: 1.83e9\n", f"clock_hz: {10**400}\n"),
    "idle_over_tdp": ("idle_w: 70\n", "idle_w: 800\n"),
    "tiles_1e30": ("tiles:\n  rows: 1\n  cols: 132\n",
                   f"tiles:\n  rows: {10**15}\n  cols: {10**15}\n"),
    "capital_key": ("  topology: crossbar\n", "  topology: crossbar\n  Topology: mesh\n"),
}


@pytest.mark.parametrize("command", [["hw", "validate"], ["hw", "show", "--json"]])
@pytest.mark.parametrize("case", sorted(_BAD_FILES))
def test_hw_validate_and_show_json_give_one_error_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, command: list[str]
) -> None:
    path = _file(tmp_path, *_BAD_FILES[case])
    assert main([*command[:2], str(path), *command[2:]]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"tegel: error: {path}:") and captured.err.count("\n") == 1
    assert len(captured.err) < MAX_MESSAGE


@pytest.mark.parametrize("command", [["hw", "validate"], ["hw", "show", "--json"]])
def test_hw_commands_on_bytes_that_are_not_utf8_or_a_file_naming_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(H100.encode().replace(b"NVIDIA H100", b"NVIDIA \xff", 1))
    loop = tmp_path / "loop.yaml"
    loop.write_text("kind: system\nname: loop\nchip: loop.yaml\nchip_count: 2\n")
    for path, expected in ((bad, "not UTF-8 text"), (loop, "refers back to itself")):
        assert main([*command[:2], str(path), *command[2:]]) == 2
        err = capsys.readouterr().err
        assert err.startswith("tegel: error: ") and err.count("\n") == 1 and expected in err


def _refuse_constant(token: str) -> object:
    raise AssertionError(f"JSON holds {token}")


def test_hw_show_json_of_every_preset_is_strict_json(capsys: pytest.CaptureFixture[str]) -> None:
    for info in list_presets():
        assert main(["hw", "show", info.name, "--json"]) == 0
        figures = json.loads(capsys.readouterr().out, parse_constant=_refuse_constant)
        assert figures, info.name
