"""Properties of the cost engine over models, systems, precisions, batches and lengths.

More bandwidth or compute never makes a run slower; breakdowns sum to totals; a larger batch never
shortens a decode step; identical inputs give identical outputs; decode is never faster than
reading the weights once from where they live; no energy is negative.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tegel.errors import TegelError
from tegel.evaluate.analytical import PhaseCost
from tegel.evaluate.terms import dynamic_limit_w, static_power_w
from tegel.hardware import StorageLevel, System, load_system
from tegel.serving import RunResult, run
from tegel.serving.scenario import RunOptions
from tegel.workload.model_config import ModelConfig, load_model_config

MODELS = ("llama-3.1-8b", "mixtral-8x7b", "qwen2.5-7b", "gpt2")
SYSTEMS = ("h100-sxm", "dgx-h100", "craftwerk", "ref-dataflow")
PRECISIONS = ("bf16", "fp8")
REL = 1e-9
PROPERTY = settings(max_examples=25, deadline=None)


@cache
def _system(name: str) -> System:
    return load_system(name)


@cache
def _model(name: str) -> ModelConfig:
    return load_model_config(name)


@dataclass(frozen=True, slots=True)
class Case:
    """One scenario with its parallelism (and dataflow stage count) fixed, so that changing the
    machine or the batch cannot change the mapping the run chooses."""

    model: str
    system: str
    batch: int
    input_tokens: int
    output_tokens: int
    precision: str
    tp: int
    pp: int
    stages: int | None

    def run(self, system: System | None = None, batch: int | None = None) -> RunResult:
        """The case on `system` (default: the preset); a workload that does not fit is skipped."""
        try:
            return run(self.model, system or _system(self.system), batch or self.batch,
                       self.input_tokens, self.output_tokens, self.precision,
                       options=RunOptions(tp=self.tp, pp=self.pp, stages=self.stages))
        except TegelError as err:
            if "does not fit" in str(err):
                assume(False)
            raise


@st.composite
def cases(draw: st.DrawFn, max_batch: int = 64) -> Case:
    model, system = draw(st.sampled_from(MODELS)), draw(st.sampled_from(SYSTEMS))
    cfg, sys_ = _model(model), _system(system)
    chips = sys_.chip_count
    divisors = [d for d in (1, 2, 4, 8, 16, 32) if chips % d == 0]
    gpu = sys_.chip.architecture == "gpu"
    tp = draw(st.sampled_from(divisors)) if gpu else 1
    pp = draw(st.sampled_from([d for d in divisors if chips % (tp * d) == 0 and d <= cfg.num_layers]))
    stages = None
    if not gpu:
        stages = pp * draw(st.sampled_from([s for s in (1, 2, 4, 8) if pp * s <= cfg.num_layers]))
    output = draw(st.integers(1, 512))
    longest = min(2048, cfg.max_position_embeddings)
    return Case(model, system, draw(st.integers(1, max_batch)),
                draw(st.integers(1, longest - output)), output,
                draw(st.sampled_from(PRECISIONS)), tp, pp, stages)


# --- modified machines ---------------------------------------------------------------------------


def _faster_levels(levels: Sequence[StorageLevel], factors: Sequence[float]) -> tuple[StorageLevel, ...]:
    return tuple(lv.model_copy(update={
        "read_bytes_per_s": lv.read_bytes_per_s * f,
        "write_bytes_per_s": None if lv.write_bytes_per_s is None else lv.write_bytes_per_s * f})
        for lv, f in zip(levels, factors, strict=False))


def with_storage_bandwidth(system: System, factors: Sequence[float]) -> System:
    """`system` with the bandwidth of storage level i (nearest first, as in Chip.levels())
    multiplied by factors[i]."""
    chip = system.chip
    n_tile, n_chip = len(chip.tiles.storage), len(chip.global_storage)
    tiles = chip.tiles.model_copy(update={"storage": _faster_levels(chip.tiles.storage, factors)})
    update: dict[str, object] = {
        "tiles": tiles,
        "global_storage": _faster_levels(chip.global_storage, factors[n_tile:]),
    }
    if chip.offchip is not None:
        f = factors[n_tile + n_chip]
        update["offchip"] = chip.offchip.model_copy(
            update={"bandwidth_bytes_per_s": chip.offchip.bandwidth_bytes_per_s * f})
    faster = system.model_copy(update={"chip": chip.model_copy(update=update)})
    for old, new, f in zip(chip.levels(), faster.chip.levels(), factors, strict=False):
        assert math.isclose(new.read_bytes_per_s, old.read_bytes_per_s * f, rel_tol=1e-12)
        assert math.isclose(new.write_bytes_per_s, old.write_bytes_per_s * f, rel_tol=1e-12)
    return faster


def with_compute(system: System, factor: float) -> System:
    """`system` with every dtype's peak operations per cycle multiplied by `factor`."""
    chip = system.chip
    unit = chip.tiles.compute
    assert unit.systolic is None, "these presets give peak_ops_per_cycle"
    unit = unit.model_copy(update={"peak_ops_per_cycle": {d: v * factor for d, v in
                                                          unit.peak_ops_per_cycle.items()}})
    tiles = chip.tiles.model_copy(update={"compute": unit})
    faster = system.model_copy(update={"chip": chip.model_copy(update={"tiles": tiles})})
    for d in chip.dtypes:
        assert math.isclose(faster.chip.peak_flops_per_s(d), chip.peak_flops_per_s(d) * factor,
                            rel_tol=1e-12)
    return faster


