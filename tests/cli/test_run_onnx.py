"""`tegel run MODEL.onnx` with the real ONNX frontend: the done-when of issue 16 on a small
CNN (the zoo's ResNet-50 made by `tegel make-model`, the same path, runs in the README)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tegel.cli import main
from tegel.workload.onnx_frontend import load_onnx


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "resnet18.onnx"
    assert main(["make-model", "resnet18", str(path), "--seed", "0"]) == 0
    return path


def _run(capsys, *args: str) -> dict:
    assert main(["run", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("system", ["tpu-v5e", "craftwerk", "h100-sxm"])
def test_an_fp32_onnx_model_runs_in_the_chips_formats(resnet18: Path, system: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The model is fp32; the TPU and CRAFTWERK compute no fp32, so the run must price it in the
    chip's bf16 (the default) — and report what it priced."""
    out = _run(capsys, str(resnet18), "--on", system)
    assert out["latency_s"] > 0 and out["energy_j_per_inference"] > 0
    assert abs(sum(out["energy_breakdown_j_per_inference"].values())
               - out["energy_j_per_inference"]) < 1e-9 * out["energy_j_per_inference"]


def test_int8_is_cheaper_than_bf16_on_the_same_chip(resnet18: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    bf16 = _run(capsys, str(resnet18), "--on", "craftwerk", "--batch", "8")
    int8 = _run(capsys, str(resnet18), "--on", "craftwerk", "--batch", "8", "--precision", "int8")
    assert int8["energy_j_per_inference"] < bf16["energy_j_per_inference"]


def test_the_graph_run_prices_every_mac_of_the_network(resnet18: Path) -> None:
    """ResNet-18's 1.81 GMACs (published) are what the loaded graph holds at 224 x 224."""
    from tegel.workload.graph_card import graph_macs

    assert abs(graph_macs(load_onnx(resnet18, 1)) / 1.81e9 - 1) < 0.005


@pytest.mark.parametrize("flags", [["--tp", "2"], ["--input", "128"], ["--output", "64"],
                                   ["--speculative", "ngram"], ["--kv-cache", "fp8"]])
def test_llm_run_flags_are_refused_by_name(resnet18: Path, flags: list[str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(resnet18), "--on", "h100-sxm", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tegel: error: ") and flags[0] in err and err.count("\n") == 1
