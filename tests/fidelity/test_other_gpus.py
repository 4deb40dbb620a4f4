"""Other GPUs: a never-fitted validation set, predicted from each GPU's specification and its
own microbenchmarks (mapping/data/gpu_chips.yaml) with the serving shares fitted on H100."""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from tegel.errors import TegelError
from tegel.fidelity import cases, validate
from tegel.fidelity.cases import CALIBRATION_GPU, gpu_system, other_gpu_entries, read_entry
from tegel.fidelity.validate import OTHER_GPUS
from tegel.hardware import list_presets, load_system
from tegel.mapping.gpu_data import chip_table
from tegel.mapping.params import default_params
from tegel.mapping.plan import Parallelism, PlanRequest, StepKind
from tegel.mapping.registry import policy_for
from tegel.workload.dtypes import DType
from tegel.workload.folding import folded_graph
from tegel.workload.llm import Phase, Precision
from tegel.workload.model_config import load_model_config


@pytest.fixture(scope="module")
def report():
    return validate(other_gpu_entries(), with_serving=False)


def test_every_entry_is_another_gpu_with_a_source_and_validated_or_explained(report) -> None:
    entries = other_gpu_entries()
    assert len(entries) >= 100
    ids = [e["id"] for _, e in entries]
    assert len(ids) == len(set(ids))
    for _, e in entries:
        assert e["kind"] == "measured" and e["source"]["title"] and e["source"]["url"]
        stated = read_entry(e)
        assert getattr(stated, "gpu", None) != CALIBRATION_GPU
    seen = {r.case.id for r in report.rows} | {u.id for u in (*report.unmapped, *report.failed)}
    assert seen == set(ids)
    assert len(report.rows) >= 0.95 * len(ids)
    assert {r.case.gpu for r in report.rows} == {"h200", "b200", "mi300x", "a100-80gb", "h100-nvl",
                                                 "h100-pcie"}


def test_predictions_of_other_gpus_stay_within_what_was_reached(report) -> None:
    """Out of sample by construction (nothing here is fitted). Not the issue's targets
    (throughput <= 12 %, TTFT <= 20 %: see docs/fidelity.md for what is reached and why): a
    guard that a change does not make the GPU model worse on hardware it was not fitted to."""
    throughput = report.mape("throughput", gpu=OTHER_GPUS)
    ttft = report.mape("ttft", gpu=OTHER_GPUS)
    # 18.6 % since the Azure MI300X vLLM entries run with the concurrency their benchmark code
    # set (1,000 sequences, not vLLM's default 256): MI300X 38 %, the others below 18 %; 19.9 %
    # with the three H100 NVL / PCIe results
    assert throughput is not None and throughput < 20.0
    assert ttft is not None and ttft < 21.0
    # Known misses, bounded where they stand so they cannot grow unseen: MI300X (above); the
    # H100 NVL (400 W) and PCIe (350 W) cards of the MLPerf v4.1 llama2-70b results, predicted
    # at +40 to +70 % and +94 % (docs/fidelity.md: they run at 0.67 and 0.39 of the SXM part's
    # throughput where the power-capped model gives 0.87 and 0.66)
    bounds = {"mi300x": 40.0, "h100-nvl": 60.0, "h100-pcie": 100.0}
    for gpu, groups in report.gpu_summary().items():
        assert groups["throughput"]["mape_percent"] < bounds.get(gpu, 20.0), gpu


def test_every_gpu_preset_has_cited_microbenchmarks_within_its_peaks() -> None:
    table = default_params().gpu.chips
    gpus = {p.name for p in list_presets()
            if p.kind == "chip" and load_system(p.name).chip.architecture == "gpu"}
    validated = {chip for _, chip, _ in cases._GPUS}  # the GPUs tegel validate measures
    measured = {r.chip for r in table.rates}
    # every validated GPU is a preset; the H100 NVL and PCIe cards have no published
    # microbenchmarks and run the table's stated default shares (their plans say so)
    assert validated <= gpus and measured <= gpus
    assert validated - measured == {"h100-nvl", "h100-pcie"}
    # GPU presets without measurements of their own (issue 15's) run the table's stated default
    assert all(not table.of(g).measured for g in gpus - {r.chip for r in table.rates})
    for r in table.rates:
        assert 0.3 < r.hbm_fraction <= 1.0 and all(0.2 < s <= 1.0 for _, s in r.gemm)
    mi300x, h100 = table.of("mi300x"), table.of("h100-sxm")
    assert mi300x.gemm_fraction("fp8") < h100.gemm_fraction("fp8")  # hipBLASLt vs cuBLASLt
    assert not table.of("my-gpu").measured


