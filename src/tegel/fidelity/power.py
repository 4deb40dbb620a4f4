"""Power at the wall against MLPerf Inference Power: tokens per joule, predicted vs measured.

Each entry of `data/power_measurements.yaml` is a node measured at the wall during a timed MLPerf
run under a per-GPU power limit (MaxQ), or at the chips' own limit where the submission set none.
tegel runs the same scenario on the same preset with that limit as the system's chip power
limit, at the data set's mean request lengths — Offline as the
largest batch that fits (maximum throughput); Server through the request-level simulator, as the
serving group runs MLPerf Server (`fidelity.serving`): the highest Poisson rate whose p99 TTFT
and TPOT meet the benchmark's limits (`fidelity.serving.poisson_max_rate`), one replica fed every
dp-th arrival with up to the engine batch and tokens per iteration the submission's config
states (else 2,048 each), for LoadGen's 600 s minimum run of arrivals per rate probed, its
energy over the run's span (ramp and drain included, as the analyzer's window holds them) — and
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
from tegel.fidelity.cases import dataset_lengths, decoded_output_tokens, longest_output
from tegel.fidelity.score import mape_percent, relative_error
from tegel.fidelity.serving import mlperf_scheduler, poisson_max_rate
from tegel.hardware import System, load_system
from tegel.mapping.params import Params, default_params
from tegel.serving.rate_search import Limits
from tegel.serving.run import RunResult, run
from tegel.serving.scenario import RunOptions, resolve_precision
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

    @property
    def tokens_per_j(self) -> float:
        return self.tokens_per_s / self.system_w

    @property
    def cap_ratio(self) -> float | None:
        """Predicted tokens/s under the limit / at the chips' own limit."""
        return _cap_ratio(self.tokens_per_s, self.maxp_tokens_per_s)

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
                          if e.get("max_tokens_per_iteration") else None)
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


def _server(entry: PowerEntry, system: System, params: Params) -> tuple[float, float, str]:
    """(tokens/s, node W at the wall without racks, scenario) of the highest Poisson rate
    whose p99 TTFT and TPOT meet the entry's limits (module doc; as `fidelity.serving`)."""
    lengths = dataset_lengths()[entry.dataset]
    if lengths.get("beams", 1) > 1:
        raise TegelError(f"power_measurements.yaml: entry {entry.id}: a Server run with beam "
                         "search, which the serving simulator does not model")
    lin, lout = round(lengths["input_tokens_mean"]), round(lengths["output_tokens_mean"])
    cfg = load_model_config(entry.model)
    precision = resolve_precision(system, entry.precision)
    scheduler = mlperf_scheduler(entry.engine_batch, entry.max_tokens_per_iteration)
    seqs = scheduler.max_seqs
    options = RunOptions(tp=entry.tp, software=params.gpu.later_generation(str(entry.year)),
                         max_batch_per_replica=seqs)
    found, par, replica = poisson_max_rate(
        cfg, system, lambda chips: system.model_copy(update={"chip_count": chips}), (lin, lout),
        precision, scheduler, options, params, Limits(entry.ttft_limit_s, entry.tpot_limit_s))
    r = found.result
    racks_w = replica.host.rack_overhead_w * replica.rack_share
    scenario = (f"{entry.model} on {system.name} at {system.chip_limit_w:.0f} W per chip, "
                f"{lin}/{lout} tok, tp{par.tp} dp{par.dp}, {entry.precision}, up to {seqs} sequences "
                f"and {scheduler.chunk_tokens} tokens per iteration; Server "
                f"{found.rate_per_s * par.dp:.4g} requests/s (offline "
                f"{found.offline_rate_per_s * par.dp:.4g}), p99 TTFT "
                f"{float(np.percentile(r.ttft(), 99)):.3g} s, TPOT "
                f"{1e3 * float(np.percentile(r.tpot(), 99)):.3g} ms")
    return found.rate_per_s * par.dp * lout, (r.power_w - racks_w) * par.dp, scenario


def predict_power(entry: PowerEntry, params: Params | None = None) -> PowerRow:
    """tegel's tokens/s and node watts at the wall for one entry (module doc); with a reference
    MaxP run, also its tokens/s at the chips' own limit."""
    params = params or default_params()
    row = _at_limit(entry, entry.chip_power_limit_w, params)
    if entry.maxp_tokens_per_s:
        row = replace(row, maxp_tokens_per_s=_at_limit(entry, None, params).tokens_per_s)
    return row


def _at_limit(entry: PowerEntry, limit_w: float | None, params: Params) -> PowerRow:
    """The entry's scenario with the chips limited to `limit_w` (None: their own limit)."""
    system = load_system(entry.system)
    if limit_w is not None:
        system = system.model_copy(update={"chip_power_limit_w": limit_w})
    if entry.scenario == "server":
        tokens_s, wall_w, scenario = _server(entry, system, params)
        return PowerRow(entry, tokens_s, wall_w, False, scenario)
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


def cap_mape(rows: tuple[PowerRow, ...], role: str) -> float | None:
    """Mean |error| (percent) of the cap's effect, MaxQ / MaxP, over the rows of one role that
    have a reference run."""
    return mape_percent(e for r in rows if r.entry.role == role
                        if (e := r.cap_error()) is not None)


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
            c = cap_mape(rows, role)
            lines.append(f"{role}: tokens/J MAPE {m:.1f}% (watts {w:.1f}%, tokens/s {t:.1f}%)"
                         + (f"; target {TARGET_PERCENT:.0f}%" if role == "validation" else "")
                         + (f"; the cap's effect (MaxQ / MaxP) {c:.1f}%" if c is not None else ""))
    return "\n".join(lines)
