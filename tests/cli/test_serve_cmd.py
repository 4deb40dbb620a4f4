"""`tegel serve` and `tegel curve` from the command line (issue 12, items 5 and 10)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tegel.cli import main


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_serve_json_has_the_documented_keys(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    out = tmp_path / "requests.csv"
    d = _json(capsys, ["serve", "llama-3.1-8b", "--on", "h100-sxm", "--rate", "20", "--requests",
                       "200", "--scheduler", "chunked", "--slo-ttft", "1", "--slo-tpot", "0.1",
                       "--requests-out", str(out), "--json"])
    assert isinstance(d, dict)
    for key in ("ttft_s", "tpot_s", "e2e_s"):
        assert set(d[key]) >= {"p50", "p90", "p99"}
        assert d[key]["p50"] <= d[key]["p90"] <= d[key]["p99"]
    for key in ("throughput_tokens_per_s", "requests_per_s", "goodput_requests_per_s",
                "energy_j_per_token", "preemptions", "completed", "dropped"):
        assert key in d
    assert d["completed"] == 200 and d["dropped"] == 0
    assert d["goodput_requests_per_s"] <= d["requests_per_s"]
    lines = out.read_text().splitlines()
    assert len(lines) == 201 and lines[0].startswith("id,arrival_s,input_tokens")


def test_serve_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "llama-3.1-8b", "--on", "h100-sxm", "--concurrency", "8",
                 "--requests", "40", "--input", "256", "--output", "32"]) == 0
    text = capsys.readouterr().out
    assert "closed loop at concurrency 8" in text and "TTFT" in text and "goodput" in text


def test_serve_replays_a_trace(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    trace = tmp_path / "azure.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                     "2023-11-16 18:15:46.6805900,374,44\n"
                     "2023-11-16 18:15:50.9951690,396,109\n"
                     "2023-11-16 18:15:51.7618020,879,34\n")
    d = _json(capsys, ["serve", "llama-3.1-8b", "--on", "h100-sxm", "--trace", str(trace),
                       "--json"])
    assert isinstance(d, dict) and d["completed"] == 3


def test_a_malformed_trace_names_its_line(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text("arrival_s,input_tokens,output_tokens\n0,10,5\n1.5,abc,5\n")
    assert main(["serve", "llama-3.1-8b", "--on", "h100-sxm", "--trace", str(trace)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "line 3" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["--rate", "5", "--concurrency", "4"],
    ["--input", "100", "--lengths", "fixed:in=1,out=1"],
    ["--rate", "-1"],
    ["--scheduler", "disaggregated"],  # one H100: one replica
    ["--slo-ttft", "0"],
])
def test_bad_input_is_one_clear_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(["serve", "llama-3.1-8b", "--on", "h100-sxm", "--requests", "10", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tegel: error:") and "Traceback" not in err


def test_curve_json_per_system(capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(capsys, ["curve", "llama-3.1-8b", "--on", "h100-sxm,craftwerk-station",
                       "--concurrency", "1,8,64", "--input", "512", "--output", "64", "--json"])
    assert isinstance(d, list) and [c["system"] for c in d] == ["h100-sxm", "craftwerk-station"]
    for c in d:
        points = c["points"]
        assert [p["concurrency"] for p in points] == [1, 8, 64]
        # more users share the machine: the system gets more tokens/s, each user fewer
        assert points[-1]["throughput_tokens_per_s"] > points[0]["throughput_tokens_per_s"]
        assert points[-1]["tokens_per_s_per_user"] < points[0]["tokens_per_s_per_user"]


def test_mlperf_offline_scenario_uses_the_benchmark_lengths(
        capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(capsys, ["serve", "llama-3.1-8b", "--on", "h100-sxm", "--scenario",
                       "mlperf-offline", "--requests", "100", "--json"])
    assert isinstance(d, dict)
    assert d["mlperf"]["benchmark"] == "llama3.1-8b" and d["completed"] == 100
    assert d["workload"]["lengths"].startswith("lognormal:")


def test_mlperf_gptj_searches_its_benchmarks_beams(capsys: pytest.CaptureFixture[str]) -> None:
    """MLPerf GPT-J decodes 4 beams a request (mlperf_datasets.yaml `beams`): the scenario runs
    them, at a fraction of greedy decoding's throughput, and says so; its Server limit is the
    20 s end-to-end latency."""
    argv = ["serve", "gpt-j-6b", "--on", "h100-sxm", "--precision", "fp8", "--requests", "200"]
    d = _json(capsys, [*argv, "--scenario", "mlperf-offline", "--json"])
    assert isinstance(d, dict) and d["mlperf"]["beams"] == 4 and d["completed"] == 200
    greedy = _json(capsys, [*argv, "--lengths", d["workload"]["lengths"], "--json"])
    assert isinstance(greedy, dict)
    assert d["throughput_tokens_per_s"] < 0.8 * greedy["throughput_tokens_per_s"]
    assert main([*argv[:-1], "3000", "--scenario", "mlperf-server"]) == 0
    out = capsys.readouterr().out
    assert "beam search, 4 beams a request" in out and "(end-to-end 20 s)" in out


def test_an_mlperf_rate_search_probes_loadgens_minimum_run(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Without --requests each rate is probed with the arrivals of LoadGen's 600 s minimum run,
    so an overload shows in the p99 as it does in a measured run; --requests sets the count."""
    d = _json(capsys, ["serve", "llama-3.1-8b", "--on", "h100-sxm", "--scenario",
                       "mlperf-interactive", "--json"])
    assert isinstance(d, dict)
    m = d["mlperf"]
    assert m["min_duration_s"] == 600
    rate = m["rate_per_s"]
    assert d["completed"] == max(5000, math.ceil(rate * 600))
    # the search's bracket: above the offline rate the limits break
    assert all(not t["within_limits"] for t in m["trail"] if t["rate_per_s"] > 1.1 * rate)
    short = _json(capsys, ["serve", "llama-3.1-8b", "--on", "h100-sxm", "--scenario",
                           "mlperf-interactive", "--requests", "600", "--json"])
    assert isinstance(short, dict)
    assert short["mlperf"]["min_duration_s"] is None and short["completed"] == 600
    assert main(["serve", "llama-3.1-8b", "--on", "h100-sxm", "--scenario", "mlperf-interactive",
                 "--requests", "600"]) == 0
    assert "each rate probed with --requests arrivals" in capsys.readouterr().out


