"""Workloads: length samplers and their SPEC strings, arrival processes, MLPerf scenarios, traces."""

from __future__ import annotations

import json
import math
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import yaml

from tegel.errors import TegelError
from tegel.serving.traces import read_trace
from tegel.serving.workload import (
    FixedLengths,
    LognormalLengths,
    UniformLengths,
    make_workload,
    mlperf_lengths,
    mlperf_scenario,
    parse_lengths,
)
from tegel.workload.model_config import shipped_models

# --- lengths ---------------------------------------------------------------------------------


def test_specs_parse_to_samplers_and_round_trip() -> None:
    assert parse_lengths("fixed:in=1024,out=256") == FixedLengths(1024, 256)
    assert parse_lengths(" uniform: in=128-2048 , out=64 ") == UniformLengths(128, 2048, 64, 64)
    log = parse_lengths("lognormal:in=1024,out=256,sigma=0.6,sigma_out=0.3,max_in=4096")
    assert log == LognormalLengths(1024, 256, 0.6, 0.3, input_max_tokens=4096)
    for spec in ("fixed:in=7,out=1", "uniform:in=1-9,out=3-4",
                 "lognormal:in=500,out=80.5,sigma=0.4,min_in=10,max_in=900,min_out=2,max_out=99",
                 "mlperf:llama2-70b"):
        lengths = parse_lengths(spec)
        assert parse_lengths(lengths.spec) == lengths


@pytest.mark.parametrize("spec, says", [
    ("gauss:in=1,out=1", "KIND one of fixed, uniform, lognormal, mlperf"),
    ("fixed:in=1024", "missing field(s) out"),
    ("fixed:in=abc,out=1", "field in: expected a whole number >= 1, got 'abc'"),
    ("fixed:in=0,out=1", "in: expected whole numbers with 1 <= min <= max, got 0"),
    ("fixed:in=1,out=2,in=3", "field 'in' given twice"),
    ("fixed:in=1,out=2,sigma=1", "unknown field 'sigma' for fixed; expected in, out"),
    ("uniform:in=2048-128,out=1", "in: expected whole numbers with 1 <= min <= max, got 2048-128"),
    ("uniform:in=1-x,out=1", "field in: expected MIN-MAX"),
    ("lognormal:in=100,out=10", "missing field sigma"),
    ("lognormal:in=100,out=10,sigma=-1", "field sigma_in: expected a finite number >= 0"),
    ("lognormal:in=100,out=10,sigma=0.5,max_in=80", "in: the mean (100) must lie strictly inside"),
    ("lognormal:in=100,out=10,sigma=0.5,min_out=10", "out: the mean (10) must lie strictly"),
    ("fixed:in", "field 'in': expected NAME=VALUE"),
    ("mlperf:llama-3.1-70b", "'llama-3.1-70b' has no MLPerf Inference LLM benchmark"),
])
def test_bad_specs_name_the_spec_and_the_field(spec: str, says: str) -> None:
    with pytest.raises(TegelError) as err:
        parse_lengths(spec)
    assert str(err.value).startswith(f"lengths {spec!r}: ")
    assert says in str(err.value)


def test_uniform_lengths_stay_in_bounds_and_reach_both_ends() -> None:
    w = make_workload(20_000, "uniform:in=128-130,out=1-4", seed=3)
    assert set(np.unique(w.input_tokens)) == {128, 129, 130}
    assert set(np.unique(w.output_tokens)) == {1, 2, 3, 4}


def test_lognormal_lengths_have_the_requested_mean_after_clipping() -> None:
    spec = "lognormal:in=1024,out=256,sigma=1.0,min_in=200,max_in=3000,max_out=400"
    w = make_workload(400_000, spec, seed=5)
    assert w.input_tokens.min() == 200 and w.input_tokens.max() == 3000
    assert w.output_tokens.min() >= 1 and w.output_tokens.max() == 400
    # the clip moves a lot of mass (sigma 1), yet the mean is what was asked
    assert w.input_tokens.mean() == pytest.approx(1024, rel=0.01)
    assert w.output_tokens.mean() == pytest.approx(256, rel=0.01)
    spread = np.log(make_workload(400_000, "lognormal:in=1000,out=50,sigma=0.5", seed=1)
                    .input_tokens).std()
    assert spread == pytest.approx(0.5, rel=0.02)


