"""Every preset loads, cites every figure and agrees with the reference file's spec entries."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tegel.hardware import System, list_presets, load_chip, load_system
from tegel.hardware.cite import uncited_figures
from tegel.hardware.loader import PRESET_DIR
from tegel.hardware.yamlio import read_yaml

REFERENCE = Path(__file__).parents[3] / "shared" / "reference" / "published-h100-and-specs.yaml"
PRESETS = [p.name for p in list_presets()]

REQUIRED = {
    "h100-sxm",
    "h200",
    "b200",
    "a100-80gb",
    "mi300x",
    "tpu-v5e",
    "tpu-v6e",
    "groq-lpu",
    "cerebras-wse3",
    "wormhole-n300",
    "craftwerk",
    "ref-dataflow",
    "dgx-h100",
    "hgx-h200",
    "hgx-b200",
    "mi300x-8",
    "groq-576",
    "craftwerk-station",
    "h100-pcie",
    "h100-nvl",
    "l40s",
    "gb200-gpu",
    "gb200-nvl72",
    "mi325x",
    "mi325x-8",
    "mi355x",
    "mi355x-8",
    "tpu-v5p",
    "trainium2",
    "gaudi3",
    "dgx-a100",
    "tpu-v6e-256",
    "tpu-v5p-8960",
    "gaudi3-8",
    "trn2-16",
}


def test_all_required_presets_exist() -> None:
    assert set(PRESETS) >= REQUIRED


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_and_every_figure_is_cited(name: str) -> None:
    raw = read_yaml(PRESET_DIR / f"{name}.yaml")
    assert uncited_figures(raw) == []
    system = load_system(name)
    chip = system.chip
    for level in chip.levels():
        assert level.read_bytes_per_s > 0 and level.read_pj_per_bit > 0 and level.total_bytes > 0
    for dtype in chip.dtypes:
        assert chip.peak_flops_per_s(dtype) > 0 and chip.pj_per_flop(dtype) > 0
    assert chip.noc_pj_per_bit_per_hop > 0 and chip.noc_hop_length_mm > 0
    assert 0 <= chip.idle_w < chip.tdp_w
    assert system.tdp_w >= chip.tdp_w * system.chip_count
    if system.scale_up is not None:
        assert system.link_pj_per_bit > 0


def test_h100_headline_figures() -> None:
    chip = load_chip("h100-sxm")
    assert chip.peak_flops_per_s("bf16") == pytest.approx(989e12, rel=1e-3)
    assert chip.peak_flops_per_s("fp8") == pytest.approx(1979e12, rel=1e-3)
    assert chip.peak_flops_per_s("bf16", sparse=True) == pytest.approx(1979e12, rel=1e-3)
    assert (chip.offchip_bytes, chip.offchip_bytes_per_s, chip.tdp_w) == (80e9, 3.35e12, 700)
    assert [lv.name for lv in chip.levels()] == ["registers", "smem_l1", "l2", "hbm3"]
    assert chip.architecture == "gpu"


def test_levels_get_more_expensive_and_larger_going_out() -> None:
    for name in ("h100-sxm", "a100-80gb", "ref-dataflow"):
        levels = load_chip(name).levels()
        energies = [lv.read_pj_per_bit for lv in levels]
        sizes = [lv.total_bytes for lv in levels]
        assert energies == sorted(energies), name
        assert sizes[-1] == max(sizes), name


# --- agreement with ../shared/reference/published-h100-and-specs.yaml (kind: spec) -------------


def _peak(dtype: str, sparse: bool = False) -> Callable[[System], float]:
    return lambda s: s.peak_flops_per_s(dtype, sparse)


def _level(name: str) -> Callable[[System], float]:
    return lambda s: next(lv.total_bytes for lv in s.chip.levels() if lv.name == name)


def _tdp(s: System) -> float:
    return s.chip.tdp_w


def _mem(s: System) -> float:
    return s.chip.offchip_bytes


def _bw(s: System) -> float:
    return s.chip.offchip_bytes_per_s


def _bidir_link(s: System) -> float:
    assert s.scale_up is not None
    return 2 * s.scale_up.link_bytes_per_s


CHECKS: dict[str, tuple[str, Callable[[System], float]]] = {
    "tdp-h100-sxm": ("h100-sxm", _tdp),
    "tdp-h200-sxm": ("h200", _tdp),
    "tdp-b200-sxm": ("b200", _tdp),
    "tdp-mi300x": ("mi300x", _tdp),
    "spec-h100-bf16": ("h100-sxm", _peak("bf16")),
    "spec-h100-fp8": ("h100-sxm", _peak("fp8")),
    "spec-h100-mem": ("h100-sxm", _mem),
    "spec-h100-bw": ("h100-sxm", _bw),
    "spec-h100-nvlink": ("dgx-h100", _bidir_link),
    "spec-h100-die": ("h100-sxm", lambda s: s.chip.die_area_mm2),
    "spec-h200-mem": ("h200", _mem),
    "spec-h200-bw": ("h200", _bw),
    "spec-b200-dense_fp4_tensor": ("b200", _peak("fp4")),
    "spec-b200-dense_fp8_tensor": ("b200", _peak("fp8")),
    "spec-b200-dense_bf16_tensor": ("b200", _peak("bf16")),
    "spec-b200-hbm_capacity": ("b200", _mem),
    "spec-b200-hbm_bandwidth": ("b200", _bw),
    "spec-b200-nvlink_bandwidth": ("hgx-b200", _bidir_link),
    "spec-b200-transistors": ("b200", lambda s: s.chip.transistors or 0.0),
    "spec-dgxb200": ("hgx-b200", _peak("fp4")),
    "spec-a100-dense_bf16_tensor": ("a100-80gb", _peak("bf16")),
    "spec-a100-hbm_capacity": ("a100-80gb", _mem),
    "spec-a100-hbm_bandwidth": ("a100-80gb", _bw),
    "spec-a100-board_power": ("a100-80gb", _tdp),
    "spec-a100-int8_tensor": ("a100-80gb", _peak("int8")),
    "spec-a100-die": ("a100-80gb", lambda s: s.chip.die_area_mm2),
    "spec-mi300x-mem": ("mi300x", _mem),
    "spec-mi300x-bw": ("mi300x", _bw),
    "spec-mi300x-llc": ("mi300x", _level("infinity_cache")),
    "spec-tpuv5e-peak_bf16": ("tpu-v5e", _peak("bf16")),
    "spec-tpuv5e-peak_int8": ("tpu-v5e", _peak("int8")),
    "spec-tpuv5e-hbm_capacity": ("tpu-v5e", _mem),
    "spec-tpuv5e-hbm_bandwidth": ("tpu-v5e", _bw),
    "spec-tpuv5e-on_chip_memory": ("tpu-v5e", _level("vmem")),
    "spec-tpuv6e-peak_bf16": ("tpu-v6e", _peak("bf16")),
    "spec-tpuv6e-peak_int8": ("tpu-v6e", _peak("int8")),
    "spec-tpuv6e-hbm_capacity": ("tpu-v6e", _mem),
    "spec-tpuv6e-hbm_bandwidth": ("tpu-v6e", _bw),
    "spec-groq-int8": ("groq-lpu", _peak("int8")),
    "spec-groq-fp16": ("groq-lpu", _peak("fp16")),
    "spec-groq-sram": ("groq-lpu", lambda s: s.sram_bytes_total),
    "spec-groq-sram-bw": ("groq-lpu", lambda s: s.chip.levels()[0].read_bytes_per_s),
    "spec-wse3-transistors": ("cerebras-wse3", lambda s: s.chip.transistors or 0.0),
    "spec-wse3-cores": ("cerebras-wse3", lambda s: float(s.chip.tile_count)),
    "spec-wse3-on_chip_sram": ("cerebras-wse3", lambda s: s.sram_bytes_total),
    "spec-wse3-sram_bandwidth": ("cerebras-wse3", lambda s: s.chip.levels()[0].read_bytes_per_s),
    "spec-wse3-peak_ai_compute": ("cerebras-wse3", _peak("fp16")),
    "spec-tt-wormhole-n300-fp8": ("wormhole-n300", _peak("fp8")),
    "spec-tt-wormhole-n300-sram": ("wormhole-n300", lambda s: s.sram_bytes_total),
    "spec-tt-wormhole-n300-dram_capacity": ("wormhole-n300", _mem),
    "spec-tt-wormhole-n300-dram_bandwidth": ("wormhole-n300", _bw),
    "spec-tt-wormhole-n300-board_power": ("wormhole-n300", _tdp),
    "spec-h100nvl": ("h100-nvl", _mem),
    "spec-gb200-fp4": ("gb200-gpu", _peak("fp4")),
}

# Spec entries about a preset's chip that no preset figure corresponds to, and why.
NOT_CHECKED = {
    "spec-tpuv5e-ici_bandwidth_bidir": "ICI is a system figure; no TPU pod preset yet",
    "spec-tpuv6e-ici_bandwidth_bidir": "ICI is a system figure; no TPU pod preset yet",
}
PRESET_WORDS = (
    "h100",
    "h200",
    "b200",
    "a100",
    "mi300x",
    "tpuv5e",
    "tpuv6e",
    "groq",
    "wse3",
    "wormhole-n300",
)

UNITS = {
    "W": 1.0,
    "TFLOPS": 1e12,
    "TOPS": 1e12,
    "PFLOPS": 1e15,
    "GB": 1e9,
    "TB/s": 1e12,
    "GB/s": 1e9,
    "PB/s": 1e15,
    "mm2": 1.0,
    "count": 1.0,
    "MB": 1e6,
    "MiB": 2**20,
}
BINARY_MB = {"spec-mi300x-llc"}  # cache sizes quoted in MB are binary


def _spec_entries() -> dict[str, dict]:
    entries = yaml.safe_load(REFERENCE.read_text())
    return {e["id"]: e for e in entries if e.get("kind") == "spec"}


@pytest.fixture(scope="module")
def specs() -> dict[str, dict]:
    if not REFERENCE.is_file():
        pytest.skip(f"{REFERENCE} not present")
    return _spec_entries()


@pytest.mark.parametrize("spec_id", sorted(CHECKS))
def test_preset_agrees_with_reference_spec(spec_id: str, specs: dict[str, dict]) -> None:
    entry = specs[spec_id]
    preset, figure = CHECKS[spec_id]
    scale = 2**20 if spec_id in BINARY_MB else UNITS[entry["unit"]]
    expected = float(entry["value"]) * scale
    got = figure(load_system(preset))
    assert math.isclose(got, expected, rel_tol=0.01), f"{spec_id}: {got:.4g} vs {expected:.4g}"


def test_every_reference_spec_of_a_preset_is_checked(specs: dict[str, dict]) -> None:
    about_presets = {i for i in specs if any(w in i for w in PRESET_WORDS)}
    unaccounted = about_presets - set(CHECKS) - set(NOT_CHECKED)
    assert not unaccounted, (
        f"add these reference entries to CHECKS or NOT_CHECKED: {sorted(unaccounted)}"
    )
