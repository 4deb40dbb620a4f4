"""One mapping policy per chip architecture, chosen from a registry keyed by architecture.

A policy turns (graph, system, request, parameters) into a `Planned` — the `Plan` of steps both
evaluators price, and, for a spatial policy, the `CompiledPlan` it lowered them from (the event
simulator plays its data dependencies). It also answers what the parallelism search needs to
know of the machine kind: how much memory a chip offers, how much KV cache a sequence of a
maximum-throughput batch holds, which stage counts to try, whether tensor parallelism may leave
a node, the fixed host work per request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from tegel.errors import TegelError
from tegel.hardware import Chip, System
from tegel.mapping.compiled import CompiledPlan
from tegel.mapping.compiler import compile_for
from tegel.mapping.gpu import plan_gpu
from tegel.mapping.lower import lower
from tegel.mapping.params import Params
from tegel.mapping.plan import Plan, PlanRequest
from tegel.workload.ir import Graph


@dataclass(frozen=True, slots=True)
class Planned:
    """A policy's answer: the steps to price, and the compiled plan behind them (if any)."""

    plan: Plan
    compiled: CompiledPlan | None = None


class Policy(Protocol):
    """What a mapping policy provides (module doc)."""

    architecture: str
    tp_within_node: bool  # tensor parallelism only over a node's fast links

    def plan(self, graph: Graph, system: System, req: PlanRequest, params: Params) -> Planned: ...

    def usable_memory_bytes(self, chip: Chip, params: Params) -> float: ...

    def kv_pages_on_demand(self, params: Params, software: str | None) -> float: ...

    def stage_counts(self, pp: int, layers: int) -> list[int]: ...

    def pp_degrees(self, chips_left: int, layers: int) -> list[int]: ...

    def request_overhead_s(self, params: Params, software: str | None) -> float: ...


def _powers_of_two_dividing(n: int) -> list[int]:
    return [2**i for i in range(int(math.log2(n)) + 1) if n % 2**i == 0]


class GpuPolicy:
    """Kernel by kernel through HBM (`mapping.gpu`)."""

    architecture = "gpu"
    tp_within_node = True

    def plan(self, graph: Graph, system: System, req: PlanRequest, params: Params) -> Planned:
        return Planned(plan_gpu(graph, system, req, params.gpu))

    def usable_memory_bytes(self, chip: Chip, params: Params) -> float:
        return chip.offchip_usable_bytes * params.gpu.memory_usable_fraction

    def kv_pages_on_demand(self, params: Params, software: str | None) -> float:
        """1 where the software stack batches in flight with KV pages allocated as sequences
        grow (mapping/data/gpu.yaml), 0 where every sequence holds its full context."""
        return params.gpu.for_software(software).kv_pages_on_demand

    def stage_counts(self, pp: int, layers: int) -> list[int]:
        return [pp]  # one stage per pipeline rank

    def pp_degrees(self, chips_left: int, layers: int) -> list[int]:
        return _powers_of_two_dividing(chips_left)

    def request_overhead_s(self, params: Params, software: str | None) -> float:
        return params.gpu.for_software(software).request_overhead_s


class DataflowPolicy:
    """Layers pinned to regions of tiles, compiled by the spatial compiler (`mapping.compiler`)."""

    architecture = "dataflow"
    tp_within_node = False

    def plan(self, graph: Graph, system: System, req: PlanRequest, params: Params) -> Planned:
        compiled = compile_for(graph, system, req, params.dataflow)
        return Planned(lower(compiled, system, params.dataflow), compiled)

    def usable_memory_bytes(self, chip: Chip, params: Params) -> float:
        sram = sum(lv.total_bytes for lv in chip.levels() if lv.scope != "offchip")
        return chip.offchip_usable_bytes + sram * params.dataflow.sram_weight_fraction

    def kv_pages_on_demand(self, params: Params, software: str | None) -> float:
        return 0.0  # a static schedule places each sequence's KV cache for its full context

    def stage_counts(self, pp: int, layers: int) -> list[int]:
        """pp, 2 pp, 4 pp, ... stages (regions per chip), at most one layer each."""
        return [pp * 2**j for j in range(12) if pp * 2**j <= max(layers, pp)]

    def pp_degrees(self, chips_left: int, layers: int) -> list[int]:
        """Any divisor of the chips left up to the layer count (a 576-chip Groq system is 8 x 72)."""
        return [d for d in range(1, min(chips_left, layers) + 1) if chips_left % d == 0]

    def request_overhead_s(self, params: Params, software: str | None) -> float:
        return 0.0  # a static schedule: no host work measured or modelled per request


POLICIES: dict[str, Policy] = {p.architecture: p for p in (GpuPolicy(), DataflowPolicy())}


def policy_for(chip: Chip) -> Policy:
    """The mapping policy of a chip's architecture."""
    policy = POLICIES.get(chip.architecture)
    if policy is None:
        raise TegelError(f"{chip.name}: no mapping policy for architecture {chip.architecture!r}; "
                         f"known: {', '.join(POLICIES)}")
    return policy
