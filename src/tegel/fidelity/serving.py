"""The serving group of `tegel validate`: figures taken under load, simulated request by request.

The entries of the other groups are priced as static batches; the entries taken *under load* —
NIM concurrency tables and MLPerf Server runs — are also run here through the request-level
simulator (`tegel.serving.serve`), every request with its own arrival, queueing and first token:

- **NIM concurrency C** (fixed input/output lengths): a closed loop, as GenAI-Perf drives it —
  C requests sent at once, the next one when one finishes — of max(4 C, 32) requests.
  Steady state: the first and last min(C, n / 4) requests (ramp and drain, the window of
  `serving.curve.steady_point`) are left out. TTFT and ITL are the means over the rest
  (GenAI-Perf reports averages; ITL = (last token - first token) / (output tokens - 1) per
  request); throughput is Little's law, C x output tokens / mean end-to-end latency (exactly C
  requests are outstanding in a closed loop; counting completions in a window of a short run
  is noisier).
- **MLPerf Server** (the p99 TTFT and TPOT limits the entry states, else its benchmark's from
  `serving/data/mlperf_scenarios.yaml`: GPT-J's end-to-end 20 s, with its 4 beams a request):
  the highest Poisson arrival rate whose p99 figures meet the limits
  (`serving.rate_search.max_rate`, as `tegel serve --scenario mlperf-server` searches it:
  bracketed from the simulated offline rate, never from the published figure; bisection to 1 %),
  times the mean output length, against the published Server throughput. Lengths are the data
  set's means, fixed (the benchmark's lognormal lengths, `serving.workload.mlperf_lengths`,
  triple the run time and moved these entries by 2-4 points).
  The replicas of a system are identical and the router is round-robin, so replica k sees
  exactly every dp-th arrival: one replica is simulated with that thinned stream (the same
  figures, dp times cheaper). Each probe covers LoadGen's minimum Server run, 600 s of arrivals
  (at least 3,000 requests), its p99 over all of them: a rate above what the replica sustains
  then builds the queue it builds in the measured run. (Probes of 3,000 requests, which the
  group used before, cover 60-300 s at these rates; they passed rates up to 9 % above what the
  600 s runs sustain, the queue not yet at the p99: B200 Llama-2-70B Server +8.8 %, the H100
  rows +4-7 %, the H200 ones 0-2 %.) The offline run that
  brackets the search holds 8 full batches (completed requests over its span).

Scheduler: chunked prefill (Sarathi-Serve; vLLM v1's default, TensorRT-LLM's chunked context)
with the simulator's defaults (2,048 tokens per iteration, 16-token KV blocks). NIM and MLPerf
stacks batch in flight; a prefill-first scheduler would stall every decode for each arriving
5,000-token prompt. Tokens per iteration: the engine's budget where the entry states it
(`max_tokens_per_iteration`: TensorRT-LLM's `max_num_tokens`, vLLM's `max_num_batched_tokens`),
else the simulator's 2,048. Sequences per replica: the simulator's default 256 for NIM; for MLPerf the
cap the static Server path applies (`cases.concurrency_cap`: the per-engine batch the entry's
`max_batch_per_replica` states, else its engine's default), else 2,048 (the cap of
`batch="auto"`: submitters tune it).

Out of sample: `--calibrate` never runs this group and its MAPEs are not in the objective. Of
its figures only the NIM ITLs also enter the fit, as static batches of the TPOT group (whose
target set is every TPOT entry); TTFT under load, NIM throughput (outside the throughput target
set) and MLPerf Server never do.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tegel.errors import TegelError
from tegel.fidelity.cases import (
    Stated,
    Unmapped,
    batches_in_flight,
    concurrency_cap,
    dataset_lengths,
    h100_system,
    read_entry,
    software_of,
)
from tegel.fidelity.score import mape_percent, relative_error
from tegel.hardware import System
from tegel.mapping.params import Params
from tegel.mapping.plan import Parallelism
from tegel.serving.rate_search import Limits, RateSearch, max_rate
from tegel.serving.replica import SchedulerConfig
from tegel.serving.requests import Workload
from tegel.serving.scenario import RunOptions, resolve_precision
from tegel.serving.serve import ServeResult, replica_config, serve
from tegel.serving.workload import mlperf_scenario, server_probe_requests
from tegel.workload.llm import Precision
from tegel.workload.model_config import ModelConfig, load_model_config

METRICS = ("ttft", "tpot", "throughput")
KINDS = ("NIM closed loop", "MLPerf Server")
NOTE = ("out of sample: not fitted (`--calibrate` never runs this group; only its NIM ITL "
        "figures enter the fit, as static batches in the TPOT objective)")
SCHEDULER = SchedulerConfig(kind="chunked")
MLPERF_MAX_SEQS = 2048  # per replica where the entry states no engine batch
CLOSED_LOOP_MIN_REQUESTS = 32
SERVER_REQUESTS = 3000  # per probe of one replica, at least
OFFLINE_WAVES = 8  # the offline run that brackets the search: this many full batches


def mlperf_scheduler(max_seqs: int | None, chunk_tokens: int | None,
                     in_flight: bool = True) -> SchedulerConfig:
    """The scheduler of an MLPerf Server run: the sequences per replica and tokens per iteration
    its engine's configuration states, else MLPERF_MAX_SEQS and the simulator's 2,048 (module
    doc); the serving group's rows and the power group's Server runs alike. Not `in_flight`
    (a stack before in-flight batching, `in_flight_batching` 0): static batches of up to that
    many sequences."""
    return replace(SCHEDULER, kind="chunked" if in_flight else "static",
                   max_seqs=max_seqs or MLPERF_MAX_SEQS,
                   chunk_tokens=chunk_tokens or SCHEDULER.chunk_tokens)


@dataclass(frozen=True, slots=True)
class Load:
    """What is simulated (hashable: entries of one run share it)."""

    model: str
    chips: int
    tp: int | None
    precision: str
    input_tokens: int
    output_tokens: int
    software: str | None  # GPU software generation (year); None: current
    concurrency: int | None = None  # NIM: a closed loop of this many requests
    ttft_limit_s: float | None = None  # MLPerf Server: p99 limits
    tpot_limit_s: float | None = None
    e2e_limit_s: float | None = None  # MLPerf GPT-J Server: p99 end-to-end latency only
    beams: int = 1  # beam search (MLPerf GPT-J: 4)
    max_seqs: int = SCHEDULER.max_seqs
    chunk_tokens: int = SCHEDULER.chunk_tokens  # tokens per iteration (the engine's budget)


@dataclass(frozen=True, slots=True)
class ServingCase:
    """One entry taken under load: the load to simulate and the figure to compare."""

    id: str
    metric: str  # ttft | tpot | throughput
    load: Load
    measured: float  # SI
    approximation: str
    source: str

    @property
    def kind(self) -> str:
        """Which kind of load entry: one of KINDS."""
        return KINDS[0] if self.load.concurrency is not None else KINDS[1]


@dataclass(frozen=True, slots=True)
class Figures:
    """What a simulated load gives (SI) and how it was obtained, in words."""

    ttft_s: float
    tpot_s: float
    throughput_tokens_per_s: float
    scenario: str

    def of(self, metric: str) -> float:
        return {"ttft": self.ttft_s, "tpot": self.tpot_s,
                "throughput": self.throughput_tokens_per_s}[metric]


@dataclass(frozen=True, slots=True)
class ServingRow:
    case: ServingCase
    predicted: float
    scenario: str

    @property
    def error(self) -> float:
        """(predicted - measured) / measured."""
        return relative_error(self.predicted, self.case.measured)


def _limit_s(text: str, name: str) -> float | None:
    m = re.search(rf"{name}\s*<=\s*([\d.]+)\s*(ms|s)\b", text)
    return None if m is None else float(m.group(1)) * (1e-3 if m.group(2) == "ms" else 1.0)


def to_serving_case(entry: dict[str, Any]) -> ServingCase | Unmapped | None:
    """The serving-group case of an entry taken under load, why there is none, or None when
    the entry was not taken under load (it belongs to the other groups only)."""
    w, metric = entry["workload"], entry["metric"]
    concurrency = w.get("concurrency")
    if concurrency is None and metric != "throughput_server":
        return None
    stated = read_entry(entry)
    if isinstance(stated, Unmapped):
        return stated
    if stated.group not in METRICS:
        return Unmapped(stated.id, f"serving group: {stated.group} is not simulated under load")
    source = str(entry.get("source", {}).get("title", ""))
    if concurrency is not None:
        return _closed_loop_case(entry, stated, int(concurrency), source)
    return _server_case(entry, stated, source)


def _closed_loop_case(entry: dict[str, Any], s: Stated, c: int, source: str) -> ServingCase | Unmapped:
    w = entry["workload"]
    if "input_len" not in w or "output_len" not in w:
        return Unmapped(s.id, "serving group: a concurrency entry without input/output lengths")
    load = Load(s.model, s.chips, s.tp, s.precision, int(w["input_len"]), int(w["output_len"]),
                software_of(s), concurrency=c)
    n = _closed_loop_requests(c)
    what = {"ttft": "mean TTFT", "tpot": "mean ITL", "throughput": "Little's-law throughput"}
    return ServingCase(s.id, s.group, load, s.value,
                       f"closed loop of {c}, {n} requests, {SCHEDULER.kind} scheduler; "
                       f"{what[s.group]} at steady state (ramp and drain left out)", source)


def _server_case(entry: dict[str, Any], s: Stated, source: str) -> ServingCase | Unmapped:
    w = entry["workload"]
    lengths = dataset_lengths().get(s.dataset or "")
    if lengths is None or not s.dataset:
        return Unmapped(s.id, "serving group: MLPerf Server without a known data set")
    limits = str(w.get("latency_constraint", ""))
    ttft, tpot, e2e = _limit_s(limits, "TTFT"), _limit_s(limits, "TPOT"), None
    if ttft is None or tpot is None:  # the benchmark's own limits (mlperf_scenarios.yaml)
        bench = mlperf_scenario(s.dataset, "server")
        ttft, tpot, e2e = bench.ttft_p99_s, bench.tpot_p99_s, bench.e2e_p99_s
    lin, lout = round(lengths["input_tokens_mean"]), round(lengths["output_tokens_mean"])
    beams = int(lengths.get("beams", 1))
    stated_cap = concurrency_cap(w)  # the same cap the static Server path applies
    stated_chunk = w.get("max_tokens_per_iteration")
    sched = mlperf_scheduler(stated_cap[0] if stated_cap else None,
                             None if stated_chunk is None else int(stated_chunk))
    max_seqs, chunk = sched.max_seqs, sched.chunk_tokens
    load = Load(s.model, s.chips, s.tp, s.precision, lin, lout, software_of(s),
                ttft_limit_s=ttft, tpot_limit_s=tpot, e2e_limit_s=e2e, beams=beams,
                max_seqs=max_seqs, chunk_tokens=chunk)
    within = (f"p99 end-to-end latency <= {e2e:g} s (the benchmark's rule)" if e2e is not None
              else f"p99 TTFT <= {ttft:g} s and TPOT <= {(tpot or 0) * 1e3:g} ms")
    return ServingCase(s.id, "throughput", load, s.value,
                       f"highest Poisson rate with {within} x {lout} output tokens"
                       + (f", {beams} beams a request" if beams > 1 else "")
                       + f"; {s.dataset} as its mean lengths {lin}/{lout}; {SCHEDULER.kind} "
                       f"scheduler, up to {max_seqs} sequences and {chunk} tokens per iteration "
                       f"per replica", source)


def _closed_loop_requests(c: int) -> int:
    return max(4 * c, CLOSED_LOOP_MIN_REQUESTS)


def _options(load: Load, params: Params) -> RunOptions:
    return RunOptions(tp=load.tp, software=params.gpu.later_generation(load.software))


def _fixed(n: int, load: Load, arrival_s: np.ndarray, concurrency: int | None,
           what: str) -> Workload:
    return Workload(arrival_s, np.full(n, load.input_tokens, dtype=np.int64),
                    np.full(n, load.output_tokens, dtype=np.int64), concurrency, what)


def _check(result: ServeResult) -> None:
    if result.dropped:
        reasons = "; ".join(f"{k} ({v})" for k, v in result.to_dict()["dropped_reasons"].items())
        raise TegelError(f"{result.dropped} request(s) dropped: {reasons}")


def closed_loop(load: Load, params: Params) -> Figures:
    """Steady-state mean TTFT, mean ITL and throughput of a closed loop (module doc)."""
    c = load.concurrency or 1
    n = _closed_loop_requests(c)
    system = h100_system(load.chips)
    wl = _fixed(n, load, np.zeros(n), c, f"closed loop of {c}")
    result = serve(load.model, system, wl, SCHEDULER, load.precision,
                   options=_options(load, params), params=params)
    _check(result)
    skip = min(c, max(n // 4, 1))
    window = slice(skip, max(n - skip, skip + 1))
    e2e = float(result.e2e()[window].mean())
    tpot = result.tpot()[window] if load.output_tokens > 1 else np.array([math.nan])
    par = result.config.parallelism
    scenario = (f"{load.model} on {system.name}, {load.input_tokens}/{load.output_tokens} tok, "
                f"{load.precision}, tp{par.tp} pp{par.pp} dp{par.dp}, closed loop of {c} "
                f"({n} requests), {result.preemptions} preemptions")
    return Figures(float(result.ttft()[window].mean()), float(tpot.mean()),
                   c * load.output_tokens / e2e, scenario)


@dataclass(frozen=True, slots=True)
class PoissonServer:
    """One replica of a system (`replica`, `par` the system's parallelism) fed replica 0's share
    of the system's Poisson stream, round-robin, so every replica sees the same load:
    `workload_at(rate)` the replica's arrivals at `rate` requests/s per replica (None: every
    request at t = 0), `simulate` the replica serving them; `at` takes a system rate."""

    par: Parallelism
    replica: System
    workload_at: Callable[[float | None], Workload]
    simulate: Callable[[Workload], ServeResult]

    def at(self, rate_per_s: float) -> ServeResult:
        """The replica's run at a system rate of `rate_per_s` requests/s."""
        return self.checked(self.simulate(self.workload_at(rate_per_s / self.par.dp)))

    def checked(self, r: ServeResult) -> ServeResult:
        if r.config.parallelism != replace(self.par, dp=1):
            raise TegelError(f"one replica ran as {r.config.parallelism.label()}, not as the "
                             f"system's {self.par.label()} replicas")
        return r