@pytest.mark.parametrize(("body", "message"), [
    ({"chips": {"x": {"gemm": {"fp8": {"achieved_flops_per_s": 2e15, "peak_flops_per_s": 1e15,
                                       "source": "s"}},
                      "hbm": {"achieved_bytes_per_s": 1, "peak_bytes_per_s": 2, "source": "s"}}},
      "default": {"gemm": 0.5, "hbm": 0.5}}, r"chips.x.gemm.fp8: achieved 2e\+15 exceeds the peak"),
    ({"chips": {"x": {"gemm": {"fp8": {"achieved_flops_per_s": 1, "peak_flops_per_s": 2}},
                      "hbm": {"achieved_bytes_per_s": 1, "peak_bytes_per_s": 2, "source": "s"}}},
      "default": {"gemm": 0.5, "hbm": 0.5}}, "chips.x.gemm.fp8: missing source"),
    ({"chips": {}}, "expected 'chips' and 'default' mappings"),
])
def test_a_bad_microbenchmark_table_names_the_entry(body: dict, message: str) -> None:
    with pytest.raises(TegelError, match=message):
        chip_table(yaml.safe_load(yaml.safe_dump(body)), "gpu_chips.yaml")


def _plan(system_name: str, params, phase: Phase, precision: Precision):  # type: ignore[no-untyped-def]
    system = load_system(system_name)
    cfg = load_model_config("llama-3.1-8b")
    graph = folded_graph(cfg, phase, precision)
    req = PlanRequest(phase, Parallelism(), cfg.num_layers, 1)
    return policy_for(system.chip).plan(graph, system, req, params).plan


def test_a_gpu_computes_at_its_measured_share_times_the_serving_share() -> None:
    """A large GEMM reaches the chip's microbenchmark share x the fitted serving share (tile
    and wave quantization aside); halving the chip's measured share halves it."""
    params = default_params()
    fp8 = Precision.uniform(DType.FP8_E4M3)
    for chip in ("h100-sxm", "mi300x"):
        plan = _plan(chip, params, Phase.prefill(8, 2048), fp8)
        best = max(s.compute_efficiency for s in plan.steps if s.kind is StepKind.GEMM)
        share = params.gpu.rates(chip).gemm_fraction("fp8") * params.gpu.gemm_serving_fraction
        assert 0.8 * share < best <= share
        assert plan.bandwidth_efficiency[-1] == pytest.approx(
            params.gpu.rates(chip).hbm_fraction * params.gpu.hbm_serving_fraction)
    table = params.gpu.chips
    slow = replace(table, rates=tuple(replace(r, gemm=tuple((c, s / 2) for c, s in r.gemm))
                                      for r in table.rates))
    halved = _plan("h100-sxm", replace(params, gpu=replace(params.gpu, chips=slow)),
                   Phase.prefill(8, 2048), fp8)
    before = _plan("h100-sxm", params, Phase.prefill(8, 2048), fp8)
    for a, b in zip(halved.steps, before.steps, strict=True):
        if a.kind is StepKind.GEMM:
            assert a.compute_efficiency == pytest.approx(b.compute_efficiency / 2)


