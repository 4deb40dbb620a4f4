"""Predicted vs measured: run every case, report the error and the MAPE per metric group."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tegel.errors import TegelError
from tegel.fidelity import serving
from tegel.fidelity.cases import (
    CALIBRATION_GPU,
    GROUPS,
    Case,
    Unmapped,
    decoded_output_tokens,
    gpu_system,
    load_entries,
    precision_of,
    read_entry,
    to_case,
)
from tegel.fidelity.score import mape_percent, relative_error
from tegel.hardware import System
from tegel.mapping.params import Params, default_params
from tegel.serving.run import RunResult, run
from tegel.serving.scenario import RunOptions

if TYPE_CHECKING:
    from tegel.fidelity.folds import Fold

OTHER_GPUS = "all other GPUs"  # gpu key of the summary over every GPU but the calibration one
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
        return relative_error(self.predicted, self.case.measured)


def largest_batch_within(run_at: Callable[[int | str], RunResult],
                         tpot_limit_s: float | None) -> RunResult:
    """The run at the largest batch whose decode step meets the TPOT limit: the largest that
    fits if it does, else bisection between 1 and it, to 1/32 of the batch."""
    limit = tpot_limit_s or math.inf
    top = run_at("auto")
    if top.tpot_s <= limit:
        return top
    lo, hi, best = 1, top.batch, run_at(1)
    while hi - lo > max(1, lo // 32):
        mid = (lo + hi) // 2
        r = run_at(mid)
        if r.tpot_s <= limit:
            lo, best = mid, r
        else:
            hi = mid
    return best


def _server_batch(case: Case, system: System, params: Params) -> RunResult:
    """Largest batch whose decode step meets the case's TPOT limit."""
    return largest_batch_within(lambda b: _run(case, system, b, params), case.tpot_limit_s)


def _decoded(case: Case, params: Params) -> int:
    """Output tokens the case's batches decode (cases.decoded_output_tokens)."""
    stack = params.gpu.for_software(params.gpu.later_generation(case.software))
    return decoded_output_tokens(case.output_tokens, case.longest_output_tokens,
                                 stack.in_flight_batching)


def _run(case: Case, system: System, batch: int | str, params: Params) -> RunResult:
    """The case's scenario at `batch`; a Server case's batches are in-flight concurrencies. A
    static batch of a data set decodes to its longest request (`_decoded`)."""
    options = RunOptions(tp=case.tp, max_batch_per_replica=case.max_batch, beams=case.beams,
                         software=params.gpu.later_generation(case.software),
                         in_flight=case.batch == "server")
    return run(case.model, system, batch, case.input_tokens, _decoded(case, params),
               precision_of(case.precision), options=options, params=params)


def predict(case: Case, params: Params) -> Row:
    """Run the case's scenario with `params` and read off the figure the measurement reports."""
    system = gpu_system(case.gpu, case.chips)
    result = (_server_batch(case, system, params) if case.batch == "server"
              else _run(case, system, case.batch, params))
    d = result.to_dict()
    counted = case.output_tokens / result.output_tokens  # of the tokens decoded, those generated
    if case.group == "throughput":
        value = (d["throughput_tokens_per_s"] * counted
                 / (case.chips if case.per_accelerator else 1))
    elif case.group == "ttft":
        value = d["ttft_s"]
    elif case.group == "tpot":
        value = d["e2e_latency_s"] / case.output_tokens if case.itl_from_e2e else d["tpot_s"]
    else:  # energy: accelerator energy only, as NVML-based measurements count it
        value = d["accelerator_energy_j_per_token"] / counted
    par = d["parallelism"]
    scenario = (f"{case.model} on {system.name}, batch {d['batch']}, {case.input_tokens}/"
                f"{case.output_tokens} tok, {case.precision}, tp{par['tp']} pp{par['pp']} "
                f"dp{par['dp']}")
    return Row(case, value, scenario)


