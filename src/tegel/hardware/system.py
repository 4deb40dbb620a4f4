"""Systems: N chips, the links between them, and the hosts and racks they sit in.

A single chip is a one-chip system (`System.single`). Link bandwidth is per chip, per direction,
summed over the chip's links of that network; `scale_up` is the fast domain (NVLink, ICI, Groq
C2C), `scale_out` the network between nodes (InfiniBand, Ethernet).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from tegel.errors import TegelError
from tegel.hardware.schema import Chip, Cited, Count, NonNegative, Positive, Source

LinkKind = Literal[
    "nvlink",
    "infinity_fabric",
    "ici",
    "groq_c2c",
    "ethernet",
    "infiniband",
    "pcie",
    "serdes",
    "die_to_die",
]


class ChipLink(Cited):
    """A chip-to-chip network as one chip sees it."""

    kind: LinkKind
    topology: Literal["switch", "ring", "torus", "mesh", "full", "dragonfly"]
    link_bytes_per_s: Positive  # per chip, per direction, all links of this network together
    links_per_chip: Count | None = None
    latency_s: NonNegative
    pj_per_bit: NonNegative | None = None  # absent: derived from the technology library by kind
    torus_dims: tuple[Count, ...] | None = None


class Host(Cited):
    """What surrounds the chips: per-node host power (CPUs, NICs, fans, PSU loss) and racks."""

    host_w_per_node: NonNegative = 0.0
    idle_host_w_per_node: NonNegative | None = None  # default: same as host_w_per_node
    nodes_per_rack: Count | None = None
    rack_overhead_w: NonNegative = 0.0  # switches and power shelves not inside a node
    rack_power_limit_w: Positive | None = None


class System(Cited):
    """`chip_count` identical chips, `chips_per_node` to a server node."""

    kind: Literal["system"] = "system"
    name: str
    description: str = ""
    chip: Chip
    chip_count: Count
    chips_per_node: Count = 1
    scale_up: ChipLink | None = None
    scale_out: ChipLink | None = None
    host: Host = Field(default_factory=Host)
    sources: dict[str, Source] = Field(default_factory=dict)
    notes: str = ""

    @classmethod
    def single(cls, chip: Chip) -> System:
        """A chip on its own: one chip, no links, no host."""
        return cls(
            name=chip.name,
            description=chip.description,
            chip=chip,
            chip_count=1,
            cite={"chip_count": "derived: a single chip is a one-chip system"},
        )

    @property
    def node_count(self) -> int:
        return math.ceil(self.chip_count / self.chips_per_node)

    @property
    def rack_count(self) -> int:
        per_rack = self.host.nodes_per_rack
        return math.ceil(self.node_count / per_rack) if per_rack else 0

    def peak_flops_per_s(self, dtype: str, sparse: bool = False) -> float:
        """Dense peak operations/s of all chips together in `dtype`."""
        return self.chip.peak_flops_per_s(dtype, sparse) * self.chip_count

    @property
    def offchip_bytes(self) -> float:
        return self.chip.offchip_bytes * self.chip_count

    @property
    def offchip_bytes_per_s(self) -> float:
        return self.chip.offchip_bytes_per_s * self.chip_count

    @property
    def sram_bytes_total(self) -> float:
        return self.chip.sram_bytes_total * self.chip_count

    @property
    def rack_share(self) -> float:
        """Racks occupied, fractional (a node in a 4-node rack is 0.25), for overhead power."""
        per_rack = self.host.nodes_per_rack
        return self.node_count / per_rack if per_rack else 0.0

    @property
    def tdp_w(self) -> float:
        """Chips at TDP plus host and (pro-rated) rack overheads, W (before facility PUE)."""
        return (
            self.chip.tdp_w * self.chip_count
            + self.host.host_w_per_node * self.node_count
            + self.host.rack_overhead_w * self.rack_share
        )

    @property
    def idle_w(self) -> float:
        """Chips idle plus hosts idle plus (pro-rated) rack overheads, W."""
        host_idle = self.host.idle_host_w_per_node
        host = self.host.host_w_per_node if host_idle is None else host_idle
        return (
            self.chip.idle_w * self.chip_count
            + host * self.node_count
            + self.host.rack_overhead_w * self.rack_share
        )

    @property
    def link_pj_per_bit(self) -> float:
        """Energy per bit on the scale-up network, pJ (0 for a single chip)."""
        if self.scale_up is None:
            return 0.0
        if self.scale_up.pj_per_bit is None:
            raise TegelError(f"{self.name}: scale_up.pj_per_bit is not resolved; use load_system")
        return self.scale_up.pj_per_bit
