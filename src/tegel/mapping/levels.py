"""Where a dataflow plan keeps its tensors: the compiler's level passes.

`choose_levels` puts every weight in the nearest storage level that takes each chip's share
(and keeps weights: `StorageLevel.holds`), else off chip; once the stages have regions,
`fill_levels` brings weights left off chip as near as there is room (a model larger than the
chips' on-chip storage splits between SRAM and off-chip memory, tensor by tensor). `Levels`
records a level per weight of each stage; the KV cache and activations one level each. Rules:
docs/simulation.md (the compiler's passes).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tegel.errors import TegelError
from tegel.mapping.compiled import Segment, Stage
from tegel.workload.ir import GEMM_KINDS, Graph, OpKind, Role

if TYPE_CHECKING:
    from tegel.mapping.compiler import Blueprint, _Target

# ops that read only part of a weight per call: the rows gathered, the experts touched
_PART_READ = frozenset({OpKind.EMBEDDING, OpKind.MOE_EXPERTS})


@dataclass(frozen=True, slots=True)
class Levels:
    """Storage levels chosen for each kind of tensor: each weight of each stage its own
    (`weights[(stage, tensor)]`, holding `weight_bytes` on each chip of the stage), the KV cache
    and activations one level each."""

    weights: dict[tuple[int, str], str]
    weight_bytes: dict[tuple[int, str], float]
    kv_cache: str
    activations: str

    def of(self, role: Role, stage: int, tensor: str) -> str:
        if role is Role.WEIGHT:
            return self.weights[(stage, tensor)]
        return self.kv_cache if role is Role.KV_CACHE else self.activations

    def held(self, stage: int, level: str) -> float:
        """Bytes of weights of `stage` that each of its chips holds in `level`."""
        return sum(b for key, b in self.weight_bytes.items()
                   if key[0] == stage and self.weights[key] == level)

    def note(self, names: tuple[str, ...]) -> str:
        """Where the weights are (in the order of `names`, the chip's levels nearest first)
        and the KV cache; for weights split across levels, the share of their bytes in each."""
        held = {n: 0.0 for n in names if n in set(self.weights.values())}
        for key, b in self.weight_bytes.items():
            held[self.weights[key]] += b
        total = sum(held.values()) or 1.0
        split = ("; weight bytes " + ", ".join(f"{b / total:.0%} in {lv}" for lv, b in held.items())
                 if len(held) > 1 else "")
        return f"weights in {' and '.join(held)}, KV cache in {self.kv_cache}{split}"


def weight_shares(graph: Graph, segs: tuple[Segment, ...], target: _Target,
                   gemm_only: bool = False) -> dict[str, float]:
    """Weight -> bytes of it each chip of a stage holds (each folded layer its own copy: a
    block's weights once per layer of every segment that repeats it; a weight outside the
    blocks, such as a tied embedding the first and last segments both read, once)."""
    ops = {op.name: op for op in graph.ops}
    seen: dict[tuple[str, int], float] = {}
    for seg in segs:
        for name in seg.ops:
            op = ops[name]
            if gemm_only and op.kind not in GEMM_KINDS:
                continue
            for i, t in enumerate(op.inputs):
                if t.role is Role.WEIGHT:
                    seen[(t.name, seg.first_layer)] = target.weight_bytes(op, i) * seg.repeat
    out: dict[str, float] = {}
    for (weight, _), b in seen.items():
        out[weight] = out.get(weight, 0.0) + b
    return out


def stage_weights(graph: Graph, segs: tuple[Segment, ...], target: _Target,
                   gemm_only: bool = False) -> float:
    """Bytes of the weights each chip of a stage holds (each folded layer its own copy)."""
    return sum(weight_shares(graph, segs, target, gemm_only).values())


def choose_levels(graph: Graph, blueprint: Blueprint, on_chip: tuple[int, ...],
                  target: _Target) -> Levels:
    """All weights in the nearest level that takes every chip's share (a
    `sram_weight_fraction` of on-chip levels), else off chip, from where `fill_levels` brings
    what fits nearer; the KV cache off chip when there is memory there; activations in tile
    SRAM."""
    chip = target.chip
    levels = chip.levels()
    tile = [lv for lv in levels if lv.scope == "tile"]
    if not tile:
        raise TegelError(f"{chip.name}: a dataflow chip needs tile-level storage")
    sram = max(tile, key=lambda lv: lv.total_bytes)
    sizes = {(i, t): b for i, segs in enumerate(blueprint)
             for t, b in weight_shares(graph, segs, target).items()}
    per_chip: dict[int, float] = {}
    for (i, _), b in sizes.items():
        per_chip[on_chip[i]] = per_chip.get(on_chip[i], 0.0) + b
    need = max(per_chip.values(), default=0.0)
    fraction = target.params.sram_weight_fraction
    nearer = [sram, *(lv for lv in levels if lv.scope == "chip")]
    candidates = [lv for lv in nearer if lv.keeps("weights")]
    offchip = [lv for lv in levels if lv.scope == "offchip"]
    if not candidates and not offchip:
        raise TegelError(f"{chip.name}: no level keeps weights (every on-chip level's `holds` "
                         "leaves them out and there is no off-chip memory)")
    weights = next((lv.name for lv in candidates if need <= fraction * lv.total_bytes),
                   offchip[0].name if offchip else sram.name)
    kv = offchip[0].name if offchip else nearer[-1].name
    return Levels(dict.fromkeys(sizes, weights), sizes, kv, sram.name)


def fill_levels(graph: Graph, stages: tuple[Stage, ...], levels: Levels,
                target: _Target) -> Levels:
    """Weights that `choose_levels` left off chip (a model larger than the chips' on-chip
    storage) brought as near as there is room: each stage's region takes a
    `sram_weight_fraction` of its tiles' SRAM, then each chip-wide level the same share of
    it on each chip, and the rest stays off chip.

    Order: weights that every call reads whole (GEMM weights, norm scales) before those it
    reads in part (embedding rows gathered, experts touched: `_PART_READ`); within each, the
    larger first, ties in graph then stage order, each into the nearest level with room (first
    fit decreasing: every weight of a class is read once per call, so the time saved grows
    with the bytes placed nearer, and this order packs the most). The figures are phase
    independent, so prefill and decode plans place the weights alike."""
    chip_levels = target.chip.levels()
    offchip = {lv.name for lv in chip_levels if lv.scope == "offchip"}
    far = [key for key, lv in levels.weights.items() if lv in offchip]
    if not far:
        return levels
    tile = next(lv for lv in chip_levels if lv.name == levels.activations)
    fraction = target.params.sram_weight_fraction
    room_tile = {st.index: fraction * tile.capacity_bytes * st.region.tiles
                 if tile.keeps("weights") else 0.0 for st in stages}
    shared = [lv for lv in chip_levels if lv.scope == "chip" and lv.keeps("weights")]
    room_chip = {(st.region.chip, lv.name): fraction * lv.total_bytes
                 for st in stages for lv in shared}
    part = _part_read(graph)
    order = {t.name: i for i, t in enumerate(graph.weights)}
    placed = dict(levels.weights)
    sizes = levels.weight_bytes
    for key in sorted(far, key=lambda k: (k[1] in part, -sizes[k], order.get(k[1], 0), k[0])):
        b, chip = sizes[key], stages[key[0]].region.chip
        if b <= room_tile[key[0]]:
            room_tile[key[0]] -= b
            placed[key] = tile.name
            continue
        where = next((lv.name for lv in shared if b <= room_chip[(chip, lv.name)]), None)
        if where is not None:
            room_chip[(chip, where)] -= b
            placed[key] = where
    return replace(levels, weights=placed)


def _part_read(graph: Graph) -> set[str]:
    """Weights that only ops reading part of them per call read (`_PART_READ`)."""
    whole = {t.name for op in graph.ops if op.kind not in _PART_READ
             for t in op.inputs if t.role is Role.WEIGHT}
    return {t.name for op in graph.ops if op.kind in _PART_READ
            for t in op.inputs if t.role is Role.WEIGHT and t.name not in whole}