def test_sigma_zero_is_fixed() -> None:
    w = make_workload(10, "lognormal:in=300,out=128,sigma_in=0.5,sigma_out=0,max_out=128")
    assert np.all(w.output_tokens == 128)


# --- arrivals --------------------------------------------------------------------------------


def test_a_seed_gives_identical_workloads() -> None:
    a = make_workload(5000, "lognormal:in=500,out=100,sigma=0.7", rate_per_s=8, cv=2, seed=11)
    b = make_workload(5000, "lognormal:in=500,out=100,sigma=0.7", rate_per_s=8, cv=2, seed=11)
    c = make_workload(5000, "lognormal:in=500,out=100,sigma=0.7", rate_per_s=8, cv=2, seed=12)
    for name in ("arrival_s", "input_tokens", "output_tokens"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
        assert not np.array_equal(getattr(a, name), getattr(c, name))
    assert a.spec == b.spec and a.description == b.description


def test_the_same_seed_gives_the_same_requests_at_every_rate() -> None:
    slow = make_workload(1000, "uniform:in=1-999,out=1-99", rate_per_s=2, seed=4)
    fast = make_workload(1000, "uniform:in=1-999,out=1-99", rate_per_s=8, seed=4)
    assert np.array_equal(slow.input_tokens, fast.input_tokens)
    assert np.allclose(slow.arrival_s, 4 * fast.arrival_s)


def test_poisson_gaps_average_one_over_the_rate() -> None:
    n, rate = 200_000, 20.0
    w = make_workload(n, "fixed:in=8,out=8", rate_per_s=rate, seed=0)
    gaps = np.diff(w.arrival_s)
    assert w.arrival_s[0] == 0 and np.all(gaps >= 0)
    standard_error = (1 / rate) / math.sqrt(n)
    assert abs(gaps.mean() - 1 / rate) < 4 * standard_error
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.02)  # exponential: cv 1
    assert w.spec["arrivals"] == "poisson" and w.concurrency is None


@pytest.mark.parametrize("cv", [0.5, 2.5])
def test_gamma_gaps_have_the_requested_cv(cv: float) -> None:
    w = make_workload(200_000, "fixed:in=8,out=8", rate_per_s=5, cv=cv, seed=2)
    gaps = np.diff(w.arrival_s)
    assert gaps.mean() == pytest.approx(0.2, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.03)
    assert w.spec == {"requests": 200_000, "lengths": "fixed:in=8,out=8", "seed": 2,
                      "arrivals": "gamma", "rate_per_s": 5, "cv": cv}


def test_offline_and_closed_loop() -> None:
    offline = make_workload(50, FixedLengths(100, 10))
    assert np.all(offline.arrival_s == 0) and offline.concurrency is None
    closed = make_workload(50, FixedLengths(100, 10), concurrency=8)
    assert np.all(closed.arrival_s == 0) and closed.concurrency == 8
    assert closed.spec["arrivals"] == "closed"


@pytest.mark.parametrize("kwargs, says", [
    ({"rate_per_s": 1.0, "concurrency": 2}, "not both"),
    ({"rate_per_s": 0.0}, "rate must be > 0"),
    ({"cv": 2.0}, "needs a rate"),
    ({"rate_per_s": 1.0, "cv": 0.0}, "cv must be a number > 0"),
    ({"concurrency": 0}, "concurrency must be a whole number >= 1"),
])
def test_bad_arrival_options(kwargs: dict[str, float], says: str) -> None:
    with pytest.raises(TegelError, match=says):
        make_workload(10, "fixed:in=1,out=1", **kwargs)  # type: ignore[arg-type]


def test_a_million_requests_generate_quickly() -> None:
    start = time.perf_counter()
    w = make_workload(1_000_000, "lognormal:in=1024,out=256,sigma=0.6,max_in=8192",
                      rate_per_s=50, cv=2, seed=0)
    assert time.perf_counter() - start < 1.0
    assert len(w) == 1_000_000


