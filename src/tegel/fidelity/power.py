"""Power at the wall against MLPerf Inference Power: tokens per joule, predicted vs measured.

Each entry of `data/power_measurements.yaml` is a node measured at the wall during a timed MLPerf
run under a per-GPU power limit (MaxQ), or at the chips' own limit where the submission set none.
tegel runs the same scenario on the same preset with that limit as the system's chip power
limit, at the data set's mean request lengths — Offline as the
largest batch that fits (maximum throughput); Server through the request-level simulator
(`fidelity.serving.poisson_server`): one replica fed every dp-th arrival of a Poisson stream at
the load LoadGen scheduled (`scheduled_per_s`; a MaxQ run chooses it below its latency limits),
with up to the engine batch and tokens per iteration the submission's config states (else 2,048
each), in flight or as static batches as the round's software ran them (`in_flight_batching`),
with the data set's beam search, for LoadGen's 600 s minimum run of arrivals, its energy over the
run's span (ramp and drain included, as the analyzer's window holds them); beside it, the highest
Poisson rate whose p99 TTFT and TPOT (GPT-J: end-to-end latency) meet the benchmark's limits, as
the serving group searches it (the cap's effect compares those) — and
compares tokens/s, node watts at the wall (the racks' share of switches is outside the analyzer
and left out) and their ratio. Nothing is fitted here: H100 entries validate the power model,
other GPUs are predicted from their specifications.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import yaml

from tegel.errors import TegelError
from tegel.fidelity.cases import (
    batches_in_flight,
    dataset_lengths,
    decoded_output_tokens,
    longest_output,
)
from tegel.fidelity.score import mape_percent, relative_error
from tegel.fidelity.serving import mlperf_scheduler, poisson_server
from tegel.hardware import System, load_system
from tegel.mapping.params import Params, default_params
from tegel.serving.rate_search import Limits, max_rate
from tegel.serving.run import RunResult, run
from tegel.serving.scenario import RunOptions, resolve_precision
from tegel.serving.serve import ServeResult
from tegel.workload.model_config import load_model_config

TARGET_PERCENT = 15.0  # |tokens/J error| the H100 (validation) entries are held to


def _cap_ratio(capped_tokens_per_s: float, maxp_tokens_per_s: float | None) -> float | None:
    """Tokens/s under the power limit / without it (None without a run without it)."""
    return capped_tokens_per_s / maxp_tokens_per_s if maxp_tokens_per_s else None


@dataclass(frozen=True, slots=True)
class PowerEntry:
    """One MLPerf Power measurement: the scenario and what the analyzer and loadgen reported."""

    id: str
    role: str  # validation (H100) | predicted (other GPUs)
    system: str  # preset
    chip_power_limit_w: float
    model: str
    dataset: str
    scenario: str  # offline | server
    tp: int
    precision: str
    year: int
    tokens_per_s: float
    system_w: float
    tpot_limit_s: float | None = None
    ttft_limit_s: float | None = None
    engine_batch: int | None = None  # sequences per engine the submission configures
    maxp_tokens_per_s: float | None = None  # the same round's run of the node without a limit
    max_tokens_per_iteration: int | None = None  # Server: the engine's budget where stated
    e2e_limit_s: float | None = None  # Server: p99 end-to-end latency (GPT-J's only limit)
    scheduled_per_s: float | None = None  # Server: LoadGen's scheduled samples/s (the load)

    @property
    def tokens_per_j(self) -> float:
        return self.tokens_per_s / self.system_w

    @property
    def cap_ratio(self) -> float | None:
        """Measured tokens/s under the limit / without it, the same software (None: no
        reference run)."""
        return _cap_ratio(self.tokens_per_s, self.maxp_tokens_per_s)


@dataclass(frozen=True, slots=True)
class PowerRow:
    """An entry with tegel's prediction: tokens/s, node watts at the wall, the parallelism."""

    entry: PowerEntry
    tokens_per_s: float
    system_w: float
    capped: bool
    scenario: str
    maxp_tokens_per_s: float | None = None  # the same scenario at the chips' own limit
    # Server: at the highest rate within the limits (tokens_per_s: at the scheduled load)
    max_rate_tokens_per_s: float | None = None
    max_rate_system_w: float | None = None

    @property
    def tokens_per_j(self) -> float:
        return self.tokens_per_s / self.system_w

    @property
    def max_rate_tokens_per_j(self) -> float | None:
        if self.max_rate_tokens_per_s is None or self.max_rate_system_w is None:
            return None
        return self.max_rate_tokens_per_s / self.max_rate_system_w

    @property
    def cap_ratio(self) -> float | None:
        """Predicted tokens/s under the limit / at the chips' own limit; Server: both at the
        highest rate within the limits, as the MaxP run is the node's most (module doc)."""
        return _cap_ratio(self.max_rate_tokens_per_s or self.tokens_per_s,
                          self.maxp_tokens_per_s)

    def cap_error(self) -> float | None:
        """(predicted - measured) / measured of the cap's effect, MaxQ / MaxP (None without a
        reference run): the power model apart from the time model, whose software it shares."""
        measured, predicted = self.entry.cap_ratio, self.cap_ratio
        if measured is None or predicted is None:
            return None
        return relative_error(predicted, measured)

    def error(self, metric: str = "tokens_per_j") -> float:
        """(predicted - measured) / measured of tokens_per_j, tokens_per_s or system_w."""
        return relative_error(getattr(self, metric), getattr(self.entry, metric))


