"""Predicted vs measured: run every case, report the error and the MAPE per metric group."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tegel.errors import TegelError
from tegel.fidelity import serving
from tegel.fidelity.cases import GROUPS, Case, Unmapped, h100_system, load_entries, to_case
from tegel.hardware import System
from tegel.mapping.params import Params, default_params
from tegel.serving.run import RunResult, run
from tegel.serving.scenario import RunOptions

# The subset the issue sets a target on: TensorRT-LLM fixed-length tables and MLPerf Offline.
TARGET_SET = {
    "throughput": lambda c: c.id.startswith("trtllm-l") or (
        c.id.startswith("mlp") and c.id.endswith("-off") and c.chips == 8),
    "ttft": lambda c: c.batch == 1,
    "tpot": lambda c: True,
    "energy": lambda c: "-v3-" in c.id,  # the current ML.ENERGY leaderboard (v3.0)
}


@dataclass(frozen=True, slots=True)
class Row:
    """One validated entry: the case, tegel's prediction and the relative error."""

    case: Case
    predicted: float
    scenario: str

    @property
    def error(self) -> float:
        """(predicted - measured) / measured."""
        return (self.predicted - self.case.measured) / self.case.measured


def _server_batch(case: Case, system: System, params: Params) -> RunResult:
    """Largest batch whose decode step meets the TPOT limit (bisection over powers then steps)."""
    limit = case.tpot_limit_s or math.inf
    best = _run(case, system, 1, params)
    top = _run(case, system, "auto", params)
    lo, hi = 1, top.batch
    if top.tpot_s <= limit:
        return top
    while hi - lo > max(1, lo // 32):
        mid = (lo + hi) // 2
        r = _run(case, system, mid, params)
        if r.tpot_s <= limit:
            lo, best = mid, r
        else:
            hi = mid
    return best


def _run(case: Case, system: System, batch: int | str, params: Params) -> RunResult:
    options = RunOptions(tp=case.tp, max_batch_per_replica=case.max_batch, beams=case.beams,
                         software=params.gpu.later_generation(case.software))
    return run(case.model, system, batch, case.input_tokens, case.output_tokens, case.precision,
               options=options, params=params)


def predict(case: Case, params: Params) -> Row:
    """Run the case's scenario with `params` and read off the figure the measurement reports."""
    system = h100_system(case.chips)
    result = (_server_batch(case, system, params) if case.batch == "server"
              else _run(case, system, case.batch, params))
    d = result.to_dict()
    if case.group == "throughput":
        value = d["throughput_tokens_per_s"] / (case.chips if case.per_accelerator else 1)
    elif case.group == "ttft":
        value = d["ttft_s"]
    elif case.group == "tpot":
        value = d["e2e_latency_s"] / case.output_tokens if case.itl_from_e2e else d["tpot_s"]
    else:  # energy: accelerator energy only, as NVML-based measurements count it
        value = d["accelerator_energy_j_per_token"]
    par = d["parallelism"]
    scenario = (f"{case.model} on {system.name}, batch {d['batch']}, {case.input_tokens}/"
                f"{case.output_tokens} tok, {case.precision}, tp{par['tp']} pp{par['pp']} "
                f"dp{par['dp']}")
    return Row(case, value, scenario)


@dataclass(frozen=True, slots=True)
class Report:
    """Rows predicted with the parameters named by `params` (their source), and the entries
    not validated, with the reason. The serving group (`fidelity/serving.py`: entries taken
    under load, simulated request by request) is kept apart: out of sample, never fitted."""

    rows: tuple[Row, ...]
    unmapped: tuple[Unmapped, ...]
    failed: tuple[Unmapped, ...]
    params: str = "shipped"
    serving: tuple[serving.ServingRow, ...] = ()
    serving_unmapped: tuple[Unmapped, ...] = ()  # and those that failed to run

    def mape(self, group: str, target_only: bool = False) -> float | None:
        """Mean absolute percentage error of a group (None when it has no rows)."""
        keep = [r for r in self.rows if r.case.group == group
                and (not target_only or TARGET_SET[group](r.case))]
        return 100.0 * sum(abs(r.error) for r in keep) / len(keep) if keep else None

    def summary(self) -> dict[str, Any]:
        return {g: {"mape_percent": self.mape(g), "target_set_mape_percent": self.mape(g, True),
                    "entries": sum(1 for r in self.rows if r.case.group == g)} for g in GROUPS}

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "rows": [{"id": r.case.id, "group": r.case.group, "scenario": r.scenario,
                      "approximation": r.case.approximation, "measured": r.case.measured,
                      "predicted": r.predicted, "error_percent": 100.0 * r.error,
                      "in_target_set": TARGET_SET[r.case.group](r.case)} for r in self.rows],
            "summary": self.summary(),
            "unmapped": [{"id": u.id, "reason": u.reason} for u in self.unmapped],
            "failed": [{"id": u.id, "reason": u.reason} for u in self.failed],
            "serving": {
                **serving.summary(self.serving),
                "rows": [{"id": r.case.id, "metric": r.case.metric, "kind": r.case.kind,
                          "scenario": r.scenario,
                          "approximation": r.case.approximation, "measured": r.case.measured,
                          "predicted": r.predicted, "error_percent": 100.0 * r.error}
                         for r in self.serving],
                "unmapped": [{"id": u.id, "reason": u.reason} for u in self.serving_unmapped],
            },
        }


def validate(entries: Iterable[tuple[str, dict[str, Any]]] | None = None,
             progress: Callable[[int, int], None] | None = None,
             params: Params | None = None, with_serving: bool = True) -> Report:
    """Validate measurement entries (default: the shipped H100 set) with `params` (default: the
    shipped parameters); `progress(i, n)` is called before each entry (the serving group's
    counted after the others). `with_serving=False` leaves the serving group out (calibration
    does: it is not fitted, and its simulations take seconds)."""
    params = params or default_params()
    items = list(entries) if entries is not None else load_entries()
    rows: list[Row] = []
    unmapped: list[Unmapped] = []
    failed: list[Unmapped] = []
    loaded: list[serving.ServingCase] = []
    loaded_unmapped: list[Unmapped] = []
    for _, entry in items if with_serving else ():
        found = serving.to_serving_case(entry)
        if isinstance(found, serving.ServingCase):
            loaded.append(found)
        elif found is not None:
            loaded_unmapped.append(found)
    total = len(items) + len(loaded)
    for i, (_, entry) in enumerate(items):
        if progress:
            progress(i, total)
        case = to_case(entry)
        if isinstance(case, Unmapped):
            unmapped.append(case)
            continue
        try:
            rows.append(predict(case, params))
        except TegelError as err:
            failed.append(Unmapped(case.id, f"tegel could not run it: {err}"))
    step = None if progress is None else (lambda i, _: progress(len(items) + i, total))
    served, not_run = serving.predict_serving(loaded, params, step)
    return Report(tuple(rows), tuple(unmapped), tuple(failed), params.source, tuple(served),
                  tuple(loaded_unmapped + not_run))