# --- MLPerf ----------------------------------------------------------------------------------

def _datasets() -> dict[str, dict[str, object]]:
    text = (resources.files("tegel.fidelity") / "data" / "mlperf_datasets.yaml").read_text()
    return yaml.safe_load(text)


def test_mlperf_limits_as_the_rules_state_them() -> None:
    server = mlperf_scenario("llama-2-70b", "mlperf-server")
    assert (server.benchmark, server.ttft_p99_s, server.tpot_p99_s) == ("llama2-70b", 2.0, 0.2)
    interactive = mlperf_scenario("llama2-70b", "Interactive")
    assert (interactive.ttft_p99_s, interactive.tpot_p99_s) == (0.45, 0.04)
    assert (mlperf_scenario("llama-3.1-405b", "server").ttft_p99_s,
            mlperf_scenario("llama-3.1-405b", "server").tpot_p99_s) == (6.0, 0.175)
    assert mlperf_scenario("llama-3.1-8b", "interactive").tpot_p99_s == 0.03
    gptj = mlperf_scenario("gpt-j-6b", "server")
    assert (gptj.ttft_p99_s, gptj.tpot_p99_s, gptj.e2e_p99_s, gptj.beams) == (None, None, 20.0, 4)
    offline = mlperf_scenario("mixtral-8x7b", "mlperf-offline")
    assert (offline.ttft_p99_s, offline.tpot_p99_s, offline.e2e_p99_s) == (None, None, None)
    assert any("mlperf.conf" in s.url for s in server.sources)
    assert all(s.url.startswith("https://") for s in server.sources)


def test_every_benchmark_maps_to_a_shipped_model_with_the_data_set_means() -> None:
    datasets = _datasets()
    for model in ("llama-2-70b", "llama-3.1-8b", "llama-3.1-405b", "mixtral-8x7b", "gpt-j-6b"):
        scenario = mlperf_scenario(model, "offline")
        assert scenario.model == model in shipped_models()
        data = datasets[scenario.benchmark]
        assert scenario.samples == data["samples"]
        assert scenario.lengths.input_mean_tokens == data["input_tokens_mean"]
        assert scenario.estimates, "the lengths' shape is an estimate and says so"
        w = scenario.workload(100_000, seed=0)
        assert w.input_tokens.mean() == pytest.approx(data["input_tokens_mean"], rel=0.02)
        if scenario.lengths.output_sigma > 0:
            assert scenario.lengths.output_mean_tokens == data["output_tokens_mean"]
            assert w.output_tokens.mean() == pytest.approx(data["output_tokens_mean"], rel=0.02)
    # a median stated for the data set fixes sigma (sqrt(2 ln(mean/median))); the clip at the
    # maximum raises the median of the draws a little above the stated one
    llama = mlperf_scenario("llama2-70b", "offline")
    assert llama.lengths.input_sigma == pytest.approx(math.sqrt(2 * math.log(222.3 / 152)),
                                                      abs=1e-3)
    assert np.median(llama.workload(100_000, seed=0).input_tokens) == pytest.approx(152, rel=0.05)
    # max_p99: the data set's maximum is the 99th percentile of the unclipped lognormal
    out = llama.lengths
    mu = math.log(out.output_mean_tokens) - out.output_sigma ** 2 / 2
    assert math.exp(mu + 2.3263 * out.output_sigma) == pytest.approx(1024, rel=0.01)


def test_mlperf_lengths_spec_and_workload() -> None:
    assert parse_lengths("mlperf:llama-2-70b") == mlperf_lengths("llama2-70b")
    server = mlperf_scenario("llama2-70b", "server")
    assert parse_lengths(server.lengths_spec) == server.lengths
    w = server.workload(100, rate_per_s=3.0, seed=1)
    assert w.spec["arrivals"] == "poisson"
    with pytest.raises(TegelError, match="needs an arrival rate"):
        server.workload(100)