def test_a_stack_without_gqa_kernels_reads_the_kv_cache_once_per_query_head_from_l2() -> None:
    """Llama-3.1-8B has 4 query heads per KV head: a decode step of the v0.8 stack (XQA off)
    reads the cache 4 times through L2 but once from HBM (the group's blocks run side by side),
    at the per-head kernel's share of L2 bandwidth; the current stack reads it once, at the
    plan's shares."""
    params = default_params()
    old = replace(params, gpu=params.gpu.for_software("trtllm-0.8"))
    phase = Phase.decode(16, 4096)
    precision = Precision.uniform(DType.FP8_E4M3)
    now_plan, old_plan = _plan("h100-sxm", params, phase, precision), _plan("h100-sxm", old, phase,
                                                                            precision)
    l2 = now_plan.levels.index("l2")

    def attention(plan):  # type: ignore[no-untyped-def]
        return next(s for s in plan.steps if s.kind is StepKind.ATTENTION)

    cfg = load_model_config("llama-3.1-8b")
    group = cfg.num_heads // cfg.num_kv_heads
    now, then = attention(now_plan), attention(old_plan)
    assert then.reads[-1] == pytest.approx(now.reads[-1])
    assert then.reads[l2] == pytest.approx(now.reads[l2] * group, rel=0.02)
    assert now.level_share == ()
    gpu = old.gpu
    assert then.level_share[l2] == pytest.approx(gpu.per_head_attention_l2_fraction
                                                 / gpu.l2_bandwidth_fraction)
    assert all(x == 1.0 for i, x in enumerate(then.level_share) if i != l2)


def test_the_per_head_kernel_is_bound_by_l2_so_h200_decodes_a_gqa_model_no_faster() -> None:
    """H100 and H200 are one die with one L2 and different HBM (3.35 vs 4.8 TB/s): a GQA decode
    attention of the per-query-head kernel takes the same time on both (L2-bound), where the
    current stack's GQA-aware kernel is HBM-bound and faster on H200 by about the bandwidth
    ratio. The v0.8.0 page measured Mistral-7B 128/2048 at batch 120 at 8,619 and 8,968 tokens/s
    on the two."""
    from tegel.evaluate.terms import Rates, step_terms

    params = default_params()
    old = replace(params, gpu=params.gpu.for_software("trtllm-0.8"))
    phase = Phase.decode(120, 2048)
    precision = Precision.uniform(DType.FP8_E4M3)

    def attention_s(chip: str, p) -> float:  # type: ignore[no-untyped-def]
        plan = _plan(chip, p, phase, precision)
        rates = Rates.of(load_system(chip), plan)
        step = next(s for s in plan.steps if s.kind is StepKind.ATTENTION)
        terms = step_terms(step, rates)
        return max(terms.compute_s, *terms.level_s)

    assert attention_s("h200", old) == pytest.approx(attention_s("h100-sxm", old), rel=0.02)
    assert attention_s("h100-sxm", params) / attention_s("h200", params) > 1.25


def test_beam_search_reads_the_shared_prompt_once_per_beam_unless_the_stack_shares_it() -> None:
    """4 beams share a 1,000-token prompt's cache in memory (the op counts its reads once per
    request); TensorRT-LLM's generation kernel reads it per beam (`beam_kv_sharing` 0): the
    attention's HBM reads are the shared-once count x 1 / shared_prefix_fraction."""
    from tegel.workload.attention_counts import shared_prefix_fraction

    params = default_params()
    assert params.gpu.beam_kv_sharing == 0.0
    shared = replace(params, gpu=replace(params.gpu, beam_kv_sharing=1.0))
    phase = Phase(64, 1, 1040, 4, 1000)  # 16 requests x 4 beams, 1,040 cached, 1,000 shared
    precision = Precision.uniform(DType.FP8_E4M3)

    def attention_hbm(p) -> float:  # type: ignore[no-untyped-def]
        return sum(s.reads[-1] for s in _plan("h100-sxm", p, phase, precision).steps
                   if s.kind is StepKind.ATTENTION)

    per_beam, once = attention_hbm(params), attention_hbm(shared)
    fraction = shared_prefix_fraction(4, 1000, 1041)  # what the op counts, per beam
    assert 0.25 < fraction < 0.3
    assert per_beam > 3 * 0.9 * once  # most of the cache is the shared prompt
    assert per_beam == pytest.approx(once / fraction, rel=0.05)  # the query's reads aside


def test_other_gpu_systems_are_their_presets() -> None:
    assert gpu_system("b200", 8).name == "hgx-b200"
    assert gpu_system("a100-80gb", 8).scale_up is not None
    assert gpu_system("a100-80gb", 4).chip_count == 4
