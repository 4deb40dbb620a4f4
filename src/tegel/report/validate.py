"""`tegel validate`: the text and JSON of a validation Report (GPU rows and MAPE tables, the
serving group, the dataflow group, the power group)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tegel.report import jsonout
from tegel.report.text import table

if TYPE_CHECKING:
    from tegel.fidelity.dataflow import DataflowReport
    from tegel.fidelity.validate import Report


def to_json(report: Report, flow: DataflowReport | None, power: Any = None) -> str:
    """`tegel validate --json`: the report's `to_dict()`, with the dataflow group's and the
    power group's (`power`: its rows, None: not run)."""
    groups: dict[str, Any] = {}
    if flow is not None:
        groups["dataflow"] = flow.to_dict()
    if power is not None:
        from tegel.fidelity.power import power_dict

        groups["power"] = power_dict(power)
    return jsonout.dumps({**report.to_dict(), **groups}, indent=2)


def render_text(report: Report, folds: int, flow: DataflowReport | None, power: Any) -> str:
    """`tegel validate`: GPUs (`folds` out-of-sample folds), what was not validated, the serving
    group, the dataflow group (`flow`) and the power group (`power`, None: not run)."""
    out = _gpu_lines(report, folds)
    if report.unmapped or report.failed:
        out.append("\nnot validated:")
        out += [f"  {u.id}: {u.reason}" for u in (*report.unmapped, *report.failed)]
    if report.serving or report.serving_unmapped:
        out += _serving_lines(report)
    if flow is not None:
        out += _dataflow_lines(flow)
    if power is not None:
        from tegel.fidelity.power import format_power

        out.append("\n" + format_power(power))
    return "\n".join(out)


def _dataflow_lines(flow: DataflowReport) -> list[str]:
    """Published single-user speeds of dataflow machines against the predictions."""
    from tegel.fidelity.dataflow import TARGET_ERROR, TARGET_OVER

    out: list[str] = []
    out.append("\ndataflow group — published single-user speeds (tokens/s per user), batch 1; "
                "`train` entries fitted (tools/calibrate_dataflow.py), `held_out` never fitted:")
    rows = [[r.case.id, r.case.set, f"{r.case.measured:.4g}", f"{r.predicted:.4g}",
             f"{100 * r.error:+.1f}%", f"{r.case.model} on {r.case.system}, {r.case.precision}, "
             f"{r.parallelism}"] for r in flow.rows]
    out.append(table(["entry", "set", "published", "predicted", "error", "scenario"], rows, "llrrrl"))
    out.append(table(["set", "entries", "MAPE"],
                      [[s, sum(1 for r in flow.rows if r.case.set == s), _pct(flow.mape(s))]
                       for s in ("train", "held_out")]))
    verdict = "met" if flow.meets_target() else "not met"
    out.append(f"target (every entry within {TARGET_ERROR:.0%}, none over {TARGET_OVER}x): {verdict}")
    for c in flow.excluded:
        out.append(f"  excluded {c.id}: {c.reason}")
    for entry, reason in flow.failed:
        out.append(f"  failed {entry}: {reason}")
    return out


def _gpu_lines(report: Report, k: int) -> list[str]:
    """The rows (H100 with its out-of-sample prediction, then other GPUs) and the MAPE tables."""
    from tegel.fidelity.cases import CALIBRATION_GPU

    out: list[str] = []
    oos = {r.case.id: r for r in report.out_of_sample}
    fold = dict(report.fold_of)
    h100 = [r for r in report.rows if r.case.gpu == CALIBRATION_GPU]
    others = [r for r in report.rows if r.case.gpu != CALIBRATION_GPU]
    if h100:
        rows = [[r.case.id, r.case.group, f"{r.case.measured:.4g}", f"{r.predicted:.4g}",
                 f"{100 * r.error:+.1f}%",
                 f"{100 * oos[r.case.id].error:+.1f}% ({fold[r.case.id]})" if r.case.id in oos
                 else "-", r.scenario] for r in h100]
        out.append("H100 (the calibration GPU): error in sample, and out of sample (fold)")
        out.append(table(["entry", "group", "measured", "predicted", "in sample", "out of sample",
                           "scenario"], rows, "llrrrrl"))
    if others:
        rows = [[r.case.id, r.case.gpu, r.case.group, f"{r.case.measured:.4g}",
                 f"{r.predicted:.4g}", f"{100 * r.error:+.1f}%", r.scenario] for r in others]
        out.append("\nother GPUs: predicted from their specifications and microbenchmarks, never fitted")
        out.append(table(["entry", "gpu", "group", "measured", "predicted", "error", "scenario"], rows,
                          "lllrrrl"))
    out.append(f"\nparameters: {report.params}; out of sample: {k} folds grouped by publication"
                + (" (STALE: fitted on other data files; rerun --calibrate --folds)"
                   if report.folds_stale else ""))
    if h100:
        out.append(table(["H100 group", "entries", "MAPE in sample", "out of sample",
                           "target set in sample", "out of sample"],
                          [[g, s["entries"], _pct(s["mape_percent"]),
                            _pct(s["out_of_sample_mape_percent"]), _pct(s["target_set_mape_percent"]),
                            _pct(s["out_of_sample_target_set_mape_percent"])]
                           for g, s in report.summary().items() if s["entries"]], "lrrrrr"))
    gpus = report.gpu_summary()
    if gpus:
        out.append(table(["GPU (never fitted)", "group", "entries", "MAPE"],
                          [[gpu, g, s["entries"], _pct(s["mape_percent"])]
                           for gpu, groups in gpus.items() for g, s in groups.items()], "llrr"))
    return out


def _serving_lines(report: Report) -> list[str]:
    """Entries taken under load, simulated request by request, and their MAPE by metric."""
    from tegel.fidelity.serving import NOTE, summary

    out: list[str] = []
    out.append(f"\nserving group — entries taken under load, simulated request by request; {NOTE}")
    rows = [[r.case.id, r.case.metric, f"{r.case.measured:.4g}", f"{r.predicted:.4g}",
             f"{100 * r.error:+.1f}%", r.scenario] for r in report.serving]
    if rows:
        out.append(table(["entry", "metric", "measured", "predicted", "error", "scenario"], rows,
                         "llrrrl"))
    out.append(table(["metric", "entries", "MAPE"],
                      [[m, s["entries"], _pct(s["mape_percent"])]
                       for m, s in summary(report.serving)["metrics"].items()]))
    if report.serving_unmapped:
        out.append("not simulated:")
    for u in report.serving_unmapped:
        out.append(f"  {u.id}: {u.reason}")
    return out


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"