def test_a_model_without_a_benchmark_lists_the_known_ones() -> None:
    with pytest.raises(TegelError) as err:
        mlperf_scenario("llama-3.1-70b", "server")
    message = str(err.value)
    assert "'llama-3.1-70b' has no MLPerf Inference LLM benchmark" in message
    assert "llama-2-70b (llama2-70b)" in message and "gpt-j-6b (gptj)" in message
    with pytest.raises(TegelError, match="mixtral-8x7b has no interactive scenario; it has "
                                         "offline, server"):
        mlperf_scenario("mixtral-8x7b", "mlperf-interactive")
    with pytest.raises(TegelError, match="expected one of offline, server, interactive"):
        mlperf_scenario("llama-2-70b", "singlestream")


# --- traces ----------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_tegel_csv_keeps_arrival_s_and_sorts_stably(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.csv", "arrival_s,input_tokens,output_tokens,user\n"
                  "0.5,100,10,a\n0.25,200,20,b\n\n0.5,300,30,c\n")
    w = read_trace(path)
    assert w.arrival_s.tolist() == [0.25, 0.5, 0.5]
    assert w.input_tokens.tolist() == [200, 100, 300]  # the tie keeps file order
    assert w.output_tokens.tolist() == [20, 10, 30]
    assert "sorted by arrival" in w.description and w.spec["format"] == "tegel-arrival"
    # many ties, out of order: each arrival time keeps its rows in file order
    rows = "".join(f"{(i * 7) % 3},{i + 1},1\n" for i in range(300))
    many = read_trace(_write(tmp_path, "ties.csv", "arrival_s,input_tokens,output_tokens\n" + rows))
    for t in (0, 1, 2):
        ids = many.input_tokens[many.arrival_s == t]
        assert len(ids) == 100 and np.all(np.diff(ids) > 0)