def poisson_server(cfg: ModelConfig, system: System, replica_of: Callable[[int], System],
                   lengths: tuple[int, int], precision: Precision, scheduler: SchedulerConfig,
                   options: RunOptions, params: Params) -> PoissonServer:
    """The replica of `system` (`replica_of(chips)`) that MLPerf Server runs probe: fixed
    lengths (input, output), for LoadGen's minimum run of arrivals at each rate (at least
    SERVER_REQUESTS); the offline run holds OFFLINE_WAVES full batches."""
    lin, lout = lengths

    def fixed(arrival_s: np.ndarray, what: str) -> Workload:
        n = arrival_s.size
        return Workload(arrival_s, np.full(n, lin, dtype=np.int64),
                        np.full(n, lout, dtype=np.int64), None, what)

    offline_n = max(SERVER_REQUESTS, OFFLINE_WAVES * scheduler.max_seqs)
    probe = fixed(np.zeros(SERVER_REQUESTS), "probe")
    par = replica_config(cfg, system, probe, precision, scheduler, options, params).parallelism
    replica = replica_of(par.chips_per_replica)
    replica_options = replace(options, tp=par.tp, pp=par.pp, ep=par.ep)

    def workload_at(rate: float | None) -> Workload:
        if rate is None:
            return fixed(np.zeros(offline_n), "offline")
        # replica 0's arrivals (every dp-th of the system's), as many as LoadGen's minimum run
        # holds at this rate; the same seed gives the same stream at every rate (a prefix:
        # common random numbers)
        n = server_probe_requests(rate, SERVER_REQUESTS)
        gaps = np.random.default_rng(0).exponential(1.0, n * par.dp)
        unit_s = (np.cumsum(gaps) - gaps[0])[::par.dp] / par.dp
        return fixed(unit_s / rate, f"Poisson arrivals, {n} in about {n / rate:.0f} s, "
                                    f"round-robin to 1 of {par.dp} replicas")

    def simulate(wl: Workload) -> ServeResult:
        return serve(cfg, replica, wl, scheduler, precision, options=replica_options,
                     params=params)

    return PoissonServer(par, replica, workload_at, simulate)


