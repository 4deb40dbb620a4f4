"""The model families added for issue 15 run end to end from the command line."""

from __future__ import annotations

import json

import pytest

from tegel.cli import main


@pytest.mark.parametrize(("model", "system"), [("qwen3-30b-a3b", "h100-sxm"),
                                               ("qwen3-8b", "dgx-h100"),
                                               ("phi-4", "h100-sxm")])
def test_run_new_families(model: str, system: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", model, "--on", system, "--input", "128", "--output", "16", "--json"]
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["model"] == model
    assert d["ttft_s"] > 0 and d["tpot_s"] > 0 and d["throughput_tokens_per_s"] > 0


def test_qwen3_moe_decode_reads_far_fewer_weights_than_it_holds(
        capsys: pytest.CaptureFixture[str]) -> None:
    """30.5 B parameters, 3.3 B active: a batch-1 decode step should cost like a ~3 B model, far
    below a dense model of the same size."""
    assert main(["inspect", "qwen3-30b-a3b", "--input", "16", "--kv", "16", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["parameters"] == pytest.approx(30.5e9, rel=0.005)
    assert card["active_parameters"] < 0.12 * card["parameters"]
    assert card["experts"] == 128 and card["experts_per_token"] == 8
