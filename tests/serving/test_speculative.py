"""Speculative decoding: tokens per verify (closed forms), draft + verify pricing through the
engine, the drafter's memory, the `tegel run` flags, and `tegel serve` (seeded accepted
lengths per request)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from tegel.cli import main
from tegel.errors import TegelError
from tegel.mapping.params import default_params
from tegel.serving.llm import model_weight_bytes
from tegel.serving.run import RunResult, run
from tegel.serving.scenario import RunOptions, Scenario
from tegel.serving.serve import serve
from tegel.serving.speculative import (
    Speculation,
    acceptance_iid,
    tokens_per_step_iid,
    tokens_per_step_of_lengths,
    verify_folded_graph,
)
from tegel.serving.speculative_cost import memory_with_draft
from tegel.workload.model_config import load_model_config

TARGET, SYSTEM, IN, OUT = "llama-3.1-70b", "dgx-h100", 1024, 256
TP8 = RunOptions(tp=8)


@pytest.fixture(scope="module")
def draft_model():
    return load_model_config("llama-3.2-1b")


def _run(batch: int | str = 1, spec: Speculation | None = None,
         options: RunOptions = TP8) -> RunResult:
    return run(TARGET, SYSTEM, batch, IN, OUT, "fp8", options=options, speculation=spec)


# -- expected tokens per verify ------------------------------------------------------------

def test_tokens_per_step_iid_closed_form() -> None:
    # 1 + 0.8 + 0.8^2 + 0.8^3 + 0.8^4, the geometric sum Leviathan et al. give in closed form
    assert tokens_per_step_iid(0.8, 4) == pytest.approx(3.3616, abs=1e-12)
    assert tokens_per_step_iid(0.0, 7) == 1.0
    assert tokens_per_step_iid(1.0, 5) == 6.0
    assert tokens_per_step_iid(1.0 - 1e-9, 5) == pytest.approx(6.0, rel=1e-6)  # the limit


@pytest.mark.parametrize("alpha, k", [(0.0, 1), (0.3, 2), (0.8, 4), (0.95, 7), (1.0, 3)])
def test_iid_distribution_agrees_with_closed_form(alpha: float, k: int) -> None:
    probs = acceptance_iid(alpha, k)
    assert len(probs) == k + 1
    assert sum(probs) == pytest.approx(1.0)
    assert tokens_per_step_of_lengths(probs) == pytest.approx(tokens_per_step_iid(alpha, k))


def test_tokens_per_step_from_distribution(draft_model) -> None:
    spec = Speculation("draft", 3, acceptance_lengths=(0.1, 0.2, 0.3, 0.4), draft_model=draft_model)
    assert spec.tokens_per_step == pytest.approx(1 + 0.2 + 2 * 0.3 + 3 * 0.4)
    assert spec.accepted_probabilities == (0.1, 0.2, 0.3, 0.4)
    never = Speculation("ngram", 2, acceptance_lengths=(1.0, 0.0, 0.0))
    assert never.tokens_per_step == 1.0


@pytest.mark.parametrize("kwargs, flag", [
    ({"method": "medusa", "draft_tokens": 4, "acceptance_rate": 0.5}, "--speculative"),
    ({"method": "ngram", "draft_tokens": 0, "acceptance_rate": 0.5}, "--draft-tokens"),
    ({"method": "ngram", "draft_tokens": 4, "acceptance_rate": 1.01}, "--acceptance"),
    ({"method": "ngram", "draft_tokens": 4, "acceptance_rate": -0.1}, "--acceptance"),
    ({"method": "ngram", "draft_tokens": 4}, "--acceptance"),
    ({"method": "ngram", "draft_tokens": 2, "acceptance_rate": 0.5,
      "acceptance_lengths": (1.0, 0.0, 0.0)}, "--acceptance"),
    ({"method": "ngram", "draft_tokens": 2, "acceptance_lengths": (0.5, 0.5)},
     "--acceptance-lengths"),
    ({"method": "ngram", "draft_tokens": 2, "acceptance_lengths": (0.5, 0.4, 0.2)},
     "--acceptance-lengths"),
    ({"method": "ngram", "draft_tokens": 2, "acceptance_lengths": (1.2, -0.2, 0.0)},
     "--acceptance-lengths"),
    ({"method": "draft", "draft_tokens": 4, "acceptance_rate": 0.5}, "--draft"),
])
def test_bad_specs_name_their_flag(kwargs: dict, flag: str) -> None:
    with pytest.raises(TegelError, match=f"^{flag}:"):
        Speculation(**kwargs)


def test_draft_model_must_share_the_vocabulary() -> None:
    spec = Speculation("draft", 4, 0.8, draft_model=load_model_config("gpt2"))
    with pytest.raises(TegelError, match=r"^--draft: gpt2 has a vocabulary"):
        _run(1, spec)


# -- pricing -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def plain() -> RunResult:
    return _run(1)


@pytest.fixture(scope="module")
def drafted(draft_model) -> RunResult:
    return _run(1, Speculation("draft", 4, 0.8, draft_model=draft_model))


def test_iteration_is_k_drafts_plus_one_verify(drafted: RunResult, draft_model) -> None:
    sp = drafted.chosen.speculative
    assert sp is not None and sp.draft is not None
    assert sp.verify.plan.phase.new_tokens == 5 and sp.draft.plan.phase.new_tokens == 1
    kv = IN + OUT // 2
    assert sp.verify.plan.phase.past_tokens == sp.draft.plan.phase.past_tokens == kv
    step = 4 * sp.draft.time_s + sp.verify.time_s
    # the target scores every draft and the token after them: logits for all 5 new tokens
    graph = verify_folded_graph(load_model_config(TARGET), sp.verify.plan.phase, drafted.precision)
    assert graph.outputs[0].shape[:2] == (1, 5)
    assert drafted.tpot_s == pytest.approx(step / 3.3616)
    assert {row["phase"] for row in drafted.op_rows()} == {"prefill", "decode", "draft", "verify"}
    # the draft pass is exactly what `tegel run` prices for the draft model on the same chips
    alone = run(draft_model, SYSTEM, 1, IN, OUT, "fp8", options=TP8)
    assert sp.draft.time_s == pytest.approx(alone.tpot_s, rel=1e-12)


def test_memory_bound_decode_gains_between_1_5_and_e(plain: RunResult, drafted: RunResult) -> None:
    sp = drafted.chosen.speculative
    assert sp is not None
    e = sp.tokens_per_step
    gain = drafted.tokens_per_s_per_user / plain.tokens_per_s_per_user
    assert 1.5 < gain < e
    # the verify of 5 tokens at batch 1 is memory-bound: barely dearer than one decode step
    assert plain.tpot_s <= sp.verify.time_s < 1.1 * plain.tpot_s
    assert drafted.chosen.decode.time_s == pytest.approx(plain.tpot_s)  # the plain step, kept
    assert drafted.to_dict()["speculative"]["speedup_per_user"] == pytest.approx(gain)


def test_energy_per_token_is_the_iteration_over_e(drafted: RunResult) -> None:
    ev, sp = drafted.chosen, drafted.chosen.speculative
    assert sp is not None and sp.draft is not None
    e = sp.tokens_per_step
    for i, total in enumerate(ev.replica_energy_by_category_j()):
        per_token = (4 * sp.draft.cost.energy_by_category_j[i]
                     + sp.verify.cost.energy_by_category_j[i]) / e
        expected = ev.prefill.cost.energy_by_category_j[i] + (OUT - 1) * per_token
        if i == len(ev.replica_energy_by_category_j()) - 1:  # static: plus host work's idle
            expected += ev.prefill.static_w * ev.request_overhead_s
        assert total == pytest.approx(expected)


def test_zero_acceptance_is_slower_than_plain_decode(plain: RunResult, draft_model) -> None:
    never = _run(1, Speculation("draft", 4, 0.0, draft_model=draft_model))
    assert never.chosen.speculative is not None
    assert never.chosen.speculative.tokens_per_step == 1.0
    assert never.tpot_s > plain.tpot_s
    assert never.energy_j_per_token > plain.energy_j_per_token


def test_gain_shrinks_at_a_large_compute_bound_batch(plain: RunResult, drafted: RunResult,
                                                     draft_model) -> None:
    spec = Speculation("draft", 4, 0.8, draft_model=draft_model)
    big_plain, big = _run(512), _run(512, spec)
    small_gain = drafted.tokens_per_s_per_user / plain.tokens_per_s_per_user
    big_gain = big.tokens_per_s_per_user / big_plain.tokens_per_s_per_user
    assert big_gain < small_gain
    assert big_gain < 1.0  # verifying 5 tokens for 512 sequences costs more than E steps save


def test_ngram_drafts_for_free(plain: RunResult) -> None:
    r = _run(1, Speculation("ngram", 4, 0.8))
    sp = r.chosen.speculative
    assert sp is not None and sp.draft is None
    assert sp.draft_cost.time_s == 0.0 and r.to_dict()["speculative"]["draft_s_per_step"] == 0.0
    assert r.tpot_s == pytest.approx(sp.verify.time_s / sp.tokens_per_step)
    assert r.chosen.memory == plain.chosen.memory  # no weights, no KV cache of its own


def test_drafter_memory_shrinks_the_largest_batch(draft_model) -> None:
    auto = RunOptions(tp=8, max_batch_per_replica=4096)
    spec = Speculation("draft", 4, 0.8, draft_model=draft_model)
    plain = _run("auto", options=auto)
    ngram = _run("auto", Speculation("ngram", 4, 0.8), options=auto)
    drafted = _run("auto", spec, options=auto)
    assert plain.batch < 4096  # memory, not the cap, sets it
    assert ngram.batch == plain.batch  # the bisection finds what llm.max_batch finds
    assert drafted.batch < plain.batch
    s = Scenario(load_model_config(TARGET), None, IN, OUT, drafted.precision, speculation=spec)
    par = drafted.parallelism
    assert memory_with_draft(s, drafted.system, par, drafted.batch, default_params(), auto).fits
    assert not memory_with_draft(s, drafted.system, par, drafted.batch + 1, default_params(),
                                 auto).fits


def test_drafter_weights_are_counted(plain: RunResult, drafted: RunResult, draft_model) -> None:
    extra = drafted.chosen.memory.weights_bytes - plain.chosen.memory.weights_bytes
    assert extra == pytest.approx(model_weight_bytes(draft_model, drafted.precision) / 8)
    assert drafted.chosen.memory.kv_cache_bytes > plain.chosen.memory.kv_cache_bytes


def test_eagle_head_is_one_layer_of_the_target(plain: RunResult) -> None:
    r = _run(1, Speculation("eagle", 4, 0.8))
    sp = r.chosen.speculative
    assert sp is not None and sp.draft is not None
    cfg = load_model_config(TARGET)
    one_layer = (model_weight_bytes(replace(cfg, num_layers=2), r.precision)
                 - model_weight_bytes(replace(cfg, num_layers=1), r.precision))
    assert sp.drafter_memory.weights_bytes * 8 == pytest.approx(one_layer)
    assert one_layer == pytest.approx(model_weight_bytes(cfg, r.precision) / cfg.num_layers,
                                      rel=0.05)
    # one layer + LM head per pass: cheaper than the 16-layer draft model, dearer than nothing
    assert 0.0 < sp.draft.time_s < plain.tpot_s


# -- tegel run -----------------------------------------------------------------------------

SPEC_ARGS = ("run", TARGET, "--on", SYSTEM, "--precision", "fp8", "--input", str(IN),
             "--output", str(OUT))


def test_cli_json_says_what_was_assumed(capsys: pytest.CaptureFixture[str],
                                        drafted: RunResult) -> None:
    assert main([*SPEC_ARGS, "--speculative", "draft", "--draft", "llama-3.2-1b",
                 "--draft-tokens", "4", "--acceptance", "0.8", "--tp", "8", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    s = d["speculative"]
    assert (s["method"], s["draft_tokens"], s["draft_model"]) == ("draft", 4, "llama-3.2-1b")
    assert s["acceptance_rate"] == 0.8 and s["acceptance_lengths"] is None
    assert s["tokens_per_step"] == pytest.approx(3.3616)
    assert s["step_s"] == pytest.approx(s["draft_s_per_step"] + s["verify_s_per_step"])
    assert d["tpot_s"] == pytest.approx(s["step_s"] / s["tokens_per_step"])
    assert d["tpot_s"] == pytest.approx(drafted.tpot_s)
    assert math.isclose(d["tokens_per_s_per_user"], 1 / d["tpot_s"])


def test_cli_table_and_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*SPEC_ARGS, "--speculative", "eagle", "--draft-tokens", "3",
                 "--acceptance-lengths", "0.1,0.2,0.3,0.4"]) == 0
    out = capsys.readouterr().out
    assert "speculative decoding: EAGLE-style head" in out
    assert "E = 3 tokens per verify" in out
    assert "draft (3 passes)" in out and "verify (4 tokens)" in out


@pytest.mark.parametrize("extra, flag", [
    (("--speculative", "ngram", "--acceptance", "1.5"), "--acceptance"),
    (("--speculative", "ngram", "--acceptance-lengths", "0.5,0.5"), "--acceptance-lengths"),
    (("--speculative", "ngram", "--acceptance-lengths", "x,y"), "--acceptance-lengths"),
    (("--speculative", "ngram", "--draft-tokens", "0", "--acceptance", "0.5"), "--draft-tokens"),
    (("--speculative", "draft", "--acceptance", "0.5"), "--draft"),
    (("--speculative", "ngram", "--draft", "llama-3.2-1b", "--acceptance", "0.5"), "--draft"),
    (("--acceptance", "0.5"), "--acceptance"),
])
def test_cli_bad_input_is_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                          extra: tuple[str, ...], flag: str) -> None:
    assert main([*SPEC_ARGS, *extra]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"tegel: error: {flag}:"), err
    assert err.count("\n") == 1


# -- tegel serve ---------------------------------------------------------------------------

SMALL, GPU = "llama-3.1-8b", "h100-sxm"


def test_serve_lone_request_tpot_is_tegel_run(draft_model) -> None:
    spec = Speculation("draft", 4, 0.8, draft_model=draft_model)
    served = serve(TARGET, SYSTEM, None, "continuous", "fp8", requests=20, rate_per_s=0.2,
                   input_tokens=IN, output_tokens=OUT, options=TP8, speculation=spec)
    alone = _run(1, spec)
    assert served.unloaded[1] == pytest.approx(alone.tpot_s, rel=1e-9)  # the same two passes
    assert served.completed == 20
    # sampled accepted lengths: the median request is near the expectation, not at it
    assert float(np.median(served.tpot())) == pytest.approx(alone.tpot_s, rel=0.1)
    assert served.tokens_per_verify == pytest.approx(spec.tokens_per_step, rel=0.05)
    assert served.to_dict()["speculative"]["tokens_per_verify_simulated"] == \
        served.tokens_per_verify


def test_serve_always_accepted_drafts_take_out_over_k_plus_1_verifies() -> None:
    spec = Speculation("ngram", 3, acceptance_lengths=(0.0, 0.0, 0.0, 1.0))
    r = serve(SMALL, GPU, None, "continuous", requests=1, input_tokens=512, output_tokens=257,
              speculation=spec)
    assert r.tokens_per_verify == 4.0
    assert r.outcome.iterations == 1 + 256 // 4  # one prefill, then 4 tokens per verify


def test_serve_zero_acceptance_keeps_plain_progress_and_costs_more() -> None:
    options = RunOptions(tp=1)
    kw = {"requests": 64, "input_tokens": 512, "output_tokens": 128, "options": options}
    plain = serve(SMALL, GPU, None, "chunked", **kw)
    never = serve(SMALL, GPU, None, "chunked", speculation=Speculation("ngram", 1, 0.0), **kw)
    assert never.tokens_per_verify == 1.0
    assert never.outcome.iterations == plain.outcome.iterations  # one token per step, as plain
    assert float(np.median(never.tpot())) > float(np.median(plain.tpot()))


def test_serve_speculation_completes_under_preemption_and_is_seeded(draft_model) -> None:
    spec = Speculation("draft", 4, 0.8, draft_model=draft_model)
    kw = {"requests": 300, "concurrency": 200, "lengths": "fixed:in=4000,out=1500",
          "speculation": spec}
    r = serve(SMALL, GPU, None, "chunked", seed=1, **kw)
    assert r.preemptions > 0 and r.completed == 300
    assert r.outcome.records.generated == [1500] * 300  # exactly its output, none lost
    assert r.outcome.peak_kv_fraction <= 1.0
    assert r.tokens_per_verify == pytest.approx(spec.tokens_per_step, rel=0.01)
    again = serve(SMALL, GPU, None, "chunked", seed=1, **kw)
    other = serve(SMALL, GPU, None, "chunked", seed=2, **kw)
    assert again.outcome.records.finish_s == r.outcome.records.finish_s
    assert other.outcome.records.finish_s != r.outcome.records.finish_s


def test_serve_drafter_memory_shrinks_the_kv_pool(draft_model) -> None:
    kw = {"requests": 8, "input_tokens": 256, "output_tokens": 16, "options": RunOptions(tp=1)}
    plain = serve(SMALL, GPU, None, "chunked", **kw)
    ngram = serve(SMALL, GPU, None, "chunked", speculation=Speculation("ngram", 4, 0.5), **kw)
    drafted = serve(SMALL, GPU, None, "chunked",
                    speculation=Speculation("draft", 4, 0.5, draft_model=draft_model), **kw)
    assert ngram.pools.kv_blocks == plain.pools.kv_blocks
    assert drafted.pools.kv_blocks < plain.pools.kv_blocks


def test_cli_serve_says_expected_and_simulated_e(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", SMALL, "--on", GPU, "--requests", "8", "--input", "256", "--output",
                 "64", "--speculative", "ngram", "--acceptance", "0.6", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["speculative"]
    assert s["method"] == "ngram" and s["tokens_per_step"] == pytest.approx(
        tokens_per_step_iid(0.6, 4))
    assert 1.0 <= s["tokens_per_verify_simulated"] <= 5.0
    assert main(["serve", SMALL, "--on", GPU, "--speculative", "eagle", "--acceptance", "2"]) == 2
    assert capsys.readouterr().err.startswith("tegel: error: --acceptance:")
