"""The parallelism search: which tensor, pipeline, expert and data-parallel degrees, how many
sequences per replica and how many pipeline stages serve a scenario best.

Candidates are power-of-two tensor parallelism (within a node where the policy says so) times
the policy's pipeline degrees, data parallelism over the rest, and for MoE models experts either
sharded like dense weights (all-reduce) or split over the tensor-parallel chips (all-to-all).
Each candidate that holds its weights and KV cache is planned at the stage counts the policy
offers, in increasing order until one is worse than the one before (more stages shorten each
stage and lengthen the pipeline: the objective is taken to have one optimum); the objective is
end-to-end latency at a fixed batch and throughput with batch None ("auto"). Design-space
exploration searches these configurations too, so the search is its own unit with its own tests."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from tegel.errors import TegelError
from tegel.hardware import System
from tegel.mapping.compiled import PlanError
from tegel.mapping.params import Params
from tegel.mapping.plan import Parallelism
from tegel.mapping.registry import policy_for
from tegel.report.text import si
from tegel.serving.llm import Config, Evaluated, evaluate_config
from tegel.serving.scenario import RunOptions, Scenario
from tegel.serving.speculative_cost import max_batch_with_draft, memory_with_draft, with_speculation

_NEAR = 1.0 - 1e-9


def candidate_parallelisms(s: Scenario, system: System, options: RunOptions) -> list[Parallelism]:
    """Parallelisms to consider: the options' degrees where given, the module doc's otherwise."""
    chips = system.chip_count
    policy = policy_for(system.chip)
    powers = [2**i for i in range(int(math.log2(chips)) + 1) if chips % 2**i == 0]
    out = []
    for t in [options.tp] if options.tp else powers:
        if policy.tp_within_node and not options.tp and t > system.scale_up_domain:
            continue
        rest = chips // t if chips % t == 0 else 0
        degrees = policy.pp_degrees(rest, s.model.num_layers) if rest else []
        for p_ in [options.pp] if options.pp else degrees:
            if chips % (t * p_):
                continue
            for e in [options.ep] if options.ep else ([1, t] if s.model.is_moe and t > 1 else [1]):
                if t % e:
                    raise TegelError(f"--ep {e} must divide --tp {t}")
                out.append(Parallelism(t, p_, e, chips // (t * p_)))
    if not out:
        raise TegelError(f"no parallelism with tp={options.tp} pp={options.pp} fits {chips} chips "
                         f"of {system.name}")
    return out


@dataclass(frozen=True, slots=True)
class Fit:
    """Sequences per replica a parallelism can hold (0: none), or by how much it falls short."""

    batch_per_replica: int
    shortfall_bytes: float = 0.0


def fit(s: Scenario, system: System, par: Parallelism, options: RunOptions, params: Params) -> Fit:
    """How many sequences per replica `par` serves: the largest that fits memory (batch None),
    else the scenario's batch over the replicas, if it fits; an in-flight batch on a stack that
    pages its KV cache holds each sequence's mean context (`llm.kv_tokens_held`). A drafter's
    weights and KV cache share the memory (`speculative_cost.memory_with_draft`)."""
    if s.batch is None:
        b = max_batch_with_draft(s, system, par, options.max_batch_per_replica, params, options)
        if b:
            return Fit(b)
        mem = memory_with_draft(s, system, par, 1, params, options)
    else:
        b = -(-s.batch // par.dp)
        mem = memory_with_draft(s, system, par, b, params, options)
        if mem.fits:
            return Fit(b)
    return Fit(0, mem.total_bytes - mem.capacity_bytes)


def better(a: Evaluated, b: Evaluated, throughput: bool) -> bool:
    """Whether `a` beats `b`: more throughput, or less end-to-end latency (ties keep `b`)."""
    if throughput:
        return a.throughput_tokens_per_s > b.throughput_tokens_per_s / _NEAR
    return a.e2e_s < b.e2e_s * _NEAR


def search(s: Scenario, system: System, options: RunOptions, params: Params) -> Evaluated:
    """The best configuration of the scenario on the system (module doc); raises TegelError
    with what was missing when nothing fits."""
    policy = policy_for(system.chip)
    analytical = replace(options, sim="analytical")
    best: Evaluated | None = None
    shortfall: float | None = None
    for par in candidate_parallelisms(s, system, options):
        f = fit(s, system, par, options, params)
        if not f.batch_per_replica:
            shortfall = f.shortfall_bytes if shortfall is None else min(shortfall, f.shortfall_bytes)
            continue
        counts = [options.stages] if options.stages else policy.stage_counts(par.pp, s.model.num_layers)
        previous: Evaluated | None = None
        for stages in counts:  # more stages help until they don't: stop at the first that hurts
            try:
                ev = _evaluated(s, system, Config(par, f.batch_per_replica, stages), analytical,
                                params)
            except PlanError:  # the compiler could not place it within capacity
                continue
            if best is None or better(ev, best, s.batch is None):
                best = ev
            if previous is not None and better(previous, ev, s.batch is None):
                break
            previous = ev
    if best is None:
        raise TegelError(no_fit_message(s, system, shortfall))
    if options.sim != "analytical":  # the chosen configuration, in the requested evaluator
        best = _evaluated(s, system, best.config, options, params)
    return best


def _evaluated(s: Scenario, system: System, config: Config, options: RunOptions,
               params: Params) -> Evaluated:
    """One configuration evaluated, its decode as draft + verify when the scenario speculates."""
    return with_speculation(evaluate_config(s, system, config, options, params), s, system,
                            options, params)


def no_fit_message(s: Scenario, system: System, shortfall: float | None) -> str:
    """What did not fit, by how much, and what to try."""
    what = f"batch {s.batch}" if s.batch else "even batch 1"
    short = f"; short by {si(shortfall, 'B')} per chip at best" if shortfall else ""
    bits = s.precision.weights.info.element_bits
    smaller = ("--precision fp8" if bits > 8 else "--weights fp4 (or int4)" if bits > 4.5 else "")
    options = ", ".join(o for o in ("a system with more chips", "a smaller batch or context",
                                    smaller) if o)
    paged = (f"; or `tegel serve --concurrency {s.batch}`, whose paged KV cache holds what fits "
             f"and preempts the rest" if s.batch and s.batch > 1 else "")
    return (f"{s.model.name} does not fit on {system.name} with {what}, "
            f"{s.input_tokens}+{s.output_tokens} tokens, weights in {s.precision.weights.value}"
            f"{short}; try {options}{paged}")
