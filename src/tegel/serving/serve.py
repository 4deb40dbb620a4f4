"""`tegel.serve`: a workload of requests served over time by one system, as a typed result.

The replica configuration (parallelism, pipeline stages) is the one `tegel run` would choose for
the workload's mean lengths at the largest batch the scheduler runs (or what `options` fix). The
replicas' KV cache holds what memory leaves after weights and the activations of the largest
prefill step; a request is refused (reported dropped, with the reason) only when it alone could
never fit in one replica.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tegel.errors import TegelError
from tegel.evaluate.cost import CATEGORIES
from tegel.hardware import System, load_system
from tegel.mapping.params import Params, default_params
from tegel.mapping.plan import Parallelism
from tegel.mapping.registry import policy_for
from tegel.serving.llm import Config, kv_cache_bytes_per_chip, memory_per_chip
from tegel.serving.oracle import Batch, oracle_for
from tegel.serving.replica import SchedulerConfig
from tegel.serving.requests import Workload
from tegel.serving.scenario import RunOptions, Scenario, resolve_precision
from tegel.serving.search import search
from tegel.serving.simulate import Outcome, Pools, Simulation
from tegel.serving.speculative import Speculation
from tegel.serving.speculative_cost import memory_with_draft, runtime_for
from tegel.workload.folding import kv_layout
from tegel.workload.llm import Precision
from tegel.workload.model_config import ModelConfig, load_model_config

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True, slots=True)
class Slo:
    """Service-level objective per request: time to first token and time per output token."""

    ttft_s: float | None = None
    tpot_s: float | None = None

    def __post_init__(self) -> None:
        for name, v in (("slo ttft", self.ttft_s), ("slo tpot", self.tpot_s)):
            if v is not None and not (v > 0 and math.isfinite(v)):
                raise TegelError(f"{name}: expected a positive number of seconds, got {v!r}")


def _stats(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {f"p{q}": math.nan for q in PERCENTILES} | {"mean": math.nan}
    out = {f"p{q}": float(np.percentile(values, q)) for q in PERCENTILES}
    out["mean"] = float(values.mean())
    return out


@dataclass(frozen=True, eq=False)
class ServeResult:
    """A simulated serving run (SI units). Latencies are per completed request; throughput and
    energy per generated token count the whole system over the run's span (first arrival to
    last completion): busy and idle replicas, chips outside replicas, hosts and racks."""

    model: str
    system: System
    scheduler: SchedulerConfig
    workload: Workload
    precision: Precision
    config: Config
    pools: Pools
    outcome: Outcome
    slo: Slo
    unloaded: tuple[float, float] = (math.nan, math.nan)  # (TTFT, TPOT) of a request alone
    notes: tuple[str, ...] = ()
    speculation: Speculation | None = None  # speculative decoding (serving/speculative.py)
    tokens_per_verify: float = math.nan  # speculative: tokens kept per verify, as simulated

    def slo_binding(self) -> list[str]:
        """SLO limits no load could meet: below what a request alone gets (mean lengths)."""
        out = []
        ttft, tpot = self.unloaded
        if self.slo.ttft_s is not None and self.slo.ttft_s < ttft:
            out.append(f"the TTFT limit {self.slo.ttft_s:g} s is below a lone request's TTFT "
                       f"({ttft:.3g} s: prefill of the mean prompt + host work): it binds at "
                       f"any load")
        if self.slo.tpot_s is not None and self.slo.tpot_s < tpot:
            out.append(f"the TPOT limit {self.slo.tpot_s:g} s is below a lone request's TPOT "
                       f"({tpot:.3g} s: one decode step at batch 1): it binds at any load")
        return out

    # -- per request ---------------------------------------------------------------------
    def _arrays(self) -> tuple[np.ndarray, ...]:
        rec = self.outcome.records
        arrival = np.asarray(self.outcome.arrival_s)
        first = np.asarray(rec.first_s)
        finish = np.asarray(rec.finish_s)
        ok = np.ones(len(arrival), dtype=bool)
        ok[list(rec.dropped)] = False
        return arrival, first, finish, ok

    @property
    def completed(self) -> int:
        return len(self.workload) - len(self.outcome.records.dropped)

    @property
    def dropped(self) -> int:
        return len(self.outcome.records.dropped)

    def ttft(self) -> np.ndarray:
        arrival, first, _, ok = self._arrays()
        return (first - arrival)[ok]

    def tpot(self) -> np.ndarray:
        """(last token - first token) / (output tokens - 1), for requests with > 1 output."""
        _, first, finish, ok = self._arrays()
        out = self.workload.output_tokens
        many = ok & (out > 1)
        return (finish - first)[many] / (out[many] - 1)

    def e2e(self) -> np.ndarray:
        arrival, _, finish, ok = self._arrays()
        return (finish - arrival)[ok]

    @property
    def span_s(self) -> float:
        return self.outcome.span_s - float(self.workload.arrival_s[0])

    @property
    def output_tokens(self) -> int:
        _, _, _, ok = self._arrays()
        return int(self.workload.output_tokens[ok].sum())

    @property
    def throughput_tokens_per_s(self) -> float:
        return self.output_tokens / self.span_s if self.span_s > 0 else math.nan

    @property
    def requests_per_s(self) -> float:
        return self.completed / self.span_s if self.span_s > 0 else math.nan

    def meets_slo(self) -> np.ndarray:
        """Per completed request: both SLO limits met (a limit not set is met)."""
        ttft = self.ttft()
        ok = np.ones(ttft.size, dtype=bool)
        if self.slo.ttft_s is not None:
            ok &= ttft <= self.slo.ttft_s
        if self.slo.tpot_s is not None:
            _, first, finish, good = self._arrays()
            out = self.workload.output_tokens[good]
            tpot = np.where(out > 1, (finish - first)[good] / np.maximum(out - 1, 1), 0.0)
            ok &= tpot <= self.slo.tpot_s
        return ok

    @property
    def goodput_requests_per_s(self) -> float:
        return int(self.meets_slo().sum()) / self.span_s if self.span_s > 0 else math.nan

    @property
    def energy_j(self) -> float:
        return sum(self.outcome.energy_by_category_j)

    @property
    def energy_j_per_token(self) -> float:
        return self.energy_j / self.output_tokens if self.output_tokens else math.nan

    @property
    def power_w(self) -> float:
        return self.energy_j / self.span_s if self.span_s > 0 else math.nan

    @property
    def parallelism(self) -> Parallelism:
        return self.config.parallelism

    @property
    def batch(self) -> int:
        """Sequences in flight: the closed loop's concurrency, else the most a replica set can
        run at once (replicas x max_seqs) — what the energy floor is taken at."""
        if self.workload.concurrency is not None:
            return self.workload.concurrency
        return self.pools.replicas * self.scheduler.max_seqs

    @property
    def chips_busy(self) -> int:
        """Chips of the replicas (they serve, or wait for work, for the whole span)."""
        return self.pools.replicas * self.pools.chips_per_replica

    @property
    def chips_idle(self) -> int:
        """Chips outside every replica (left at idle power)."""
        return self.system.chip_count - self.chips_busy

    @property
    def energy_breakdown_j_per_token(self) -> dict[str, float]:
        tokens = self.output_tokens
        return {c.value: e / tokens if tokens else math.nan
                for c, e in zip(CATEGORIES, self.outcome.energy_by_category_j, strict=True)}

    @property
    def accelerator_energy_j_per_token(self) -> float:
        """Energy per token without hosts and racks (what GPU power counters measure)."""
        return (self.energy_j - self.outcome.host_energy_j) / self.output_tokens

    @property
    def preemptions(self) -> int:
        return sum(self.outcome.records.preemptions)

    @property
    def prefix_hit_rate(self) -> float:
        """Prompt tokens read from the prefix cache / prompt tokens admitted to prefill."""
        rec = self.outcome.records
        return rec.cached_tokens / rec.prompt_tokens if rec.prompt_tokens else 0.0

    @property
    def tokens_per_s_per_user(self) -> float:
        """Median per-request decode speed: 1 / median TPOT."""
        tpot = self.tpot()
        return 1.0 / float(np.median(tpot)) if tpot.size else math.nan

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON contract of `tegel serve --json`."""
        par = self.config.parallelism
        return {
            "model": self.model, "system": self.system.name,
            "scheduler": {"kind": self.scheduler.kind, "max_seqs": self.scheduler.max_seqs,
                          "max_batched_tokens": self.scheduler.max_batched_tokens,
                          "chunk_tokens": self.scheduler.chunk_tokens,
                          "block_tokens": self.scheduler.block_tokens,
                          "router": self.scheduler.router,
                          "admission": self.scheduler.admission,
                          "prefill_replicas": self.pools.prefill},
            "workload": {"requests": len(self.workload), "description": self.workload.description,
                         "concurrency": self.workload.concurrency, **self.workload.spec},
            "precision": {"weights": self.precision.weights.value,
                          "activations": self.precision.activations.value,
                          "kv_cache": self.precision.kv_cache.value},
            "parallelism": {"tp": par.tp, "pp": par.pp, "ep": par.ep, "dp": par.dp,
                            "stages": self.config.stages},
            "completed": self.completed, "dropped": self.dropped,
            "ttft_s": _stats(self.ttft()), "tpot_s": _stats(self.tpot()),
            "e2e_s": _stats(self.e2e()),
            "span_s": self.span_s,
            "throughput_tokens_per_s": self.throughput_tokens_per_s,
            "requests_per_s": self.requests_per_s,
            "tokens_per_s_per_user": self.tokens_per_s_per_user,
            "slo": {"ttft_s": self.slo.ttft_s, "tpot_s": self.slo.tpot_s,
                    "unloaded_ttft_s": self.unloaded[0], "unloaded_tpot_s": self.unloaded[1],
                    "binding": self.slo_binding()},
            "goodput_requests_per_s": self.goodput_requests_per_s,
            "energy_j_per_token": self.energy_j_per_token,
            "energy_breakdown_j_per_token": self.energy_breakdown_j_per_token,
            "accelerator_energy_j_per_token": self.accelerator_energy_j_per_token,
            "chips_busy": self.chips_busy, "chips_idle": self.chips_idle,
            "power_w": self.power_w,
            "preemptions": self.preemptions,
            "kv_cache": {"blocks_per_replica": self.pools.kv_blocks,
                         "tokens_per_replica": self.pools.kv_blocks * self.scheduler.block_tokens,
                         "peak_fraction": self.outcome.peak_kv_fraction},
            "prefix_cache": {"enabled": self.scheduler.prefix_cache,
                             "shared_prefixes": self.workload.prefix_id is not None,
                             "hit_rate": self.prefix_hit_rate,
                             "prompt_tokens": self.outcome.records.prompt_tokens,
                             "cached_tokens": self.outcome.records.cached_tokens,
                             "prefilled_tokens": self.outcome.records.prefilled_tokens},
            "iterations": self.outcome.iterations,
            "kv_transfer_s": self.outcome.kv_transfer_s,
            "dropped_reasons": _reasons(self.outcome.records.dropped),
            "notes": list(self.notes),
            "speculative": None if self.speculation is None else {
                **self.speculation.to_dict(), "tokens_per_verify_simulated": self.tokens_per_verify},
        }

    def request_rows(self) -> list[dict[str, Any]]:
        """One record per request (`--requests-out`)."""
        rec = self.outcome.records
        rows = []
        for r in range(len(self.workload)):
            a = self.outcome.arrival_s[r]
            rows.append({"id": r, "arrival_s": a, "input_tokens": int(self.workload.input_tokens[r]),
                         "output_tokens": int(self.workload.output_tokens[r]),
                         "replica": rec.replica[r], "first_token_s": rec.first_s[r],
                         "finish_s": rec.finish_s[r], "ttft_s": rec.first_s[r] - a,
                         "e2e_s": rec.finish_s[r] - a, "preemptions": rec.preemptions[r],
                         "dropped": rec.dropped.get(r, "")})
        return rows

    def _repr_html_(self) -> str:
        """An HTML table for notebooks (`tegel.report.notebook`)."""
        from tegel.report.notebook import serve_html

        return serve_html(self)


