"""The serving group of `tegel validate`: entries taken under load become simulated loads, a
lone request is not queued, and the group is reported apart from the fitted groups."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tegel.cli import main
from tegel.fidelity import Unmapped, load_entries, serving
from tegel.fidelity.calibrate import calibrate
from tegel.fidelity.cases import h100_system
from tegel.mapping.params import default_params
from tegel.serving.run import run
from tegel.serving.scenario import RunOptions


def _shipped() -> dict[str, dict[str, Any]]:
    return {e["id"]: e for _, e in load_entries()}


def _cases() -> dict[str, serving.ServingCase | Unmapped]:
    out = {}
    for eid, entry in _shipped().items():
        found = serving.to_serving_case(entry)
        if found is not None:
            out[eid] = found
    return out


def test_every_entry_under_load_is_mapped_or_explained() -> None:
    """27 NIM concurrency entries and 7 MLPerf Server runs (H100 SXM) are simulated: five state
    their p99 TTFT and TPOT limits; GPT-J's and Mixtral's take their benchmark's
    (mlperf_scenarios.yaml: GPT-J a 20 s end-to-end limit and 4 beams a request). The H100 NVL
    Server run is in the other-GPU file, validated as a throughput."""
    shipped = _shipped()
    under_load = {eid for eid, e in shipped.items()
                  if "concurrency" in e["workload"] or e["metric"] == "throughput_server"}
    found = _cases()
    assert set(found) == under_load
    mapped = [c for c in found.values() if isinstance(c, serving.ServingCase)]
    assert not [c for c in found.values() if isinstance(c, Unmapped)]
    assert len(mapped) == 34
    counts = {m: sum(c.metric == m for c in mapped) for m in serving.METRICS}
    assert counts == {"ttft": 9, "tpot": 9, "throughput": 16}
    assert sum(c.kind == "MLPerf Server" for c in mapped) == 7
    # the TTFT entries under queueing, unmapped by the static groups, are simulated here
    assert isinstance(found["nim-l33-70b-2xh100-5000-500-c100-ttft"], serving.ServingCase)


def test_server_runs_without_stated_limits_take_their_benchmarks() -> None:
    cases = _cases()
    gptj, mixtral = cases["mlp41-gptj-h100x8-srv"], cases["mlp41-mx-h100x8-srv"]
    assert isinstance(gptj, serving.ServingCase) and isinstance(mixtral, serving.ServingCase)
    assert (gptj.load.ttft_limit_s, gptj.load.tpot_limit_s, gptj.load.e2e_limit_s) == (
        None, None, 20.0)
    assert gptj.load.beams == 4 and "4 beams a request" in gptj.approximation
    assert (mixtral.load.ttft_limit_s, mixtral.load.tpot_limit_s) == (2.0, 0.2)
    assert mixtral.load.e2e_limit_s is None and mixtral.load.beams == 1


def test_an_entry_not_under_load_is_not_in_the_group() -> None:
    assert serving.to_serving_case(_shipped()["mlp41-l2-h100x8-nv-off"]) is None


def test_concurrency_becomes_a_closed_loop_of_the_stated_lengths() -> None:
    case = _cases()["nim-l33-70b-2xh100-5000-500-c25-itl"]
    assert isinstance(case, serving.ServingCase)
    load = case.load
    assert (load.concurrency, load.input_tokens, load.output_tokens) == (25, 5000, 500)
    assert (load.model, load.chips, load.tp, load.precision) == ("llama-3.3-70b", 2, 2, "fp8")
    assert case.metric == "tpot" and case.measured == pytest.approx(38.75e-3)


def test_mlperf_server_carries_its_limits_and_engine_batch() -> None:
    cases = _cases()
    nv, hpe = cases["mlp41-l2-h100x8-nv-srv"], cases["mlp41-l2-h100x8-hpe-srv"]
    assert isinstance(nv, serving.ServingCase) and isinstance(hpe, serving.ServingCase)
    assert (nv.load.ttft_limit_s, nv.load.tpot_limit_s) == (2.0, 0.2)
    # the configs' gpu_batch_size (max_batch_per_replica), read as the static path reads it
    assert nv.load.max_seqs == hpe.load.max_seqs == 1024
    assert cases["mlp50-l2-h100x8-nv-srv"].load.max_seqs == serving.MLPERF_MAX_SEQS  # not stated
    assert (nv.load.input_tokens, nv.load.output_tokens) == (222, 294)
    assert nv.metric == "throughput" and nv.load.software == "trtllm-0.12"  # the 2024 stack
    redhat = cases["mlp51-l8-h100x1-redhat-srv"]
    assert isinstance(redhat, serving.ServingCase) and redhat.load.tpot_limit_s == 0.1
    assert redhat.load.max_seqs == 512  # vllm serve --max-num-seqs 512 (its README)
    # tokens per iteration: the engines' stated budgets, else the simulator's 2,048
    assert (nv.load.chunk_tokens, hpe.load.chunk_tokens, redhat.load.chunk_tokens) == (4096, 4096, 1024)
    assert cases["mlp50-l2-h100x8-nv-srv"].load.chunk_tokens == serving.SCHEDULER.chunk_tokens
    assert "4096 tokens per iteration" in nv.approximation


@pytest.mark.parametrize(("eid", "within"), [
    ("nim-l33-70b-2xh100-500-2000-c1-ttft", 0.01),
    # 5,000 prompt tokens run as chunks of 2,048: the weights are read three times, not once,
    # and the engine's host work per forward call (iteration_overhead_s) is paid three times
    ("nim-l33-70b-2xh100-5000-500-c1-ttft", 0.06),
])
def test_ttft_at_concurrency_one_is_not_queued(eid: str, within: float) -> None:
    case = _cases()[eid]
    assert isinstance(case, serving.ServingCase)
    load = case.load
    params = default_params()
    simulated = serving.closed_loop(load, params).ttft_s
    alone = run(load.model, h100_system(load.chips), 1, load.input_tokens, 1, load.precision,
                options=RunOptions(tp=load.tp), params=params).ttft_s
    assert simulated == pytest.approx(alone, rel=within)
    assert simulated >= alone * 0.995  # chunking never makes a prefill cheaper


def test_queueing_shows_in_ttft_under_load() -> None:
    """At concurrency 5 every prompt waits for others' chunks: TTFT above the lone request's."""
    cases = _cases()
    params = default_params()
    one, five = (cases[f"nim-l33-70b-2xh100-5000-500-c{c}-ttft"] for c in (1, 5))
    assert isinstance(one, serving.ServingCase) and isinstance(five, serving.ServingCase)
    alone = serving.closed_loop(one.load, params)
    loaded = serving.closed_loop(five.load, params)
    assert loaded.ttft_s > 1.2 * alone.ttft_s
    assert loaded.throughput_tokens_per_s > 3 * alone.throughput_tokens_per_s


def test_the_serving_group_is_in_validate_json(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    shipped = _shipped()
    ids = ["nim-l33-70b-2xh100-5000-500-c1-ttft", "nim-l33-70b-2xh100-5000-500-c5-ttft",
           "nim-l33-70b-2xh100-5000-500-c5-itl"]
    path = tmp_path / "load.yaml"
    path.write_text(yaml.safe_dump([shipped[i] for i in ids]))
    assert main(["validate", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    group = out["serving"]
    assert group["fitted"] is False and "out of sample" in group["note"]
    assert [r["id"] for r in group["rows"]] == ids
    assert group["metrics"]["ttft"]["entries"] == 2 and group["metrics"]["tpot"]["entries"] == 1
    assert group["metrics"]["throughput"]["entries"] == 0
    assert group["metrics"]["ttft"]["mape_percent"] == pytest.approx(
        sum(abs(r["error_percent"]) for r in group["rows"][:2]) / 2)
    # the static groups are unchanged: the c5 TTFT is still unmapped there, with its reason
    assert {u["id"] for u in out["unmapped"]} == {ids[1]}
    assert "serving" not in out["summary"]


def test_calibration_never_runs_the_serving_group(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("the serving group was simulated during calibration")

    monkeypatch.setattr(serving, "simulate", refuse)
    path = tmp_path / "load.yaml"
    path.write_text(yaml.safe_dump([_shipped()["nim-l33-70b-2xh100-5000-500-c5-ttft"]]))
    _, before, after = calibrate(default_params(), [str(path)], passes=0)
    assert before.serving == () and after.serving == ()


def test_server_search_meets_the_limits_it_searched_for() -> None:
    case = _cases()["mlp51-l8-h100x1-redhat-srv"]
    assert isinstance(case, serving.ServingCase)
    got = serving.server_rate(case.load, default_params())
    assert got.ttft_s <= 2.0 and got.tpot_s <= 0.1
    assert got.throughput_tokens_per_s > 0


def test_each_server_probe_holds_loadgens_minimum_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rate search probes each Poisson rate with the arrivals of LoadGen's 600 s minimum run
    (at least SERVER_REQUESTS), so a rate the replica cannot sustain builds the queue it
    builds in the measured run; the offline run that brackets it holds 8 full batches."""
    seen: list[tuple[int, float]] = []  # (requests, last arrival s)
    real = serving.serve

    def recording(*args: Any, **kwargs: Any) -> Any:
        wl = args[2]
        seen.append((len(wl), float(wl.arrival_s.max())))
        return real(*args, **kwargs)

    monkeypatch.setattr(serving, "serve", recording)
    case = _cases()["mlp51-l8-h100x1-redhat-srv"]
    assert isinstance(case, serving.ServingCase)
    got = serving.server_rate(case.load, default_params())
    offline = [n for n, last in seen if last == 0.0]
    assert offline == [max(serving.SERVER_REQUESTS, serving.OFFLINE_WAVES * case.load.max_seqs)]
    probes = [(n, last) for n, last in seen if last > 0.0]
    assert len(probes) >= 5
    for n, last in probes:  # n Poisson arrivals at rate n / 600 span 600 s, give or take
        assert last > 0.9 * 600, (n, last)  # never shorter than the run
        if n > serving.SERVER_REQUESTS:  # else a slow rate's 3,000 arrivals span longer
            assert last < 1.1 * 600, (n, last)
    assert got.throughput_tokens_per_s > 0
