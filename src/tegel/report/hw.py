"""`tegel hw list` and `tegel hw show`: presets and a system's resolved figures as text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tegel.report.text import si


def list_text(presets: Sequence[Any]) -> str:
    """`tegel hw list`: chips, then systems, one line each, and the NxNAME rule."""
    width = max(len(p.name) for p in presets)
    out = []
    for kind in ("chip", "system"):
        out.append(f"{kind}s:")
        for p in presets:
            if p.kind == kind:
                what = f"{p.architecture:<8}" + (f" x{p.chips:<4}" if kind == "system" else "")
                line = p.description.splitlines()[0] if p.description else ""
                out.append(f"  {p.name:<{width}}  {what}  {line}")
    out.append("\nany system or chip as NxNAME (2xdgx-h100, 16xh100-sxm): N of it, nodes joined by "
               "its scale-out network")
    return "\n".join(out)


def show_text(f: dict[str, Any]) -> str:
    """`tegel hw show`: a system's resolved figures (`hardware.summarize`) as text."""
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
