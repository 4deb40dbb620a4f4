"""`tegel validate [FILE ...]`: tegel's predictions against published measurements.

Without FILEs it validates the shipped sets: the H100 measurements (in sample: the GPU
parameters were fitted on them; and out of sample: each entry predicted by the k-fold
calibration that held its publication out, fidelity/data/folds/) and the published results of
other GPUs (fidelity/data/other_gpu_measurements.yaml, never fitted)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tegel.report.text import table

if TYPE_CHECKING:
    from tegel.fidelity.dataflow import DataflowReport
    from tegel.fidelity.validate import Report
    from tegel.mapping.params import Params


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="predicted vs measured on published benchmarks",
                       description="Run the scenario of every published measurement (default: "
                       "the shipped H100 set and the other GPUs' published results) and report "
                       "predicted vs measured, the error, and the MAPE per metric group. H100 "
                       "entries are shown in sample (the fitted parameters saw them) and out "
                       "of sample (each predicted by the k-fold calibration that held its "
                       "publication out); other GPUs are never fitted. Entries taken under "
                       "load (NIM concurrency, MLPerf Server) are also simulated request by "
                       "request in a separate serving group, which is out of sample: never "
                       "fitted. A dataflow group "
                       "predicts the published single-user speeds of dataflow machines, its "
                       "training and held-out entries apart.")
    p.add_argument("files", nargs="*", help="measurement YAML files (format of the shipped set)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--params", metavar="FILE", help="validate (or, with --calibrate, start "
                   "fitting) with a calibration written by `tegel validate --calibrate` "
                   "(default: the shipped parameters)")
    p.add_argument("--calibrate", action="store_true", help="fit the GPU efficiency parameters "
                   "on the shipped H100 measurements (plus FILEs) and write them (see --write)")
    p.add_argument("--write", metavar="PATH", help="where --calibrate writes the fitted values: a "
                   "file, or a directory to hold gpu_calibration.yaml (default: "
                   "./gpu_calibration.yaml); never inside the installed package")
    p.add_argument("--folds", metavar="K|DIR", help="with --calibrate: fit K folds of the H100 "
                   "entries, grouped by publication (minutes each), and write them to "
                   "--write-folds; otherwise: read the fold fits from DIR (default: the shipped "
                   "ones) for the out-of-sample column")
    p.add_argument("--write-folds", metavar="DIR", help="where --calibrate --folds K writes "
                   "fold-1.yaml ... fold-K.yaml (never inside the installed package)")
    p.set_defaults(func=run)


def _progress(i: int, n: int) -> None:
    if sys.stderr.isatty():
        print(f"\rvalidating {i + 1}/{n}", end="" if i + 1 < n else "\n", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from tegel.errors import TegelError
    from tegel.fidelity import load_entries, validate
    from tegel.mapping.params import load_params

    if args.write is not None and not args.calibrate:
        raise TegelError("--write is only used with --calibrate")
    if args.write_folds is not None and not (args.calibrate and args.folds):
        raise TegelError("--write-folds is only used with --calibrate --folds K")
    params = load_params(args.params)
    if args.calibrate:
        return _calibrate_folds(args, params) if args.folds else _calibrate(args, params)
    from tegel.fidelity.cases import other_gpu_entries
    from tegel.fidelity.folds import load_folds

    entries = load_entries(args.files) if args.files else load_entries() + other_gpu_entries()
    folds = load_folds(Path(args.folds) if args.folds else None)
    report = validate(entries, progress=_progress, params=params, folds=folds)
    flow = _dataflow(args, params)
    if args.json:
        print(json.dumps({**report.to_dict(),
                          **({"dataflow": flow.to_dict()} if flow is not None else {})}, indent=2))
        return 0
    _print_gpus(report, len(folds))
    if report.unmapped or report.failed:
        print("\nnot validated:")
        for u in (*report.unmapped, *report.failed):
            print(f"  {u.id}: {u.reason}")
    if report.serving or report.serving_unmapped:
        _print_serving(report)
    if flow is not None:
        _print_dataflow(flow)
    if not args.files:
        from tegel.fidelity.power import format_power, power_report

        print("\n" + format_power(power_report(params)))
    return 0


def _dataflow(args: argparse.Namespace, params: Params) -> DataflowReport | None:
    """The dataflow group (fidelity/dataflow.py), with the shipped entries only: it is left out
    when FILEs are given (they are GPU measurements)."""
    if args.files:
        return None
    from tegel.fidelity.dataflow import validate_dataflow

    return validate_dataflow(params)


def _print_dataflow(flow: DataflowReport) -> None:
    from tegel.fidelity.dataflow import TARGET_ERROR, TARGET_OVER

    print("\ndataflow group — published single-user speeds (tokens/s per user), batch 1; "
          "`train` entries fitted (tools/calibrate_dataflow.py), `held_out` never fitted:")
    rows = [[r.case.id, r.case.set, f"{r.case.measured:.4g}", f"{r.predicted:.4g}",
             f"{100 * r.error:+.1f}%", f"{r.case.model} on {r.case.system}, {r.case.precision}, "
             f"{r.parallelism}"] for r in flow.rows]
    print(table(["entry", "set", "published", "predicted", "error", "scenario"], rows, "llrrrl"))
    print(table(["set", "entries", "MAPE"],
                [[s, sum(1 for r in flow.rows if r.case.set == s), _pct(flow.mape(s))]
                 for s in ("train", "held_out")]))
    verdict = "met" if flow.meets_target() else "not met"
    print(f"target (every entry within {TARGET_ERROR:.0%}, none over {TARGET_OVER}x): {verdict}")
    for c in flow.excluded:
        print(f"  excluded {c.id}: {c.reason}")
    for entry, reason in flow.failed:
        print(f"  failed {entry}: {reason}")


def _print_gpus(report: Report, k: int) -> None:
    """The rows (H100 with its out-of-sample prediction, then other GPUs) and the MAPE tables."""
    from tegel.fidelity.cases import CALIBRATION_GPU

    oos = {r.case.id: r for r in report.out_of_sample}
    fold = dict(report.fold_of)
    h100 = [r for r in report.rows if r.case.gpu == CALIBRATION_GPU]
    others = [r for r in report.rows if r.case.gpu != CALIBRATION_GPU]
    if h100:
        rows = [[r.case.id, r.case.group, f"{r.case.measured:.4g}", f"{r.predicted:.4g}",
                 f"{100 * r.error:+.1f}%",
                 f"{100 * oos[r.case.id].error:+.1f}% ({fold[r.case.id]})" if r.case.id in oos
                 else "-", r.scenario] for r in h100]
        print("H100 (the calibration GPU): error in sample, and out of sample (fold)")
        print(table(["entry", "group", "measured", "predicted", "in sample", "out of sample",
                     "scenario"], rows, "llrrrrl"))
    if others:
        rows = [[r.case.id, r.case.gpu, r.case.group, f"{r.case.measured:.4g}",
                 f"{r.predicted:.4g}", f"{100 * r.error:+.1f}%", r.scenario] for r in others]
        print("\nother GPUs: predicted from their specifications and microbenchmarks, never fitted")
        print(table(["entry", "gpu", "group", "measured", "predicted", "error", "scenario"], rows,
                    "lllrrrl"))
    print(f"\nparameters: {report.params}; out of sample: {k} folds grouped by publication"
          + (" (STALE: fitted on other data files; rerun --calibrate --folds)"
             if report.folds_stale else ""))
    if h100:
        print(table(["H100 group", "entries", "MAPE in sample", "out of sample",
                     "target set in sample", "out of sample"],
                    [[g, s["entries"], _pct(s["mape_percent"]),
                      _pct(s["out_of_sample_mape_percent"]), _pct(s["target_set_mape_percent"]),
                      _pct(s["out_of_sample_target_set_mape_percent"])]
                     for g, s in report.summary().items() if s["entries"]], "lrrrrr"))
    gpus = report.gpu_summary()
    if gpus:
        print(table(["GPU (never fitted)", "group", "entries", "MAPE"],
                    [[gpu, g, s["entries"], _pct(s["mape_percent"])]
                     for gpu, groups in gpus.items() for g, s in groups.items()], "llrr"))


def _print_serving(report: Report) -> None:
    from tegel.fidelity.serving import NOTE, summary

    print(f"\nserving group — entries taken under load, simulated request by request; {NOTE}")
    rows = [[r.case.id, r.case.metric, f"{r.case.measured:.4g}", f"{r.predicted:.4g}",
             f"{100 * r.error:+.1f}%", r.scenario] for r in report.serving]
    if rows:
        print(table(["entry", "metric", "measured", "predicted", "error", "scenario"], rows,
                    "llrrrl"))
    print(table(["metric", "entries", "MAPE"],
                [[m, s["entries"], _pct(s["mape_percent"])]
                 for m, s in summary(report.serving)["metrics"].items()]))
    if report.serving_unmapped:
        print("not simulated:")
    for u in report.serving_unmapped:
        print(f"  {u.id}: {u.reason}")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _calibrate(args: argparse.Namespace, params: Params) -> int:
    from tegel.fidelity.calibrate import calibrate, calibration_target, objective, write_calibration

    target = calibration_target(args.write)  # before minutes of fitting, not after
    print(f"fitting; will write {target}", file=sys.stderr)
    values, before, after = calibrate(params, args.files,
                                      progress=lambda line: print(line, file=sys.stderr))
    written = write_calibration(values, before, after, target, base=params.source)
    print(f"objective (mean target-set MAPE of throughput, TTFT, TPOT): "
          f"{objective(before):.1f}% -> {objective(after):.1f}%")
    print(f"wrote {written}; use it with `tegel validate --params {written}` or "
          f"`tegel run ... --params {written}`")
    return 0


def _calibrate_folds(args: argparse.Namespace, params: Params) -> int:
    from tegel.errors import TegelError
    from tegel.fidelity.calibrate import calibration_target, refuse_package_path
    from tegel.fidelity.folds import make_folds, write_folds

    try:
        k = int(args.folds)
    except ValueError:
        raise TegelError(f"--folds {args.folds!r}: with --calibrate, a number of folds") from None
    if args.write_folds is None:
        raise TegelError("--calibrate --folds K needs --write-folds DIR")
    folder = Path(args.write_folds)
    refuse_package_path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    calibration_target(folder / "fold-1.yaml")  # a writable place outside the package
    print(f"fitting {k} folds; will write {folder}/fold-*.yaml", file=sys.stderr)
    folds = make_folds(params, k, progress=lambda line: print(line, file=sys.stderr))
    for path in write_folds(folds, folder):
        print(f"wrote {path}")
    print(f"use them with `tegel validate --folds {folder}`; the shipped ones change by review "
          "(copy them to src/tegel/fidelity/data/folds/)")
    return 0
