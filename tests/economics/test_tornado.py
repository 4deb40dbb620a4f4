"""The claim over its assumptions: tornado ends re-price or re-serve exactly, values read between
two runs agree with serving again, break-evens are where the ratio crosses, the worst and best
cases bound every single figure, and the verdict follows from them; the equal-load comparison
charges each system for all it occupies at the same load."""

from __future__ import annotations

import math

import pytest

from tegel.economics.claim import Claim
from tegel.economics.energy_knobs import system_at
from tegel.economics.evaluate import RATIOS, cost_run, ratios, served_again
from tegel.economics.served import lerp, same_timing
from tegel.economics.tornado import AFFINE_TOLERANCE, HEADLINE, _crossing, tornado


def _row(c: Claim, name: str):  # type: ignore[no-untyped-def]
    assert c.tornado is not None
    return next(r for r in c.tornado.rows if r.name == name)


def _ratios_with(c: Claim, side: str, values: dict[str, float]) -> dict[str, float]:
    s = c.on if side == "A" else c.vs
    moved = served_again(c.workload, s.result, system_at(s.system, values))
    e = cost_run(c.workload, moved, c.assumptions)
    return ratios(e, c.vs) if side == "A" else ratios(c.on, e)


def test_an_economic_row_is_the_claim_re_priced_at_each_end(worked_example: Claim) -> None:
    c = worked_example
    row = _row(c, "gross_margin")
    assert row.values is not None and row.how == "re-priced"
    for end, value in (("low", row.values[0]), ("high", row.values[2])):
        a = c.assumptions.with_overrides({"gross_margin": value})
        got = ratios(cost_run(c.workload, c.on.result, a), cost_run(c.workload, c.vs.result, a))
        assert got == pytest.approx(getattr(row, end), rel=1e-12)


def test_values_read_between_two_runs_agree_with_serving_again(worked_example: Claim) -> None:
    """The off-chip pJ/bit row was served again at 0.5 and at the midpoint 0.3; its values
    between are read between the 0.5 run and the operating point (the chips' energy and power
    affine in the figure, the TDP derived again). The supplies' efficiency curve bends the
    wall's power slightly: the row states how far the reading was from the midpoint run, and
    that gap is what serving again at 0.3 gives, within AFFINE_TOLERANCE."""
    c = worked_example
    row = _row(c, "craftwerk-station: off-chip memory pJ/bit")
    assert "affine" in row.how and "off at 0.3" in row.how
    far = served_again(c.workload, c.on.result, system_at(c.on.system, {"offchip_pj_per_bit": 0.5}))
    assert same_timing(c.on.result, far)
    e = cost_run(c.workload, far, c.assumptions)
    assert ratios(e, c.vs) == pytest.approx(row.high, rel=1e-9)
    x = 0.3
    read = ratios(cost_run(c.workload, lerp(c.on.result, far, (x - 0.1) / (0.5 - 0.1),
                                            system_at(c.on.system, {"offchip_pj_per_bit": x})),
                           c.assumptions), c.vs)
    served = _ratios_with(c, "A", {"offchip_pj_per_bit": x})
    gap = max(abs(read[k] - served[k]) / served[k] for k in RATIOS)
    assert gap <= AFFINE_TOLERANCE
    assert f"{gap:.1e} off at 0.3" in row.how
    assert row.high["energy"] < served["energy"] < row.low["energy"]


def test_the_supplies_curve_makes_wall_power_not_affine(worked_example: Claim) -> None:
    """Why the midpoint check exists: the station's supplies convert at an efficiency that
    depends on their load, so its wall power at the midpoint of two runs is not their mean."""
    c = worked_example
    psu = c.on.system.host.psu
    assert psu is not None
    at = {x: served_again(c.workload, c.on.result,
                          system_at(c.on.system, {"offchip_pj_per_bit": x})).power_w
          for x in (0.1, 0.3, 0.5)}
    assert at[0.3] != pytest.approx((at[0.1] + at[0.5]) / 2, rel=1e-9)
    assert at[0.3] == pytest.approx((at[0.1] + at[0.5]) / 2, rel=AFFINE_TOLERANCE)


def test_a_break_even_is_where_the_ratio_crosses(worked_example: Claim) -> None:
    """CRAFTWERK's rack advantage falls to 1x inside the stacked-memory range: just below the
    break-even it is above 1x, just above it no longer (each side served again)."""
    row = _row(worked_example, "craftwerk-station: off-chip memory pJ/bit")
    x = row.to_one["racks"]
    assert x is not None and row.to_claimed["racks"] is None
    below = _ratios_with(worked_example, "A", {"offchip_pj_per_bit": x * 0.99})
    above = _ratios_with(worked_example, "A", {"offchip_pj_per_bit": x * 1.01})
    assert below["racks"] > 1.0 >= above["racks"]
    assert row.crossing_text(None) == "never within [0.1, 0.5]"