def with_interconnect(system: System, noc_factor: float, link_factor: float) -> System:
    """`system` with a faster network-on-chip and faster chip-to-chip links."""
    chip = system.chip
    noc = chip.noc.model_copy(update={"link_bytes_per_s": chip.noc.link_bytes_per_s * noc_factor})
    update: dict[str, object] = {"chip": chip.model_copy(update={"noc": noc})}
    if system.scale_up is not None:
        link = system.scale_up
        update["scale_up"] = link.model_copy(
            update={"link_bytes_per_s": link.link_bytes_per_s * link_factor})
    return system.model_copy(update=update)


def _not_slower(faster: RunResult, base: RunResult) -> None:
    assert faster.parallelism == base.parallelism
    assert faster.ttft_s <= base.ttft_s * (1 + REL), (faster.ttft_s, base.ttft_s)
    assert faster.tpot_s <= base.tpot_s * (1 + REL), (faster.tpot_s, base.tpot_s)


# --- (a) monotone in bandwidth and compute -------------------------------------------------------

_factors = st.floats(min_value=1.0, max_value=16.0, allow_nan=False)


@PROPERTY
@given(case=cases(), factors=st.lists(_factors, min_size=6, max_size=6))
def test_more_storage_bandwidth_is_never_slower(case: Case, factors: list[float]) -> None:
    base = case.run()
    _not_slower(case.run(with_storage_bandwidth(_system(case.system), factors)), base)


@PROPERTY
@given(case=cases(), factor=_factors)
def test_more_compute_is_never_slower(case: Case, factor: float) -> None:
    base = case.run()
    _not_slower(case.run(with_compute(_system(case.system), factor)), base)


@PROPERTY
@given(case=cases(), noc=_factors, link=_factors)
def test_faster_noc_and_links_are_never_slower(case: Case, noc: float, link: float) -> None:
    base = case.run()
    _not_slower(case.run(with_interconnect(_system(case.system), noc, link)), base)


# --- (b) breakdowns sum to totals ----------------------------------------------------------------


def _check_phase_sums(phase: PhaseCost, system: System) -> None:
    cost = phase.cost
    assert math.isclose(sum(cost.energy_breakdown_j.values()), cost.energy_j, rel_tol=REL)
    plan = phase.plan
    from_steps = 0.0
    for sc in phase.steps:
        copies = plan.stages if sc.step.stage < 0 else 1
        from_steps += (sum(sc.energy_by_category_j) * sc.step.repeat * copies
                       * plan.chips_per_stage * plan.microbatches)
    dynamic = cost.energy_j - phase.static_w * phase.time_s
    if phase.power_capped:
        # DVFS under the cap: less energy per action, drawn at exactly the limit
        limit = dynamic_limit_w(system, plan.parallelism.chips_per_replica)
        assert dynamic < from_steps
        assert math.isclose(dynamic / phase.time_s, limit, rel_tol=REL)
    else:
        # every action's energy plus static power over the call, nothing else
        assert math.isclose(dynamic + phase.static_w * phase.time_s,
                            from_steps + phase.static_w * phase.time_s, rel_tol=REL)
    assert math.isclose(cost.energy_breakdown_j["static"], phase.static_w * phase.time_s, rel_tol=REL)


@PROPERTY
@given(case=cases())
def test_energy_breakdowns_sum_to_totals(case: Case) -> None:
    result = case.run()
    d = result.to_dict()
    breakdown = d["energy_breakdown_j_per_token"]
    assert math.isclose(sum(breakdown.values()), d["energy_j_per_token"], rel_tol=REL)
    for phase in (result.chosen.prefill, result.chosen.decode):
        _check_phase_sums(phase, result.system)
    # whole system: the busy replicas' runs, and every other chip (with its hosts' share and
    # the racks' overhead) at idle power for as long
    c, system = result.chosen, result.system
    replica_j = (c.prefill.cost.energy_j + (case.output_tokens - 1) * c.decode.cost.energy_j
                 + c.prefill.static_w * c.request_overhead_s)
    # chips outside the busy replicas: static power at the wall (idle, active floor, hosts' share,
    # fans and supply losses at that load), plus the racks' overhead
    idle_w = (static_power_w(system, d["chips_idle"])[0]
              + system.host.rack_overhead_w * system.rack_share)
    busy = d["chips_busy"] // result.parallelism.chips_per_replica
    assert d["chips_busy"] + d["chips_idle"] == system.chip_count
    total_j = busy * replica_j + idle_w * d["e2e_latency_s"]
    assert math.isclose(d["energy_j_per_token"] * result.batch * case.output_tokens, total_j,
                        rel_tol=REL)
    assert d["power_w"] >= system.idle_w * (1 - REL)
    mem = d["memory_bytes"]
    assert math.isclose(mem["weights"] + mem["kv_cache"] + mem["activations"], mem["total"],
                        rel_tol=REL)


