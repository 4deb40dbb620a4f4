"""`tegel claim`, `tegel cost`, `tegel area`: the JSON contract, the text report, and errors."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from tegel.cli import main
from tegel.economics.assumptions import load_assumptions
from tegel.economics.claim import LIKE_FOR_LIKE, RATIOS, Workload, claim, evaluate_system
from tegel.hardware import load_system
from tegel.mapping.params import default_params
from tegel.serving.run import run
from tegel.serving.scenario import RunOptions
from tegel.workload.model_config import load_model_config

A = load_assumptions()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def claim_json() -> dict:  # type: ignore[type-arg]
    c = claim("llama-3.1-70b", "craftwerk-station", "dgx-h100")
    return c.to_dict()


def test_claim_energy_is_the_runs_whole_system_figure(claim_json: dict) -> None:  # type: ignore[type-arg]
    """The claim's energy and power per system are RunResult's, for the same batch and split."""
    for name, s in claim_json["systems"].items():
        par = s["parallelism"]
        r = run("llama-3.1-70b", name, s["batch"], 1024, 256, options=RunOptions(
            tp=par["tp"], pp=par["pp"], ep=par["ep"], stages=par["stages"]))
        assert s["energy_j_per_token"] == pytest.approx(r.energy_j_per_token, rel=1e-12)
        assert s["power_w"] == pytest.approx(r.power_w, rel=1e-12)
        assert (s["chips_busy"], s["chips_idle"]) == (r.chips_busy, r.chips_idle)
        f = s["footprint"]
        assert f["serving_kw"] == pytest.approx(f["systems"] * r.power_w / 1e3)


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
    slow = replace(p, gpu=replace(p.gpu, gemm_peak_fraction=p.gpu.gemm_peak_fraction / 2))
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
    assert d["sensitivity"] and all({"assumption", "low", "high", "influence"} <= set(r)
                                    for r in d["sensitivity"])
    influences = [r["influence"] for r in d["sensitivity"]]
    assert influences == sorted(influences, reverse=True)
    for name in ("craftwerk-station", "dgx-h100"):
        s = d["systems"][name]
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


def test_sensitivity_rows(claim_json: dict) -> None:  # type: ignore[type-arg]
    """Economic assumptions cannot move the energy ratio; every row moves some ratio."""
    energy = claim_json["ratios"]["energy"]
    names = {row["assumption"] for row in claim_json["sensitivity"]}
    assert {"electricity_usd_per_kwh", "pue", "memory_usd_per_gb.stacked_dram",
            "craftwerk-station: off-chip memory pJ/bit", "craftwerk-station: arithmetic pJ/op",
            "dgx-h100: arithmetic pJ/op: compute_power_fraction 0.5..1"} <= names
    for row in claim_json["sensitivity"]:
        assert row["influence"] > 0
        for key in RATIOS:
            assert math.isfinite(row["low"][key]) and math.isfinite(row["high"][key])
        if ":" not in row["assumption"]:
            assert row["low"]["energy"] == pytest.approx(energy)
            assert row["high"]["energy"] == pytest.approx(energy)
        elif "pJ" in row["assumption"]:  # energy figures: same batch and split, same racks
            assert row["low"]["racks"] == pytest.approx(claim_json["ratios"]["footprint"]["racks"])
            assert row["high"]["racks"] == pytest.approx(claim_json["ratios"]["footprint"]["racks"])


def test_claim_text_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "claim", "llama-3.1-70b", "--on", "craftwerk-station", "--vs",
                        "dgx-h100", "--swing", "0.25", "--rows", "5")
    assert code == 0
    for text in ("energy (tokens/J)", "cost, TCO ($/Mtoken)", "footprint, racks",
                 "energy floor of the workload", "sensitivity:", "x above the floor",
                 LIKE_FOR_LIKE, "chips busy / idle", "an asymmetry in craftwerk-station's favour"):
        assert text in out


def test_overrides_reach_the_result(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("claim", "llama-3.1-8b", "--on", "hgx-b200", "--vs", "dgx-h100", "--swing", "0",
            "--json", "--input", "512", "--output", "64")
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
    assert d["sensitivity"] == []


@pytest.mark.parametrize(("argv", "message"), [
    (("--set", "pu=1"), "--set pu: no assumption named 'pu'"),
    (("--set", "pue"), "--set 'pue': expected NAME=VALUE"),
    (("--pue", "0.5"), "--set pue: expected >= 1"),
    (("--target-tokens-per-s", "0"), "--target-tokens-per-s: expected a positive number"),
    (("--min-tokens-per-s-per-user", "1e6"), "tokens/s per user"),
    (("--batch-on", "0"), "--batch-on: expected a positive integer"),
    (("--precision", "fp7"), "--precision:"),
    (("--params", "no-such-calibration.yaml"), "no such calibration file"),
])
def test_bad_flags_are_one_line_errors(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
                                       message: str) -> None:
    code, _, err = _run(capsys, "claim", "llama-3.1-8b", "--on", "hgx-b200", "--vs", "dgx-h100",
                        "--swing", "0", *argv)
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