def test_worst_and_best_cases_bound_every_single_figure(worked_example: Claim) -> None:
    t = worked_example.tornado
    assert t is not None
    for k in RATIOS:
        v = t.verdicts[k]
        ends = [e[k] for r in t.rows for e in (r.low, r.high)]
        assert v.worst <= min(ends) * (1 + 1e-9) and v.best >= max(ends) * (1 - 1e-9)
        assert v.worst <= v.central <= v.best


def test_the_verdict_follows_from_the_cases(worked_example: Claim) -> None:
    t = worked_example.tornado
    assert t is not None
    for k in RATIOS:
        v = t.verdicts[k]
        for state, threshold, deciders in ((v.claim, t.claimed, v.claim_decided_by),
                                           (v.advantage, 1.0, v.advantage_decided_by)):
            expected = ("all" if v.worst >= threshold else
                        "no" if v.best < threshold else "some")
            assert state == expected and bool(deciders) == (state == "some")
    assert t.claim == "no"  # no plausible assumption gives 100x here
    assert t.verdicts["racks"].advantage == "some"
    assert any("off-chip memory pJ/bit" in d for d in t.verdicts["racks"].advantage_decided_by)
    assert t.text.startswith("the claimed 100x holds under no plausible assumptions")
    assert "decided by" in t.text


def test_a_lower_claim_is_decided_by_the_figures_that_cross_it(worked_example: Claim) -> None:
    c = worked_example
    assert c.tornado is not None
    runs = dict(c.tornado.runs)
    t = tornado(c.workload, c.on, c.vs, c.assumptions, claimed=10.0, runs=runs)
    assert runs == c.tornado.runs  # the same runs: nothing served again
    energy = t.verdicts["energy"]
    assert energy.worst < 10.0 < energy.best and energy.claim == "some"
    assert energy.claim_decided_by
    assert t.claim == "some" and "the claimed 10x holds under some" in t.text
    for k in HEADLINE:
        assert t.verdicts[k].central == pytest.approx(c.ratios[k])


def test_crossings_are_found_nearest_the_central_value() -> None:
    def f(x: float) -> dict[str, float]:
        return {"r": (x - 2.0) * (x - 8.0) + 10.0}  # 1x at 5 +- sqrt(18) - none; 10x at 2 and 8

    grid = {x: f(x) for x in (0.0, 3.0, 4.0, 10.0)}
    x = _crossing(f, grid, 4.0, "r", 10.0, cheap=True)
    assert x == pytest.approx(2.0, abs=1e-9)
    assert _crossing(f, grid, 4.0, "r", -100.0, cheap=True) is None
    at_node = {x: f(x) for x in (2.0, 5.0)}
    assert _crossing(f, at_node, 5.0, "r", 10.0, cheap=True) == 2.0


def test_equal_load_charges_each_system_for_all_it_occupies(worked_example: Claim) -> None:
    """Both serve dgx-h100's top throughput: dgx-h100 exactly at its operating point, the
    station at the fewest users reaching it, its power between idle and that point's, every
    watt charged to the load; both still meet the service level."""
    c = worked_example
    e = c.equal_load
    assert e is not None
    h100, station = e.vs, e.on
    assert e.tokens_per_s == pytest.approx(c.vs.result.throughput_tokens_per_s)
    assert h100.economics.result.energy_j_per_token == c.vs.result.energy_j_per_token
    r = station.economics.result
    assert r.throughput_tokens_per_s == pytest.approx(e.tokens_per_s)
    assert station.systems == h100.systems == 1
    assert c.on.system.idle_w <= r.power_w <= c.on.result.power_w
    assert r.energy_j_per_token == pytest.approx(r.power_w / e.tokens_per_s)
    assert sum(r.energy_breakdown_j_per_token.values()) == pytest.approx(r.energy_j_per_token)
    assert r.energy_j_per_token > c.on.result.energy_j_per_token  # idle capacity is charged
    assert station.tokens_per_s_per_user >= 50.0 and station.ttft_p99_s <= 2.0
    assert station.concurrency <= c.on.result.batch
    d = e.to_dict()
    assert d["ratios"]["energy"] == pytest.approx(
        h100.economics.result.energy_j_per_token / r.energy_j_per_token)
    assert math.isfinite(d["ratios"]["cost"]["tco"])
