"""`tegel hw list|show|validate`: the machines tegel knows, their resolved figures, file checks."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tegel.report.text import si


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
            json.dumps(
                [{"name": p.name, "kind": p.kind, "architecture": p.architecture,
                  "chips": p.chips, "description": p.description} for p in presets],
                indent=2,
            )
        )
        return 0
    width = max(len(p.name) for p in presets)
    for kind in ("chip", "system"):
        print(f"{kind}s:")
        for p in presets:
            if p.kind == kind:
                what = f"{p.architecture:<8}" + (f" x{p.chips:<4}" if kind == "system" else "")
                line = p.description.splitlines()[0] if p.description else ""
                print(f"  {p.name:<{width}}  {what}  {line}")
    print("\nany system or chip as NxNAME (2xdgx-h100, 16xh100-sxm): N of it, nodes joined by its "
          "scale-out network")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from tegel.hardware import load_system, summarize

    figures = summarize(load_system(args.target))
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(_text(figures))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from tegel.hardware import validate_file

    system = validate_file(args.file, strict=args.strict)
    what = "chip" if system.chip_count == 1 and system.scale_up is None else "system"
    print(f"{args.file}: ok ({what} {system.name}: {system.chip_count} x {system.chip.name})")
    return 0


def _text(f: dict[str, Any]) -> str:
    chip = f["chip"]
    lines = [f"{f['name']}: {f['description']}"]
    if f["chips"] > 1:
        lines.append(
            f"  {f['chips']} x {chip['name']} in {f['nodes']} node(s) of {f['chips_per_node']}"
        )
    lines.append(
        f"  architecture {chip['architecture']}, node {chip['node']} ({chip['process']}), "
        f"clock {si(chip['clock_hz'], 'Hz', 4)}"
    )
    lines.append(
        "  peak (dense):  "
        + ", ".join(f"{d} {si(v, 'FLOP/s', 4)}" for d, v in f["peak_flops_per_s"].items())
    )
    lines.append(
        "  energy per op (what runs use): "
        + ", ".join(f"{d} {v:.3g} pJ" for d, v in chip["pj_per_flop"].items())
    )
    lines.append(f"    ({', '.join(dict.fromkeys(chip['pj_per_flop_basis'].values()))}: "
                 f"{next(iter(chip['pj_per_flop_rule'].values()), '')})")
    mem = chip["offchip"]
    if mem:
        lines.append(
            f"  memory: {si(f['offchip_bytes'], 'B', 4)} {mem['kind']} at "
            f"{si(f['offchip_bytes_per_s'], 'B/s', 4)} ({mem['pj_per_bit']:.3g} pJ/bit)"
        )
    else:
        lines.append("  memory: none off-chip")
    lines.append(f"  on-chip SRAM: {si(f['sram_bytes_total'], 'B', 4)}")
    lines.append(f"  power: {si(f['tdp_w'], 'W', 4)} max, {si(f['idle_w'], 'W', 4)} idle")
    lines.append(
        f"  silicon: {chip['silicon_area_mm2']:.0f} mm^2 per chip "
        f"({chip['package']['compute_dies']} compute die(s) of {chip['die_area_mm2']:.0f} mm^2)"
    )
    tiles = chip["tiles"]
    noc = chip["noc"]
    link_bw = si(noc["link_bytes_per_s"], "B/s", 4)
    lines.append(
        f"  tiles: {tiles['rows']} x {tiles['cols']}; NoC {noc['topology']}, "
        f"{link_bw} per link, {noc['pj_per_bit_per_hop']:.3g} pJ/bit/hop"
    )
    lines.append("  storage (nearest first):")
    for lv in chip["levels"]:
        lines.append(
            f"    {lv['name']:<15} {lv['scope']:<8} {si(lv['total_bytes'], 'B', 4):>10}  "
            f"{si(lv['read_bytes_per_s'], 'B/s', 4):>11}  {lv['read_pj_per_bit']:.3g} pJ/bit "
            f"({lv['energy_basis']})"
        )
    for name in ("scale_up", "scale_out"):
        link = f[name]
        if link:
            bw, latency = si(link["link_bytes_per_s"], "B/s", 4), si(link["latency_s"], "s", 4)
            lines.append(
                f"  {name}: {link['kind']} {link['topology']}, {bw} per chip per direction, "
                f"{latency}, {link['pj_per_bit']:.3g} pJ/bit"
            )
    return "\n".join(lines)
