"""`tegel hw list|show|validate`: the machines tegel knows, their resolved figures, file checks."""

from __future__ import annotations

import argparse

from tegel.report import hw as report
from tegel.report import jsonout


def register(sub: argparse._SubParsersAction) -> None:
    hw = sub.add_parser(
        "hw",
        help="hardware presets: list, show, validate",
        description="Chips and systems described as data: list the presets, show "
        "the resolved figures of one, validate a YAML file.",
    )
    hw_sub = hw.add_subparsers(dest="hw_command", metavar="SUBCOMMAND")
    p_list = hw_sub.add_parser("list", help="list chip and system presets")
    p_list.add_argument("--json", action="store_true", help="print JSON")
    p_list.set_defaults(func=run_list)
    p_show = hw_sub.add_parser("show", help="resolved figures of a preset or file")
    p_show.add_argument("target", metavar="NAME|FILE", help="preset name or chip/system YAML file")
    p_show.add_argument("--json", action="store_true", help="print JSON (SI units)")
    p_show.set_defaults(func=run_show)
    p_val = hw_sub.add_parser("validate", help="check a chip, template or system YAML file")
    p_val.add_argument("file", metavar="FILE")
    p_val.add_argument(
        "--strict",
        action="store_true",
        help="also require a citation for every figure, as presets do",
    )
    p_val.set_defaults(func=run_validate)
    hw.set_defaults(func=lambda args: (hw.print_help(), 2)[1])


def run_list(args: argparse.Namespace) -> int:
    from tegel.hardware import list_presets

    presets = list_presets()
    if args.json:
        print(
            jsonout.dumps(
                [{"name": p.name, "kind": p.kind, "architecture": p.architecture,
                  "chips": p.chips, "description": p.description} for p in presets],
                indent=2,
            )
        )
        return 0
    print(report.list_text(presets))
    return 0


def run_show(args: argparse.Namespace) -> int:
    from tegel.hardware import load_system, summarize

    figures = summarize(load_system(args.target))
    if args.json:
        print(jsonout.dumps(figures, what=str(args.target), indent=2))
    else:
        print(report.show_text(figures))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from tegel.hardware import validate_file

    system = validate_file(args.file, strict=args.strict)
    what = "chip" if system.chip_count == 1 and system.scale_up is None else "system"
    print(f"{args.file}: ok ({what} {system.name}: {system.chip_count} x {system.chip.name})")
    return 0
