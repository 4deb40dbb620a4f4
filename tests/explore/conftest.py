"""A small space on a tiny model: each point takes milliseconds (fixed-batch `tegel run`)."""

from __future__ import annotations

from pathlib import Path

import pytest

SPACE = """\
kind: explore_space
name: tiny
template: craftwerk
parameters:
  rows: {values: [16, 32]}
  cols: {values: [16, 32]}
  tile.macs_per_cycle: {values: [64, 128]}
  clock_hz: {low: 0.8e9, high: 1.2e9, step: 0.4e9}
  workload.batch: {values: [1, 4]}
workload: {model: qwen2.5-0.5b, input_tokens: 128, output_tokens: 32}
slo: {min_tokens_per_s_per_user: 10}
evaluate: {kind: fixed_batch}
constraints: {max_die_area_mm2: 858, max_package_power_w: 20000}
objectives: {tokens_per_j: max, usd_per_mtoken: min}
search: {method: METHOD, trials: 24, seed: 3, batch: 8}
"""


def write_space(folder: Path, method: str = "random", extra: str = "", **replace: str) -> Path:
    text = SPACE.replace("METHOD", method)
    for old, new in replace.items():
        text = text.replace(old, new)
    path = folder / f"tiny-{method}.yaml"
    path.write_text(text + extra)
    return path


@pytest.fixture
def space_file(tmp_path: Path) -> Path:
    return write_space(tmp_path)