def test_an_impossible_slo_says_which_bound_binds(capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(capsys, ["serve", "llama-3.1-8b", "--on", "h100-sxm", "--rate", "1", "--requests",
                       "20", "--slo-tpot", "0.0001", "--json"])
    assert isinstance(d, dict)
    assert d["goodput_requests_per_s"] == 0
    (line,) = d["slo"]["binding"]
    assert "TPOT limit" in line and "binds at any load" in line
    ok = _json(capsys, ["serve", "llama-3.1-8b", "--on", "h100-sxm", "--rate", "1", "--requests",
                        "20", "--slo-tpot", "0.1", "--json"])
    assert isinstance(ok, dict) and ok["slo"]["binding"] == []


def test_a_trace_is_read_whole_unless_requests_limit_it(capsys: pytest.CaptureFixture[str],
                                                        tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,input_tokens,output_tokens\n"
                     + "".join(f"{i * 0.01},64,4\n" for i in range(1200)))
    whole = _json(capsys, ["serve", "llama-3.1-8b", "--on", "h100-sxm", "--trace", str(trace),
                           "--json"])
    assert isinstance(whole, dict) and whole["completed"] == 1200
    part = _json(capsys, ["serve", "llama-3.1-8b", "--on", "h100-sxm", "--trace", str(trace),
                          "--requests", "100", "--json"])
    assert isinstance(part, dict) and part["completed"] == 100
    assert "100" in part["workload"]["description"]


def test_curve_marks_the_point_at_the_slo(capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(capsys, ["curve", "llama-3.1-8b", "--on", "h100-sxm", "--concurrency", "1,8,64",
                       "--input", "512", "--output", "64", "--slo-tpot", "0.02", "--json"])
    assert isinstance(d, list)
    (c,) = d
    op = c["operating_point"]
    meeting = [p for p in c["points"] if 1 / p["tokens_per_s_per_user"] <= 0.02]
    assert op["concurrency"] == max(meeting, key=lambda p: p["throughput_tokens_per_s"])[
        "concurrency"]
    tight = _json(capsys, ["curve", "llama-3.1-8b", "--on", "h100-sxm", "--concurrency", "1,8",
                           "--input", "512", "--output", "64", "--slo-tpot", "0.0001", "--json"])
    assert isinstance(tight, list) and "per-user speed binds" in tight[0]["slo_error"]
