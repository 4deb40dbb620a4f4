"""Systems: N chips, the links between them, and the hosts and racks they sit in.

A single chip is a one-chip system (`System.single`). Link bandwidth is per chip, per direction,
summed over the chip's links of that network; `scale_up` is the fast domain (NVLink, ICI, Groq
C2C), `scale_out` the network between nodes (InfiniBand, Ethernet).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field

from tegel.errors import TegelError
from tegel.hardware.fields import MAX_CHIPS, Cited, Count, NonNegative, Positive, Source
from tegel.hardware.host import Host, HostPart, Psu
from tegel.hardware.schema import Chip

__all__ = ["ChipLink", "Host", "HostPart", "LinkKind", "Psu", "System", "replica_name", "replicated"]

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
    # traffic leaves and enters the chips through host servers (NIC, host memory, runtime) rather
    # than chip to chip: every hop then costs the dataflow policy's host round trip
    via_host: bool = False


class System(Cited):
    """`chip_count` identical chips, `chips_per_node` to a server node."""

    kind: Literal["system"] = "system"
    name: str
    description: str = ""
    chip: Chip
    chip_count: Annotated[int, Field(ge=1, le=MAX_CHIPS, strict=True)]
    chips_per_node: Count = 1
    # chips one scale-up network joins, where it spans several hosts (a TPU pod's ICI torus, Groq's
    # C2C links); None: a node's chips
    scale_up_chips: Count | None = None
    scale_up: ChipLink | None = None
    scale_out: ChipLink | None = None
    host: Host = Field(default_factory=Host)
    # the board power limit each chip runs under (`nvidia-smi -pl`; MLPerf's MaxQ submissions set
    # one below TDP); None: its TDP. Energies per action stay those derived from the TDP.
    chip_power_limit_w: Positive | None = None
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

    def link_between(self, a: int, b: int) -> ChipLink | None:
        """The network chips `a` and `b` (0-based, numbered node by node) talk over: the scale-up
        network within its domain (a node, or `scale_up_chips`), the scale-out network between
        domains (None: the same chip, or no such network)."""
        for i in (a, b):
            if not 0 <= i < self.chip_count:
                raise TegelError(f"{self.name}: chip {i} out of range 0..{self.chip_count - 1}")
        if a == b:
            return None
        domain = self.scale_up_domain
        return self.scale_up if a // domain == b // domain else self.scale_out

    @property
    def scale_up_domain(self) -> int:
        """Chips one scale-up network joins: `scale_up_chips`; else a node's, or every chip of a
        system with no scale-out network (groq-576's C2C links, cerebras-cs3x4's Ethernet)."""
        if self.scale_up_chips:
            return self.scale_up_chips
        return self.chips_per_node if self.scale_out is not None else self.chip_count

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
    def chip_limit_w(self) -> float:
        """Board power limit of each chip, W (its TDP unless the system sets a lower one)."""
        return self.chip.tdp_w if self.chip_power_limit_w is None else self.chip_power_limit_w

    def node_wall_w(self, chip_dc_w: float, host_dc_w: float) -> float:
        """Input power of one node whose chips draw `chip_dc_w` W each and whose host draws
        `host_dc_w` W (fans and supply losses on top: `Host.wall_w`)."""
        return self.host.wall_w(chip_dc_w * self.chips_per_node + host_dc_w)

    @property
    def tdp_w(self) -> float:
        """Nameplate power at the wall, W (before facility PUE): each node's stated maximum input
        power, or its chips at TDP with the host serving, fans and supply losses; plus the
        (pro-rated) rack overheads."""
        node = self.host.nameplate_w_per_node or self.node_wall_w(self.chip.tdp_w,
                                                                  self.host.host_w_per_node)
        return node * self.chip_count / self.chips_per_node + self.host.rack_overhead_w * self.rack_share

    @property
    def idle_w(self) -> float:
        """Power at the wall with every chip and host idle, plus (pro-rated) rack overheads, W."""
        node = self.node_wall_w(self.chip.idle_w, self.host.idle_w_per_node)
        return node * self.chip_count / self.chips_per_node + self.host.rack_overhead_w * self.rack_share

    def collective_link(self, group: int) -> ChipLink | None:
        """The network a collective among `group` consecutive chips runs at: the scale-up
        network when the group fits one scale-up domain, else the scale-out network (a ring
        through every chip of the group crosses it, and its per-chip rate bounds the ring)."""
        if group <= self.scale_up_domain or self.scale_out is None:
            return self.scale_up
        return self.scale_out

    @property
    def link_pj_per_bit(self) -> float:
        """Energy per bit on the scale-up network, pJ (0 for a single chip)."""
        if self.scale_up is None:
            return 0.0
        if self.scale_up.pj_per_bit is None:
            raise TegelError(f"{self.name}: scale_up.pj_per_bit is not resolved; use load_system")
        return self.scale_up.pj_per_bit


def replica_name(count: int, name: str) -> str:
    """The name of `count` of a chip or system (`16x-h100-sxm`, `2x-dgx-h100`)."""
    return f"{count}x-{name}"


def replicated(node: System, chip_count: int, name: str) -> System:
    """`chip_count` chips in nodes like `node`: its chip, host, racks and power limit; its
    scale-up network within each node and its scale-out network between nodes. The one builder of
    multi-node systems (`--on 2xdgx-h100`, the fidelity cases' `16x-h100-sxm`). Growing past the
    chips the preset already joins needs its scale-out network."""
    if chip_count < 1:
        raise TegelError(f"{name}: expected a chip count of at least 1, got {chip_count}")
    joined = max(node.chip_count, node.scale_up_domain)
    if chip_count > joined and node.scale_out is None:
        raise TegelError(
            f"{name}: {node.name} has no scale_out network to join {chip_count} chips "
            f"(it joins {joined}); add a scale_out section to a copy of its preset")
    if chip_count == node.chip_count:
        return node
    nodes = math.ceil(chip_count / node.chips_per_node)
    domains = math.ceil(chip_count / node.scale_up_domain)
    between = f", {node.scale_out.kind} between them" if node.scale_out and domains > 1 else ""
    return node.model_copy(update={
        "name": name,
        "description": f"{chip_count} x {node.chip.name} in {nodes} node(s) like {node.name}"
                       f"{between}",
        "chip_count": chip_count,
        "scale_up_chips": min(node.scale_up_domain, chip_count),
        "cite": {**node.cite, "chip_count": f"derived: {name} asks for {chip_count} chips"},
    })
