"""The step-cost oracle of the serving simulator: what one iteration of one replica costs.

An iteration runs a *mixed* batch — decode sequences (one new token each, at their own KV
lengths) and prefill chunks (n new tokens after the k of the prompt already cached) — through
one forward call, as vLLM, TensorRT-LLM and SGLang do. The oracle prices it with the engine of
`tegel run`, through the system's mapping policy and `evaluate.analytical.evaluate`; it adds no
cost formula. It only decides which planned steps stand for which part of the work:

- A *uniform* iteration (only decodes, or only prefill chunks of one shape) is exactly one
  phase of `tegel run`: it is planned and evaluated as that phase, with the same
  micro-batching as `serving.llm.phase_requests`.
- A *mixed* iteration is priced as one plan assembled from three planned phases of the same
  request shape: the token-wise steps (projections, MLP/experts, norms, KV writes, transfers and
  collectives) from a plan of all its T tokens as one sequence; the attention steps from a plan
  of each group (the decodes at their mean KV length, each chunk at its own (n, k)); and the
  epilogue (final norm, LM head) from a plan of one token per sequence that emits a token. The
  assembled plan is evaluated like any other. Decode attention is linear in the KV length, so the
  mean length prices the group's sum (docs/serving.md).

Keys are quantised — token counts above 64 to a grid of 64 steps per octave (nearest point;
at most 0.8 % off) — and every planned phase and every iteration are memoised, so a simulation
of many thousand iterations plans only a few hundred distinct phases. KV lengths are not rounded:
the work of attending to cached tokens is linear in their number, so a phase at KV length K is
interpolated between the two nearest points of a coarser grid (8 per octave) — the iteration's
time and energy for a decode-only iteration, the attention steps' counts in an assembled one.
Oracles are shared between simulations of the same replica configuration (`oracle_for`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from tegel.evaluate.analytical import PhaseCost, evaluate
from tegel.hardware import System
from tegel.mapping.params import Params
from tegel.mapping.plan import Parallelism, Plan, Step, StepKind, llm_request
from tegel.mapping.registry import policy_for
from tegel.serving.speculative import verify_folded_graph
from tegel.workload.folding import folded_graph
from tegel.workload.llm import Phase, Precision
from tegel.workload.model_config import ModelConfig
from tegel.workload.roles import Section, op_positions

GRID_EXACT_BELOW = 64
GRID_STEPS_PER_OCTAVE = 64
KV_STEPS_PER_OCTAVE = 8


def quantise(n: float) -> int:
    """`n` rounded to the oracle's grid: exact up to 64, then 64 points per octave."""
    if n <= GRID_EXACT_BELOW:
        return max(round(n), 0)
    e = math.floor(math.log2(n))
    step = 2.0 ** e / GRID_STEPS_PER_OCTAVE
    return round(round(n / step) * step)


def kv_bracket(k: float) -> tuple[int, int, float]:
    """(lower, upper, weight of upper): the KV grid points around `k` (exact up to 16, then 8
    per octave) and the linear interpolation weight."""
    if k <= 16:
        low = math.floor(k)
        return low, low + 1, k - low
    e = math.floor(math.log2(k))
    step = 2.0 ** e / KV_STEPS_PER_OCTAVE
    lo = math.floor(k / step) * step
    hi = lo + step
    return round(lo), round(hi), (k - lo) / step


def _lerp(a: Step, b: Step, w: float) -> Step:
    """Step `a` moved a fraction `w` of the way to `b` in every count (same step, two KV
    lengths: its counts are linear in the length between grid points)."""
    if w == 0.0:
        return a

    def mix(x: float, y: float) -> float:
        return x + (y - x) * w

    return replace(a, flops=mix(a.flops, b.flops),
                   reads=tuple(mix(x, y) for x, y in zip(a.reads, b.reads, strict=True)),
                   writes=tuple(mix(x, y) for x, y in zip(a.writes, b.writes, strict=True)),
                   noc_byte_hops=mix(a.noc_byte_hops, b.noc_byte_hops),
                   link_bytes=mix(a.link_bytes, b.link_bytes),
                   transfer_bytes=mix(a.transfer_bytes, b.transfer_bytes))


