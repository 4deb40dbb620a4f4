"""`tegel run` and `tegel compare`: the JSON contract, the tables, and one-line errors."""

from __future__ import annotations

import json
import math

import pytest

from tegel.cli import main

CONTRACT_KEYS = ("model", "system", "batch", "ttft_s", "tpot_s", "throughput_tokens_per_s",
                 "tokens_per_s_per_user", "energy_j_per_token", "power_w", "memory_bytes",
                 "energy_breakdown_j_per_token")
CATEGORIES = {"compute", "onchip_sram", "noc", "offchip_memory", "chip_to_chip", "static"}
SHORT = ("--input", "128", "--output", "16")


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a failing command; return its one-line message after checking the form of the failure."""
    assert main(list(argv)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("tegel: error: ")
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    return err.removeprefix("tegel: error: ").strip()


def test_run_json_has_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(capsys, "run", "llama-3.1-8b", "--on", "h100-sxm", "--batch", "8", *SHORT)
    assert set(CONTRACT_KEYS) <= set(d)
    assert (d["model"], d["system"], d["batch"]) == ("llama-3.1-8b", "h100-sxm", 8)
    for key in ("ttft_s", "tpot_s", "throughput_tokens_per_s", "tokens_per_s_per_user",
                "energy_j_per_token", "power_w"):
        assert isinstance(d[key], float) and d[key] > 0, key
    breakdown = d["energy_breakdown_j_per_token"]
    assert set(breakdown) == CATEGORIES
    assert math.isclose(sum(breakdown.values()), d["energy_j_per_token"], rel_tol=1e-9)
    assert d["tokens_per_s_per_user"] == pytest.approx(1 / d["tpot_s"])
    assert d["throughput_tokens_per_s"] == pytest.approx(8 * 16 / d["e2e_latency_s"])
    mem = d["memory_bytes"]
    assert mem["total"] == pytest.approx(mem["weights"] + mem["kv_cache"] + mem["activations"])
    assert mem["total"] <= mem["capacity"]


def test_run_json_for_a_dataflow_system(capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(capsys, "run", "qwen2.5-7b", "--on", "ref-dataflow", *SHORT)
    assert set(CONTRACT_KEYS) <= set(d)
    assert math.isclose(sum(d["energy_breakdown_j_per_token"].values()), d["energy_j_per_token"],
                        rel_tol=1e-9)
    assert any("weights" in note for note in d["plan_notes"])


def test_batch_auto_fills_memory(capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(capsys, "run", "llama-3.1-8b", "--on", "dgx-h100", "--batch", "auto", *SHORT)
    assert d["batch"] > 1
    mem = d["memory_bytes"]
    assert mem["total"] <= mem["capacity"]
    assert d["batch"] == d["parallelism"]["batch_per_replica"] * d["parallelism"]["dp"]


def test_fp8_halves_weight_bytes_and_weights_flag_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    fixed = ("run", "llama-3.1-8b", "--on", "h100-sxm", "--tp", "1", "--pp", "1", *SHORT)
    bf16 = _json(capsys, *fixed, "--precision", "bf16")
    fp8 = _json(capsys, *fixed, "--precision", "fp8")
    fp4 = _json(capsys, *fixed, "--precision", "fp8", "--weights", "fp4")
    assert bf16["precision"]["weights"] == "bf16"
    assert fp8["memory_bytes"]["weights"] == pytest.approx(bf16["memory_bytes"]["weights"] / 2, rel=1e-3)
    assert fp8["memory_bytes"]["kv_cache"] == pytest.approx(bf16["memory_bytes"]["kv_cache"] / 2)
    # --weights replaces only the weight format: 4.25 bits per weight (e2m1 with block scales)
    assert fp4["precision"] == {"weights": "fp4_e2m1", "activations": fp8["precision"]["activations"],
                                "kv_cache": fp8["precision"]["kv_cache"]}
    assert fp4["memory_bytes"]["weights"] == pytest.approx(bf16["memory_bytes"]["weights"] * 4.25 / 16,
                                                           rel=1e-3)
    assert fp4["memory_bytes"]["kv_cache"] == fp8["memory_bytes"]["kv_cache"]


def test_run_prints_metrics_breakdown_and_memory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "llama-3.1-8b", "--on", "h100-sxm", *SHORT]) == 0
    out = capsys.readouterr().out
    for label in ("TTFT", "TPOT", "throughput (system)", "energy per token", "memory per chip",
                  "offchip_memory", "static"):
        assert label in out, label


def test_ops_prints_a_per_step_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "llama-3.1-8b", "--on", "h100-sxm", "--ops", *SHORT]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("phase"))
    assert header.split() == ["phase", "step", "kind", "x", "time", "energy", "bound"]
    body = out[out.index(header):].splitlines()[2:]
    assert any(line.startswith("prefill") for line in body)
    assert any(line.startswith("decode") for line in body)
    assert any("layers.0.attn" in line for line in body)
    d = _json(capsys, "run", "llama-3.1-8b", "--on", "h100-sxm", "--ops", *SHORT)
    assert len(d["ops"]) == sum(1 for line in body if line.startswith(("prefill", "decode")))


def test_compare_prints_ratios_against_the_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    systems = ["dgx-h100", "hgx-b200", "craftwerk-station"]
    assert main(["compare", "llama-3.1-70b", "--on", ",".join(systems), "--baseline", "dgx-h100"]) == 0
    out = capsys.readouterr().out
    assert "against dgx-h100" in out
    header = next(line for line in out.splitlines() if line.startswith("metric"))
    assert header.split() == ["metric", *systems]
    tpot = next(line for line in out.splitlines() if line.startswith("TPOT"))
    assert tpot.count("x)") == 2  # a ratio for each system but the baseline


def test_compare_json_ratios_are_one_for_the_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    systems = ["dgx-h100", "hgx-b200", "craftwerk-station"]
    d = _json(capsys, "compare", "llama-3.1-70b", "--on", ",".join(systems), "--baseline", "hgx-b200")
    assert d["baseline"] == "hgx-b200"
    assert list(d["results"]) == systems
    for name in systems:
        assert set(CONTRACT_KEYS) <= set(d["results"][name])
        assert d["results"][name]["system"] == name
    assert d["ratios"]["hgx-b200"] and all(v == 1.0 for v in d["ratios"]["hgx-b200"].values())
    base = d["results"]["hgx-b200"]
    for name in systems:
        for key, ratio in d["ratios"][name].items():
            assert ratio == pytest.approx(d["results"][name][key] / base[key]), (name, key)


def test_compare_baseline_defaults_to_the_first(capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(capsys, "compare", "llama-3.1-8b", "--on", "h100-sxm,ref-dataflow", *SHORT)
    assert d["baseline"] == "h100-sxm"
    assert all(v == 1.0 for v in d["ratios"]["h100-sxm"].values())


@pytest.mark.parametrize(("argv", "expected"), [
    (["run", "llama-3.1-8b", "--on", "no-such-system"], "no-such-system"),
    (["run", "no-such-model", "--on", "h100-sxm"], "no-such-model"),
    (["run", "llama-3.1-8b", "--on", "h100-sxm", "--batch", "lots"], "--batch"),
    (["run", "llama-3.1-8b", "--on", "h100-sxm", "--batch", "0"], "batch"),
    (["run", "llama-3.1-8b", "--on", "h100-sxm", "--batch", "-3"], "batch"),
    (["run", "llama-3.1-8b", "--on", "h100-sxm", "--tp", "0"], "--tp"),
    (["run", "llama-3.1-8b", "--on", "h100-sxm", "--precision", "fp3"], "fp3"),
    (["compare", "llama-3.1-8b", "--on", "h100-sxm,dgx-h100", "--baseline", "hgx-b200"], "hgx-b200"),
    (["compare", "llama-3.1-8b", "--on", "h100-sxm,nope"], "nope"),
])
def test_errors_are_one_line_with_exit_2(argv: list[str], expected: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert expected in _error(capsys, *argv)


def test_a_model_that_does_not_fit_says_by_how_much(capsys: pytest.CaptureFixture[str]) -> None:
    message = _error(capsys, "run", "llama-3.1-405b", "--on", "h100-sxm")
    assert "does not fit" in message and "short by" in message
    assert "llama-3.1-405b" in message and "h100-sxm" in message
    assert "GB" in message.split("short by", 1)[1]  # an amount with its unit
    _error(capsys, "run", "llama-3.1-405b", "--on", "h100-sxm", "--json")  # no JSON, the same error


def test_default_prompt_is_clipped_to_the_models_positions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "gpt2", "--on", "h100-sxm", "--json"]) == 0
    captured = capsys.readouterr()
    d = json.loads(captured.out)
    assert (d["input_tokens"], d["output_tokens"]) == (768, 256)  # 1024 positions in all
    assert "clipped to 768" in captured.err
    assert main(["run", "gpt2", "--on", "h100-sxm", "--input", "1000"]) == 2
    err = capsys.readouterr().err
    assert "1256 positions" in err and "1024" in err and err[-1] == "\n" and err.count("\n") == 1


def test_run_prints_what_the_energy_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "llama-3.1-8b", "--on", "craftwerk-station", "--tp", "1", "--pp", "1"]) == 0
    out = capsys.readouterr().out
    assert "whole system: 1 chip(s) serving, 7 idle" in out


def test_compare_at_a_service_level_places_every_system_at_its_operating_point(
        capsys: pytest.CaptureFixture[str]) -> None:
    systems = ["h100-sxm", "dgx-h100"]
    argv = ("compare", "llama-3.1-8b", "--on", ",".join(systems), *SHORT,
            "--min-tokens-per-s-per-user", "60", "--max-ttft", "0.5")
    d = _json(capsys, *argv)
    assert d["mode"] == "operating point"
    level = d["service_level"]
    assert level["min_tokens_per_s_per_user"] == 60 and level["max_ttft_s"] == 0.5
    assert level["ttft_limit"] == "given (--max-ttft)" and level["scheduler"]["kind"] == "chunked"
    for name in systems:
        r = d["results"][name]
        assert r["tokens_per_s_per_user"] >= 60 and r["ttft_p99_s"] <= 0.5
        assert r["batch"] == r["concurrency"] >= 1 and r["search"]
    assert all(v == 1.0 for v in d["ratios"]["h100-sxm"].values())
    assert main(list(argv)) == 0
    out = capsys.readouterr().out
    assert "each system at its operating point (highest throughput) at the same service level: " \
           ">= 60 tokens/s per user (1 / median TPOT), p99 TTFT <= 0.5 s (given (--max-ttft))" in out
    assert next(line for line in out.splitlines() if line.startswith("p99 TTFT")).count("x)") == 1


def test_compare_says_when_it_runs_one_static_batch(capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(capsys, "compare", "llama-3.1-8b", "--on", "h100-sxm,dgx-h100", *SHORT)
    assert d["mode"] == "static batch"
    assert main(["compare", "llama-3.1-8b", "--on", "h100-sxm,dgx-h100", *SHORT]) == 0
    assert "static batch 1 (tegel run) on every system; no service level" in capsys.readouterr().out


def test_slo_tpot_is_the_per_user_speed_and_the_default_ttft_is_stated(
        capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(capsys, "compare", "llama-3.1-8b", "--on", "h100-sxm", *SHORT, "--slo-tpot", "0.02")
    level = d["service_level"]
    assert level["min_tokens_per_s_per_user"] == pytest.approx(50.0)
    assert level["max_ttft_s"] == 2.0 and "default for 1,024-token prompts" in level["ttft_limit"]
    assert d["results"]["h100-sxm"]["tpot_p50_s"] <= 0.02


@pytest.mark.parametrize(("extra", "expected"), [
    (["--slo-tpot", "0.02", "--min-tokens-per-s-per-user", "50"], "give one"),
    (["--max-ttft", "1", "--batch", "8"], "--batch: a service level chooses"),
    (["--scheduler", "continuous"], "--scheduler: needs a service level"),
    (["--slo-tpot", "0"], "--slo-tpot: expected a positive"),
    (["--min-tokens-per-s-per-user", "1e6"], "the per-user speed binds"),
])
def test_service_level_errors(extra: list[str], expected: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    assert expected in _error(capsys, "compare", "llama-3.1-8b", "--on", "h100-sxm", *SHORT, *extra)


def test_beam_search_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    """--beams B decodes B hypotheses per request that share its prompt's cache: the same batch
    runs B times the sequences per decode step (slower steps, more KV), and says so."""
    argv = ("run", "gpt-j-6b", "--on", "h100-sxm", "--batch", "16", "--precision", "fp8", *SHORT)
    greedy = _json(capsys, *argv)
    beams = _json(capsys, *argv, "--beams", "4")
    assert (greedy["beams"], beams["beams"]) == (1, 4)
    assert beams["tpot_s"] > greedy["tpot_s"]
    assert beams["memory_bytes"]["kv_cache"] > greedy["memory_bytes"]["kv_cache"]
    assert main([*argv, "--beams", "4"]) == 0
    assert "16 out x 4 beams" in capsys.readouterr().out
    assert "--beams" in _error(capsys, *argv, "--beams", "0")
    assert "drop --beams" in _error(capsys, "serve", "gpt-j-6b", "--on", "h100-sxm",
                                    "--scenario", "mlperf-offline", "--beams", "4")