@cache
def load_power_entries() -> tuple[PowerEntry, ...]:
    """The shipped MLPerf Power entries (fidelity/data/power_measurements.yaml)."""
    text = (resources.files("tegel.fidelity") / "data" / "power_measurements.yaml").read_text()
    return tuple(_entry(e) for e in yaml.safe_load(text)["entries"])


def _entry(e: dict[str, Any]) -> PowerEntry:
    try:
        return PowerEntry(str(e["id"]), str(e["role"]), str(e["system"]),
                          float(e["chip_power_limit_w"]), str(e["model"]), str(e["dataset"]),
                          str(e["scenario"]), int(e["tp"]), str(e["precision"]), int(e["year"]),
                          float(e["tokens_per_s"]), float(e["system_w"]),
                          float(e["tpot_limit_s"]) if e.get("tpot_limit_s") else None,
                          float(e["ttft_limit_s"]) if e.get("ttft_limit_s") else None,
                          int(e["engine_batch"]) if e.get("engine_batch") else None,
                          float(e["maxp_tokens_per_s"]) if e.get("maxp_tokens_per_s") else None,
                          int(e["max_tokens_per_iteration"])
                          if e.get("max_tokens_per_iteration") else None,
                          float(e["e2e_limit_s"]) if e.get("e2e_limit_s") else None,
                          float(e["scheduled_per_s"]) if e.get("scheduled_per_s") else None)
    except KeyError as err:
        raise TegelError(f"power_measurements.yaml: entry {e.get('id', '?')} lacks {err}") from err
    except (TypeError, ValueError) as err:
        raise TegelError(f"power_measurements.yaml: entry {e.get('id', '?')}: a field is not a "
                         f"number where one is expected ({err})") from err


def _run(entry: PowerEntry, system: System, batch: int | str,
         params: Params) -> tuple[RunResult, float]:
    """(the run, the share of its decoded tokens that are generated): the data set's mean
    lengths; a stack of static batches decodes each batch to its longest request
    (cases.decoded_output_tokens), the finished requests padding the steps."""
    lengths = dataset_lengths()[entry.dataset]
    software = params.gpu.later_generation(str(entry.year))
    options = RunOptions(tp=entry.tp, software=software,
                         beams=int(lengths.get("beams", 1)))  # GPT-J: beam search 4
    if entry.engine_batch:  # the submission's batch per engine caps the largest that fits
        options = replace(options, max_batch_per_replica=entry.engine_batch)
    mean = round(lengths["output_tokens_mean"])
    decoded = decoded_output_tokens(mean, longest_output(lengths),
                                    params.gpu.for_software(software).in_flight_batching)
    result = run(entry.model, system, batch, round(lengths["input_tokens_mean"]), decoded,
                 entry.precision, options=options, params=params)
    return result, mean / decoded


