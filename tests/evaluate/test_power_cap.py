"""The power cap with DVFS (evaluate/terms.py: power_capped) and the busy power of a GPU's
compute (step_terms; hardware/data/gpu_power.yaml)."""

from __future__ import annotations

import pytest

from tegel.evaluate.terms import power_capped
from tegel.hardware.derive import busy_share, dvfs_energy_exponent, gpu_sustained_share


def test_a_limit_above_the_draw_changes_nothing() -> None:
    assert power_capped(2.0, 400.0, 250.0) == (2.0, 1.0, False)  # draws 200 W < 250 W
    assert power_capped(2.0, 400.0, 0.0) == (2.0, 1.0, False)  # no limit


def test_without_dvfs_the_time_stretches_to_energy_over_the_limit() -> None:
    time, scale, capped = power_capped(1.0, 400.0, 100.0, exponent=0.0)
    assert capped and scale == 1.0
    assert time == pytest.approx(4.0)  # 400 J at 100 W


def test_with_dvfs_the_clock_falls_as_the_power_ratio_to_one_over_one_plus_a() -> None:
    # 400 J in 1 s under 100 W, energy per op ~ clock^1: clock = (100/400)^(1/2) = 0.5
    time, scale, capped = power_capped(1.0, 400.0, 100.0, exponent=1.0)
    assert capped
    assert time == pytest.approx(2.0)
    assert scale == pytest.approx(0.5)
    assert 400.0 * scale / time == pytest.approx(100.0)  # exactly the limit's power
    # any exponent draws exactly the limit, and a larger one loses less time
    times = []
    for a in (0.0, 0.5, 1.0, 2.0):
        t, s, _ = power_capped(3.0, 900.0, 120.0, exponent=a)
        assert 900.0 * s / t == pytest.approx(120.0)
        times.append(t)
    assert times == sorted(times, reverse=True)


def test_the_shipped_exponent_and_sustained_share_are_in_their_stated_ranges() -> None:
    import yaml

    from tegel.hardware.technology import DATA_DIR

    data = yaml.safe_load((DATA_DIR / "gpu_power.yaml").read_text(encoding="utf-8"))
    assert data["dvfs_low"] <= dvfs_energy_exponent() <= data["dvfs_high"]
    assert data["sustained_low"] <= gpu_sustained_share() <= data["sustained_high"]
    # compute_power_fraction's rule: (1 - 0.10 traffic) / sustained share
    assert data["compute_power_fraction"] == pytest.approx(0.9 / gpu_sustained_share(), rel=0.01)


def test_a_gpu_step_below_the_sustained_share_pays_its_busy_time() -> None:
    from tegel.evaluate.cost import CATEGORIES, Category
    from tegel.evaluate.terms import Rates, step_terms
    from tegel.hardware import load_system
    from tegel.serving.run import run

    result = run("llama-3.1-8b", "h100-sxm", 64, 512, 64, "fp8")
    plan = result.chosen.prefill.plan
    rates = Rates.of(result.system, plan)
    assert rates.busy_share == busy_share(result.system.chip) == gpu_sustained_share()
    step = next(s for s in plan.steps if s.flops and s.compute_efficiency < 0.8)
    compute = CATEGORIES.index(Category.COMPUTE)
    e_low = step_terms(step, rates).energy_by_category_j[compute]
    e_peak = step.flops * rates.pj_per_flop[step.compute_class] * 1e-12
    assert e_low == pytest.approx(e_peak * gpu_sustained_share() / step.compute_efficiency)
    # the busy power of a compute-bound step: what the arithmetic draws at the sustained share
    t = step_terms(step, rates)
    assert e_low / t.compute_s == pytest.approx(
        step.resource_share * gpu_sustained_share() * rates.peak[step.compute_class]
        * rates.pj_per_flop[step.compute_class] * 1e-12)
    # dataflow chips keep per-op energies
    assert busy_share(load_system("groq-576").chip) == 0.0


def test_a_steps_level_share_slows_that_level_only_and_leaves_its_energy() -> None:
    """`Step.level_share`: a kernel that reaches half the plan's bandwidth at one level takes
    twice as long there; its bytes, so its energy, and its other levels are unchanged."""
    from dataclasses import replace

    from tegel.evaluate.terms import Rates, step_terms
    from tegel.serving.run import run

    result = run("llama-3.1-8b", "h100-sxm", 64, 512, 64, "fp8")
    plan = result.chosen.decode.plan
    rates = Rates.of(result.system, plan)
    step = next(s for s in plan.steps if s.reads[-1] > 0)
    hbm = len(step.reads) - 1
    halved = replace(step, level_share=tuple(0.5 if i == hbm else 1.0
                                             for i in range(len(step.reads))))
    before, after = step_terms(step, rates), step_terms(halved, rates)
    assert after.level_s[hbm] == pytest.approx(2 * before.level_s[hbm])
    assert after.level_s[:hbm] == pytest.approx(before.level_s[:hbm])
    assert after.energy_by_category_j == pytest.approx(before.energy_by_category_j)
