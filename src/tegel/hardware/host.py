"""What surrounds the accelerators of a node, and how power reaches them from the wall.

A node draws, at its DC side, its accelerators' power plus its host's: CPU sockets, memory
modules, NICs, switch chips (NVSwitch), drives and the board (`host_w_per_node` while the node
serves, `idle_host_w_per_node` while it idles; `parts` states where those totals come from). Fans
add `fan_fraction` W per W of the DC power they move out of the box (airflow, and with it fan
power, rises with the heat to remove). The power supplies convert wall AC to DC at the
efficiency their certification curve gives at their load, the load shared by all of them
(`Psu.efficiency`: (load fraction, efficiency) points, interpolated linearly, flat beyond
its ends).
So a node's wall power is (accelerators + host) x (1 + fan_fraction) / efficiency(load).
Racks add `rack_overhead_w` (top-of-rack switches, power shelves) outside the nodes.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Any

from pydantic import Field, model_validator

from tegel.errors import short
from tegel.hardware.fields import Cited, Count, NonNegative, Positive

_TOLERANCE_W = 0.5  # totals and the sum of their parts may differ by rounding only
Efficiency = Annotated[float, Field(gt=0, le=1)]
LoadFraction = Annotated[float, Field(gt=0)]


class HostPart(Cited):
    """Components of one kind in a node, outside the accelerators: count, watts each (DC) while
    the node idles and while it serves."""

    name: str
    count: Count = 1
    idle_w: NonNegative
    busy_w: NonNegative

    @model_validator(mode="after")
    def _busy_not_below_idle(self) -> HostPart:
        if self.busy_w < self.idle_w:
            raise ValueError(f"{self.name}: busy_w {self.busy_w} is below idle_w {self.idle_w}")
        return self


class Psu(Cited):
    """A node's power supplies: how many share the load, each one's output rating, and the
    efficiency curve they are certified to (output load fraction -> efficiency)."""

    count: Count
    rated_w: Positive  # output rating of one supply
    # (output load fraction, efficiency) points of the curve, in increasing load
    efficiency: tuple[tuple[LoadFraction, Efficiency], ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _increasing_load(self) -> Psu:
        loads = [x for x, _ in self.efficiency]
        if loads != sorted(set(loads)):
            raise ValueError(f"efficiency: load fractions must increase, got {loads}")
        return self

    def efficiency_at(self, output_w: float) -> float:
        """Conversion efficiency at a node output of `output_w` W shared by all supplies."""
        load = output_w / (self.count * self.rated_w)
        points = self.efficiency
        if load <= points[0][0]:
            return points[0][1]
        for (x0, y0), (x1, y1) in pairwise(points):
            if load <= x1:
                return y0 + (y1 - y0) * (load - x0) / (x1 - x0)
        return points[-1][1]


class Host(Cited):
    """What surrounds the chips of a node and how its power reaches them (module doc)."""

    host_w_per_node: NonNegative = 0.0  # DC, outside the accelerators, while the node serves
    idle_host_w_per_node: NonNegative | None = None  # default: same as host_w_per_node
    parts: tuple[HostPart, ...] = ()  # where the two totals come from (they must add up)
    fan_fraction: NonNegative = 0.0  # fan W per W of the DC power they cool
    psu: Psu | None = None  # None: power is counted at the DC side, without conversion loss
    nameplate_w_per_node: Positive | None = None  # stated maximum input power of a node
    nodes_per_rack: Count | None = None
    rack_overhead_w: NonNegative = 0.0  # switches and power shelves not inside a node
    rack_power_limit_w: Positive | None = None

    @model_validator(mode="before")
    @classmethod
    def _totals_from_parts(cls, data: Any) -> Any:
        """Totals left out are the sums of `parts`; totals given must match them."""
        if not isinstance(data, dict) or not data.get("parts"):
            return data
        parts = data["parts"]

        def total(key: str) -> float:
            return sum(float(_field(p, key)) * float(_field(p, "count", 1)) for p in parts)

        out = dict(data)
        for field, key in (("host_w_per_node", "busy_w"), ("idle_host_w_per_node", "idle_w")):
            given = out.get(field)
            try:
                summed = total(key)
                differs = given is not None and abs(float(given) - summed) > _TOLERANCE_W
            except (TypeError, ValueError, OverflowError, AttributeError):
                return data  # malformed parts or totals: the field checks name what is wrong
            if given is None:
                out[field] = summed
            elif differs:
                raise ValueError(f"{field} {short(given)} is not the sum of its parts' {key} "
                                 f"({summed:g})")
        return out

    @property
    def idle_w_per_node(self) -> float:
        """DC power of the host (outside the accelerators) while the node idles, W."""
        return self.host_w_per_node if self.idle_host_w_per_node is None else self.idle_host_w_per_node

    def wall_w(self, dc_w: float) -> float:
        """Input power of a node whose accelerators and host draw `dc_w` W at the DC side:
        fans on top, then the supplies' conversion loss at their load."""
        cooled = dc_w * (1.0 + self.fan_fraction)
        return cooled if self.psu is None else cooled / self.psu.efficiency_at(cooled)


def _field(part: Any, key: str, default: float | None = None) -> Any:
    value = part.get(key, default) if isinstance(part, dict) else getattr(part, key, default)
    if value is None:
        raise ValueError(f"a host part lacks {key}")
    return value