@dataclass(frozen=True, slots=True)
class ServerFigures:
    """A Server entry simulated: tokens/s and node W (at the wall, without racks) at the
    scheduled load (None when not asked for) and at the highest rate within the limits."""

    tokens_per_s: float | None
    system_w: float | None
    max_rate_tokens_per_s: float
    max_rate_system_w: float
    scenario: str


def _server(entry: PowerEntry, system: System, params: Params,
            at_scheduled: bool) -> ServerFigures:
    """The entry's Server run (module doc): at its scheduled load (`at_scheduled`) and at the
    highest Poisson rate whose p99 latencies meet its limits."""
    lengths = dataset_lengths()[entry.dataset]
    lin, lout = round(lengths["input_tokens_mean"]), round(lengths["output_tokens_mean"])
    beams = int(lengths.get("beams", 1))  # GPT-J: beam search 4
    cfg = load_model_config(entry.model)
    precision = resolve_precision(system, entry.precision)
    software = params.gpu.later_generation(str(entry.year))
    stack = params.gpu.for_software(software)
    in_flight = batches_in_flight(stack.in_flight_batching)
    # a static batch decodes to its longest request, as Offline (`_run`); lout tokens count
    decoded = decoded_output_tokens(lout, longest_output(lengths), stack.in_flight_batching)
    scheduler = mlperf_scheduler(entry.engine_batch, entry.max_tokens_per_iteration, in_flight)
    seqs = scheduler.max_seqs
    options = RunOptions(tp=entry.tp, software=software, max_batch_per_replica=seqs, beams=beams)
    limits = Limits(entry.ttft_limit_s, entry.tpot_limit_s, entry.e2e_limit_s)
    if limits == Limits() or entry.scheduled_per_s is None:
        raise TegelError(f"power_measurements.yaml: entry {entry.id}: a Server entry needs "
                         "scheduled_per_s and the benchmark's p99 limits (ttft_limit_s and "
                         "tpot_limit_s, or e2e_limit_s)")
    server = poisson_server(cfg, system,
                            lambda chips: system.model_copy(update={"chip_count": chips}),
                            (lin, decoded), precision, scheduler, options, params)
    par, replica = server.par, server.replica
    racks_w = replica.host.rack_overhead_w * replica.rack_share
    found = max_rate(server.simulate, server.workload_at, limits)
    r = server.checked(found.result)

    def p99(run: ServeResult) -> str:
        if entry.e2e_limit_s:
            return f"e2e {float(np.percentile(run.e2e(), 99)):.3g} s"
        return (f"TTFT {float(np.percentile(run.ttft(), 99)):.3g} s, TPOT "
                f"{1e3 * float(np.percentile(run.tpot(), 99)):.3g} ms")

    batching = (f"up to {seqs} sequences and {scheduler.chunk_tokens} tokens per iteration"
                if in_flight else f"static batches of up to {seqs}")
    scenario = (f"{entry.model} on {system.name} at {system.chip_limit_w:.0f} W per chip, "
                f"{lin}/{lout} tok" + (f" x {beams} beams" if beams > 1 else "")
                + (f" (static batches decoded to {decoded})" if decoded != lout else "")
                + f", tp{par.tp} dp{par.dp}, {entry.precision}, {batching}; Server")
    highest = (f"highest rate within the limits {found.rate_per_s * par.dp:.4g} requests/s "
               f"(offline {found.offline_rate_per_s * par.dp:.4g}), p99 {p99(r)}")
    tokens_s = wall_w = None
    if at_scheduled:
        at = server.at(entry.scheduled_per_s)
        tokens_s = at.requests_per_s * par.dp * lout
        wall_w = (at.power_w - racks_w) * par.dp
        scenario += (f" at the scheduled {entry.scheduled_per_s:.4g} requests/s, p99 {p99(at)}"
                     + ("" if not limits.broken(at) else
                        f" (breaks {', '.join(limits.broken(at))})") + f"; {highest}")
    else:
        scenario += f" {highest}"
    return ServerFigures(tokens_s, wall_w, found.rate_per_s * par.dp * lout,
                         (r.power_w - racks_w) * par.dp, scenario)


