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
        (["gpt2", "--kv", "2000"], "--kv 2000: a decode step at KV length 2000 needs 2001 "
                                   "positions, which exceeds gpt2's max_position_embeddings 1024"),
        (["gpt2", "--kv", "1024"], "exceeds gpt2's max_position_embeddings 1024"),
        (["gpt2", "--input", "1025"], "--input 1025: a prefill of 1025 tokens exceeds gpt2's "
                                      "max_position_embeddings 1024"),
        (["gpt2", "--kv", "-1"], "--kv: expected a non-negative integer"),
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
    rows = capsys.readouterr().out.splitlines()[2:]  # after the header and its rule
    assert [r.split()[0] for r in rows] == shipped_models()
    assert [r.split()[1] for r in rows if r.startswith("qwen3-30b-a3b")] == ["qwen3_moe"]
    assert main(["inspect"]) == 2
    assert "give a model" in capsys.readouterr().err


def test_default_lengths_are_clipped_to_the_model_and_say_so(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "gpt2"]) == 0
    out = capsys.readouterr().out
    assert "note: defaults clipped to gpt2's 1024 positions: --input 1024, --kv 1023" in out
    card = _json(capsys, "gpt2")
    assert (card["prefill"]["new_tokens"], card["decode"]["kv_length"]) == (1024, 1023)
    assert card["notes"] == ["defaults clipped to gpt2's 1024 positions: --input 1024, --kv 1023"]
    # one given value is kept; only the default one is clipped
    card = _json(capsys, "gpt2", "--input", "100")
    assert (card["prefill"]["new_tokens"], card["decode"]["kv_length"]) == (100, 1023)
    assert card["notes"] == ["defaults clipped to gpt2's 1024 positions: --kv 1023"]
    # the largest lengths that fit are accepted
    card = _json(capsys, "gpt2", "--input", "1024", "--kv", "1023")
    assert card["notes"] == []


def test_defaults_that_fit_are_not_clipped(capsys: pytest.CaptureFixture[str]) -> None:
    card = _json(capsys, "llama-3.1-8b")
    assert (card["prefill"]["new_tokens"], card["decode"]["kv_length"]) == (2048, 4096)
    assert card["notes"] == []
    assert main(["inspect", "llama-3.1-8b"]) == 0
    assert "note:" not in capsys.readouterr().out


def test_long_context_decode_is_memory_bound(capsys: pytest.CaptureFixture[str]) -> None:
    """Llama-3.1-8B, batch 64, KV 128k: the KV cache (1.10 TB) dwarfs the weights (15 GB), so a
    decode step does about 5 FLOPs per byte (worked by hand in tests/workload/test_summary.py)."""
    card = _json(capsys, "llama-3.1-8b", "--batch", "64", "--kv", "131071", "--input", "128")
    decode = card["decode"]
    assert decode["arithmetic_intensity_flops_per_byte"] == pytest.approx(4.85, abs=0.01)
    assert decode["graph_bytes_per_token"] == pytest.approx(1.1145e12 / 64, rel=1e-3)
    assert main(["inspect", "llama-3.1-8b", "--batch", "64", "--kv", "131071"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("decode"))
    assert row.split()[-3:] == ["17.4", "GB", "4.85"]
