"""The operating point of a system at a service level: the concurrency and split of highest
throughput whose steady state meets a per-user speed and a p99 TTFT limit (`claim`, `compare`).

Rather than drawing whole curves (`curve_of`), the search simulates what it needs:

- splits: the one `tegel.run` picks and each power-of-two tensor- and pipeline-parallel degree
  (`candidate_splits`, shared with the static `best_split`). Each is bounded from above by its
  static batch at the scheduler's max_seqs per replica (`tegel run --batch auto`: serving never
  beats it, `tests/serving/test_simulate.py`); splits are searched in decreasing order of that
  bound, and one whose bound (plus 5%) is below the best throughput already found at the service
  level cannot win and is not simulated. Where the static batch cannot hold max_seqs sequences
  per replica, the paged cache may hold more: that split has no bound and is always searched.
- concurrency, per split: closed-loop points (`closed_loop_point`, as `curve_of` draws them) at
  1, 2, 4, ... up to replicas x max_seqs until one misses a limit, then bisection between the
  last that met both and the first that did not, to 1/16 of the concurrency. Both limits worsen
  as concurrency grows, so the last point that meets both is where throughput is highest.
- the point: `operating_point` over the points simulated (highest throughput meeting both), the
  best over splits; when no point meets them, its error names the bound that binds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from tegel.errors import TegelError
from tegel.hardware import System
from tegel.mapping.params import Params, default_params
from tegel.mapping.registry import policy_for
from tegel.serving.curve import (
    DEFAULT_TTFT_LIMIT_S,
    Curve,
    CurvePoint,
    closed_loop_point,
    operating_point,
    steady_point,
)
from tegel.serving.replica import SchedulerConfig
from tegel.serving.run import run
from tegel.serving.scenario import RunOptions, resolve_precision
from tegel.serving.serve import serve
from tegel.workload.llm import Precision
from tegel.workload.model_config import ModelConfig

BOUND_MARGIN = 0.05  # a split is skipped when its static bound x 1.05 is below the best found
TTFT_LIMIT_BASIS = ("MLPerf Inference Llama-2-70B Server's p99 TTFT limit, on OpenOrca prompts "
                    "of up to 1,024 tokens")
TTFT_LIMIT_PROMPT_TOKENS = 1024  # the prompt length the default limit is set for
CHUNKED = SchedulerConfig(kind="chunked")  # the default: vLLM v1's and Sarathi-Serve's


@dataclass(frozen=True, slots=True)
class ServiceLevel:
    """What every system is held to: per-user speed (1 / median TPOT at steady state), p99 TTFT
    (None: the default, DEFAULT_TTFT_LIMIT_S, set for 1,024-token prompts) and the scheduler."""

    min_tokens_per_s_per_user: float
    max_ttft_s: float | None = None
    scheduler: SchedulerConfig = CHUNKED

    def __post_init__(self) -> None:
        speed = self.min_tokens_per_s_per_user
        if not (speed >= 0 and math.isfinite(speed)):
            raise TegelError(f"--min-tokens-per-s-per-user: expected a number >= 0, got {speed:g}")
        if self.max_ttft_s is not None and not (self.max_ttft_s > 0 and math.isfinite(self.max_ttft_s)):
            raise TegelError(f"--max-ttft: expected a positive number of seconds, got "
                             f"{self.max_ttft_s:g}")

    @property
    def ttft_limit_s(self) -> float:
        return DEFAULT_TTFT_LIMIT_S if self.max_ttft_s is None else self.max_ttft_s

    def ttft_basis(self, input_tokens: int, *, source: bool = True) -> str:
        """Where the TTFT limit comes from, and what it is not (it is never scaled)."""
        if self.max_ttft_s is not None:
            return "given (--max-ttft)"
        text = f"the default for {TTFT_LIMIT_PROMPT_TOKENS:,}-token prompts"
        if source:
            text += f": {TTFT_LIMIT_BASIS}"
        if input_tokens != TTFT_LIMIT_PROMPT_TOKENS:
            text += f"; not scaled to these {input_tokens:,}-token prompts"
        return text

    def describe(self, input_tokens: int) -> str:
        s = self.scheduler
        tokens = (f"{s.chunk_tokens:,}-token iterations" if s.kind == "chunked" else
                  f"{s.max_batched_tokens:,} prompt tokens per prefill")
        return (f">= {self.min_tokens_per_s_per_user:g} tokens/s per user (1 / median TPOT), "
                f"p99 TTFT <= {self.ttft_limit_s:g} s "
                f"({self.ttft_basis(input_tokens, source=False)}), {s.kind} scheduler "
                f"({s.max_seqs} sequences, {tokens} per replica)")

    def to_dict(self, input_tokens: int) -> dict[str, Any]:
        s = self.scheduler
        return {"min_tokens_per_s_per_user": self.min_tokens_per_s_per_user,
                "per_user_speed": "1 / median TPOT at steady state",
                "max_ttft_s": self.ttft_limit_s, "ttft_percentile": 99,
                "ttft_limit": self.ttft_basis(input_tokens),
                "scheduler": {"kind": s.kind, "max_seqs": s.max_seqs,
                              "chunk_tokens": s.chunk_tokens,
                              "max_batched_tokens": s.max_batched_tokens,
                              "block_tokens": s.block_tokens},
                "text": self.describe(input_tokens)}

    def meets(self, p: CurvePoint) -> bool:
        return (p.tokens_per_s_per_user >= self.min_tokens_per_s_per_user
                and p.ttft_p99_s <= self.ttft_limit_s)


@dataclass(frozen=True, slots=True)
class SplitSearch:
    """One split: its degrees (all fixed), static throughput bound, and the points simulated
    (none: its bound could not beat the best already found)."""

    options: RunOptions
    label: str
    bound_tokens_per_s: float
    points: tuple[CurvePoint, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"parallelism": self.label,
                "static_bound_tokens_per_s": (None if math.isinf(self.bound_tokens_per_s)
                                              else self.bound_tokens_per_s),
                "concurrencies": [p.concurrency for p in self.points]}


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """A system at its operating point: the steady-state point, the split it runs (every
    degree fixed, so the same point can be served again), the service level, the search."""

    point: CurvePoint
    options: RunOptions
    service: ServiceLevel
    searched: tuple[SplitSearch, ...]

    @property
    def at_scheduler_limit(self) -> bool:
        """The point runs as many sequences as the replicas may (replicas x max_seqs): the
        scheduler's limit, not the service level, stopped the search."""
        r = self.point.result
        return self.point.concurrency >= r.config.parallelism.dp * r.scheduler.max_seqs

    def to_dict(self) -> dict[str, Any]:
        p, r = self.point, self.point.result
        par = r.config.parallelism
        return {"concurrency": p.concurrency, "requests": len(r.workload),
                "at_scheduler_limit": self.at_scheduler_limit,
                "scheduler": r.scheduler.kind,
                "parallelism": {"tp": par.tp, "pp": par.pp, "ep": par.ep, "dp": par.dp,
                                "stages": r.config.stages},
                "tokens_per_s_per_user": p.tokens_per_s_per_user,
                "throughput_tokens_per_s": p.throughput_tokens_per_s,
                "ttft_s": {"p50": p.ttft_p50_s, "p99": p.ttft_p99_s},
                "tpot_s": {"p50": p.tpot_p50_s, "p99": p.tpot_p99_s},
                "energy_j_per_token": p.energy_j_per_token, "power_w": p.power_w,
                "search": [s.to_dict() for s in self.searched]}


