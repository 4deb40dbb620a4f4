"""`tegel validate [FILE ...]`: tegel's predictions against published measurements.

Without FILEs it validates the shipped sets: the H100 measurements (in sample: the GPU
parameters were fitted on them; and out of sample: each entry predicted by the k-fold
calibration that held its publication out, fidelity/data/folds/) and the published results of
other GPUs (fidelity/data/other_gpu_measurements.yaml, never fitted)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tegel.cli.outputs import add_force
from tegel.report import validate as render
from tegel.report.progress import Bar

PASSES = 2  # coordinate-descent passes of a fit (calibrate's and make_folds' default)

if TYPE_CHECKING:
    from tegel.fidelity.dataflow import DataflowReport
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
    add_force(p)
    p.set_defaults(func=run)


def _fit_progress(bar: Bar) -> Any:
    """The fit's log lines (above the bar, or on stderr as before); a line reporting a fitted
    parameter (`key = value ...`) advances the bar by one of passes x parameters."""
    from tegel.fidelity.calibrate import BOUNDS

    def line(text: str) -> None:
        bar.note(text)
        if text.split(" = ", 1)[0] in BOUNDS:
            bar.advance()

    return line


def run(args: argparse.Namespace) -> int:
    from tegel.errors import TegelError
    from tegel.fidelity import load_entries, validate
    from tegel.mapping.params import load_params

    if args.write is not None and not args.calibrate:
        raise TegelError("--write is only used with --calibrate")
    if args.write_folds is not None and not (args.calibrate and args.folds):
        raise TegelError("--write-folds is only used with --calibrate --folds K")
    if args.folds is not None and not args.calibrate:
        try:
            is_dir = Path(args.folds).is_dir()
        except (OSError, ValueError):
            is_dir = False
        if not is_dir:
            raise TegelError(f"--folds {args.folds[:80]!r}: no such folder of fold fits "
                             "(a number of folds is for --calibrate --folds K)")
    if args.calibrate and not args.folds:
        _check_write(args)  # before minutes of fitting, not after
    if args.calibrate and args.folds and args.write_folds is not None:
        _check_write_folds(args)
    params = load_params(args.params)
    if args.calibrate:
        return _calibrate_folds(args, params) if args.folds else _calibrate(args, params)
    from tegel.fidelity.cases import other_gpu_entries
    from tegel.fidelity.folds import load_folds

    entries = load_entries(args.files) if args.files else load_entries() + other_gpu_entries()
    folds = load_folds(Path(args.folds) if args.folds else None)
    with Bar("validating", quiet=args.json) as bar:
        report = validate(entries, progress=lambda i, n: bar.update(i, n), params=params,
                          folds=folds)
    flow = _dataflow(args, params)
    power = None
    if not args.files:
        from tegel.fidelity.power import power_report

        power = power_report(params)
    print(render.to_json(report, flow, power) if args.json
          else render.render_text(report, len(folds), flow, power))
    return 0


def _check_write(args: argparse.Namespace) -> None:
    """The file `--calibrate` will write: writable, not an input (--params, FILEs), and not an
    existing file unless --force; then outside the installed package (calibration_target)."""
    from tegel.cli.outputs import check_target, command_inputs
    from tegel.fidelity.calibrate import DEFAULT_WRITE, calibration_target, refuse_package_path

    given = args.write if args.write is not None else DEFAULT_WRITE
    try:
        if given.strip() and Path(given).is_dir():
            given = str(Path(given) / DEFAULT_WRITE)
    except (OSError, ValueError):
        pass  # a name too long or with a NUL byte: check_target says so
    with contextlib.suppress(OSError, ValueError):  # an impossible name: check_target says so
        refuse_package_path(Path(given))
    check_target(given, "--write", command_inputs(args, {"write"}), force=args.force)
    calibration_target(given)


def _check_write_folds(args: argparse.Namespace) -> None:
    """The folder `--calibrate --folds K` writes fold-*.yaml into: outside the installed
    package, writable, and holding no fold files unless --force."""
    from tegel.cli.outputs import check_target, command_inputs
    from tegel.fidelity.calibrate import refuse_package_path
    from tegel.fidelity.folds import FOLD_GLOB

    with contextlib.suppress(OSError, ValueError):  # an impossible name: check_target says so
        refuse_package_path(Path(args.write_folds))
    check_target(args.write_folds, "--write-folds", command_inputs(args, {"write_folds"}),
                 directory=True, force=args.force, names=(FOLD_GLOB,))


def _dataflow(args: argparse.Namespace, params: Params) -> DataflowReport | None:
    """The dataflow group (fidelity/dataflow.py), with the shipped entries only: it is left out
    when FILEs are given (they are GPU measurements)."""
    if args.files:
        return None
    from tegel.fidelity.dataflow import validate_dataflow

    return validate_dataflow(params)


def _calibrate(args: argparse.Namespace, params: Params) -> int:
    from tegel.fidelity.calibrate import (
        BOUNDS,
        OBJECTIVE,
        calibrate,
        calibration_target,
        objective,
        write_calibration,
    )

    target = calibration_target(args.write)  # checked in run(), before reading anything
    print(f"fitting; will write {target}", file=sys.stderr)
    with Bar("calibrating", total=PASSES * len(BOUNDS)) as bar:
        values, before, after = calibrate(params, args.files, passes=PASSES,
                                          progress=_fit_progress(bar))
    written = write_calibration(values, before, after, target, base=params.source)
    print(f"objective ({OBJECTIVE}): "
          f"{objective(before):.1f}% -> {objective(after):.1f}%")
    print(f"wrote {written}; use it with `tegel validate --params {written}` or "
          f"`tegel run ... --params {written}`")
    return 0


def _calibrate_folds(args: argparse.Namespace, params: Params) -> int:
    from tegel.errors import TegelError
    from tegel.fidelity.calibrate import BOUNDS, calibration_target, refuse_package_path
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
    with Bar("calibrating folds", total=k * PASSES * len(BOUNDS)) as bar:
        folds = make_folds(params, k, passes=PASSES, progress=_fit_progress(bar))
    for path in write_folds(folds, folder):
        print(f"wrote {path}")
    print(f"use them with `tegel validate --folds {folder}`; the shipped ones change by review "
          "(copy them to src/tegel/fidelity/data/folds/)")
    return 0
