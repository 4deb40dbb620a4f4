"""MLPerf Inference Power entries against tegel's power at the wall (fidelity/power.py)."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import pytest

from tegel.errors import TegelError
from tegel.fidelity.power import (
    PowerRow,
    format_power,
    load_power_entries,
    mape,
    max_rate_mape,
    power_report,
    predict_power,
)


@cache
def _rows() -> tuple[PowerRow, ...]:
    return power_report()


def test_entries_state_their_scenario_measurement_and_role() -> None:
    from tegel.hardware import load_system

    entries = load_power_entries()
    assert {e.role for e in entries} == {"validation", "predicted"}
    for e in entries:
        assert (e.role == "validation") == (e.system == "dgx-h100")
        tdp = load_system(e.system).chip.tdp_w
        # MaxQ runs under a limit below the chip's TDP and name the same round's run without
        # it; a run at the chip's own limit (B200, v5.1) has none
        assert e.chip_power_limit_w <= tdp
        assert (e.maxp_tokens_per_s is not None) == (e.chip_power_limit_w < tdp), e.id
        assert 0.5 < e.tokens_per_j < 10.0  # 0.88: v3.1 GPT-J Server at 250 W, static batches
        assert e.scenario in ("offline", "server")
        server = e.scenario == "server"
        # Server: the load LoadGen scheduled and the benchmark's p99 limits (GPT-J: end to end)
        assert (e.scheduled_per_s is not None) == server, e.id
        assert (e.tpot_limit_s is not None) == (e.ttft_limit_s is not None) == (
            server and e.dataset != "gptj"), e.id
        assert (e.e2e_limit_s is not None) == (server and e.dataset == "gptj"), e.id


def test_a_maxq_node_at_its_power_limit_draws_what_the_analyzer_measured() -> None:
    """Under MaxQ the GPUs run at their power limit, and a B200 node serving Llama-2-70B flat out
    at its chips' own 1,000 W; with them there, the node's wall power is the host, fans and
    supplies model alone (predicted, never fitted; H100, H200 and B200 nodes)."""
    from tegel.hardware import load_system

    for e in load_power_entries():
        system = load_system(e.system)
        wall = system.node_wall_w(e.chip_power_limit_w, system.host.host_w_per_node)
        assert abs(wall / e.system_w - 1) < 0.05, (e.id, wall, e.system_w)


def test_h100_tokens_per_joule_at_the_measured_load() -> None:
    """The target is 15 % on H100 entries (docs/power.md). Server entries are predicted at the
    load LoadGen scheduled (a MaxQ run chooses it below its latency limits): Llama-2-70B
    +5.7 %, GPT-J v4.0 +0.3 %, v3.1 (static batches) -2.4 %; Offline at the largest batch:
    Llama-2-70B +20.7 % (the v4.1-class 2024 stack on a v4.0 run), GPT-J 0.0 % and +11.2 %.
    Node watts within 5 % everywhere. This guards those figures."""
    rows = {r.entry.id: r for r in _rows()}
    off = rows["mlp40-l2-h100x8-maxq-off"]
    assert off.capped
    assert abs(off.error()) < 0.23, off.error()
    for eid in ("mlp40-l2-h100x8-maxq-srv", "mlp40-gptj-h100x8-maxq-srv",
                "mlp31-gptj-h100x8-maxq-srv"):
        assert abs(rows[eid].error()) < 0.08, (eid, rows[eid].error())
    for r in rows.values():
        if r.entry.role == "validation":
            assert abs(r.error("system_w")) < 0.05, (r.entry.id, r.error("system_w"))
    validation = mape(_rows(), "validation")
    assert validation is not None and validation < 15.0


def test_server_at_its_highest_rate_is_reported_beside_the_measured_load() -> None:
    """At tegel's own highest rate within the limits, where the submissions did not run, the
    Server entries are far above the measured tokens/J (H100 Llama-2-70B +30 %, GPT-J v4.0
    +18 %, v3.1 +52 %: tegel's static-batch server sustains 0.96 of its offline rate, NVIDIA's
    v3.1 harness ran at 0.76 with its p99 at 16.7 of 20 s). The report keeps that figure."""
    rows = {r.entry.id: r for r in _rows()}
    srv = rows["mlp40-l2-h100x8-maxq-srv"]
    assert srv.max_rate_tokens_per_j is not None
    assert 0.2 < srv.max_rate_tokens_per_j / srv.entry.tokens_per_j - 1 < 0.35
    at_max = max_rate_mape(_rows(), "validation")
    assert at_max is not None and at_max > (mape(_rows(), "validation") or 0)
    assert f"highest rate within the limits instead of the scheduled load: {at_max:.1f}%" in \
        format_power(_rows())


def test_server_entries_run_at_the_scheduled_load_and_search_the_highest_rate() -> None:
    for r in _rows():
        if r.entry.scenario != "server":
            continue
        e = r.entry
        assert f"Server at the scheduled {e.scheduled_per_s:.4g} requests/s" in r.scenario
        assert "highest rate within the limits" in r.scenario
        assert ("p99 e2e" if e.e2e_limit_s else "p99 TTFT") in r.scenario
        if e.year >= 2024:  # in-flight batching: the engine's batch and tokens per iteration
            seqs, tokens = e.engine_batch or 2048, e.max_tokens_per_iteration or 2048
            assert f"up to {seqs} sequences and {tokens} tokens per iteration" in r.scenario
        else:
            assert f"static batches of up to {e.engine_batch}" in r.scenario
        # the scheduled load is what the node completed (every run sustained it)
        assert r.tokens_per_s == pytest.approx(e.tokens_per_s, rel=0.06), e.id
        offline = next(o for o in _rows() if o.entry.scenario == "offline"
                       and o.entry.system == e.system and o.entry.model == e.model
                       and o.entry.year == e.year)
        assert r.max_rate_tokens_per_s is not None
        assert r.max_rate_tokens_per_s < 1.05 * offline.tokens_per_s, e.id


def test_report_prints_every_entry_and_a_mape_per_role() -> None:
    rows = _rows()
    text = format_power(rows)
    for r in rows:
        assert r.entry.id in text
    assert "validation: tokens/J MAPE" in text and "predicted: tokens/J MAPE" in text
    validation = [r for r in rows if r.entry.role == "validation"]
    assert len(validation) == 6  # H100: Llama-2-70B Offline and Server, GPT-J both x 2 rounds
    assert mape(rows, "validation") == pytest.approx(
        100 * sum(abs(r.error()) for r in validation) / len(validation))
    for role in ("validation", "predicted"):  # the printed figure is the computed one
        assert f"{role}: tokens/J MAPE {mape(rows, role):.1f}%" in text


def test_the_cap_alone_is_predicted_against_the_same_rounds_run_without_it() -> None:
    """MaxQ / MaxP of the same node, benchmark and software measures what the power limit alone
    costs; tegel's ratio (the scenario at the limit / at the chips' own limit) isolates the power
    model from the time model. Caps at 450-500 W (64-71 % of the chip's 700 W): measured
    0.75-0.83, every entry within 6 %. The deep caps on GPT-J's compute-bound beam search:
    350 W (50 %), H100 measured 0.746, tegel 0.789 (+5.8 %); H200 0.652 against 0.700 (+7.4 %)
    — at these caps tegel's DVFS rule spares throughput (docs/power.md); 250 W (36 %) on the
    v3.1 static batches of 32, 0.607 against 0.606. This guards those figures.

    Server: the measured ratio is of the two runs' scheduled loads, which a MaxQ run chooses
    below its most; tegel's is of its highest rates. The GPT-J Server MaxQ runs (p99 5.4-5.6 s
    of 20 s on H100 v4.0 and H200) measure 0.653 and 0.608 against tegel's 0.749 and 0.667; the
    v3.1 run, at 16.7 s of 20 s, 0.598 against 0.554. Guarded loosely, reported apart."""
    rows = [r for r in _rows() if r.entry.maxp_tokens_per_s]
    assert len(rows) == sum(1 for e in load_power_entries() if e.maxp_tokens_per_s) >= 8
    for r in rows:
        error = r.cap_error()
        assert error is not None, r.entry.id
        if r.entry.scenario == "server" and r.entry.dataset == "gptj":
            assert abs(error) < 0.16, (r.entry.id, r.entry.cap_ratio, r.cap_ratio)
        elif r.entry.chip_power_limit_w >= 450:
            assert abs(error) < 0.06, (r.entry.id, r.entry.cap_ratio, r.cap_ratio)
        else:
            assert -0.02 < error < 0.09, (r.entry.id, r.entry.cap_ratio, r.cap_ratio)
        assert r.maxp_tokens_per_s is not None and r.maxp_tokens_per_s > (
            r.max_rate_tokens_per_s or r.tokens_per_s)
    assert any(r.entry.chip_power_limit_w < 450 for r in rows)
    text = format_power(_rows())
    assert "the cap's effect (MaxQ / MaxP) Offline" in text and ", Server " in text


def test_a_b200_node_at_its_own_limit_predicted_at_the_wall() -> None:
    """Lenovo's air-cooled 8 x B200 node (MLPerf v5.1, the chips at their 1,000 W TGP, no limit
    set): never fitted, run on hgx-b200 with its host, fans and supplies. Node watts within 1 %
    of the analyzer's mean (10,401 W Offline, 10,442 W Server); tokens/J +4 % Offline and +5 %
    Server at its scheduled 363.8 requests/s and its configuration's 3,584 tokens per iteration
    (tegel's highest rate within the limits is 362 requests/s: the run is at the node's most).
    This guards those figures."""
    rows = {r.entry.id: r for r in _rows()}
    off, srv = rows["mlp51-l2-b200x8-lenovo-off"], rows["mlp51-l2-b200x8-lenovo-srv"]
    for r in (off, srv):
        assert r.entry.role == "predicted" and r.entry.maxp_tokens_per_s is None
        assert r.maxp_tokens_per_s is None and r.cap_error() is None
        assert abs(r.error("system_w")) < 0.02, (r.entry.id, r.error("system_w"))
    assert abs(off.error()) < 0.08, off.error()
    assert 0.0 < srv.error() < 0.10, srv.error()


def test_beam_search_runs_its_beams_offline_and_under_load() -> None:
    """GPT-J's benchmark searches 4 beams: the Offline entries price them (tokens/s within the
    time model's GPT-J error, not 4x off), and the Server entries run them request by request
    (serving/replica.py: a request's beams are sequences of the batch sharing its prompt)."""
    gptj = [r for r in _rows() if r.entry.dataset == "gptj"]
    assert {r.entry.scenario for r in gptj} == {"offline", "server"}
    for r in gptj:
        assert abs(r.error("tokens_per_s")) < 0.2, r.entry.id
        if r.entry.scenario == "server":
            assert "x 4 beams" in r.scenario


def test_a_server_entry_without_its_load_or_limits_is_refused_by_name() -> None:
    srv = next(e for e in load_power_entries() if e.scenario == "server")
    with pytest.raises(TegelError, match=f"{srv.id}: a Server entry needs scheduled_per_s"):
        predict_power(replace(srv, scheduled_per_s=None))
    with pytest.raises(TegelError, match=f"{srv.id}: a Server entry needs"):
        predict_power(replace(srv, ttft_limit_s=None, tpot_limit_s=None, e2e_limit_s=None))


def test_a_static_batch_stack_decodes_each_batch_to_its_longest_request() -> None:
    """MLPerf v3.1 (2023) ran static batches: a batch of GPT-J requests (69 output tokens on
    average, at most 128) decodes until its longest ends. The same entry on an in-flight
    batching stack decodes the mean and runs much faster; the static one's tokens/s is that of
    batches decoded to 128 tokens, of which 69 per request count."""
    from tegel.fidelity.cases import decoded_output_tokens

    assert decoded_output_tokens(69, 128, 0.0) == 128
    assert decoded_output_tokens(69, 128, 1.0) == 69
    assert decoded_output_tokens(69, None, 0.0) == 69  # fixed lengths: nothing pads
    v31 = next(e for e in load_power_entries() if e.year == 2023)
    static = next(r for r in _rows() if r.entry.id == v31.id)
    assert "static batches decoded to 128 tokens" in static.scenario
    in_flight = predict_power(replace(v31, year=2024, maxp_tokens_per_s=None))
    assert "static" not in in_flight.scenario
    assert in_flight.tokens_per_s > 1.4 * static.tokens_per_s


def test_a_malformed_entry_is_named_not_a_traceback() -> None:
    from tegel.fidelity.power import _entry

    good = {"id": "x", "role": "predicted", "system": "hgx-h200", "chip_power_limit_w": 500,
            "model": "llama-2-70b", "dataset": "llama2-70b", "scenario": "server", "tp": 1,
            "precision": "fp8", "year": 2024, "tokens_per_s": 1.0, "system_w": 1.0,
            "max_tokens_per_iteration": 4096}
    assert _entry(good).max_tokens_per_iteration == 4096
    with pytest.raises(TegelError, match="entry x: a field is not a number"):
        _entry(good | {"max_tokens_per_iteration": "many"})
    with pytest.raises(TegelError, match="entry x lacks 'tp'"):
        _entry({k: v for k, v in good.items() if k != "tp"})


def test_validate_json_carries_the_power_group() -> None:
    """`tegel validate --json` holds what the text prints: every entry and the MAPEs per role."""
    import json

    from tegel.fidelity import validate
    from tegel.report.validate import to_json

    rows = _rows()
    d = json.loads(to_json(validate([]), None, rows))["power"]
    assert [r["id"] for r in d["rows"]] == [r.entry.id for r in rows]
    s = d["summary"]["validation"]
    assert s["entries"] == 6 and s["tokens_per_j_mape_percent"] == pytest.approx(
        mape(rows, "validation"))
    assert s["server_at_highest_rate_tokens_per_j_mape_percent"] == pytest.approx(
        max_rate_mape(rows, "validation"))
    srv = next(r for r in d["rows"] if r["id"] == "mlp40-gptj-h100x8-maxq-srv")
    assert srv["scheduled_per_s"] == pytest.approx(149.902)
    assert srv["predicted"]["max_rate_tokens_per_s"] > srv["predicted"]["tokens_per_s"]
