"""Die area from a chip description and the technology library, by component.

What is on the silicon is counted, not what the product enables: a die listed in
`die_inventory` (A100: 128 SMs of which 108 are enabled) is modelled with its physical tiles,
global storage, memory PHYs and links. Components (all compute dies together, mm^2):

- `macs`: tiles x the largest of (MACs per cycle x technology MAC area) over the dtype classes
  the tile computes in (one datapath sized for its most demanding mode); on a GPU the fp32 vector
  lanes are a second datapath beside the tensor cores.
- `tile_storage`, `global_storage`: bits / (technology SRAM array density x efficiency of the
  architecture and storage kind) — a multi-ported register file or a tagged cache holds far fewer
  bits per mm^2 than a scratchpad macro.
- `tile_logic`: on a GPU, a per-SM count of transistors (SIMT control, schedulers, load/store,
  special functions) at the node's logic density; on a dataflow chip, a fraction of MACs + tile
  SRAM (the chip templates' rule).
- `noc`: a GPU's SM-to-L2 crossbar, per SM at the node's logic density; a dataflow mesh is inside
  its tiles' logic overhead.
- `memory_phy`: HBM PHYs per stack (they do not shrink with the node) plus controllers at the
  node's logic density; non-stacked DRAM per TB/s.
- `io`: the host interface (PCIe x16), chip-to-chip link PHYs + controllers, and a GPU's
  fixed 'other' (video, pads); `io_dies`: stated I/O-die area (global storage of a chip with I/O
  dies is taken to sit on them and is not modelled again).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tegel.economics.assumptions import Assumptions, DieInventory
from tegel.hardware import Chip, System, load_technology
from tegel.hardware.fields import DTYPE_CLASSES
from tegel.hardware.schema import StorageLevel
from tegel.hardware.technology import Technology

_BITS_PER_MIB = 2.0**20
COMPONENTS = ("macs", "tile_storage", "tile_logic", "global_storage", "noc", "memory_phy", "io",
              "io_dies")


@dataclass(frozen=True, slots=True)
class Area:
    """Modelled silicon of one chip (package), mm^2 by component; `total_mm2` is their sum."""

    chip: str
    node: str
    components_mm2: tuple[float, ...]  # indexed like COMPONENTS
    tiles: int  # physical tiles modelled
    tile_mm2: float  # one tile: MACs + storage + logic
    stated_silicon_mm2: float  # the chip's own figure (compute dies + I/O dies)

    @property
    def total_mm2(self) -> float:
        return sum(self.components_mm2)

    @property
    def breakdown_mm2(self) -> dict[str, float]:
        return dict(zip(COMPONENTS, self.components_mm2, strict=True))

    @property
    def error(self) -> float:
        """(modelled - stated) / stated silicon area."""
        return self.total_mm2 / self.stated_silicon_mm2 - 1.0

    def __add__(self, other: Area) -> Area:
        return Area(f"{self.chip}+{other.chip}", self.node,
                    tuple(a + b for a, b in zip(self.components_mm2, other.components_mm2,
                                                strict=True)),
                    self.tiles + other.tiles, self.tile_mm2,
                    self.stated_silicon_mm2 + other.stated_silicon_mm2)

    def to_dict(self) -> dict[str, object]:
        return {"chip": self.chip, "node": self.node, "total_mm2": self.total_mm2,
                "stated_mm2": self.stated_silicon_mm2, "error": self.error,
                "tiles": self.tiles, "tile_mm2": self.tile_mm2,
                "breakdown_mm2": self.breakdown_mm2}


def _logic_mm2(transistors: float, tech: Technology) -> float:
    return transistors / (tech.logic_mtr_per_mm2 * 1e6)


def storage_mm2(level: StorageLevel, architecture: str, tech: Technology, a: Assumptions,
                capacity_bytes: float | None = None) -> float:
    """Area of one storage level instance, mm^2 (capacity_bytes overrides the level's)."""
    eff = a.area.storage_efficiency.get(f"{architecture}.{level.kind}")
    if eff is None:
        eff = a.area.storage_efficiency[f"{architecture}.sram"]
    capacity = level.capacity_bytes if capacity_bytes is None else capacity_bytes
    return capacity * 8.0 / (tech.sram_mib_per_mm2 * _BITS_PER_MIB * eff)


def mac_mm2(chip: Chip, tech: Technology) -> float:
    """MAC datapath of one tile, mm^2 (see module doc)."""
    unit = chip.tiles.compute
    gpu = chip.architecture == "gpu"
    widest = max((unit.ops_per_cycle(d) / 2.0 * tech.mac_area_mm2(d) for d in DTYPE_CLASSES
                  if d in tech.mac_area_um2 and not (gpu and d == "fp32")), default=0.0)
    vector = unit.ops_per_cycle("fp32") / 2.0 * tech.mac_area_mm2("fp32") if gpu else 0.0
    return widest + vector


def chip_area(chip: Chip, a: Assumptions, system: System | None = None) -> Area:
    """Modelled area of `chip`'s silicon, by component (system: for its chip-to-chip links)."""
    tech = load_technology(chip.node)
    inv = a.die_inventory.get(chip.name, DieInventory())
    arch = chip.architecture
    tiles = inv.tiles or chip.tile_count
    macs = mac_mm2(chip, tech)
    tile_store = sum(storage_mm2(lv, arch, tech, a) for lv in chip.tiles.storage)
    if arch == "gpu":
        tile_logic = _logic_mm2(a.area.gpu_tile_logic_transistors, tech)
        noc = tiles * _logic_mm2(a.area.gpu_crossbar_transistors_per_tile, tech)
        other = a.area.gpu_other_mm2
    else:
        tile_logic = (macs + tile_store) * a.area.dataflow_logic_overhead_fraction
        noc, other = 0.0, 0.0
    pkg = chip.package
    global_store = 0.0
    if pkg.io_dies == 0:
        total_bytes = sum(lv.capacity_bytes for lv in chip.global_storage)
        scale = (inv.global_storage_bytes / total_bytes
                 if inv.global_storage_bytes and total_bytes else 1.0)
        global_store = sum(storage_mm2(lv, arch, tech, a, lv.capacity_bytes * scale)
                           for lv in chip.global_storage)
    memory = _memory_mm2(chip, inv, tech, a)
    links = inv.links if inv.links is not None else _links(system)
    io = (a.area.host_interface_mm2 + links * (a.area.link_phy_mm2_per_link + _logic_mm2(
        a.area.link_controller_transistors_per_link, tech)) + other)
    parts = (tiles * macs, tiles * tile_store, tiles * tile_logic, global_store, noc, memory, io,
             pkg.io_dies * pkg.io_die_area_mm2)
    return Area(chip.name, tech.node, parts, tiles, macs + tile_store + tile_logic,
                chip.silicon_area_mm2)


def _memory_mm2(chip: Chip, inv: DieInventory, tech: Technology, a: Assumptions) -> float:
    mem = chip.offchip
    if mem is None:
        return 0.0
    kind = mem.kind
    stacks = inv.memory_stacks if inv.memory_stacks is not None else mem.stacks
    if kind in a.area.memory_phy_mm2_per_stack and stacks:
        return stacks * (a.area.memory_phy_mm2_per_stack[kind] + _logic_mm2(
            a.area.memory_controller_transistors_per_stack.get(kind, 0.0), tech))
    per_tb_s = a.area.memory_phy_mm2_per_tb_s.get(kind, 0.0)
    return per_tb_s * mem.bandwidth_bytes_per_s / 1e12


def _links(system: System | None) -> int:
    if system is None or system.scale_up is None or system.chip_count < 2:
        return 0
    link = system.scale_up
    return link.links_per_chip or min(system.chip_count - 1, 8)


def critical_area_fraction(chip: Chip, a: Assumptions, area: Area | None = None) -> float:
    """Share of the die where one defect kills it: all of it, less the tiles when the die
    carries spare tiles (its products enable fewer than it has), or the inventory's figure."""
    inv = a.die_inventory.get(chip.name, DieInventory())
    if inv.critical_area_fraction is not None:
        return inv.critical_area_fraction
    if not inv.tiles or inv.tiles <= chip.tile_count:
        return 1.0
    area = area or chip_area(chip, a)
    tile_share = area.tiles * area.tile_mm2 / max(area.total_mm2, 1e-9)
    return max(0.0, 1.0 - tile_share)


def area_rows(area: Area) -> list[tuple[str, float, float]]:
    """(component, mm^2, share of total) rows, largest first."""
    total = area.total_mm2 or math.inf
    return sorted(((k, v, v / total) for k, v in area.breakdown_mm2.items()),
                  key=lambda r: -r[1])
