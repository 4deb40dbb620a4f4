"""`tegel claim`, `tegel cost`, `tegel area`: the JSON contract, the text report, and errors."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from tegel.cli import main
from tegel.economics.assumptions import load_assumptions
from tegel.economics.claim import RATIOS, ClaimOptions, Workload, claim, evaluate_system
from tegel.economics.served import ServingPoint
from tegel.hardware import load_system
from tegel.mapping.params import default_params
from tegel.report.claim import render_claim
from tegel.serving.curve import closed_loop_point
from tegel.serving.operating import CHUNKED
from tegel.serving.run import run
from tegel.serving.scenario import RunOptions, resolve_precision
from tegel.workload.model_config import load_model_config

A = load_assumptions()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def claim_json(worked_example) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return worked_example.to_dict()


def test_both_systems_meet_the_service_level_at_their_chosen_points(claim_json: dict) -> None:  # type: ignore[type-arg]
    """Each system's figures are its serving point's, at the same per-user speed and p99 TTFT;
    serving the same concurrency and split again gives the same figures (whole system)."""
    level = claim_json["service_level"]
    assert level["mode"] == "operating point" and level["scheduler"]["kind"] == "chunked"
    cfg = load_model_config("llama-3.1-70b")
    for name, s in claim_json["systems"].items():
        assert s["tokens_per_s_per_user"] >= level["min_tokens_per_s_per_user"] == 50.0
        assert s["ttft_p99_s"] <= level["max_ttft_s"] == 2.0
        assert s["batch"] == s["concurrency"] == s["operating_point"]["concurrency"]
        par = s["parallelism"]
        system = load_system(name)
        split = RunOptions(tp=par["tp"], pp=par["pp"], ep=par["ep"], stages=par["stages"])
        p = closed_loop_point(cfg, system, s["concurrency"], 1024, 256, CHUNKED,
                              resolve_precision(system, None), split, default_params())
        assert s["energy_j_per_token"] == pytest.approx(p.energy_j_per_token, rel=1e-12)
        assert s["power_w"] == pytest.approx(p.power_w, rel=1e-12)
        assert s["throughput_tokens_per_s"] == pytest.approx(p.throughput_tokens_per_s, rel=1e-12)
        assert (s["chips_busy"], s["chips_idle"]) == (p.result.chips_busy, p.result.chips_idle)
        f = s["footprint"]
        assert f["serving_kw"] == pytest.approx(f["systems"] * p.power_w / 1e3)


def test_the_chosen_concurrency_is_where_the_service_level_stops_it(claim_json: dict) -> None:  # type: ignore[type-arg]
    """Twice the chosen concurrency on the same split breaks a limit or adds < 5% throughput:
    the search did not stop short of the operating point."""
    cfg = load_model_config("llama-3.1-70b")
    for name, s in claim_json["systems"].items():
        par = s["parallelism"]
        system = load_system(name)
        split = RunOptions(tp=par["tp"], pp=par["pp"], ep=par["ep"], stages=par["stages"])
        more = closed_loop_point(cfg, system, 2 * s["concurrency"], 1024, 256, CHUNKED,
                                 resolve_precision(system, None), split, default_params())
        assert (more.tokens_per_s_per_user < 50.0 or more.ttft_p99_s > 2.0
                or more.throughput_tokens_per_s < 1.05 * s["throughput_tokens_per_s"]), name


def test_the_default_ttft_limit_is_stated(claim_json: dict) -> None:  # type: ignore[type-arg]
    level = claim_json["service_level"]
    assert level["max_ttft_s"] == claim_json["workload"]["max_ttft_s"] == 2.0
    assert level["ttft_percentile"] == 99
    assert "default for 1,024-token prompts" in level["ttft_limit"]
    assert "not scaled" not in level["ttft_limit"]  # the prompt is 1,024 tokens
    assert "p99 TTFT <= 2 s (the default for 1,024-token prompts)" in level["text"]
    assert "2 s" in claim_json["accounting"] and "50 tokens/s per user" in claim_json["accounting"]


def test_a_data_parallel_system_at_batch_one_is_charged_for_its_idle_replicas() -> None:
    w = Workload(load_model_config("llama-3.1-8b"), 512, 64, None, 50.0, 1e5)
    system = load_system("craftwerk-station")
    s = evaluate_system(w, system, A, batch=1)
    r = s.result
    assert r.parallelism.dp > 1 and r.chips_busy < system.chip_count
    alone = run(w.model, system, 1, 512, 64)
    assert r.energy_j_per_token == pytest.approx(alone.energy_j_per_token, rel=1e-12)
    busy_only_w = sum(r.chosen.replica_energy_by_category_j()) / r.e2e_latency_s
    idle_w = r.chips_idle * system.chip.idle_w
    assert r.power_w >= (busy_only_w + idle_w) * (1 - 1e-9)
    assert r.power_w >= system.idle_w * (1 - 1e-9)
    assert s.to_dict()["chips_idle"] == r.chips_idle > 0
    assert s.footprint.serving_kw == pytest.approx(s.footprint.systems * r.power_w / 1e3)


def test_parameters_reach_the_runs() -> None:
    """`params` travel through evaluate_system to run(): same params, same result."""
    p = default_params()
    slow = replace(p, gpu=replace(p.gpu, gemm_serving_fraction=p.gpu.gemm_serving_fraction / 2))
    w = Workload(load_model_config("llama-3.1-8b"), 512, 64, None, 50.0, 1e5)
    system = load_system("dgx-h100")
    base = evaluate_system(w, system, A, batch=8)
    moved = evaluate_system(w, system, A, batch=8, params=slow)
    assert moved.result.tpot_s != base.result.tpot_s
    again = run(w.model, system, 8, 512, 64, params=slow)
    assert moved.result.energy_j_per_token == pytest.approx(again.energy_j_per_token, rel=1e-12)


def test_claim_json_contract(claim_json: dict) -> None:  # type: ignore[type-arg]
    d = claim_json
    assert set(d["ratios"]) >= {"energy", "cost", "footprint"}
    assert set(d["ratios"]["cost"]) == {"tco", "capital"}
    assert set(d["ratios"]["footprint"]) >= {"racks", "kw"}
    assert d["energy_floor_j_per_token"] > 0
    assert d["tornado"] and all({"assumption", "low", "central", "high", "ratios_low",
                                 "ratios_high", "influence", "basis", "how"} <= set(r)
                                for r in d["tornado"])
    influences = [r["influence"] for r in d["tornado"]]
    assert influences == sorted(influences, reverse=True)
    assert d["break_even"] and all(set(b["ratios"]) == set(RATIOS) for b in d["break_even"])
    assert {"claimed", "claim", "advantage", "text", "ratios"} <= set(d["verdict"])
    assert d["verdict"]["claimed"] == 100.0
    assert {"tokens_per_s", "basis", "systems", "ratios"} <= set(d["equal_load"])
    assert {"mode", "min_tokens_per_s_per_user", "max_ttft_s", "ttft_limit", "scheduler",
            "text"} <= set(d["service_level"])
    for name in ("craftwerk-station", "dgx-h100"):
        s = d["systems"][name]
        assert s["batch_basis"] == "highest throughput at the service level"
        assert {"concurrency", "ttft_p99_s", "operating_point"} <= set(s)
        assert s["operating_point"]["search"]  # the splits tried, with their bounds
        assert s["energy_j_per_token"] >= s["energy_floor_j_per_token"]
        assert s["floor_ratio"] >= 1
        assert s["tokens_per_s_per_user"] >= d["workload"]["min_tokens_per_s_per_user"]
        assert s["energy_floor_j_per_token"] >= d["energy_floor_j_per_token"]
        assert s["chips_busy"] + s["chips_idle"] == s["chips"]
        assert s["power_w"] >= s["idle_w"]
    a, b = d["systems"]["craftwerk-station"], d["systems"]["dgx-h100"]
    assert d["ratios"]["energy"] == pytest.approx(b["energy_j_per_token"] / a["energy_j_per_token"])
    assert d["ratios"]["cost"]["tco"] == pytest.approx(b["usd_per_mtoken"] / a["usd_per_mtoken"])
    json.dumps(d)  # serialisable


def test_tornado_rows(claim_json: dict) -> None:  # type: ignore[type-arg]
    """Economic figures cannot move the energy ratio; energy figures leave the operating point
    (and so the racks, but for the nameplate they derive) where it was; every row moves some
    ratio; the issue's figure is there with its range."""
    energy = claim_json["ratios"]["energy"]
    rows = {row["assumption"]: row for row in claim_json["tornado"]}
    assert {"electricity_usd_per_kwh", "pue", "memory_usd_per_gb.stacked_dram", "gross_margin",
            "chip price basis", "craftwerk-station: off-chip memory pJ/bit",
            "dgx-h100: arithmetic share of dynamic power at peak"} <= set(rows)
    pj = rows["craftwerk-station: off-chip memory pJ/bit"]
    assert (pj["low"], pj["central"], pj["high"]) == ("0.1", "0.1", "0.5")
    for row in claim_json["tornado"]:
        assert row["influence"] > 0
        for key in RATIOS:
            assert math.isfinite(row["ratios_low"][key]) and math.isfinite(row["ratios_high"][key])
        if row["side"] is None:
            assert row["ratios_low"]["energy"] == pytest.approx(energy)
            assert row["ratios_high"]["energy"] == pytest.approx(energy)
            assert row["how"] == "re-priced"
        else:
            assert row["how"].startswith("served again")


