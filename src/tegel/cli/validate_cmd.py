"""`tegel validate [FILE ...]`: tegel's predictions against published measurements."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from tegel.report.text import table

if TYPE_CHECKING:
    from tegel.fidelity.validate import Report
    from tegel.mapping.params import Params


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="predicted vs measured on published benchmarks",
                       description="Run the scenario of every published measurement (default: "
                       "the shipped H100 set) and report predicted vs measured, the error, and "
                       "the MAPE per metric group. Entries taken under load (NIM concurrency, "
                       "MLPerf Server) are also simulated request by request in a separate "
                       "serving group, which is out of sample: never fitted.")
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
    params = load_params(args.params)
    if args.calibrate:
        return _calibrate(args, params)
    report = validate(load_entries(args.files), progress=_progress, params=params)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    rows = [[r.case.id, r.case.group, f"{r.case.measured:.4g}", f"{r.predicted:.4g}",
             f"{100 * r.error:+.1f}%", r.scenario] for r in report.rows]
    print(table(["entry", "group", "measured", "predicted", "error", "scenario"], rows,
                "llrrrl"))
    summary = report.summary()
    print(f"\nparameters: {report.params}")
    print(table(["group", "entries", "MAPE", "MAPE (target set)"],
                       [[g, s["entries"], _pct(s["mape_percent"]), _pct(s["target_set_mape_percent"])]
                        for g, s in summary.items()]))
    if report.unmapped or report.failed:
        print("\nnot validated:")
        for u in (*report.unmapped, *report.failed):
            print(f"  {u.id}: {u.reason}")
    if report.serving or report.serving_unmapped:
        _print_serving(report)
    return 0


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