def poisson_max_rate(cfg: ModelConfig, system: System, replica_of: Callable[[int], System],
                     lengths: tuple[int, int], precision: Precision, scheduler: SchedulerConfig,
                     options: RunOptions, params: Params,
                     limits: Limits) -> tuple[RateSearch, Parallelism, System]:
    """(the search, the system's parallelism, the replica simulated) of the highest Poisson rate
    within `limits` (module doc) of `poisson_server`'s replica; the MLPerf Server rows and the
    power group's Server runs."""
    server = poisson_server(cfg, system, replica_of, lengths, precision, scheduler, options,
                            params)
    found = max_rate(server.simulate, server.workload_at, limits)
    server.checked(found.result)
    return found, server.par, server.replica


def server_rate(load: Load, params: Params) -> Figures:
    """The highest Poisson rate meeting the p99 limits (module doc), as output tokens/s, with
    the p99 TTFT and TPOT there."""
    full = h100_system(load.chips)
    precision = resolve_precision(full, load.precision)
    options = replace(_options(load, params), max_batch_per_replica=load.max_seqs,
                      beams=load.beams)
    if not batches_in_flight(params.gpu.for_software(options.software).in_flight_batching):
        raise TegelError(f"serving group: {load.model} on software {load.software}, which ran "
                         "static batches; the group simulates in-flight batching only")
    scheduler = mlperf_scheduler(load.max_seqs, load.chunk_tokens)
    found, par, _ = poisson_max_rate(load_model_config(load.model), full, h100_system,
                                     (load.input_tokens, load.output_tokens), precision,
                                     scheduler, options, params,
                                     Limits(load.ttft_limit_s, load.tpot_limit_s,
                                            load.e2e_limit_s))
    rate = found.rate_per_s * par.dp
    ttft = float(np.percentile(found.result.ttft(), 99))
    tpot = float(np.percentile(found.result.tpot(), 99))
    e2e = float(np.percentile(found.result.e2e(), 99))
    scenario = (f"{load.model} on {full.name}, {load.input_tokens}/{load.output_tokens} tok"
                + (f" x {load.beams} beams" if load.beams > 1 else "")
                + f", {load.precision}, tp{par.tp} pp{par.pp} dp{par.dp}; {rate:.4g} requests/s "
                f"(offline {found.offline_rate_per_s * par.dp:.4g}): p99 TTFT {ttft:.3g} s, "
                f"TPOT {tpot * 1e3:.3g} ms, end to end {e2e:.3g} s")
    return Figures(ttft, tpot, rate * load.output_tokens, scenario)