def predict_power(entry: PowerEntry, params: Params | None = None) -> PowerRow:
    """tegel's tokens/s and node watts at the wall for one entry (module doc); with a reference
    MaxP run, also its tokens/s at the chips' own limit."""
    params = params or default_params()
    row = _at_limit(entry, entry.chip_power_limit_w, params)
    if entry.maxp_tokens_per_s:
        # at the chips' own limit a Server entry runs its highest rate only (`_at_limit`)
        row = replace(row, maxp_tokens_per_s=_at_limit(entry, None, params).tokens_per_s)
    return row


def _at_limit(entry: PowerEntry, limit_w: float | None, params: Params) -> PowerRow:
    """The entry's scenario with the chips limited to `limit_w` (None: their own limit)."""
    system = load_system(entry.system)
    if limit_w is not None:
        system = system.model_copy(update={"chip_power_limit_w": limit_w})
    if entry.scenario == "server":
        f = _server(entry, system, params, at_scheduled=limit_w is not None)
        return PowerRow(entry, f.tokens_per_s or f.max_rate_tokens_per_s,
                        f.system_w or f.max_rate_system_w, False, f.scenario,
                        max_rate_tokens_per_s=f.max_rate_tokens_per_s,
                        max_rate_system_w=f.max_rate_system_w)
    result, counted = _run(entry, system, "auto", params)
    racks_w = system.host.rack_overhead_w * system.rack_share
    d = result.to_dict()
    par = d["parallelism"]
    scenario = (f"{entry.model} on {system.name} at {system.chip_limit_w:.0f} W per chip, "
                f"batch {d['batch']}, tp{par['tp']} dp{par['dp']}, {entry.precision}"
                + (f"; static batches decoded to {result.output_tokens} tokens"
                   if counted < 1 else ""))
    return PowerRow(entry, result.throughput_tokens_per_s * counted, result.power_w - racks_w,
                    bool(d["power_capped"]), scenario)


def power_report(params: Params | None = None) -> tuple[PowerRow, ...]:
    """Every shipped entry predicted."""
    return tuple(predict_power(e, params) for e in load_power_entries())


def mape(rows: tuple[PowerRow, ...], role: str, metric: str = "tokens_per_j") -> float | None:
    """Mean |error| (percent) of `metric` over the rows of one role (None when there are none)."""
    return mape_percent(r.error(metric) for r in rows if r.entry.role == role)


def max_rate_mape(rows: tuple[PowerRow, ...], role: str) -> float | None:
    """Mean |tokens/J error| (percent) over the rows of one role with the Server entries taken at
    tegel's highest rate within their limits, not at their scheduled load (None without a
    Server row)."""
    if not any(r.max_rate_tokens_per_j for r in rows if r.entry.role == role):
        return None
    return mape_percent(relative_error(r.max_rate_tokens_per_j or r.tokens_per_j,
                                       r.entry.tokens_per_j)
                        for r in rows if r.entry.role == role)


def cap_mape(rows: tuple[PowerRow, ...], role: str, scenario: str) -> float | None:
    """Mean |error| (percent) of the cap's effect, MaxQ / MaxP, over the rows of one role and
    scenario that have a reference run. Offline: both runs at the node's most. Server: the
    measured ratio is of the two runs' scheduled loads, and a MaxQ run chooses its load (module
    doc), so it may sit below the cap's own effect, which tegel predicts at the highest rates."""
    return mape_percent(e for r in rows if r.entry.role == role
                        if r.entry.scenario == scenario if (e := r.cap_error()) is not None)


