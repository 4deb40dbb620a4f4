"""The model families added for issue 15 run end to end from the command line."""

from __future__ import annotations

import json

import pytest

from tegel import __version__
from tegel.cli import main
from tegel.workload import load_model_config, shipped_models


@pytest.mark.parametrize(("model", "system"), [("qwen3-30b-a3b", "h100-sxm"),
                                               ("qwen3-8b", "dgx-h100"),
                                               ("phi-4", "h100-sxm"),
                                               ("gemma-2-2b-it", "h100-sxm"),
                                               ("gemma-3-1b-it", "dgx-h100")])
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


@pytest.mark.parametrize(("given", "shipped"), [("Qwen3-30B-A3B", "qwen3-30b-a3b"),
                                                ("Qwen/Qwen3-8B", "qwen3-8b"),
                                                ("meta-llama/Llama-3.1-8B", "llama-3.1-8b"),
                                                ("PHI-4", "phi-4")])
def test_model_names_ignore_case_and_organisation(given: str, shipped: str) -> None:
    assert load_model_config(given) == load_model_config(shipped)


@pytest.mark.parametrize(("given", "suggested"), [("qwen3-8", "'qwen3-8b'"),
                                                  ("lama-3.1-70b", "'llama-3.1-70b'"),
                                                  ("Mixtral-8x7", "'mixtral-8x7b'")])
def test_a_misspelt_model_gets_a_suggestion(given: str, suggested: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", given, "--on", "h100-sxm"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tegel: error: ") and err.count("\n") == 1
    assert "did you mean" in err and suggested in err.split("did you mean")[1].split("?")[0]


def test_a_name_far_from_every_model_gets_no_suggestion(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "zzzz"]) == 2
    err = capsys.readouterr().err
    assert "did you mean" not in err and "tegel inspect --list" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"tegel {__version__}"


def test_inspect_list_json_gives_families_and_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--list", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(rows) == shipped_models()
    assert rows["qwen3-30b-a3b"]["family"] == "qwen3_moe"
    assert rows["qwen3-30b-a3b"]["experts"] == 128
    assert rows["qwen3-30b-a3b"]["active_parameters"] < rows["qwen3-30b-a3b"]["parameters"] / 8
    assert rows["phi-4"]["family"] == "phi3"
    assert rows["llama-3.1-8b"]["active_parameters"] == rows["llama-3.1-8b"]["parameters"]
