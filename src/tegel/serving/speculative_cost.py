"""Speculative decoding priced by the engine: a decode iteration is k draft passes + one verify.

One iteration at the decode's KV length K (the mean, as for plain decode in `llm.py`):

- draft: k forward passes of the drafter (`Speculation.drafter`), one token per sequence each —
  `Phase.decode(batch, K)` of the drafter's own layer-folded graph, planned by the system's
  policy on the replica's chips and evaluated by the same evaluator as the target; none for
  n-gram lookup (its cost is taken as zero);
- verify: one forward pass of the target over k + 1 new tokens per sequence on top of K
  (`Phase(batch, k + 1, K)`), with logits (the LM head) for all k + 1 of them, planned and
  evaluated like any other phase.

It emits E tokens per sequence on average (`Speculation.tokens_per_step`), so time and energy
per generated token are the iteration's over E. Nothing here is a cost formula: both passes are
the engine's phases, added and scaled as `Cost` records.

The drafter runs on the replica's chips with the target's tensor-parallel degree and its
pipeline degree capped at the drafter's layers (an EAGLE head's one layer sits on one stage; the
chips of other stages are then not charged static power for the draft's time), expert
parallelism only when the drafter itself is MoE, and the same stages and micro-batches (capped
by `llm_request`). Its weights and its KV cache (for every sequence, as long as the target's)
share the chips' memory with the target's (`memory_with_draft`), so the largest batch that fits
shrinks (`max_batch_with_draft`). On a dataflow chip the drafter's plan is compiled as if it had
the tiles to itself — an optimistic bound (its weights are counted in memory all the same).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tegel.evaluate.analytical import PhaseCost
from tegel.evaluate.cost import Cost
from tegel.hardware import System
from tegel.mapping.params import Params
from tegel.mapping.plan import Parallelism, llm_request
from tegel.serving.llm import (
    Config,
    Evaluated,
    Memory,
    evaluate_request,
    max_batch,
    memory_per_chip,
    phase_requests,
)
from tegel.serving.oracle import Batch, IterationCost, Oracle, oracle_for
from tegel.serving.scenario import RunOptions, Scenario
from tegel.serving.speculative import Speculation, verify_folded_graph
from tegel.workload.folding import folded_graph
from tegel.workload.llm import Precision
from tegel.workload.model_config import ModelConfig


def drafter_parallelism(drafter: ModelConfig, target: Parallelism) -> Parallelism:
    """How the drafter is split over the target replica's chips (module doc)."""
    return Parallelism(target.tp, min(target.pp, drafter.num_layers),
                       target.ep if drafter.is_moe else 1, target.dp)


def drafter_memory(s: Scenario, system: System, par: Parallelism, batch_per_replica: int,
                   params: Params, options: RunOptions | None = None) -> Memory:
    """Bytes per chip the drafter adds at `batch_per_replica` sequences: its weights, its KV
    cache (each sequence's context, as the target's) and its transient activations; all zero for
    n-gram lookup. An EAGLE head's embedding and LM head are the target's: only its layer's
    weights count (the two-layer head's weights less the one-layer head's)."""
    spec = s.speculation
    target = memory_per_chip(s, system, par, batch_per_replica, params, options)
    drafter = spec.drafter(s.model) if spec is not None else None
    if drafter is None:
        return Memory(0.0, 0.0, 0.0, target.capacity_bytes)
    ds = replace(s, model=drafter, speculation=None)
    dpar = drafter_parallelism(drafter, par)
    own = memory_per_chip(ds, system, dpar, batch_per_replica, params, options)
    if spec is not None and spec.method == "eagle":
        two = memory_per_chip(replace(ds, model=replace(drafter, num_layers=2)), system, dpar,
                              batch_per_replica, params, options)
        own = replace(own, weights_bytes=two.weights_bytes - own.weights_bytes)
    return own


def memory_with_draft(s: Scenario, system: System, par: Parallelism, batch_per_replica: int,
                      params: Params, options: RunOptions | None = None) -> Memory:
    """`llm.memory_per_chip` of the target plus the drafter's weights and KV cache; activations
    are the larger of the two (the passes run one after the other). Without speculation, the
    target's alone."""
    target = memory_per_chip(s, system, par, batch_per_replica, params, options)
    if s.speculation is None:
        return target
    d = drafter_memory(s, system, par, batch_per_replica, params, options)
    return Memory(target.weights_bytes + d.weights_bytes,
                  target.kv_cache_bytes + d.kv_cache_bytes,
                  max(target.activation_bytes, d.activation_bytes), target.capacity_bytes)


