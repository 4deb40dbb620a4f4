"""Per-layer and per-op tables of a priced plan, as Timeloop/Accelergy and ZigZag report them:
for each layer its time, bounding resource, MACs and energy per memory level.

Energy columns: `compute`, each storage level of the chip by its own name (nearest first:
registers, shared/tile SRAM, L2/global SRAM, HBM/DRAM), `noc`, `chip_to_chip` and `static`.
A level's joules come from `evaluate.terms.level_energy_j` — the function the category energy
uses — so the columns of a step add up to its category energy. Every step of the plan is
counted once, x its repeats, copies over stages, chips sharing a stage and micro-batches (as
`analytical.dynamic_energy` counts it), x the power cap's energy factor; static energy is shared
out in proportion to the rows' busy time. So the rows sum to the call's energy, column by
column (tested).

A step belongs to the layer of its first op (`op.layer`; -1: outside any layer); a routed
transfer, which carries no op, to the layer whose ops run last on its source stage before it
(the sender). Rows are per layer, or per op (`by="op"`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tegel.evaluate.analytical import PhaseCost
from tegel.evaluate.cost import CATEGORIES, Category
from tegel.evaluate.terms import Rates, level_energy_j
from tegel.hardware import System
from tegel.workload.ir import Graph
from tegel.workload.ops import gemm_dims

_FIXED = (Category.COMPUTE, Category.NOC, Category.CHIP_TO_CHIP)
_IDX = {c: i for i, c in enumerate(CATEGORIES)}


@dataclass(frozen=True, slots=True)
class LayerRow:
    """One layer (or op) of a call: busy time over the call, what bounds its longest step,
    MACs (of its GEMM views; other ops' FLOPs count as `flops` only), energy by column."""

    key: str  # "layer 3", "outside layers", or an op's name
    layer: int
    ops: int
    time_s: float  # seconds its steps take over the call (x repeats, micro-batches)
    bound: str
    macs: float
    flops: float
    energy_j: tuple[tuple[str, float], ...]  # (column, joules), columns as `energy_columns`

    @property
    def energy_total_j(self) -> float:
        return sum(e for _, e in self.energy_j)

    def to_dict(self) -> dict[str, object]:
        return {"key": self.key, "layer": self.layer, "ops": self.ops, "time_s": self.time_s,
                "bound": self.bound, "macs": self.macs, "flops": self.flops,
                "energy_j": dict(self.energy_j), "energy_total_j": self.energy_total_j}


def energy_columns(levels: tuple[str, ...]) -> tuple[str, ...]:
    """The energy columns of a chip with storage `levels` (module doc)."""
    return ("compute", *levels, "noc", "chip_to_chip", "static")


def macs_of(graph: Graph) -> dict[str, float]:
    """Multiply-accumulates of each op's GEMM views (0 for ops without one)."""
    return {op.name: sum(g.flops for g in gemm_dims(op)) / 2.0 for op in graph.ops}


def layer_rows(phase: PhaseCost, graph: Graph, system: System, by: str = "layer") -> tuple[LayerRow, ...]:
    """Rows of `phase` (a priced plan of `graph`): per layer, or per op with by="op"."""
    plan = phase.plan
    rates = Rates.of(system, plan)
    layer_of = {op.name: op.layer for op in graph.ops}
    flops_of = macs_of(graph)
    columns = energy_columns(plan.levels)
    raw = [0.0] * len(CATEGORIES)
    acc: dict[str, dict[str, float]] = {}
    meta: dict[str, tuple[int, set[str], list[tuple[float, str]]]] = {}
    last_key: dict[int, str] = {}  # stage -> the key of its last op step
    for sc in phase.steps:
        s = sc.step
        if s.ops:
            name = s.ops[0]
            layer = layer_of.get(name, -1)
            key = name if by == "op" else (f"layer {layer}" if layer >= 0 else "outside layers")
            last_key[s.stage] = key
        else:
            key = last_key.get(s.stage, "outside layers")
            layer = -1
        copies = plan.stages if s.stage < 0 else 1
        scale = s.repeat * copies * plan.chips_per_stage * plan.microbatches
        row = acc.setdefault(key, dict.fromkeys(columns, 0.0) | {"time": 0.0, "macs": 0.0,
                                                                 "flops": 0.0})
        ops_seen, steps = meta.setdefault(key, (layer, set(), []))[1:]
        if layer >= 0 and meta[key][0] < 0:
            meta[key] = (layer, ops_seen, steps)
        for c in _FIXED:
            row[c.value] += sc.energy_by_category_j[_IDX[c]] * scale
            raw[_IDX[c]] += sc.energy_by_category_j[_IDX[c]] * scale
        for lv, joules in zip(plan.levels, level_energy_j(s, rates), strict=True):
            row[lv] += joules * scale
        for c in (Category.ONCHIP_SRAM, Category.OFFCHIP_MEMORY):
            raw[_IDX[c]] += sc.energy_by_category_j[_IDX[c]] * scale
        row["time"] += sc.time_s * s.repeat * copies * plan.microbatches
        row["flops"] += s.flops * scale
        new_ops = [o for o in s.ops if o not in ops_seen]
        row["macs"] += sum(flops_of.get(o, 0.0) for o in new_ops) * plan.microbatches
        ops_seen.update(s.ops)
        steps.append((sc.time_s, sc.bound_label))
    total = phase.cost.energy_by_category_j
    dynamic_raw = sum(raw)
    factor = (sum(total) - total[_IDX[Category.STATIC]]) / dynamic_raw if dynamic_raw else 1.0
    busy = sum(r["time"] for r in acc.values()) or 1.0
    out = []
    for key, row in acc.items():
        layer, ops_seen, steps = meta[key]
        energy = [(c, row[c] * factor) for c in columns[:-1]]
        energy.append(("static", total[_IDX[Category.STATIC]] * row["time"] / busy))
        out.append(LayerRow(key, layer, len(ops_seen), row["time"],
                            max(steps)[1] if steps else "", row["macs"], row["flops"],
                            tuple(energy)))
    return tuple(out)


def column_totals(rows: tuple[LayerRow, ...]) -> dict[str, float]:
    """Each energy column summed over `rows`."""
    out: dict[str, float] = {}
    for r in rows:
        for c, e in r.energy_j:
            out[c] = out.get(c, 0.0) + e
    return out
