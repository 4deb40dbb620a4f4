"""Resolved figures of a system as one JSON-ready mapping (SI units), for `tegel hw show`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from tegel.hardware.schema import Chip
from tegel.hardware.system import ChipLink, System


def _chip_figures(chip: Chip) -> dict[str, Any]:
    mem = chip.offchip
    compute = chip.tiles.compute
    return {
        "name": chip.name,
        "vendor": chip.vendor,
        "architecture": chip.architecture,
        "node": chip.node,
        "process": chip.process,
        "clock_hz": chip.clock_hz,
        "peak_flops_per_s": {d: chip.peak_flops_per_s(d) for d in chip.dtypes},
        "peak_flops_per_s_sparse": {
            d: chip.peak_flops_per_s(d, sparse=True)
            for d in chip.dtypes
            if d in compute.sparsity_speedup
        },
        "pj_per_flop": {d: chip.pj_per_flop(d) for d in chip.dtypes},
        "pj_per_flop_basis": {d: compute.basis(f"pj_per_op.{d}") for d in chip.dtypes},
        "pj_per_flop_rule": {d: compute.cite.get(f"pj_per_op.{d}", "") for d in chip.dtypes},
        "offchip": None
        if mem is None
        else {
            "kind": mem.kind,
            "capacity_bytes": mem.capacity_bytes,
            "usable_capacity_bytes": chip.offchip_usable_bytes,
            "bandwidth_bytes_per_s": mem.bandwidth_bytes_per_s,
            "pj_per_bit": mem.pj_per_bit,
            "stacks": mem.stacks,
        },
        "sram_bytes_total": chip.sram_bytes_total,
        "tdp_w": chip.tdp_w,
        "idle_w": chip.idle_w,
        "die_area_mm2": chip.die_area_mm2,
        "silicon_area_mm2": chip.silicon_area_mm2,
        "transistors": chip.transistors,
        "package": {
            "compute_dies": chip.package.compute_dies,
            "io_dies": chip.package.io_dies,
            "memory_stacks": chip.package.memory_stacks,
            "integration": chip.package.integration,
        },
        "tiles": {
            "rows": chip.tiles.rows,
            "cols": chip.tiles.cols,
            "count": chip.tile_count,
            "ops_per_cycle": {d: compute.ops_per_cycle(d) for d in chip.dtypes},
        },
        "noc": {
            "topology": chip.noc.topology,
            "link_bytes_per_s": chip.noc.link_bytes_per_s,
            "hop_latency_s": chip.noc.hop_latency_s,
            "hop_length_mm": chip.noc.hop_length_mm,
            "pj_per_bit_per_hop": chip.noc.pj_per_bit_per_hop,
        },
        "levels": [asdict(level) for level in chip.levels()],
    }


def _link(link: ChipLink | None) -> dict[str, Any] | None:
    if link is None:
        return None
    return {
        "kind": link.kind,
        "topology": link.topology,
        "link_bytes_per_s": link.link_bytes_per_s,
        "latency_s": link.latency_s,
        "pj_per_bit": link.pj_per_bit,
    }


def summarize(system: System) -> dict[str, Any]:
    """Whole-system totals plus the per-chip figures (the `chip` entry), SI units."""
    chip = system.chip
    return {
        "name": system.name,
        "description": system.description,
        "chips": system.chip_count,
        "chips_per_node": system.chips_per_node,
        "scale_up_chips": system.scale_up_domain,
        "nodes": system.node_count,
        "architecture": chip.architecture,
        "node": chip.node,
        "peak_flops_per_s": {d: system.peak_flops_per_s(d) for d in chip.dtypes},
        "offchip_bytes": system.offchip_bytes,
        "offchip_bytes_per_s": system.offchip_bytes_per_s,
        "sram_bytes_total": system.sram_bytes_total,
        "tdp_w": system.tdp_w,
        "idle_w": system.idle_w,
        "silicon_area_mm2": chip.silicon_area_mm2 * system.chip_count,
        "scale_up": _link(system.scale_up),
        "scale_out": _link(system.scale_out),
        "host_w_per_node": system.host.host_w_per_node,
        "chip": _chip_figures(chip),
    }