def max_batch_with_draft(s: Scenario, system: System, par: Parallelism, limit: int,
                         params: Params, options: RunOptions | None = None) -> int:
    """Largest batch per replica whose `memory_with_draft` fits, at most `limit` (0: not even
    one); without speculation `llm.max_batch`. Found by bisection (memory grows with batch)."""
    if s.speculation is None:
        return max_batch(s, system, par, limit, params, options)

    def fits(b: int) -> bool:
        return memory_with_draft(s, system, par, b, params, options).fits

    if not fits(1):
        return 0
    if fits(limit):
        return limit
    lo, hi = 1, limit  # lo fits, hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


@dataclass(frozen=True, slots=True)
class SpeculativeCost:
    """One speculative decode iteration of a replica: one draft pass (None: n-gram lookup, free),
    done k times, and one verify pass; with the drafter's memory per chip."""

    speculation: Speculation
    draft: PhaseCost | None
    verify: PhaseCost
    drafter_memory: Memory

    @property
    def tokens_per_step(self) -> float:
        return self.speculation.tokens_per_step

    @property
    def draft_cost(self) -> Cost:
        """The k draft passes of an iteration."""
        if self.draft is None:
            return Cost()
        return self.draft.cost.scaled(self.speculation.draft_tokens)

    @property
    def iteration(self) -> Cost:
        """Seconds and joules of one iteration (k drafts + verify), whole replica."""
        return self.draft_cost + self.verify.cost

    @property
    def per_token(self) -> Cost:
        """Per generated token: the iteration over the E tokens it emits per sequence."""
        return self.iteration.scaled(1.0 / self.tokens_per_step)

    @property
    def host_j_per_token(self) -> float:
        """The hosts' part of `per_token`'s static energy, J."""
        host = self.verify.time_s * self.verify.host_w
        if self.draft is not None:
            host += self.draft_cost.time_s * self.draft.host_w
        return host / self.tokens_per_step

    @property
    def power_capped(self) -> bool:
        return self.verify.power_capped or (self.draft is not None and self.draft.power_capped)

    def to_dict(self) -> dict[str, Any]:
        step = self.iteration.time_s
        mem = self.drafter_memory
        return {**self.speculation.to_dict(),
                "step_s": step, "draft_s_per_step": self.draft_cost.time_s,
                "verify_s_per_step": self.verify.time_s,
                "draft_share_of_step": self.draft_cost.time_s / step,
                "tpot_s": self.per_token.time_s,
                "drafter_memory_bytes": {"weights": mem.weights_bytes,
                                         "kv_cache": mem.kv_cache_bytes, "scope": "per chip"}}


def price(s: Scenario, system: System, config: Config, options: RunOptions,
          params: Params) -> SpeculativeCost:
    """Draft and verify passes of one configuration at the decode step's KV length and
    micro-batching (`llm.phase_requests`), in the evaluator `options.sim` names."""
    spec = s.speculation
    if spec is None:
        raise ValueError("price() needs a scenario with speculation")
    _, decode = phase_requests(s, system, config, options.software)
    verify_req = replace(decode, phase=replace(decode.phase, new_tokens=spec.draft_tokens + 1))
    verify_graph = verify_folded_graph(s.model, verify_req.phase, s.precision)
    verify, _ = evaluate_request(verify_graph, system, verify_req, options.sim, params)
    drafter = spec.drafter(s.model)
    draft = None
    if drafter is not None:
        req = llm_request(drafter, system, decode.phase,
                          drafter_parallelism(drafter, config.parallelism), decode.stages,
                          decode.microbatches)
        draft, _ = evaluate_request(folded_graph(drafter, req.phase, s.precision), system,
                                    replace(req, software=options.software), options.sim, params)
    memory = drafter_memory(s, system, config.parallelism, config.batch_per_replica, params,
                            options)
    return SpeculativeCost(spec, draft, verify, memory)


def with_speculation(ev: Evaluated, s: Scenario, system: System, options: RunOptions,
                     params: Params) -> Evaluated:
    """`ev` (from `llm.evaluate_config`) with its decode priced as draft + verify and the
    drafter's memory added; unchanged without speculation."""
    if s.speculation is None:
        return ev
    memory = memory_with_draft(s, system, ev.parallelism, ev.batch_per_replica, params, options)
    return replace(ev, speculative=price(s, system, ev.config, options, params), memory=memory)


