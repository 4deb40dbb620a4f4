"""`--on NxNAME` and system names from the command line: multi-node systems, case-insensitive
names, "did you mean" on a miss, and the new presets running a model."""

from __future__ import annotations

import json

import pytest

from tegel.cli import main

SHORT = ("--input", "128", "--output", "16")


def _run(capsys: pytest.CaptureFixture[str], model: str, on: str) -> dict:
    assert main(["run", model, "--on", on, *SHORT, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_two_dgx_nodes_run_70b(capsys: pytest.CaptureFixture[str]) -> None:
    two = _run(capsys, "llama-3.1-70b", "2xdgx-h100")
    one = _run(capsys, "llama-3.1-70b", "DGX-H100")
    assert two["system"] == "2x-dgx-h100" and one["system"] == "dgx-h100"
    assert two["power_w"] > one["power_w"]  # sixteen GPUs and two hosts, idle ones included


def test_the_names_validate_prints_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "llama-3.1-8b", "16x-h100-sxm")["system"] == "16x-h100-sxm"


@pytest.mark.parametrize("on", ["gb200-nvl72", "mi355x-8", "tpu-v6e-256"])
def test_new_machines_run_70b(capsys: pytest.CaptureFixture[str], on: str) -> None:
    d = _run(capsys, "llama-3.1-70b", on)
    assert d["tpot_s"] > 0 and d["throughput_tokens_per_s"] > 0


def test_a_misspelt_system_gets_suggestions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "llama-3.1-8b", "--on", "2xdgx-h10", *SHORT]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tegel: error: ") and "did you mean dgx-h100" in err
    assert "Traceback" not in err