def candidate_splits(model: ModelConfig, system: System,
                     options: RunOptions | None = None) -> list[RunOptions]:
    """The splits worth trying: `options` as given when they fix tp or pp; else the one
    `tegel.run` picks and each power-of-two tensor-parallel degree (within a node where the
    machine's policy keeps it there) and pipeline degree, the rest searched."""
    base = options or RunOptions()
    if base.tp or base.pp:
        return [base]
    n = system.chip_count
    powers = [2**i for i in range(1, int(math.log2(n)) + 1) if n % 2**i == 0]
    within_node = policy_for(system.chip).tp_within_node
    return ([base] + [replace(base, tp=k) for k in powers
                      if not (within_node and k > system.chips_per_node)]
            + [replace(base, pp=k) for k in powers if k <= model.num_layers])


def _bounded_splits(model: ModelConfig, system: System, input_tokens: int, output_tokens: int,
                    precision: Precision, max_seqs: int, options: RunOptions | None,
                    params: Params) -> list[tuple[RunOptions, str, float]]:
    """Each distinct split with every degree fixed, its label and static bound, best first."""
    out: dict[tuple[int, ...], tuple[RunOptions, str, float]] = {}
    for split in candidate_splits(model, system, options):
        try:
            r = run(model, system, "auto", input_tokens, output_tokens, precision,
                    options=replace(split, max_batch_per_replica=max_seqs), params=params)
        except TegelError:
            continue
        par, stages = r.parallelism, r.chosen.config.stages
        key = (par.tp, par.pp, par.ep, par.dp, stages)
        fixed = replace(split, tp=par.tp, pp=par.pp, ep=par.ep, stages=stages)
        bound = (r.throughput_tokens_per_s if r.chosen.batch_per_replica >= max_seqs
                 else math.inf)
        out.setdefault(key, (fixed, f"tp{par.tp} pp{par.pp} dp{par.dp}", bound))
    if not out:
        raise TegelError(f"{model.name} does not fit {system.name} at any split tried")
    return sorted(out.values(), key=lambda s: -s[2])


