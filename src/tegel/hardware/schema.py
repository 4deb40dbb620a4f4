"""Hardware as data: the pydantic models a chip is described in, GPU and dataflow chip alike.

SI units inside, the unit in every field name (`capacity_bytes`, `read_pj_per_bit`, `clock_hz`).
Every model is frozen and forbids unknown fields. Each section carries a `cite` map from its field
names to a source id of the file's `sources`, or to a text starting `assumption:` or `derived:`;
`"*"` covers every field of the section, `"field.key"` one entry of a map field.

A chip is a grid of tiles (compute + per-tile storage), chip-level storage, a network-on-chip and
an optional off-chip memory. A GPU is the same object: SMs are the tiles, shared memory/L1 and the
register file their storage, L2 the chip-level storage, HBM the off-chip memory, the SM-to-L2
crossbar the NoC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from tegel.errors import TegelError, short
from tegel.hardware.fields import (
    DTYPE_CLASSES,
    MAX_GRID_SIDE,
    MAX_TILES,
    RETICLE_MM2,
    Cited,
    Count,
    DtypeClass,
    NonNegative,
    NonNegCount,
    Positive,
    Source,
)
from tegel.hardware.systolic import FoldOverlap


class SystolicArray(Cited):
    """R x C processing elements, each doing `macs_per_pe_per_cycle[dtype]` MACs per cycle.

    `fold_overlap` is how consecutive folds of a GEMM follow each other (hardware/systolic.py):
    `double_buffered` (shadow registers load the next tile during this one's stream) or `none`
    (every fold pays its own fill and drain, SCALE-Sim v3's timing).

    `conv_unroll` is how the array maps a convolution (mapping/conv.py, `array_gemm`): `im2col`
    (the default) as its implicit GEMM, channels x kernel taps (K = C·kh·kw) on the reduction
    side; `channels` with only the input channels C on the reduction side and the kh·kw taps
    looped in time (each tap a GEMM of its own, ZigZag's `tpu_like` mapping). `accumulator_bits`
    is the width of a partial sum per dtype class (32 where not given), which a register level
    holding outputs reads and writes per MAC (mapping/registers.py)."""

    rows: Count
    cols: Count
    count: Count = 1  # arrays per tile
    dataflow: Literal["weight_stationary", "output_stationary", "input_stationary"]
    macs_per_pe_per_cycle: dict[DtypeClass, Positive]
    fold_overlap: FoldOverlap = "double_buffered"
    conv_unroll: Literal["im2col", "channels"] = "im2col"
    accumulator_bits: dict[DtypeClass, Count] = Field(default_factory=dict)


class ComputeUnit(Cited):
    """The arithmetic of one tile: dense peak operations per cycle per dtype class (1 MAC = 2 ops).

    Give either `peak_ops_per_cycle` or a `systolic` array. `sparsity_speedup` is the factor
    structured sparsity (e.g. 2:4) adds on top of the dense peak. `pj_per_op` is energy per
    operation; where absent the loader derives it from the chip's technology node.
    `pj_per_op_includes_registers` (default true: every preset's figure is an energy per op
    that includes reading and writing the operands in the PEs) set false declares `pj_per_op`
    the bare arithmetic; the array's register levels are then charged per access
    (mapping/registers.py). Only a systolic array says which operand each PE register holds.
    """

    peak_ops_per_cycle: dict[DtypeClass, Positive] = Field(default_factory=dict)
    systolic: SystolicArray | None = None
    sparsity_speedup: dict[DtypeClass, Positive] = Field(default_factory=dict)
    pj_per_op: dict[DtypeClass, NonNegative] = Field(default_factory=dict)
    pj_per_op_includes_registers: bool = True

    @model_validator(mode="after")
    def _one_description(self) -> ComputeUnit:
        if bool(self.peak_ops_per_cycle) == (self.systolic is not None):
            raise ValueError("give exactly one of peak_ops_per_cycle or systolic")
        if not self.pj_per_op_includes_registers and self.systolic is None:
            raise ValueError("pj_per_op_includes_registers: false needs a systolic array")
        return self

    def ops_per_cycle(self, dtype: str) -> float:
        """Dense operations per cycle in `dtype` (0 if the unit does not compute in it)."""
        if self.systolic is not None:
            arr = self.systolic
            return 2.0 * arr.rows * arr.cols * arr.count * arr.macs_per_pe_per_cycle.get(dtype, 0.0)  # type: ignore[call-overload]
        return self.peak_ops_per_cycle.get(dtype, 0.0)  # type: ignore[call-overload]

    @property
    def dtypes(self) -> tuple[str, ...]:
        """The dtype classes this unit computes in, in canonical order."""
        return tuple(d for d in DTYPE_CLASSES if self.ops_per_cycle(d) > 0)


class StorageLevel(Cited):
    """One level of on-chip storage; figures are per instance (per tile for tile levels).

    Energies and leakage left out are derived from the technology node by the loader.
    `holds` lists the operands the level keeps (empty: any): `weights` (a GEMM's second
    operand, a layer's weights), `inputs` (its first, the activations streamed in) and
    `outputs` (results and partial sums). A level without `weights` never keeps weight tensors
    (mapping/levels.py); a register level is charged per access only for the operands it holds.
    """

    name: str
    kind: Literal["registers", "sram", "cache"] = "sram"
    holds: tuple[Literal["weights", "inputs", "outputs"], ...] = ()
    capacity_bytes: Positive
    read_bytes_per_s: Positive
    write_bytes_per_s: Positive | None = None  # default: same as read
    read_pj_per_bit: NonNegative | None = None
    write_pj_per_bit: NonNegative | None = None
    leakage_w: NonNegative | None = None
    macro_bytes: Positive | None = None  # SRAM macro size used to look up access energy


class TileGrid(Cited):
    """Tiles on a rows x cols grid, each with the same compute and storage (nearest first)."""

    rows: Count
    cols: Count
    compute: ComputeUnit
    storage: tuple[StorageLevel, ...] = ()

    @model_validator(mode="after")
    def _bounded(self) -> TileGrid:
        check_grid(self.rows, self.cols)
        return self

    @property
    def count(self) -> int:
        return self.rows * self.cols


def check_grid(rows: int, cols: int) -> None:
    """Raise ValueError for a tile grid beyond MAX_GRID_SIDE a side or MAX_TILES tiles."""
    if max(rows, cols) > MAX_GRID_SIDE or rows * cols > MAX_TILES:
        raise ValueError(f"rows x cols: expected at most {MAX_GRID_SIDE:,} a side and "
                         f"{MAX_TILES:,} tiles, got {short(rows)} x {short(cols)}")


class Noc(Cited):
    """The on-chip network between tiles (and, on a GPU, between SMs and L2).

    `link_bytes_per_s` is one link, one direction. Energy is `pj_per_bit_per_hop`, or
    `pj_per_bit_per_mm` x `hop_length_mm`; the loader derives what is missing from the node.
    """

    topology: Literal["mesh", "torus", "ring", "crossbar", "hierarchical"]
    link_bytes_per_s: Positive
    hop_latency_s: NonNegative
    pj_per_bit_per_hop: NonNegative | None = None
    pj_per_bit_per_mm: NonNegative | None = None
    hop_length_mm: Positive | None = None
    bisection_bytes_per_s: Positive | None = None


OffchipKind = Literal[
    "hbm2", "hbm2e", "hbm3", "hbm3e", "hbm4", "gddr6", "lpddr4", "lpddr5", "ddr5", "stacked_dram"
]


class OffchipMemory(Cited):
    """Off-chip (or stacked) DRAM: capacity, total bandwidth (read+write) and energy per bit."""

    kind: OffchipKind
    capacity_bytes: Positive
    usable_capacity_bytes: Positive | None = None  # what software sees, where it differs
    bandwidth_bytes_per_s: Positive
    pj_per_bit: NonNegative | None = None
    stacks: NonNegCount = 0
    latency_s: NonNegative | None = None


class Package(Cited):
    """How the chip is put together: compute dies, I/O dies, memory stacks, integration."""

    compute_dies: Count = 1
    io_dies: NonNegCount = 0
    io_die_area_mm2: NonNegative = 0.0
    memory_stacks: NonNegCount = 0
    integration: str = "monolithic"
    # a wafer-scale part (Cerebras WSE): its one die may exceed the reticle
    wafer_scale: bool = False


@dataclass(frozen=True, slots=True)
class MemoryLevel:
    """One resolved storage level, as the cost engine sees it (nearest levels first).

    Per-instance capacity and whole-chip totals; bandwidths and leakage are whole-chip totals.
    `energy_basis` says whether the pJ/bit came from the preset or from the technology library.
    """

    name: str
    scope: Literal["tile", "chip", "offchip"]
    kind: str
    instances: int
    capacity_bytes: float
    total_bytes: float
    read_bytes_per_s: float
    write_bytes_per_s: float
    read_pj_per_bit: float
    write_pj_per_bit: float
    leakage_w: float
    energy_basis: str
    holds: tuple[str, ...] = ()  # operands kept (StorageLevel.holds); empty: any

    def keeps(self, operand: str) -> bool:
        """Whether this level keeps `operand` (weights | inputs | outputs)."""
        return not self.holds or operand in self.holds


def _need(value: float | None, what: str) -> float:
    if value is None:
        raise TegelError(f"{what} is not resolved; load chips through tegel.hardware.load_chip")
    return value


class Chip(Cited):
    """One accelerator (a package with one or more compute dies) described as data."""

    kind: Literal["chip"] = "chip"
    name: str
    description: str = ""
    vendor: str = ""
    architecture: Literal["gpu", "dataflow"]
    node: str  # technology library key, e.g. "5nm"
    process: str = ""  # foundry process name as published, e.g. "TSMC 4N"
    clock_hz: Positive
    die_area_mm2: Positive  # one compute die
    transistors: Positive | None = None
    tdp_w: Positive
    idle_w: NonNegative
    # GPU: the preset of a part with the same die (an SXM flagship), whose energy per op this one
    # shares at its own clock; "" derives it from this part's own TDP (hardware/derive.py)
    same_silicon_as: str = ""
    tiles: TileGrid
    global_storage: tuple[StorageLevel, ...] = ()
    noc: Noc
    offchip: OffchipMemory | None = None
    package: Package = Field(default_factory=Package)
    sources: dict[str, Source] = Field(default_factory=dict)
    notes: str = ""

    @field_validator("idle_w")
    @classmethod
    def _idle_below_tdp(cls, value: float, info: ValidationInfo) -> float:
        tdp = info.data.get("tdp_w")
        if tdp is not None and value > tdp:
            raise ValueError(f"expected at most tdp_w ({tdp:g} W), got {short(value)}")
        return value

    @field_validator("same_silicon_as")
    @classmethod
    def _not_itself(cls, value: str, info: ValidationInfo) -> str:
        if value and value.strip().lower() == str(info.data.get("name", "")).strip().lower():
            raise ValueError(f"names the chip itself ({short(value)}); name another part "
                             "with the same die, or leave it out")
        return value

    def reticle_problem(self) -> str | None:
        """Why one compute die cannot be printed (over the reticle and not marked wafer-scale);
        the loader refuses such files, a design sweep (`template.expand`) may still build one."""
        if self.die_area_mm2 > RETICLE_MM2 and not self.package.wafer_scale:
            return (f"one compute die of {self.die_area_mm2:g} mm^2 exceeds the {RETICLE_MM2:g} "
                    "mm^2 reticle; split it into package.compute_dies, or mark a wafer-scale part "
                    "with package.wafer_scale: true")
        return None

    # --- resolved figures -------------------------------------------------------------------

    @property
    def tile_count(self) -> int:
        return self.tiles.count

    @property
    def dtypes(self) -> tuple[str, ...]:
        """Dtype classes with a nonzero peak."""
        return self.tiles.compute.dtypes

    def peak_flops_per_s(self, dtype: str, sparse: bool = False) -> float:
        """Dense peak operations/s of the whole chip in `dtype` (x sparsity speedup if `sparse`).

        Raises TegelError for a dtype class the chip does not compute in.
        """
        per_cycle = self.tiles.compute.ops_per_cycle(dtype)
        if per_cycle <= 0:
            raise TegelError(
                f"{self.name} has no {dtype} peak; it computes in: {', '.join(self.dtypes)}"
            )
        speedup = self.tiles.compute.sparsity_speedup.get(dtype, 1.0) if sparse else 1.0  # type: ignore[call-overload]
        return per_cycle * self.tile_count * self.clock_hz * speedup

    def pj_per_flop(self, dtype: str) -> float:
        """Energy of one arithmetic operation (half a MAC) in `dtype`, pJ."""
        table = self.tiles.compute.pj_per_op
        if dtype not in table:
            raise TegelError(f"{self.name}: no energy per op for {dtype}")
        return table[dtype]

    @property
    def offchip_bytes(self) -> float:
        """Off-chip memory capacity, bytes (0 without off-chip memory)."""
        return self.offchip.capacity_bytes if self.offchip else 0.0

    @property
    def offchip_usable_bytes(self) -> float:
        """Off-chip capacity software can use, bytes."""
        if not self.offchip:
            return 0.0
        return self.offchip.usable_capacity_bytes or self.offchip.capacity_bytes

    @property
    def offchip_bytes_per_s(self) -> float:
        return self.offchip.bandwidth_bytes_per_s if self.offchip else 0.0

    @property
    def offchip_pj_per_bit(self) -> float:
        return _need(self.offchip.pj_per_bit, "offchip.pj_per_bit") if self.offchip else 0.0

    @property
    def sram_bytes_total(self) -> float:
        """All on-chip storage (registers, tile SRAM, caches, global SRAM), bytes."""
        tile = sum(level.capacity_bytes for level in self.tiles.storage) * self.tile_count
        return tile + sum(level.capacity_bytes for level in self.global_storage)

    @property
    def silicon_area_mm2(self) -> float:
        """Compute dies plus I/O dies, mm^2 (memory stacks not included)."""
        pkg = self.package
        return self.die_area_mm2 * pkg.compute_dies + pkg.io_dies * pkg.io_die_area_mm2

    @property
    def noc_pj_per_bit_per_hop(self) -> float:
        return _need(self.noc.pj_per_bit_per_hop, "noc.pj_per_bit_per_hop")

    @property
    def noc_hop_length_mm(self) -> float:
        return _need(self.noc.hop_length_mm, "noc.hop_length_mm")

    def levels(self) -> tuple[MemoryLevel, ...]:
        """Storage levels nearest first: tile levels, chip levels, then off-chip memory."""
        out = [self._level(lv, "tile", self.tile_count) for lv in self.tiles.storage]
        out += [self._level(lv, "chip", 1) for lv in self.global_storage]
        mem = self.offchip
        if mem is not None:
            pj = _need(mem.pj_per_bit, "offchip.pj_per_bit")
            out.append(
                MemoryLevel(
                    mem.kind,
                    "offchip",
                    "dram",
                    1,
                    mem.capacity_bytes,
                    mem.capacity_bytes,
                    mem.bandwidth_bytes_per_s,
                    mem.bandwidth_bytes_per_s,
                    pj,
                    pj,
                    0.0,
                    mem.basis("pj_per_bit"),
                )
            )
        return tuple(out)

    def _level(self, lv: StorageLevel, scope: Literal["tile", "chip"], n: int) -> MemoryLevel:
        read_pj = _need(lv.read_pj_per_bit, f"{lv.name}.read_pj_per_bit")
        return MemoryLevel(
            name=lv.name,
            scope=scope,
            kind=lv.kind,
            instances=n,
            capacity_bytes=lv.capacity_bytes,
            total_bytes=lv.capacity_bytes * n,
            read_bytes_per_s=lv.read_bytes_per_s * n,
            write_bytes_per_s=(lv.write_bytes_per_s or lv.read_bytes_per_s) * n,
            read_pj_per_bit=read_pj,
            write_pj_per_bit=lv.write_pj_per_bit if lv.write_pj_per_bit is not None else read_pj,
            leakage_w=(lv.leakage_w or 0.0) * n,
            energy_basis=lv.basis("read_pj_per_bit"),
            holds=lv.holds,
        )

    def grid_diameter_hops(self) -> int:
        """Worst-case hops between two tiles on the NoC."""
        rows, cols = self.tiles.rows, self.tiles.cols
        topo = self.noc.topology
        if topo in ("crossbar", "hierarchical"):
            return 1 if topo == "crossbar" else 2
        if topo == "ring":
            return self.tile_count // 2
        if topo == "torus":
            return rows // 2 + cols // 2
        return (rows - 1) + (cols - 1)

    def mean_hops(self) -> float:
        """Mean hops between two uniformly random tiles (mesh: (R+C)/3, torus: (R+C)/4)."""
        rows, cols = self.tiles.rows, self.tiles.cols
        topo = self.noc.topology
        if topo == "crossbar":
            return 1.0
        if topo == "hierarchical":
            return 2.0
        if topo == "ring":
            return self.tile_count / 4.0
        if topo == "torus":
            return (rows + cols) / 4.0
        return (rows + cols) / 3.0

    def die_edge_mm(self) -> float:
        """Edge of a square compute die, mm."""
        return math.sqrt(self.die_area_mm2)
