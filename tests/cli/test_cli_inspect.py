"""`tegel inspect`: every shipped config, a config.json path, JSON keys, and clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tegel.cli import main
from tegel.workload import shipped_models


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["inspect", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", shipped_models())
def test_inspect_every_shipped_model(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    card = _json(capsys, name, "--input", "128", "--kv", "256")
    assert card["parameters"] >= card["active_parameters"] > 0
    assert card["kv_cache_bytes_per_token"] > 0
    # a decode step at KV length 0 does about 2 FLOPs per active non-embedding parameter
    assert 1.5 * card["active_parameters"] * 0.5 < card["decode_flops_per_token"]
    assert card["decode_flops_per_token"] < 2.2 * card["active_parameters"]


def test_inspect_llama_3_1_70b_figures(capsys: pytest.CaptureFixture[str]) -> None:
    card = _json(capsys, "llama-3.1-70b")
    assert card["parameters"] == pytest.approx(70.55e9, rel=0.005)
    assert card["kv_cache_bytes_per_token"] == 327680
    assert card["weight_bytes"]["bf16"] == pytest.approx(2 * card["parameters"])
    # 2 FLOPs per parameter, except the embedding table, which is looked up, not multiplied
    embedding = card["vocab_size"] * card["hidden_size"]
    assert card["decode_flops_per_token"] == pytest.approx(2 * (card["parameters"] - embedding),
                                                           rel=0.002)


def test_inspect_a_config_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = Path(__file__).parents[2] / "src/tegel/workload/configs/qwen2.5-7b.json"
    raw = json.loads(src.read_text())
    raw["num_hidden_layers"] = 4
    (tmp_path / "config.json").write_text(json.dumps(raw))
    card = _json(capsys, str(tmp_path))
    assert card["layers"] == 4
    assert card["parameters"] < 7.6e9


def test_inspect_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "mixtral-8x7b"]) == 0
    out = capsys.readouterr().out
    assert "46.7 G parameters, 12.9 G active" in out
    assert "decode" in out and "prefill" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no-such-model"], "not a shipped model"),
        (["gpt2", "--precision", "fp9"], "--precision: unknown dtype 'fp9'"),
        (["gpt2", "--input", "0"], "--input: expected a positive integer"),
        (["gpt2", "--kv", "2000"], "exceed max_position_embeddings"),
    ],
)
def test_inspect_errors_are_one_line(argv: list[str], message: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tegel: error: ") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_inspect_list_names_the_shipped_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--list"]) == 0
    assert capsys.readouterr().out.split() == shipped_models()
    assert main(["inspect"]) == 2
    assert "give a model" in capsys.readouterr().err