def simulate(load: Load, params: Params) -> Figures:
    """The figures of one load: a closed loop or an MLPerf Server rate search."""
    return closed_loop(load, params) if load.concurrency is not None else server_rate(load, params)


def predict_serving(cases: list[ServingCase], params: Params,
                    progress: Callable[[int, int], None] | None = None,
                    ) -> tuple[list[ServingRow], list[Unmapped]]:
    """Rows of the cases (each distinct load simulated once), and those tegel could not run."""
    figures: dict[Load, Figures | TegelError] = {}
    rows: list[ServingRow] = []
    failed: list[Unmapped] = []
    for i, case in enumerate(cases):
        if progress:
            progress(i, len(cases))
        if case.load not in figures:
            try:
                figures[case.load] = simulate(case.load, params)
            except TegelError as err:
                figures[case.load] = err
        got = figures[case.load]
        if isinstance(got, TegelError):
            failed.append(Unmapped(case.id, f"serving group: tegel could not run it: {got}"))
        else:
            rows.append(ServingRow(case, got.of(case.metric), got.scenario))
    return rows, failed


def mape(rows: Sequence[ServingRow], metric: str, kind: str | None = None) -> float | None:
    """Mean absolute percentage error of a metric (of one kind of entry; None: all)."""
    keep = [r for r in rows if r.case.metric == metric and kind in (None, r.case.kind)]
    return mape_percent(r.error for r in keep)


def summary(rows: Sequence[ServingRow]) -> dict[str, Any]:
    """MAPE, entry count and largest miss per metric (and per kind of entry), and the group's
    standing: not fitted."""
    def stats(metric: str, kind: str | None) -> dict[str, Any]:
        keep = [r for r in rows if r.case.metric == metric and kind in (None, r.case.kind)]
        worst = max(keep, key=lambda r: abs(r.error), default=None)
        return {"mape_percent": mape(rows, metric, kind), "entries": len(keep),
                "largest_miss": None if worst is None else
                {"id": worst.case.id, "error_percent": 100.0 * worst.error}}

    return {"fitted": False, "note": NOTE,
            "metrics": {m: {**stats(m, None),
                            "by_kind": {k: stats(m, k) for k in KINDS if stats(m, k)["entries"]}}
                        for m in METRICS}}
