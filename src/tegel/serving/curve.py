"""Throughput against interactivity: a system served at rising concurrency.

Each point is a closed-loop run (as benchmark clients do: `concurrency` requests outstanding,
the next sent when one finishes) of fixed-length requests through `serve`, measured at steady
state: the first `concurrency` requests (the ramp) and the last `concurrency` (the drain) are
left out of the latencies, and throughput counts the tokens of the requests completed between
the ramp's end and the drain's start. Per-user speed is 1 / median TPOT ("interactivity").

`operating_point` picks from a curve the point of highest throughput that meets a per-user speed
and a TTFT limit (p99) — how `claim` places every system at the same service level.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tegel.errors import TegelError
from tegel.hardware import System, load_system
from tegel.mapping.params import Params, default_params
from tegel.serving.replica import SchedulerConfig
from tegel.serving.requests import Workload
from tegel.serving.scenario import RunOptions
from tegel.serving.serve import ServeResult, Slo, serve
from tegel.workload.llm import Precision
from tegel.workload.model_config import ModelConfig, load_model_config

DEFAULT_TTFT_LIMIT_S = 2.0  # for 1,024-token prompts (MLPerf Llama-2-70B Server's p99 TTFT)


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One concurrency's steady state (SI units; throughput of the whole system)."""

    concurrency: int
    tokens_per_s_per_user: float
    throughput_tokens_per_s: float
    ttft_p50_s: float
    ttft_p99_s: float
    tpot_p50_s: float
    tpot_p99_s: float
    energy_j_per_token: float
    power_w: float
    result: ServeResult

    def to_dict(self) -> dict[str, Any]:
        return {"concurrency": self.concurrency,
                "tokens_per_s_per_user": self.tokens_per_s_per_user,
                "throughput_tokens_per_s": self.throughput_tokens_per_s,
                "ttft_s": {"p50": self.ttft_p50_s, "p99": self.ttft_p99_s},
                "tpot_s": {"p50": self.tpot_p50_s, "p99": self.tpot_p99_s},
                "energy_j_per_token": self.energy_j_per_token, "power_w": self.power_w}


@dataclass(frozen=True, slots=True)
class Curve:
    """A system's throughput–interactivity curve on one workload."""

    model: str
    system: str
    input_tokens: int
    output_tokens: int
    scheduler: str
    points: tuple[CurvePoint, ...]

    def to_dict(self) -> dict[str, Any]:
        par = self.points[0].result.config.parallelism if self.points else None
        return {"model": self.model, "system": self.system, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "scheduler": self.scheduler,
                "parallelism": None if par is None else
                {"tp": par.tp, "pp": par.pp, "ep": par.ep, "dp": par.dp},
                "points": [p.to_dict() for p in self.points]}

    def _repr_html_(self) -> str:
        """An HTML table for notebooks (`tegel.report.notebook`)."""
        from tegel.report.notebook import curve_html

        return curve_html(self)