# --- (c) a larger batch never shortens a decode step ---------------------------------------------


def _decode_not_shorter(case: Case, larger_batch: int) -> None:
    small = case.run()
    large = case.run(batch=larger_batch)
    assert large.parallelism.tp == small.parallelism.tp
    assert large.parallelism.pp == small.parallelism.pp
    assert large.tpot_s >= small.tpot_s * (1 - REL), (small.tpot_s, large.tpot_s)


@PROPERTY
@given(case=cases(max_batch=1024), extra=st.integers(1, 256))
def test_decode_step_time_is_non_decreasing_in_batch(case: Case, extra: int) -> None:
    _decode_not_shorter(case, case.batch + extra)


def test_moe_decode_step_is_not_shorter_at_a_larger_batch() -> None:
    """Regression: the expert GEMM's efficiency once used a rounded tokens-per-expert."""
    case = Case("mixtral-8x7b", "dgx-h100", 517, 128, 16, "bf16", tp=8, pp=1, stages=None)
    _decode_not_shorter(case, 518)


# --- (d) determinism -----------------------------------------------------------------------------


@PROPERTY
@given(case=cases())
def test_identical_inputs_give_identical_outputs(case: Case) -> None:
    first, second = case.run(), case.run()
    assert first.to_dict() == second.to_dict()
    assert first.op_rows() == second.op_rows()
    again = json.loads(json.dumps(first.to_dict()))  # the contract is plain JSON
    assert again == first.to_dict()


# --- (e) decode is never faster than reading the weights once ------------------------------------


def _weight_bytes_read_per_decode_step(result: RunResult, cfg: ModelConfig) -> float:
    """Weight bytes per chip every decode step must read: all of them except the rows of
    gathered tables (an untied token embedding, a position table) and, in a MoE, the experts
    that no token of the step is routed to (uniform routing, as the workload model assumes)."""
    c = result.chosen
    fmt = result.precision.weights
    shards = c.parallelism.tp * c.parallelism.pp
    gathered = (0 if cfg.tie_word_embeddings else cfg.vocab_size * cfg.hidden_size) + (
        cfg.max_position_embeddings * cfg.hidden_size if cfg.learned_positions else 0)
    untouched = 0.0
    if cfg.is_moe:
        phase = c.decode.plan.phase
        tokens = phase.batch * phase.new_tokens
        touched = 1.0 - (1.0 - cfg.experts_per_token / cfg.num_experts) ** tokens
        experts = cfg.num_layers * 3 * cfg.num_experts * cfg.hidden_size * cfg.intermediate_size
        untouched = experts * (1.0 - touched)
    return c.memory.weights_bytes - fmt.nbytes(1) * (gathered + untouched) / shards


def _weight_level_bandwidth(result: RunResult, system: System) -> float:
    """Peak read bandwidth of the storage level the weights live in, bytes/s (whole chip); of
    the fastest one where they are split across levels."""
    levels = system.chip.levels()
    if system.chip.architecture == "gpu":
        return next(lv.read_bytes_per_s for lv in levels if lv.scope == "offchip")
    note = result.chosen.decode.plan.notes[0]
    assert note.startswith("weights in "), note
    names = note.removeprefix("weights in ").split(",")[0].split(" and ")
    return max(lv.read_bytes_per_s for lv in levels if lv.name in names)


@PROPERTY
@given(case=cases())
def test_tpot_is_at_least_one_read_of_the_weights(case: Case) -> None:
    result = case.run()
    cfg, system = _model(case.model), _system(case.system)
    weight_bytes = _weight_bytes_read_per_decode_step(result, cfg)
    assert weight_bytes > 0.5 * result.chosen.memory.weights_bytes * (0.25 if cfg.is_moe else 1)
    floor_s = weight_bytes / _weight_level_bandwidth(result, system)
    assert result.tpot_s >= floor_s * (1 - REL), (result.tpot_s, floor_s)


# --- (f) nothing negative ------------------------------------------------------------------------


@PROPERTY
@given(case=cases())
def test_energies_and_times_are_non_negative(case: Case) -> None:
    result = case.run()
    d = result.to_dict()
    assert all(v >= 0.0 for v in d["energy_breakdown_j_per_token"].values()), d
    assert d["ttft_s"] >= 0.0
    assert d["tpot_s"] > 0.0
    assert d["power_w"] > 0.0
    for phase in (result.chosen.prefill, result.chosen.decode):
        assert all(e >= 0.0 for sc in phase.steps for e in sc.energy_by_category_j)
        assert all(sc.time_s >= 0.0 for sc in phase.steps)