def _reasons(dropped: dict[int, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for reason in dropped.values():
        out[reason] = out.get(reason, 0) + 1
    return out


def replica_config(cfg: ModelConfig, system: System, workload: Workload, precision: Precision,
                   scheduler: SchedulerConfig, options: RunOptions, params: Params,
                   speculation: Speculation | None = None) -> Config:
    """The configuration `tegel run` chooses for the workload's mean lengths at up to
    max_seqs sequences per replica (maximum throughput), under `options` (with `speculation`,
    as `tegel run` prices it)."""
    mean_in = max(1, round(float(workload.input_tokens.mean())))
    mean_out = max(1, round(float(workload.output_tokens.mean())))
    if cfg.learned_positions:
        mean_in = min(mean_in, cfg.max_position_embeddings - mean_out)
    scenario = Scenario(cfg, None, max(mean_in, 1), mean_out, precision, options.beams,
                        speculation=speculation)
    opts = replace(options, max_batch_per_replica=min(options.max_batch_per_replica,
                                                      scheduler.max_seqs))
    return search(scenario, system, opts, params).config


def prefill_budget(cfg: ModelConfig, system: System, config: Config, precision: Precision,
                   scheduler: SchedulerConfig, params: Params, longest: int,
                   speculation: Speculation | None = None) -> tuple[int, int]:
    """(prefill tokens per iteration, KV blocks per replica): the scheduler's budget, halved
    while the activations it needs leave too little room to cache the longest request (a chip
    whose memory is its SRAM cannot hold 8,192 tokens of activations beside the weights). A
    drafter's weights take memory, and a block holds its tokens' KV in the drafter too."""
    budget = scheduler.chunk_tokens if scheduler.kind == "chunked" else scheduler.max_batched_tokens
    if cfg.learned_positions:
        budget = min(budget, cfg.max_position_embeddings - 1)
    best = (budget, 0)
    while True:
        scenario = Scenario(cfg, 1, budget, 1, precision, speculation=speculation)
        mem = memory_with_draft(scenario, system, config.parallelism, 1, params)
        # KV blocks hold every position of every layer (no per-layer window freeing here), and
        # the drafter's cache of the same tokens
        drafter = mem.kv_cache_bytes - memory_per_chip(
            scenario, system, config.parallelism, 1, params).kv_cache_bytes
        per_token_chip = (kv_cache_bytes_per_chip(cfg, precision, 1.0, config.parallelism.tp)
                          / config.parallelism.pp + drafter / (budget + 1))
        spare = mem.capacity_bytes - mem.weights_bytes - mem.activation_bytes
        blocks = max(int(spare / per_token_chip) // scheduler.block_tokens, 0)
        if blocks > best[1]:
            best = (budget, blocks)
        if blocks * scheduler.block_tokens >= longest or budget <= 16:
            return best
        budget //= 2


def pools_for(cfg: ModelConfig, system: System, config: Config, precision: Precision,
              scheduler: SchedulerConfig, options: RunOptions, params: Params,
              blocks: int) -> Pools:
    """Replicas, the disaggregated split, and the KV blocks each replica holds."""
    par = config.parallelism
    if blocks < 1:
        raise TegelError(f"{cfg.name} on {system.name} ({par.label()}): the weights and "
                         f"activations leave no memory for a KV cache")
    prefill = 0
    if scheduler.kind == "disaggregated":
        if par.dp < 2:
            raise TegelError(f"disaggregated serving needs >= 2 replicas; {system.name} holds "
                             f"{par.dp} of {par.label()} (try a larger system or smaller --tp)")
        prefill = scheduler.prefill_replicas or par.dp // 2
        if prefill >= par.dp:
            raise TegelError(f"prefill_replicas: {prefill} leaves no decode replica of {par.dp}")
    kv_token = precision.kv_cache.nbytes(kv_layout(cfg).elements_per_token)
    overhead = policy_for(system.chip).request_overhead_s(params, options.software)
    return Pools(par.dp, prefill, blocks, float(kv_token), par.chips_per_replica, overhead)


def serve(model: str | ModelConfig, system: str | System, workload: Workload | None = None,
          scheduler: SchedulerConfig | str | None = None,
          precision: Precision | str | None = None, *, requests: int = 1000,
          rate_per_s: float | None = None, concurrency: int | None = None,
          lengths: str | None = None, input_tokens: int = 1024, output_tokens: int = 256,
          seed: int = 0, options: RunOptions | None = None, params: Params | None = None,
          slo: Slo | None = None, progress: Callable[[int], None] | None = None,
          speculation: Speculation | None = None) -> ServeResult:
    """Simulate requests served by `system` (module doc).

    The requests are `workload`, or `requests` of them made here: fixed `input_tokens` /
    `output_tokens` (or a `lengths` SPEC, see `serving.workload`), arriving at `rate_per_s`
    (Poisson), as a closed loop of `concurrency`, or all at t = 0. `scheduler`: a
    SchedulerConfig or a kind name ("continuous" by default). `progress` is called with the
    number of requests done so far. `speculation`: every decode drafts and verifies, each
    request advancing by a sampled accepted length + 1 (seeded by `seed`; docs/serving.md).

        tegel.serve("llama-3.1-8b", "h100-sxm", rate_per_s=20, requests=2000,
                    scheduler="chunked").to_dict()["ttft_s"]["p99"]
    """
    if workload is None:
        from tegel.serving.workload import make_workload

        workload = make_workload(requests, lengths or f"fixed:in={input_tokens},out={output_tokens}",
                                 rate_per_s=rate_per_s, concurrency=concurrency, seed=seed)
    options = options or RunOptions()
    if isinstance(scheduler, str):
        scheduler = SchedulerConfig(kind=scheduler)
    scheduler = scheduler or SchedulerConfig()
    params = params or default_params()
    cfg = model if isinstance(model, ModelConfig) else load_model_config(model)
    sys_ = system if isinstance(system, System) else load_system(system)
    prec = resolve_precision(sys_, precision)
    if options.beams > 1 and scheduler.kind == "disaggregated":
        raise TegelError("beam search (beams > 1): not simulated with the disaggregated scheduler "
                         "(its KV transfers count one sequence per request)")
    config = replica_config(cfg, sys_, workload, prec, scheduler, options, params, speculation)
    longest = int((workload.input_tokens + options.beams * workload.output_tokens).max())
    budget, blocks = prefill_budget(cfg, sys_, config, prec, scheduler, params, longest,
                                    speculation)
    notes: list[str] = []
    wanted = scheduler.chunk_tokens if scheduler.kind == "chunked" else scheduler.max_batched_tokens
    if budget < wanted:
        scheduler = replace(scheduler, max_batched_tokens=budget,
                            chunk_tokens=min(scheduler.chunk_tokens, budget))
        notes.append(f"prefill budget lowered to {budget} tokens per iteration: the activations "
                     f"of {wanted} would leave too little memory for the KV cache")
    pools = pools_for(cfg, sys_, config, prec, scheduler, options, params, blocks)
    oracle = oracle_for(cfg, prec, sys_, config.parallelism, config.stages, params,
                        options.software, options.beams)
    runtime = None if speculation is None else runtime_for(
        speculation, cfg, prec, sys_, config, params, options.software, seed)
    outcome = Simulation(oracle, sys_, pools, scheduler, workload, progress, runtime).run()
    mean_in = max(1, round(float(workload.input_tokens.mean())))
    mean_out = max(1, round(float(workload.output_tokens.mean())))
    kv = mean_in + mean_out / 2
    if runtime is None:
        b = options.beams
        tpot = oracle.cost(Batch(b, kv, (), b, decode_shared_tokens=mean_in)).time_s
    else:  # a verify of k + 1 tokens and k drafts, over the E tokens it emits
        q = runtime.new_tokens
        tpot = (runtime.with_drafts(oracle.cost(Batch(1, kv, (), q, q)), 1, kv).time_s
                / runtime.tokens_per_step)
    unloaded = (pools.overhead_s + oracle.cost(Batch(0, 0.0, ((mean_in, 0),), 1)).time_s, tpot)
    return ServeResult(cfg.name, sys_, scheduler, workload, prec, config, pools, outcome,
                       slo or Slo(), unloaded, tuple(notes), speculation,
                       runtime.tokens_per_verify if runtime is not None else math.nan)