@dataclass(frozen=True, slots=True)
class Report:
    """Rows predicted with the parameters named by `params` (their source), and the entries
    not validated, with the reason. H100 rows are in sample (those parameters were fitted on
    them); `out_of_sample` predicts each H100 entry held out by a k-fold calibration with the
    fold that did not see it (`fidelity/folds.py`); rows of other GPUs are never fitted. The
    serving group (`fidelity/serving.py`: entries taken under load, simulated request by
    request) is kept apart: out of sample, never fitted."""

    rows: tuple[Row, ...]
    unmapped: tuple[Unmapped, ...]
    failed: tuple[Unmapped, ...]
    params: str = "shipped"
    serving: tuple[serving.ServingRow, ...] = ()
    serving_unmapped: tuple[Unmapped, ...] = ()  # and those that failed to run
    out_of_sample: tuple[Row, ...] = ()  # H100 entries, each by the fold that held it out
    fold_of: tuple[tuple[str, int], ...] = ()  # (entry id, fold)
    folds_stale: bool = False  # a fold was fitted on other data files than the shipped ones

    def mape(self, group: str, target_only: bool = False, gpu: str | None = CALIBRATION_GPU,
             out_of_sample: bool = False) -> float | None:
        """Mean absolute percentage error of a group on one GPU (OTHER_GPUS: every GPU but the
        calibration one; None: every GPU), in sample or (`out_of_sample`) by the folds that
        held the entries out; None when the group has no rows."""
        rows = self.out_of_sample if out_of_sample else self.rows
        keep = [r for r in rows if r.case.group == group
                and (gpu is None or r.case.gpu == gpu
                     or (gpu == OTHER_GPUS and r.case.gpu != CALIBRATION_GPU))
                and (not target_only or TARGET_SET[group](r.case))]
        return mape_percent(r.error for r in keep)

    def summary(self) -> dict[str, Any]:
        """Per metric group on the calibration GPU (H100): MAPE in sample and out of sample
        (k-fold), over all entries and the target set."""
        out = {}
        for g in GROUPS:
            out[g] = {"mape_percent": self.mape(g), "target_set_mape_percent": self.mape(g, True),
                      "entries": sum(1 for r in self.rows if r.case.group == g
                                     and r.case.gpu == CALIBRATION_GPU),
                      "out_of_sample_mape_percent": self.mape(g, out_of_sample=True),
                      "out_of_sample_target_set_mape_percent": self.mape(g, True,
                                                                         out_of_sample=True),
                      "out_of_sample_entries": sum(1 for r in self.out_of_sample
                                                   if r.case.group == g)}
        return out

    def gpu_summary(self) -> dict[str, dict[str, Any]]:
        """Per GPU other than the calibration one (and OTHER_GPUS: all of them), per metric
        group: entries and MAPE (never fitted: predicted from the GPU's specification and
        microbenchmarks)."""
        gpus = sorted({r.case.gpu for r in self.rows} - {CALIBRATION_GPU})
        if gpus:
            gpus.append(OTHER_GPUS)
        return {gpu: {g: {"entries": n, "mape_percent": self.mape(g, gpu=gpu)}
                      for g in GROUPS
                      if (n := sum(1 for r in self.rows if r.case.group == g
                                   and (r.case.gpu == gpu or (gpu == OTHER_GPUS
                                                              and r.case.gpu != CALIBRATION_GPU))))}
                for gpu in gpus}

    def to_dict(self) -> dict[str, Any]:
        oos = {r.case.id: r for r in self.out_of_sample}
        fold = dict(self.fold_of)

        def row(r: Row) -> dict[str, Any]:
            d = {"id": r.case.id, "gpu": r.case.gpu, "group": r.case.group,
                 "scenario": r.scenario, "approximation": r.case.approximation,
                 "measured": r.case.measured, "predicted": r.predicted,
                 "error_percent": 100.0 * r.error,
                 "in_target_set": TARGET_SET[r.case.group](r.case)}
            if r.case.id in oos:
                d["out_of_sample"] = {"fold": fold[r.case.id], "predicted": oos[r.case.id].predicted,
                                      "error_percent": 100.0 * oos[r.case.id].error}
            return d

        return {
            "params": self.params,
            "rows": [row(r) for r in self.rows],
            "summary": self.summary(),
            "other_gpus": self.gpu_summary(),
            "folds_stale": self.folds_stale,
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
             params: Params | None = None, with_serving: bool = True,
             folds: Sequence[Fold] = ()) -> Report:
    """Validate measurement entries (default: the shipped H100 set) with `params` (default: the
    shipped parameters); `progress(i, n)` is called before each entry (the serving group's
    counted after the others). `with_serving=False` leaves the serving group out (calibration
    does: it is not fitted, and its simulations take seconds). With `folds`
    (`folds.load_folds()`), every entry a fold held out is also predicted by that fold's fit
    (the shipped parameters with the fold's fitted values on top): `Report.out_of_sample`."""
    params = params or default_params()
    items = list(entries) if entries is not None else load_entries()
    rows: list[Row] = []
    unmapped: list[Unmapped] = []
    failed: list[Unmapped] = []
    loaded: list[serving.ServingCase] = []
    loaded_unmapped: list[Unmapped] = []
    for _, entry in items if with_serving else ():
        stated = read_entry(entry)
        if not isinstance(stated, Unmapped) and stated.gpu != CALIBRATION_GPU:
            if serving.to_serving_case(entry) is not None:
                loaded_unmapped.append(Unmapped(stated.id, "serving group: simulated on H100 "
                                                "systems only"))
            continue
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
    report = Report(tuple(rows), tuple(unmapped), tuple(failed), params.source, tuple(served),
                    tuple(loaded_unmapped + not_run))
    return _with_folds(report, items, folds) if folds else report


def _with_folds(report: Report, items: list[tuple[str, dict[str, Any]]],
                folds: Sequence[Fold]) -> Report:
    """`report` with each held-out entry predicted by its fold (from the shipped parameters,
    which the fold files were fitted from)."""
    from tegel.fidelity.folds import inputs_digest

    base = default_params()
    oos: list[Row] = []
    fold_of: list[tuple[str, int]] = []
    for f in folds:
        held = set(f.held_out_ids)
        mine = [(n, e) for n, e in items if e["id"] in held]
        if mine:
            fit = validate(mine, params=base.with_gpu(f.parameters, f"fold {f.index}"),
                           with_serving=False)
            oos += fit.rows
            fold_of += [(r.case.id, f.index) for r in fit.rows]
    digest = inputs_digest()
    stale = any(f.record.get("inputs_sha256") != digest for f in folds)
    return replace(report, out_of_sample=tuple(oos), fold_of=tuple(fold_of), folds_stale=stale)