def test_claim_text_report(claim_json: dict) -> None:  # type: ignore[type-arg]
    out = render_claim(claim_json, rows=5)
    for text in ("energy (tokens/J)", "cost, TCO ($/Mtoken)", "footprint, racks",
                 "energy floor of the workload", "tornado:", "break-even:", "1x at", "100x at",
                 "never within [0.1, 0.5]", "equal load: both serve",
                 "verdict: the claimed 100x holds under no plausible assumptions",
                 "x above the floor", "more rows in --json)",
                 "service level, both systems: >= 50 tokens/s per user (1 / median TPOT), p99 "
                 "TTFT <= 2 s (the default for 1,024-token prompts), chunked scheduler",
                 "Like for like: both systems held to the same service level",
                 "concurrency (sequences in flight)", "p99 TTFT", "chips busy / idle",
                 "an asymmetry in craftwerk-station's favour"):
        assert text in out


def test_a_fixed_batch_keeps_static_batches_for_both() -> None:
    c = claim("llama-3.1-8b", "hgx-b200", "dgx-h100", options=ClaimOptions(
        input_tokens=512, output_tokens=64, batch_on=8, tornado=False)).to_dict()
    level = c["service_level"]
    assert level["mode"] == "static batch" and level["max_ttft_s"] is None
    assert "static batches" in c["accounting"] and "no TTFT limit" in c["accounting"]
    a, b = c["systems"]["hgx-b200"], c["systems"]["dgx-h100"]
    assert a["batch"] == 8 and a["batch_basis"] == "fixed (--batch-on)"
    assert b["batch_basis"] == "largest static batch at the speed per user"
    assert a["operating_point"] is None and b["operating_point"] is None
    assert c["equal_load"] is None and c["tornado"] == [] and c["verdict"] is None
    r = run("llama-3.1-8b", "hgx-b200", 8, 512, 64)
    assert a["energy_j_per_token"] == pytest.approx(r.energy_j_per_token, rel=1e-12)


