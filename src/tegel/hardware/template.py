"""Chip templates: a chip's area, energy and power derived from a few architectural parameters.

A template names a node, a tile grid, MACs and SRAM per tile, a NoC and memory stacks; `expand`
turns it into an ordinary `Chip` (the cost engine never sees the difference). This is the object a
design-space exploration turns the knobs of. Derivation rules (all in `expand`):

- ops/cycle per tile: 2 x `macs_per_cycle` in `mac_dtype`; other dtypes x `dtype_speedup`.
- tile area = (MACs x technology MAC area of `mac_dtype` + technology SRAM area of `sram_bytes`)
  x (1 + `logic_overhead_fraction`); die area = (tiles x tile area + stacks x PHY area + I/O
  area) / compute dies.
- NoC hop length = tile edge; link bytes/s = bytes/cycle x clock; hop latency = cycles / clock.
- power at TDP = (peak MAC power + every tile reading its SRAM at full rate + one NoC link per
  tile busy + off-chip memory at `offchip_duty` of its bandwidth) x (1 + `power_margin_fraction`)
  + idle; idle = logic area x logic leakage + SRAM MiB x SRAM leakage.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from tegel.hardware.derive import complete_chip
from tegel.hardware.fields import Cited, Count, DtypeClass, NonNegative, Positive, Source
from tegel.hardware.schema import (
    Chip,
    ComputeUnit,
    Noc,
    OffchipKind,
    OffchipMemory,
    Package,
    StorageLevel,
    TileGrid,
    check_grid,
)
from tegel.hardware.technology import Technology

_MIB = 1024.0 * 1024.0


class TemplateTile(Cited):
    """One tile: MACs per cycle in its native dtype, local SRAM and its read port."""

    macs_per_cycle: Positive
    mac_dtype: DtypeClass
    dtype_speedup: dict[DtypeClass, Positive] = Field(default_factory=dict)
    sram_bytes: Positive
    sram_read_bytes_per_cycle: Positive
    sram_macro_bytes: Positive = 32768.0


class TemplateNoc(Cited):
    topology: Literal["mesh", "torus"]
    link_bytes_per_cycle: Positive
    hop_latency_cycles: NonNegative


class TemplateMemory(Cited):
    kind: OffchipKind
    stacks: Count
    bytes_per_stack: Positive
    bytes_per_s_per_stack: Positive
    pj_per_bit: NonNegative | None = None


class TemplateOverheads(Cited):
    logic_overhead_fraction: NonNegative  # control, vector units, clocking beyond MACs + SRAM
    phy_mm2_per_stack: NonNegative
    io_mm2: NonNegative
    compute_dies: Count = 1
    power_margin_fraction: NonNegative
    offchip_duty: float = Field(default=1.0, ge=0.0, le=1.0)
    integration: str = "monolithic"
    wafer_scale: bool = False  # the expanded die may exceed the reticle (Package.wafer_scale)


class ChipTemplate(Cited):
    """Parameters from which a whole chip is derived."""

    kind: Literal["chip_template"] = "chip_template"
    name: str
    description: str = ""
    vendor: str = ""
    architecture: Literal["gpu", "dataflow"] = "dataflow"
    node: str
    process: str = ""
    clock_hz: Positive
    rows: Count
    cols: Count
    tile: TemplateTile
    noc: TemplateNoc
    offchip: TemplateMemory | None = None
    overheads: TemplateOverheads
    sources: dict[str, Source] = Field(default_factory=dict)
    notes: str = ""

    @model_validator(mode="after")
    def _bounded(self) -> ChipTemplate:
        check_grid(self.rows, self.cols)
        return self


def expand(t: ChipTemplate, tech: Technology) -> Chip:
    """The chip the template describes, energies and area derived from `tech` (see module doc)."""
    rule = f"derived: template on technology {tech.node}"
    tiles = t.rows * t.cols
    tile = t.tile
    ovh = t.overheads
    ops = {tile.mac_dtype: 2.0 * tile.macs_per_cycle}
    ops.update({d: 2.0 * tile.macs_per_cycle * s for d, s in tile.dtype_speedup.items()})
    mac_mm2 = tile.macs_per_cycle * tech.mac_area_mm2(tile.mac_dtype)
    sram_mm2 = tech.sram_area_mm2(tile.sram_bytes)
    tile_mm2 = (mac_mm2 + sram_mm2) * (1.0 + ovh.logic_overhead_fraction)
    stacks = t.offchip.stacks if t.offchip else 0
    total_mm2 = tiles * tile_mm2 + stacks * ovh.phy_mm2_per_stack + ovh.io_mm2
    hop_mm = math.sqrt(tile_mm2)

    sram = StorageLevel(
        name="tile_sram",
        capacity_bytes=tile.sram_bytes,
        read_bytes_per_s=tile.sram_read_bytes_per_cycle * t.clock_hz,
        macro_bytes=tile.sram_macro_bytes,
        cite={"*": f"{rule}: template tile.sram_* x clock"},
    )
    compute = ComputeUnit(
        peak_ops_per_cycle=ops,
        cite={"peak_ops_per_cycle": f"{rule}: 2 x macs_per_cycle x dtype_speedup"},
    )
    noc = Noc(
        topology=t.noc.topology,
        link_bytes_per_s=t.noc.link_bytes_per_cycle * t.clock_hz,
        hop_latency_s=t.noc.hop_latency_cycles / t.clock_hz,
        hop_length_mm=hop_mm,
        cite={"*": f"{rule}: bytes/cycle x clock, cycles / clock, hop = tile edge"},
    )
    offchip = None
    if t.offchip is not None:
        mem = t.offchip
        offchip = OffchipMemory(
            kind=mem.kind,
            capacity_bytes=mem.stacks * mem.bytes_per_stack,
            bandwidth_bytes_per_s=mem.stacks * mem.bytes_per_s_per_stack,
            pj_per_bit=mem.pj_per_bit,
            stacks=mem.stacks,
            cite={
                "*": f"{rule}: stacks x per-stack figures",
                **({"pj_per_bit": mem.cite.get("pj_per_bit", "")} if mem.pj_per_bit else {}),
            },
        )
    shell = Chip(
        name=t.name,
        description=t.description,
        vendor=t.vendor,
        architecture=t.architecture,
        node=t.node,
        process=t.process,
        clock_hz=t.clock_hz,
        die_area_mm2=total_mm2 / ovh.compute_dies,
        tdp_w=1.0,
        idle_w=0.0,
        tiles=TileGrid(
            rows=t.rows,
            cols=t.cols,
            compute=compute,
            storage=(sram,),
            cite={"*": "derived: template rows x cols"},
        ),
        noc=noc,
        offchip=offchip,
        package=Package(
            compute_dies=ovh.compute_dies,
            memory_stacks=stacks,
            integration=ovh.integration,
            wafer_scale=ovh.wafer_scale,
            cite={"*": "derived: template overheads and offchip.stacks"},
        ),
        sources=dict(t.sources),
        notes=t.notes,
        cite={
            "clock_hz": t.cite.get("clock_hz", "derived: template"),
            "die_area_mm2": f"{rule}: (tiles x tile area + PHYs + I/O) / compute dies",
            "tdp_w": f"{rule}: peak MAC + SRAM + NoC + off-chip power, + margin, + idle",
            "idle_w": f"{rule}: logic leakage x logic area + SRAM leakage x MiB",
        },
    )
    chip = complete_chip(shell, tech)
    return chip.model_copy(update=_power(t, chip, tech, tiles, tile_mm2, sram_mm2))


def _power(
    t: ChipTemplate, chip: Chip, tech: Technology, tiles: int, tile_mm2: float, sram_mm2: float
) -> dict[str, object]:
    """TDP and idle power of the expanded chip, W (rule in the module docstring)."""
    tile = t.tile
    level = chip.levels()[0]
    compute_w = chip.peak_flops_per_s(tile.mac_dtype) * chip.pj_per_flop(tile.mac_dtype) * 1e-12
    sram_w = level.read_bytes_per_s * 8 * level.read_pj_per_bit * 1e-12
    noc_w = tiles * chip.noc.link_bytes_per_s * 8 * chip.noc_pj_per_bit_per_hop * 1e-12
    mem_w = (
        chip.offchip_bytes_per_s * 8 * chip.offchip_pj_per_bit * 1e-12 * t.overheads.offchip_duty
    )
    logic_mm2 = tiles * (tile_mm2 - sram_mm2)
    idle_w = (
        logic_mm2 * tech.logic_leakage_w_per_mm2
        + tiles * tile.sram_bytes / _MIB * tech.sram_leakage_w_per_mib
    )
    dynamic_w = (compute_w + sram_w + noc_w + mem_w) * (1.0 + t.overheads.power_margin_fraction)
    return {"tdp_w": dynamic_w + idle_w, "idle_w": idle_w}
