"""Broken hardware files: each gets one line naming file, line, field and what was expected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tegel.errors import TegelError
from tegel.hardware import load_chip, load_system, validate_file
from tegel.hardware.loader import PRESET_DIR

H100 = (PRESET_DIR / "h100-sxm.yaml").read_text()


def _broken(tmp_path: Path, old: str, new: str, name: str = "chip.yaml") -> Path:
    assert old in H100, old
    path = tmp_path / name
    path.write_text(H100.replace(old, new, 1))
    return path


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


CASES = [
    # (name, old, new, marker line text, expected words in message)
    (
        "duplicate key",
        "tdp_w: 700\n",
        "tdp_w: 700\ntdp_w: 650\n",
        "tdp_w: 650",
        ["duplicate key 'tdp_w'", "first at line"],
    ),
    (
        "unknown field",
        "  bandwidth_bytes_per_s: 3.35e12\n",
        "  bandwidth_bytes_per_s: 3.35e12\n  bandwith_bytes_per_s: 3.35e12\n",
        "bandwith_bytes_per_s",
        ["offchip.bandwith_bytes_per_s", "unknown field", "did you mean 'bandwidth_bytes_per_s'"],
    ),
    (
        "negative bandwidth",
        "  bandwidth_bytes_per_s: 3.35e12\n",
        "  bandwidth_bytes_per_s: -3.35e12\n",
        "bandwidth_bytes_per_s: -3.35e12",
        ["offchip.bandwidth_bytes_per_s", "> 0 bytes/s"],
    ),
    (
        "wrong unit",
        "  bandwidth_bytes_per_s: 3.35e12\n",
        "  bandwidth_bytes_per_s: 3.35 TB/s\n",
        "3.35 TB/s",
        ["offchip.bandwidth_bytes_per_s", "expected a number in bytes/s", "'3.35 TB/s'"],
    ),
    (
        "wrong unit in a list item",
        "      read_bytes_per_s: 2.3424e11\n",
        "      read_bytes_per_s: 234 GB/s\n",
        "234 GB/s",
        ["tiles.storage.1.read_bytes_per_s", "bytes/s"],
    ),
    (
        "wrong unit, clock",
        "clock_hz: 1.83e9\n",
        "clock_hz: 1.83 GHz\n",
        "1.83 GHz",
        ["clock_hz", "a number in Hz"],
    ),
    (
        "unknown dtype class",
        "fp8: 8192, int8",
        "fp9: 8192, int8",
        "fp9",
        ["peak_ops_per_cycle.fp9", "'bf16'"],
    ),
    (
        "unknown source",
        "  tdp_w: nv-h100-spec",
        "  tdp_w: nv-datasheet",
        "tdp_w: nv-datasheet",
        ["cite.tdp_w", "unknown source 'nv-datasheet'"],
    ),
    (
        "cite of a non-field",
        "  tdp_w: nv-h100-spec",
        "  tdp_watts: nv-h100-spec",
        "tdp_watts",
        ["tdp_watts", "not a field"],
    ),
    ("unknown node", "node: 5nm", "node: 2nm", "node: 2nm", ["node", "2nm", "16nm, 7nm, 5nm, 3nm"]),
    ("bad kind", "kind: chip\n", "kind: gpu\n", "kind: gpu", ["kind", "chip_template"]),
    ("bad yaml", "tdp_w: 700", "tdp_w: [700", "tdp_w: [700", ["not valid YAML"]),
]


@pytest.mark.parametrize(
    ("name", "old", "new", "marker", "words"), CASES, ids=[c[0] for c in CASES]
)
def test_broken_file_gives_one_line_with_file_and_line(
    tmp_path: Path, name: str, old: str, new: str, marker: str, words: list[str]
) -> None:
    path = _broken(tmp_path, old, new)
    with pytest.raises(TegelError) as info:
        validate_file(str(path))
    message = str(info.value)
    assert "\n" not in message
    match = re.match(rf"^{re.escape(str(path))}:(\d+): ", message)
    assert match, message
    assert int(match.group(1)) == _line_of(path, marker), message
    for word in words:
        assert word in message, message


def test_missing_field_names_it(tmp_path: Path) -> None:
    path = _broken(tmp_path, "clock_hz: 1.83e9\n", "")
    with pytest.raises(TegelError, match=r"chip\.yaml:\d+: clock_hz: missing required field$"):
        validate_file(str(path))


def test_uncited_figure_is_an_error_only_when_strict(tmp_path: Path) -> None:
    path = _broken(tmp_path, "  tdp_w: nv-h100-spec\n", "")
    assert validate_file(str(path)).chip.tdp_w == 700
    with pytest.raises(
        TegelError, match=rf"chip\.yaml:{_line_of(path, 'tdp_w: 700')}: tdp_w: figure has no source"
    ):
        validate_file(str(path), strict=True)


def test_number_without_dot_is_a_float(tmp_path: Path) -> None:
    path = _broken(tmp_path, "clock_hz: 1.83e9\n", "clock_hz: 183e7\n")
    assert load_chip(str(path)).clock_hz == pytest.approx(1.83e9)


def test_quoted_number_is_rejected(tmp_path: Path) -> None:
    path = _broken(tmp_path, "tdp_w: 700\n", 'tdp_w: "700"\n')
    with pytest.raises(TegelError, match=r"tdp_w: expected a number in W"):
        validate_file(str(path))


def test_system_with_unknown_chip(tmp_path: Path) -> None:
    path = tmp_path / "sys.yaml"
    path.write_text("kind: system\nname: s\nchip: h100-sx\nchip_count: 2\n")
    with pytest.raises(TegelError, match="did you mean h100-sxm"):
        load_system(str(path))


def test_system_with_file_chip_and_inline_chip(tmp_path: Path) -> None:
    (tmp_path / "mychip.yaml").write_text(H100.replace("name: h100-sxm", "name: mine"))
    path = tmp_path / "sys.yaml"
    path.write_text("kind: system\nname: s\nchip: mychip.yaml\nchip_count: 4\nchips_per_node: 2\n")
    system = load_system(str(path))
    assert (system.chip.name, system.node_count) == ("mine", 2)
    assert system.peak_flops_per_s("bf16") == pytest.approx(4 * 989.43e12, rel=1e-4)


def test_chip_file_is_a_one_chip_system_but_system_is_not_a_chip() -> None:
    assert load_system("h100-sxm").chip_count == 1
    with pytest.raises(TegelError, match="is a system of 8 x h100-sxm"):
        load_chip("dgx-h100")