def test_a_prompt_of_another_length_keeps_the_limit_and_says_so() -> None:
    w = Workload(load_model_config("llama-3.1-8b"), 512, 64, None, 50.0, 1e5)
    s = evaluate_system(w, load_system("h100-sxm"), A)
    assert isinstance(s.result, ServingPoint)
    assert w.service is not None and w.service.ttft_limit_s == 2.0
    level = w.service_dict()
    assert level["max_ttft_s"] == 2.0
    assert "not scaled to these 512-token prompts" in str(level["ttft_limit"])
    assert s.result.op.point.ttft_p99_s <= 2.0 and s.result.tokens_per_s_per_user >= 50.0


def test_overrides_reach_the_result(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("claim", "llama-3.1-8b", "--on", "hgx-b200", "--vs", "dgx-h100", "--no-tornado",
            "--no-equal-load", "--json", "--input", "512", "--output", "64")
    _, base, _ = _run(capsys, *args)
    _, dear, _ = _run(capsys, *args, "--electricity-usd-per-kwh", "0.5", "--pricing", "cost",
                      "--set", "years=2", "--rack-power-kw", "30")
    b, d = json.loads(base), json.loads(dear)
    assert d["assumptions"]["overrides"]["electricity_usd_per_kwh"] == 0.5
    assert b["assumptions"]["overrides"] == {}
    assert d["assumptions"]["pricing"] == "cost" and d["assumptions"]["years"] == 2
    assert d["assumptions"]["rack_power_limit_w"] == 30000
    assert d["systems"]["dgx-h100"]["chip_price_basis"] == "cost"
    assert d["systems"]["dgx-h100"]["tco"]["energy_usd"] != b["systems"]["dgx-h100"]["tco"]["energy_usd"]
    assert d["tornado"] == [] and d["break_even"] == [] and d["verdict"] is None
    assert d["equal_load"] is None


@pytest.mark.parametrize(("argv", "message"), [
    (("--set", "pu=1"), "--set pu: no assumption named 'pu'"),
    (("--set", "pue"), "--set 'pue': expected NAME=VALUE"),
    (("--pue", "0.5"), "--set pue: expected >= 1"),
    (("--target-tokens-per-s", "0"), "--target-tokens-per-s: expected a positive number"),
    (("--min-tokens-per-s-per-user", "1e6"), "the per-user speed binds"),
    (("--max-ttft", "0.001"), "the TTFT limit binds"),
    (("--max-ttft", "0"), "--max-ttft: expected a positive number of seconds"),
    (("--max-ttft", "1", "--batch-on", "8"), "--max-ttft: a fixed --batch-on/--batch-vs"),
    (("--batch-on", "0"), "--batch-on: expected a positive integer"),
    (("--precision", "fp7"), "--precision:"),
    (("--params", "no-such-calibration.yaml"), "no such calibration file"),
    (("--claimed", "0"), "--claimed: expected a positive factor"),
    (("--equal-load", "-5"), "--equal-load: expected a positive number of tokens/s"),
])
def test_bad_flags_are_one_line_errors(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
                                       message: str) -> None:
    code, _, err = _run(capsys, "claim", "llama-3.1-8b", "--on", "hgx-b200", "--vs", "dgx-h100",
                        "--no-tornado", "--no-equal-load", *argv)
    assert code == 2
    assert err.startswith("tegel: error: ") and message in err and err.count("\n") == 1


def test_cost_and_area_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "cost", "dgx-h100", "--json")
    d = json.loads(out)
    assert code == 0 and d["capital_usd"] == pytest.approx(sum(d["capital_breakdown_usd"].values()))
    code, out, _ = _run(capsys, "cost", "craftwerk-station", "--model", "llama-3.1-8b",
                        "--input", "512", "--output", "64")
    assert code == 0 and "$ per million tokens (TCO)" in out
    code, out, _ = _run(capsys, "area", "h100-sxm", "--json")
    d = json.loads(out)
    assert code == 0 and abs(d["error"]) < 0.15
    code, out, _ = _run(capsys, "area", "a100-80gb")
    assert code == 0 and "tile_storage" in out