@dataclass(frozen=True, slots=True)
class Batch:
    """One iteration's work on one replica.

    decode: sequences generating one token; decode_kv_tokens: their mean cached length;
    chunks: prefill chunks as (new tokens, tokens of the prompt already cached); emitting:
    rows of logits the LM head computes — sequences that produce a token (decodes and chunks
    that finish their prompt), and every new token of a speculative verify;
    decode_new_tokens: tokens each decode runs through the model (k + 1 when it verifies k
    drafts, `speculative.py`; every one of them gets logits); decode_shared_tokens: with beam
    search (`Oracle.beams`), the mean prompt length the beams of a request share in the cache
    (the decodes are the beams, `beams` consecutive ones per request)."""

    decode: int = 0
    decode_kv_tokens: float = 0.0
    chunks: tuple[tuple[int, int], ...] = ()
    emitting: int = 0
    decode_new_tokens: int = 1
    decode_shared_tokens: float = 0.0

    @property
    def sequences(self) -> int:
        return self.decode + len(self.chunks)

    @property
    def tokens(self) -> int:
        return self.decode * self.decode_new_tokens + sum(n for n, _ in self.chunks)


@dataclass(frozen=True, slots=True)
class IterationCost:
    """Seconds and joules (by energy category, whole replica, static power included) of one
    iteration, and the replica's static power (W) for the time it waits between iterations."""

    time_s: float
    energy_by_category_j: tuple[float, ...]
    static_w: float
    host_w: float


def _scaled(step: Step, factor: float) -> Step:
    """The same step doing `factor` times its work (a group spread over micro-batches)."""
    return replace(step, flops=step.flops * factor,
                   reads=tuple(b * factor for b in step.reads),
                   writes=tuple(b * factor for b in step.writes),
                   noc_byte_hops=step.noc_byte_hops * factor,
                   link_bytes=step.link_bytes * factor,
                   transfer_bytes=step.transfer_bytes * factor)