def steady_point(result: ServeResult, concurrency: int) -> CurvePoint:
    """The steady-state figures of a closed-loop run (module doc)."""
    rec = result.outcome.records
    n = len(result.workload)
    finish = np.asarray(rec.finish_s)
    order = np.sort(finish)
    skip = min(concurrency, max(n // 4, 1))
    t0, t1 = order[skip - 1], order[max(n - skip, skip) - 1]
    window = (np.arange(n) >= skip) & (np.arange(n) < max(n - skip, skip + 1))
    if t1 <= t0:
        t0, t1, window = 0.0, float(order[-1]), np.ones(n, dtype=bool)
    arrival = np.asarray(result.outcome.arrival_s)
    first = np.asarray(rec.first_s)
    out = result.workload.output_tokens
    done_in = (finish > t0) & (finish <= t1)
    throughput = float(out[done_in].sum()) / float(t1 - t0)
    ttft = (first - arrival)[window]
    many = window & (out > 1)
    tpot = (finish - first)[many] / (out[many] - 1)
    tpot_p50 = float(np.median(tpot)) if tpot.size else math.nan
    return CurvePoint(concurrency, 1.0 / tpot_p50 if tpot.size else math.nan, throughput,
                      float(np.median(ttft)), float(np.percentile(ttft, 99)), tpot_p50,
                      float(np.percentile(tpot, 99)) if tpot.size else math.nan,
                      result.energy_j_per_token, result.power_w, result)


def default_concurrencies(result: ServeResult, scheduler: SchedulerConfig) -> list[int]:
    """1, 2, 4, ... up to what the system can run at once (replicas x max_seqs)."""
    most = result.config.parallelism.dp * scheduler.max_seqs
    out, c = [], 1
    while c < most:
        out.append(c)
        c *= 2
    return [*out, most]


def closed_loop_point(model: ModelConfig, system: System, concurrency: int, input_tokens: int,
                      output_tokens: int, scheduler: SchedulerConfig,
                      precision: Precision | str | None = None, options: RunOptions | None = None,
                      params: Params | None = None,
                      requests: int | None = None) -> CurvePoint:
    """One point of a curve: `requests` (default max(4 x concurrency, 64)) fixed-length
    requests in a closed loop of `concurrency`, measured at steady state."""
    n = requests or max(4 * concurrency, 64)
    wl = Workload(np.zeros(n), np.full(n, input_tokens), np.full(n, output_tokens), concurrency,
                  f"closed loop, concurrency {concurrency}")
    return steady_point(serve(model, system, wl, scheduler, precision, options=options,
                              params=params), concurrency)


def curve_of(model: ModelConfig, system: System, input_tokens: int, output_tokens: int, *,
             concurrencies: Sequence[int] | None = None, scheduler: SchedulerConfig | None = None,
             precision: Precision | str | None = None, options: RunOptions | None = None,
             params: Params | None = None, requests_per_point: int | None = None,
             progress: Callable[[str], None] | None = None) -> Curve:
    """One system's curve: a closed-loop point per concurrency (default: powers of two up to
    what the replicas can run at once)."""
    scheduler = scheduler or SchedulerConfig(kind="chunked")
    params = params or default_params()

    def at(c: int) -> CurvePoint:
        if progress is not None:
            progress(f"{system.name}: concurrency {c}")
        return closed_loop_point(model, system, c, input_tokens, output_tokens, scheduler,
                                 precision, options, params, requests_per_point)

    if concurrencies:
        levels = list(concurrencies)
        points = [at(c) for c in levels]
    else:
        first = at(1)
        points = [first] + [at(c) for c in default_concurrencies(first.result, scheduler)[1:]]
    return Curve(model.name, system.name, input_tokens, output_tokens, scheduler.kind,
                 tuple(points))


def curve(model: str | ModelConfig, systems: Sequence[str | System], input_tokens: int = 1024,
          output_tokens: int = 256, **kwargs: Any) -> list[Curve]:
    """`tegel.curve`: the throughput–interactivity curve of each system (`curve_of`'s options)."""
    cfg = model if isinstance(model, ModelConfig) else load_model_config(model)
    return [curve_of(cfg, s if isinstance(s, System) else load_system(s), input_tokens,
                     output_tokens, **kwargs) for s in systems]


def operating_point(c: Curve, min_tokens_per_s_per_user: float,
                    max_ttft_s: float = DEFAULT_TTFT_LIMIT_S) -> CurvePoint:
    """The highest-throughput point meeting both limits; a clear error naming the bound that
    binds when none does."""
    ok = [p for p in c.points if p.tokens_per_s_per_user >= min_tokens_per_s_per_user
          and p.ttft_p99_s <= max_ttft_s]
    if ok:
        return max(ok, key=lambda p: p.throughput_tokens_per_s)
    fastest = max(c.points, key=lambda p: p.tokens_per_s_per_user)
    quickest = min(c.points, key=lambda p: p.ttft_p99_s)
    if fastest.tokens_per_s_per_user < min_tokens_per_s_per_user:
        raise TegelError(f"{c.system} reaches at most {fastest.tokens_per_s_per_user:.4g} tokens/s "
                         f"per user on {c.model} (concurrency {fastest.concurrency}); the target "
                         f"is {min_tokens_per_s_per_user:g}: the per-user speed binds")
    raise TegelError(f"{c.system}: no concurrency meets both {min_tokens_per_s_per_user:g} tokens/s "
                     f"per user and p99 TTFT <= {max_ttft_s:g} s (best p99 TTFT "
                     f"{quickest.ttft_p99_s:.3g} s at concurrency {quickest.concurrency}): the "
                     f"TTFT limit binds")


def slo_of(min_tokens_per_s_per_user: float | None, max_ttft_s: float | None) -> Slo:
    """The per-request SLO equivalent to a per-user speed and a TTFT limit."""
    tpot = None if not min_tokens_per_s_per_user else 1.0 / min_tokens_per_s_per_user
    return Slo(max_ttft_s, tpot)