def power_dict(rows: tuple[PowerRow, ...]) -> dict[str, Any]:
    """The power group for `tegel validate --json`: every entry measured and predicted (SI
    units; errors in percent), and per role the MAPEs the text prints."""
    def pct(v: float | None) -> float | None:
        return None if v is None else 100 * v

    out_rows = []
    for r in rows:
        e = r.entry
        out_rows.append({
            "id": e.id, "role": e.role, "system": e.system, "model": e.model,
            "scenario": e.scenario, "chip_power_limit_w": e.chip_power_limit_w,
            "scheduled_per_s": e.scheduled_per_s,
            "measured": {"tokens_per_s": e.tokens_per_s, "system_w": e.system_w,
                         "tokens_per_j": e.tokens_per_j, "cap_ratio": e.cap_ratio},
            "predicted": {"tokens_per_s": r.tokens_per_s, "system_w": r.system_w,
                          "tokens_per_j": r.tokens_per_j, "cap_ratio": r.cap_ratio,
                          "power_capped": r.capped,
                          "max_rate_tokens_per_s": r.max_rate_tokens_per_s,
                          "max_rate_system_w": r.max_rate_system_w},
            "error_percent": {"tokens_per_j": pct(r.error()),
                              "tokens_per_s": pct(r.error("tokens_per_s")),
                              "system_w": pct(r.error("system_w")),
                              "cap_ratio": pct(r.cap_error())},
            "how": r.scenario})
    summary = {role: {"entries": sum(1 for r in rows if r.entry.role == role),
                      "tokens_per_j_mape_percent": mape(rows, role),
                      "system_w_mape_percent": mape(rows, role, "system_w"),
                      "tokens_per_s_mape_percent": mape(rows, role, "tokens_per_s"),
                      "server_at_highest_rate_tokens_per_j_mape_percent":
                          max_rate_mape(rows, role),
                      "cap_mape_percent": {sc: cap_mape(rows, role, sc)
                                           for sc in ("offline", "server")}}
               for role in ("validation", "predicted")}
    return {"note": "MLPerf Inference Power, node power at the wall; out of sample, nothing "
                    "fitted; Server entries at the load LoadGen scheduled, their highest rate "
                    "within the limits beside it",
            "target_percent": TARGET_PERCENT, "rows": out_rows, "summary": summary}


def format_power(rows: tuple[PowerRow, ...]) -> str:
    """The power group of `tegel validate`: one line per entry, a MAPE line per role, and the
    cap's effect against the same round's run without a limit."""
    head = (f"{'entry':<26} {'role':<10} {'tok/s meas':>10} {'pred':>8} {'W meas':>7} "
            f"{'pred':>7} {'tok/J meas':>10} {'pred':>6} {'error':>7} {'cap meas':>8} "
            f"{'pred':>5}  scenario")
    lines = ["power group — MLPerf Inference Power, node power at the wall (MaxQ: the GPUs' "
             "power limit applied; else their own); out of sample, nothing fitted; cap: "
             "tokens/s under the limit / the same round's run without it", head,
             "-" * len(head)]
    for r in rows:
        e = r.entry
        cap = (f"{e.cap_ratio:>8.3f} {r.cap_ratio:>5.3f}"
               if e.cap_ratio is not None and r.cap_ratio is not None else f"{'-':>8} {'-':>5}")
        lines.append(f"{e.id:<26} {e.role:<10} {e.tokens_per_s:>10.0f} {r.tokens_per_s:>8.0f} "
                     f"{e.system_w:>7.0f} {r.system_w:>7.0f} {e.tokens_per_j:>10.3f} "
                     f"{r.tokens_per_j:>6.3f} {100 * r.error():>+6.1f}% {cap}  {r.scenario}"
                     + ("; power-capped" if r.capped else ""))
    for role in ("validation", "predicted"):
        m = mape(rows, role)
        if m is not None:
            w, t = mape(rows, role, "system_w"), mape(rows, role, "tokens_per_s")
            caps = {sc: cap_mape(rows, role, sc) for sc in ("offline", "server")}
            c = [(sc, v) for sc, v in caps.items() if v is not None]
            x = max_rate_mape(rows, role)
            lines.append(f"{role}: tokens/J MAPE {m:.1f}% (watts {w:.1f}%, tokens/s {t:.1f}%)"
                         + (f"; target {TARGET_PERCENT:.0f}%" if role == "validation" else "")
                         + ("; the cap's effect (MaxQ / MaxP) " + ", ".join(
                             f"{sc.capitalize()} {v:.1f}%" for sc, v in c) if c else "")
                         + (f"; Server at tegel's highest rate within the limits instead of the "
                            f"scheduled load: {x:.1f}%" if x is not None else ""))
    return "\n".join(lines)