class Oracle:
    """Iteration costs of one replica configuration (model, formats, system, parallelism,
    stages, beam width), memoised. Deterministic: a cost depends only on the (quantised) batch.
    With `beams` > 1 every request decodes that many hypotheses, which share its prompt's
    cache: a decode group is priced as `Phase(sequences, 1, K, beams, shared prompt)`, as
    `tegel run` prices beam search (`serving.llm.phase_requests`)."""

    def __init__(self, model: ModelConfig, precision: Precision, system: System,
                 parallelism: Parallelism, stages: int, params: Params,
                 software: str | None = None, beams: int = 1) -> None:
        self.model, self.precision, self.system = model, precision, system
        self.parallelism, self.stages, self.params = parallelism, stages, params
        self.software = software
        self.beams = beams
        self._policy = policy_for(system.chip)
        self._plans: dict[tuple[Phase, int, bool], Plan] = {}
        self._costs: dict[tuple[object, ...], IterationCost] = {}
        self._phase_costs: dict[tuple[Phase, int, bool], IterationCost] = {}
        self.planned = 0  # distinct phases planned (for benchmarks and reports)

    # -- planning (memoised) ---------------------------------------------------------------
    def plan(self, phase: Phase, microbatches: int, all_logits: bool = False) -> Plan:
        """`phase` planned (memoised); `all_logits`: the LM head on every new token (a
        speculative verify), not the last of each sequence only."""
        key = (phase, microbatches, all_logits)
        plan = self._plans.get(key)
        if plan is None:
            req = replace(llm_request(self.model, self.system, phase, self.parallelism,
                                      self.stages, microbatches), software=self.software)
            graph = (verify_folded_graph if all_logits else folded_graph)(
                self.model, req.phase, self.precision)
            plan = self._policy.plan(graph, self.system, req, self.params).plan
            self._plans[key] = plan
            self.planned += 1
        return plan

    def _sections(self, phase: Phase) -> Callable[[Step], Section]:
        positions = op_positions(folded_graph(self.model, phase, self.precision))

        def section(step: Step) -> Section:
            found = {positions[o].section for o in step.ops if o in positions}
            return found.pop() if len(found) == 1 else Section.BLOCK

        return section

    # -- pricing ---------------------------------------------------------------------------
    def cost(self, batch: Batch) -> IterationCost:
        """What `batch` costs (see the module doc for how a mixed batch is assembled)."""
        if batch.sequences == 0:
            raise ValueError("an iteration needs at least one sequence")
        m = min(batch.sequences, self.stages)
        shared = quantise(batch.decode_shared_tokens) if self.beams > 1 else 0
        decode = (quantise(math.ceil(batch.decode / m)), max(quantise(batch.decode_kv_tokens), 1),
                  shared) if batch.decode else None
        chunks = tuple(sorted((quantise(n), quantise(k)) for n, k in batch.chunks))
        q = batch.decode_new_tokens
        key = (m, decode, chunks, quantise(math.ceil(batch.emitting / m)), q)
        found = self._costs.get(key)
        if found is None:
            found = self._price(m, decode, chunks, key[3], q)
            self._costs[key] = found
        return found

    def _decode_phase(self, sequences: int, q: int, past: int, shared: int) -> Phase:
        """A decode group's phase; with beam search its sequences are `beams` hypotheses per
        request sharing the first `shared` cached positions."""
        if self.beams == 1:
            return Phase(sequences, q, past)
        return Phase(sequences, q, past, self.beams, min(shared, past))

    def _price(self, m: int, decode: tuple[int, int, int] | None,
               chunks: tuple[tuple[int, int], ...], emitting: int, q: int = 1) -> IterationCost:
        if decode is not None and not chunks:
            lo, hi, w = kv_bracket(decode[1])
            a = self._phase_cost(self._decode_phase(decode[0], q, lo, decode[2]), m, q > 1)
            if w == 0.0:
                return a
            b = self._phase_cost(self._decode_phase(decode[0], q, hi, decode[2]), m, q > 1)
            return IterationCost(a.time_s + (b.time_s - a.time_s) * w,
                                 tuple(x + (y - x) * w for x, y in
                                       zip(a.energy_by_category_j, b.energy_by_category_j,
                                           strict=True)), a.static_w, a.host_w)
        if decode is None and len(set(chunks)) == 1 and chunks[0][1] == 0:
            n, k = chunks[0]
            return self._phase_cost(Phase(math.ceil(len(chunks) / m), n, k), m)
        return self._of(evaluate(self._assembled(m, decode, chunks, emitting, q), self.system))

    def _assembled(self, m: int, decode: tuple[int, int, int] | None,
                   chunks: tuple[tuple[int, int], ...], emitting: int, q: int = 1) -> Plan:
        tokens = (decode[0] * m * q if decode else 0) + sum(n for n, _ in chunks)
        token_phase = Phase(1, quantise(math.ceil(tokens / m)), 0)
        token_plan = self.plan(token_phase, m)
        section = self._sections(token_phase)
        steps = [s for s in token_plan.steps
                 if s.kind is not StepKind.ATTENTION and section(s) is not Section.EPILOGUE]
        if decode is not None:
            steps += self._attention(decode[0], q, decode[1], m, decode[2])
        for n, k in chunks:
            steps += [_scaled(s, 1.0 / m) for s in self._attention(1, n, k, m)]
        if emitting:
            out_phase = Phase(emitting, 1, 0)
            out_section = self._sections(out_phase)
            steps += [s for s in self.plan(out_phase, m).steps
                      if out_section(s) is Section.EPILOGUE]
        return replace(token_plan, steps=tuple(steps), notes=())

    def _phase_cost(self, phase: Phase, m: int, all_logits: bool = False) -> IterationCost:
        key = (phase, m, all_logits)
        found = self._phase_costs.get(key)
        if found is None:
            found = self._of(evaluate(self.plan(phase, m, all_logits), self.system))
            self._phase_costs[key] = found
        return found

    def _attention(self, batch: int, new: int, past: int, m: int,
                   shared: int = 0) -> list[Step]:
        """The attention steps of a phase of `batch` sequences, `new` tokens each, after `past`
        (decodes: with `shared` prompt positions per request under beam search), interpolated in
        the KV length."""
        lo, hi, w = kv_bracket(past)

        def phase(k: int) -> Phase:
            return self._decode_phase(batch, new, k, shared) if shared else Phase(batch, new, k)

        a = [s for s in self.plan(phase(lo), m).steps if s.kind is StepKind.ATTENTION]
        if w == 0.0:
            return a
        b = [s for s in self.plan(phase(hi), m).steps if s.kind is StepKind.ATTENTION]
        if [(s.name, s.stage) for s in a] != [(s.name, s.stage) for s in b]:
            return a if w < 0.5 else b  # the policy placed them differently: the nearer one
        return [_lerp(x, y, w) for x, y in zip(a, b, strict=True)]

    @staticmethod
    def _of(cost: PhaseCost) -> IterationCost:
        return IterationCost(cost.time_s, cost.cost.energy_by_category_j, cost.static_w,
                             cost.host_w)


_SHARED: dict[tuple[object, ...], tuple[Oracle, System, Params]] = {}


def oracle_for(model: ModelConfig, precision: Precision, system: System,
               parallelism: Parallelism, stages: int, params: Params,
               software: str | None = None, beams: int = 1) -> Oracle:
    """The oracle of a replica configuration, shared by simulations of it (curves, rate
    searches): planned phases are reused. Keyed by the objects' identity for the system and
    parameters (held here so the identity stays theirs), by value for the rest."""
    key = (model, precision, id(system), parallelism, stages, id(params), software, beams)
    found = _SHARED.get(key)
    if found is None:
        if len(_SHARED) >= 32:
            _SHARED.pop(next(iter(_SHARED)))
        found = (Oracle(model, precision, system, parallelism, stages, params, software, beams),
                 system, params)
        _SHARED[key] = found
    return found[0]