class SpeculativeRuntime:
    """What a serving replica needs to decode speculatively (`replica.py`, `tegel serve`):

    - the drafter's part of an iteration's cost: k passes of the drafter over the decoding
      sequences at their mean KV length, from the drafter's own oracle (none: n-gram lookup);
    - per request, a seeded stream of accepted drafts per verify, drawn from
      `Speculation.accepted_probabilities` (each verify emits accepted + 1 tokens), so a run is
      deterministic and a request's tokens advance by a sampled length at every iteration.
    """

    def __init__(self, spec: Speculation, drafter: Oracle | None, seed: int) -> None:
        self.spec, self.drafter, self.seed = spec, drafter, seed
        self.new_tokens = spec.draft_tokens + 1  # tokens a verify runs per sequence
        self.tokens_per_step = spec.tokens_per_step  # E, for the mean KV length's growth
        self._probabilities = np.asarray(spec.accepted_probabilities, dtype=float)
        self._probabilities /= self._probabilities.sum()
        self._emitted: dict[int, np.ndarray] = {}
        self.verifies = 0  # sequence-verifies run, and the tokens they kept (`count`)
        self.kept_tokens = 0

    def count(self, verifies: int, tokens: int) -> None:
        """Tally a request's verifies and the tokens it kept from them (its output's end cut)."""
        self.verifies += verifies
        self.kept_tokens += tokens

    @property
    def tokens_per_verify(self) -> float:
        """Tokens kept per verify over the run (E, less what the last verifies overshoot)."""
        return self.kept_tokens / self.verifies if self.verifies else math.nan

    def stream(self, r: int, longest: int) -> np.ndarray:
        """Tokens request `r` has emitted after its first i verifies, i = 0..longest (cumulative;
        at least one token each verify, so `longest` = its output tokens is always enough)."""
        found = self._emitted.get(r)
        if found is None:
            rng = np.random.default_rng((self.seed, r))
            accepted = rng.choice(len(self._probabilities), size=longest, p=self._probabilities)
            found = np.concatenate(([0], np.cumsum(accepted + 1)))
            self._emitted[r] = found
        return found

    def emitted(self, r: int, longest: int, start: int, verifies: int) -> int:
        """Tokens emitted by verifies start .. start + verifies - 1 of request `r`."""
        c = self.stream(r, longest)
        return int(c[min(start + verifies, len(c) - 1)] - c[min(start, len(c) - 1)])

    def verifies_for(self, r: int, longest: int, start: int, tokens: int) -> int:
        """Fewest verifies from `start` on that emit at least `tokens` tokens (0 for none;
        past the stream's end when it never does)."""
        if tokens <= 0:
            return 0
        c = self.stream(r, longest)
        base = c[min(start, len(c) - 1)]
        return int(np.searchsorted(c, base + tokens, side="left")) - start

    def with_drafts(self, verify: IterationCost, decodes: int, kv_tokens: float) -> IterationCost:
        """An iteration's cost with the k draft passes of its `decodes` sequences added."""
        if self.drafter is None or decodes == 0:
            return verify
        k = self.spec.draft_tokens
        draft = self.drafter.cost(Batch(decodes, kv_tokens, (), decodes))
        time = verify.time_s + k * draft.time_s
        energy = tuple(v + k * d for v, d in zip(verify.energy_by_category_j,
                                                 draft.energy_by_category_j, strict=True))
        host_w = (verify.host_w * verify.time_s + k * draft.host_w * draft.time_s) / time
        return IterationCost(time, energy, verify.static_w, host_w)


def runtime_for(spec: Speculation, target: ModelConfig, precision: Precision, system: System,
                config: Config, params: Params, software: str | None,
                seed: int) -> SpeculativeRuntime:
    """The runtime of `spec` on one replica configuration: the drafter's oracle on the
    replica's chips (`drafter_parallelism`, the same stages) and the seed of the streams."""
    drafter = spec.drafter(target)
    oracle = None if drafter is None else oracle_for(
        drafter, precision, system, drafter_parallelism(drafter, config.parallelism),
        config.stages, params, software)
    return SpeculativeRuntime(spec, oracle, seed)
