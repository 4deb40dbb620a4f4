"""`tegel hw list|show|validate` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tegel.cli import main
from tegel.hardware.loader import PRESET_DIR


def test_show_h100_json_reports_the_headline_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hw", "show", "h100-sxm", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["peak_flops_per_s"]["bf16"] == pytest.approx(989e12, rel=1e-3)
    assert out["peak_flops_per_s"]["fp8"] == pytest.approx(1979e12, rel=1e-3)
    assert out["offchip_bytes"] == 80e9 and out["offchip_bytes_per_s"] == 3.35e12
    assert out["tdp_w"] == 700
    chip = out["chip"]
    assert (chip["node"], chip["die_area_mm2"], chip["architecture"]) == ("5nm", 814, "gpu")
    assert chip["sram_bytes_total"] > 50e6
    assert [lv["scope"] for lv in chip["levels"]] == ["tile", "tile", "chip", "offchip"]


def test_show_text_and_system(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hw", "show", "dgx-h100"]) == 0
    text = capsys.readouterr().out
    assert (
        "8 x h100-sxm" in text
        and "bf16 7.915 PFLOP/s" in text
        and "640 GB hbm3 at 26.8 TB/s" in text
    )


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hw", "list", "--json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert listed["h100-sxm"]["kind"] == "chip" and listed["dgx-h100"]["kind"] == "system"
    assert listed["dgx-h100"]["architecture"] == "gpu" and listed["dgx-h100"]["chips"] == 8
    assert listed["craftwerk"]["architecture"] == "dataflow"  # a chip template
    assert main(["hw", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split()[:3] == ["groq-576", "dataflow", "x576"] for line in lines)


def test_validate_ok_and_broken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hw", "validate", str(PRESET_DIR / "groq-576.yaml"), "--strict"]) == 0
    assert "ok (system groq-576: 576 x groq-lpu)" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text((PRESET_DIR / "h100-sxm.yaml").read_text().replace("tdp_w: 700", "tdp_w: 700 W"))
    assert main(["hw", "validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tegel: error: {bad}:") and "tdp_w: expected a number in W" in err
    assert len(err.splitlines()) == 1


def test_unknown_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hw", "show", "h100"]) == 2
    assert "did you mean" in capsys.readouterr().err