def test_tegel_timestamps_and_jsonl(tmp_path: Path) -> None:
    csv_path = _write(tmp_path, "ts.csv", "timestamp,input_tokens,output_tokens\n"
                      "1700000000.5,10,1\n1700000002.0,20,2\n")
    assert read_trace(csv_path).arrival_s.tolist() == [0.0, 1.5]
    lines = [{"arrival_s": 1.0, "input_tokens": 5, "output_tokens": 6},
             {"arrival_s": 3.0, "input_tokens": 7, "output_tokens": 8.0}]
    jsonl = _write(tmp_path, "t.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    w = read_trace(jsonl)
    assert w.arrival_s.tolist() == [1.0, 3.0] and w.output_tokens.tolist() == [6, 8]


def test_azure_trace_as_published(tmp_path: Path) -> None:
    path = _write(tmp_path, "AzureLLMInferenceTrace_conv.csv",
                  "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                  "2023-11-16 18:15:46.6805900,374,44\n"
                  "2023-11-16 18:15:50.9951690,396,109\n"
                  "2023-11-16 18:15:46.6805901,879,12\n"
                  "2023-11-17 00:00:00,12,1\n")
    w = read_trace(path)
    assert w.input_tokens.tolist() == [374, 879, 396, 12]
    assert w.arrival_s[0] == 0.0
    assert w.arrival_s[1] == pytest.approx(1e-7, abs=1e-12)  # 100 ns ticks survive
    assert w.arrival_s[2] == pytest.approx(4.314579, abs=1e-9)
    assert w.arrival_s[3] == pytest.approx(86400 - (18 * 3600 + 15 * 60 + 46.68059), abs=1e-6)
    assert w.spec["format"] == "azure"
    zoned = _write(tmp_path, "z.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                   "2024-05-10 00:00:01.5+00:00,10,1\n2024-05-10 01:00:02-01:00,10,1\n")
    assert read_trace(zoned).arrival_s.tolist() == [0.0, 2 * 3600 + 0.5]


def test_mooncake_trace_in_milliseconds(tmp_path: Path) -> None:
    path = _write(tmp_path, "mooncake.jsonl",
                  '{"timestamp": 0, "input_length": 6755, "output_length": 500, '
                  '"hash_ids": [0, 1, 2]}\n'
                  '{"timestamp": 27482, "input_length": 6955, "output_length": 52, '
                  '"hash_ids": [46, 47]}\n'
                  '{"timestamp": 30535, "input_length": 6472, "output_length": 26, "hash_ids": []}\n')
    w = read_trace(path)
    assert w.arrival_s.tolist() == [0.0, 27.482, 30.535]
    assert w.input_tokens.tolist() == [6755, 6955, 6472]
    assert w.output_tokens.tolist() == [500, 52, 26]


def test_window_and_limit_say_what_they_kept(tmp_path: Path) -> None:
    rows = "".join(f"{t},10,5\n" for t in range(10))
    path = _write(tmp_path, "w.csv", "arrival_s,input_tokens,output_tokens\n" + rows)
    w = read_trace(path, start_s=2, end_s=8, limit=3)
    assert w.arrival_s.tolist() == [0.0, 1.0, 2.0]
    assert "kept 3 of 10" in w.description and w.spec["requests_in_file"] == 10
    with pytest.raises(TegelError, match="no request of the 10"):
        read_trace(path, start_s=50)


@pytest.mark.parametrize("name, text, says", [
    ("a.csv", "arrival_s,input_tokens,output_tokens\n0,10,5\n1,ten,5\n",
     "a.csv: line 3: input_tokens: expected a whole number of tokens, got 'ten'"),
    ("a.csv", "arrival_s,input_tokens,output_tokens\n0,10,5\n-1,10,5\n",
     "a.csv: line 3: arrival_s: expected a finite number >= 0, got '-1'"),
    ("a.csv", "arrival_s,input_tokens,output_tokens\n0,10,5\n\n1,10,0\n",
     "a.csv: line 4: output_tokens: expected >= 1 tokens, got 0"),
    ("a.csv", "arrival_s,input_tokens,output_tokens\n0,10.5,5\n",
     "line 2: input_tokens: expected a whole number of tokens, got '10.5'"),
    ("a.csv", "arrival_s,input_tokens,output_tokens\n0,10,5\n1,10\n",
     "a.csv: line 3: expected 3 fields (arrival_s,input_tokens,output_tokens), got 2"),
    ("a.csv", "arrival_s,input_tokens\n0,10\n", "a.csv: line 1: missing column(s) output_tokens"),
    ("a.csv", "when,prompt,answer\n0,10,5\n", "a.csv: line 1: unknown CSV header 'when,prompt,answer'"),
    ("a.csv", "", "a.csv: empty file"),
    ("a.csv", "\n\n", "a.csv: empty file"),
    ("a.csv", "arrival_s,input_tokens,output_tokens\n", "a.csv: no requests"),
    ("az.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,10,5\n"
     "2023-11-16 25:00:00,10,5\n", "az.csv: line 3: timestamp: not a valid date-time"),
    ("az.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,10,5\n",
     "az.csv: line 2: timestamp: expected a date-time such as 2023-11-16"),
    ("m.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": 1}\n'
     '{"timestamp": 1, "input_length": 5}\n', "m.jsonl: line 2: missing key(s) output_length"),
    ("m.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": 1}\n{"timestamp": 1,\n',
     "m.jsonl: line 2: not valid JSON"),
    ("m.jsonl", '{"timestamp": 0, "input_length": "5", "output_length": 1}\n',
     'm.jsonl: line 1: input_length: expected a number, got "5"'),
    ("t.jsonl", '{"arrival_s": 0, "input_tokens": 5, "output_tokens": 1}\n[1, 2]\n',
     "t.jsonl: line 2: expected a JSON object per line, got list"),
])
def test_malformed_traces_give_line_numbered_errors(tmp_path: Path, name: str, text: str,
                                                    says: str) -> None:
    with pytest.raises(TegelError) as err:
        read_trace(_write(tmp_path, name, text))
    assert says in str(err.value)


def test_a_missing_trace_file(tmp_path: Path) -> None:
    with pytest.raises(TegelError, match="cannot read the trace"):
        read_trace(tmp_path / "nope.csv")