def _concurrencies(at: Callable[[int], CurvePoint], cap: int,
                   service: ServiceLevel) -> tuple[CurvePoint, ...]:
    """Points at 1, 2, 4, ... until one misses a limit (or the cap is reached), then bisected
    between the last that met both limits and the first that did not."""
    points: dict[int, CurvePoint] = {}

    def meets(c: int) -> bool:
        points[c] = at(c)
        return service.meets(points[c])

    lo, hi, c = 0, None, 1
    while hi is None and lo < cap:
        if meets(c):
            lo, c = c, min(2 * c, cap)
        else:
            hi = c
    if lo and hi is not None:
        while hi - lo > max(1, lo // 16):
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if meets(mid) else (lo, mid)
    return tuple(points[k] for k in sorted(points))


def find_operating_point(model: ModelConfig, system: System, input_tokens: int,
                         output_tokens: int, service: ServiceLevel, *,
                         precision: Precision | None = None, options: RunOptions | None = None,
                         params: Params | None = None) -> OperatingPoint:
    """The system's operating point at `service` (module doc); `options` may fix the split."""
    params = params or default_params()
    prec = precision or resolve_precision(system, None)
    s = service.scheduler
    best: tuple[CurvePoint, RunOptions] | None = None
    searched: list[SplitSearch] = []
    for split, label, bound in _bounded_splits(model, system, input_tokens, output_tokens, prec,
                                               s.max_seqs, options, params):
        if best is not None and bound * (1 + BOUND_MARGIN) < best[0].throughput_tokens_per_s:
            searched.append(SplitSearch(split, label, bound, ()))
            continue

        def at(c: int, split: RunOptions = split) -> CurvePoint:
            return closed_loop_point(model, system, c, input_tokens, output_tokens, s, prec,
                                     split, params)

        replicas = max(1, system.chip_count // (split.tp or 1) // (split.pp or 1))
        points = _concurrencies(at, replicas * s.max_seqs, service)
        searched.append(SplitSearch(split, label, bound, points))
        try:
            top = operating_point(Curve(model.name, system.name, input_tokens, output_tokens,
                                        s.kind, points), service.min_tokens_per_s_per_user,
                                  service.ttft_limit_s)
        except TegelError:
            continue
        if best is None or top.throughput_tokens_per_s > best[0].throughput_tokens_per_s:
            best = (top, split)
    if best is None:
        tried = tuple(p for x in searched for p in x.points)
        try:
            operating_point(Curve(model.name, system.name, input_tokens, output_tokens, s.kind,
                                  tried), service.min_tokens_per_s_per_user, service.ttft_limit_s)
        except TegelError as err:
            raise TegelError(f"{err} (splits simulated: "
                             f"{', '.join(x.label for x in searched if x.points)})") from None
        raise AssertionError("no split met the service level, yet all its points do")
    return OperatingPoint(best[0], best[1], service, tuple(searched))


def served_again(model: ModelConfig, op: OperatingPoint, system: System,
                 params: Params | None = None) -> OperatingPoint:
    """The same requests at the same concurrency, split and scheduler on `system` (the same
    machine with one figure moved): nothing is searched again, the limits are not re-checked."""
    r = op.point.result
    again = serve(model, system, r.workload, r.scheduler, r.precision, options=op.options,
                  params=params or default_params())
    return replace(op, point=steady_point(again, op.point.concurrency))
