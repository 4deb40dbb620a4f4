"""`tegel validate [FILE ...]`: tegel's predictions against published measurements."""

from __future__ import annotations

import argparse
import json
import sys

from tegel.report.text import table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="predicted vs measured on published benchmarks",
                       description="Run the scenario of every published measurement (default: "
                       "the shipped H100 set) and report predicted vs measured, the error, and "
                       "the MAPE per metric group.")
    p.add_argument("files", nargs="*", help="measurement YAML files (format of the shipped set)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--calibrate", action="store_true", help="fit the GPU efficiency parameters "
                   "on the shipped H100 measurements and write them (see --write)")
    p.add_argument("--write", metavar="FILE", help="where --calibrate writes the fitted values "
                   "(default: the package's mapping/data/gpu_calibration.yaml)")
    p.set_defaults(func=run)


def _progress(i: int, n: int) -> None:
    if sys.stderr.isatty():
        print(f"\rvalidating {i + 1}/{n}", end="" if i + 1 < n else "\n", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from tegel.fidelity import load_entries, validate

    if args.calibrate:
        return _calibrate(args)
    report = validate(load_entries(args.files), progress=_progress)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    rows = [[r.case.id, r.case.group, f"{r.case.measured:.4g}", f"{r.predicted:.4g}",
             f"{100 * r.error:+.1f}%", r.scenario] for r in report.rows]
    print(table(["entry", "group", "measured", "predicted", "error", "scenario"], rows,
                "llrrrl"))
    summary = report.summary()
    print("\n" + table(["group", "entries", "MAPE", "MAPE (target set)"],
                       [[g, s["entries"], _pct(s["mape_percent"]), _pct(s["target_set_mape_percent"])]
                        for g, s in summary.items()]))
    if report.unmapped or report.failed:
        print("\nnot validated:")
        for u in (*report.unmapped, *report.failed):
            print(f"  {u.id}: {u.reason}")
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _calibrate(args: argparse.Namespace) -> int:
    from importlib import resources
    from pathlib import Path

    from tegel.fidelity.calibrate import calibrate, objective, write_calibration

    values, before, after = calibrate(args.files, progress=lambda line: print(line, file=sys.stderr))
    target = Path(args.write) if args.write else Path(
        str(resources.files("tegel.mapping") / "data" / "gpu_calibration.yaml"))
    write_calibration(values, before, after, target)
    print(f"objective (mean MAPE over groups): {objective(before):.1f}% -> {objective(after):.1f}%")
    print(f"wrote {target}")
    return 0
