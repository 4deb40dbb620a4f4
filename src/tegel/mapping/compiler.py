"""The spatial compiler: a graph onto the tiles of a dataflow chip (or several) as a CompiledPlan.

`compile_for` is the whole compiler; its passes are pure functions run in order —
`partition_stages` (whole layers, or balanced runs of ops), `choose_levels` (where weights, KV
cache and activations live; `mapping.levels`), `assign_regions` (a rectangle of tiles per stage,
by guillotine cuts), `fill_levels` (weights left off chip brought as near as there is room),
`split_ops` (each op m x n x k over its region), `place_tensors` (a home per tensor per
stage), `route_transfers` (what crosses stages, routed) — then `verify`. `mapping.lower` gives
the Plan of steps both evaluators price; the event simulator also plays the compiled plan's data
dependencies.
Weights are placed from phase-independent figures only, so prefill and decode plans keep them
in one place. Rules and formulas: docs/simulation.md.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

from tegel.errors import TegelError
from tegel.hardware import Chip, System
from tegel.hardware.systolic import gemm_cycles
from tegel.mapping.compiled import (
    CompiledPlan,
    Home,
    LevelSpec,
    OpSplit,
    PlanError,
    Rect,
    Segment,
    Stage,
    Stream,
    Transfer,
    verify,
)
from tegel.mapping.conv import array_gemm
from tegel.mapping.levels import Levels, choose_levels, fill_levels, stage_weights
from tegel.mapping.params import DataflowParams, default_params
from tegel.mapping.plan import Parallelism, PlanRequest, llm_request, stage_layers
from tegel.mapping.routing import chip_route, noc_route
from tegel.mapping.sharding import OpShard, shard_graph
from tegel.workload.folding import LayerFold, folded_graph
from tegel.workload.ir import Graph, Op, OpKind, Role, Tensor
from tegel.workload.llm import Phase, Precision
from tegel.workload.mla import partial_width
from tegel.workload.model_config import ModelConfig
from tegel.workload.ops import gemm_dims, work

Blueprint = tuple[tuple[Segment, ...], ...]  # the segments of each stage, before placement
_QUERY_BLOCK = 16  # attention splits queries and keys in blocks of this many positions
_KEY_BLOCK = 16


@dataclass(frozen=True, slots=True)
class _Target:
    """What every pass reads: the chip, its parameters and each op's per-chip share (tp)."""

    chip: Chip
    params: DataflowParams
    shards: dict[str, OpShard]
    per_chip: dict[str, list[tuple[Tensor, float]]]  # op -> _per_chip(op), once per graph

    def weight_bytes(self, op: Op, index: int) -> float:
        """Bytes of input `index` (a weight) of `op` that each chip of its stage holds."""
        return op.inputs[index].nbytes / self.shards[op.name].read_div[index]


def compile_for(graph: Graph, system: System, req: PlanRequest | None = None,
                params: DataflowParams | None = None) -> CompiledPlan:
    """Compile `graph` (one transformer layer standing for `req.layers` when layer-folded) onto
    `system` as `req.stages` pipeline stages over pp groups of tp chips; raises TegelError.
    With tensor parallelism every chip of a stage's group does its share of each op (as
    `sharding.shard_graph` divides it) on the same region of its own tiles."""
    chip = system.chip
    req = req or PlanRequest(Phase(1, 1, 0), Parallelism(), 1, 1)
    par, stages = req.parallelism, req.stages
    if chip.architecture != "dataflow":
        raise TegelError(f"{chip.name} is a GPU; the spatial compiler maps dataflow chips")
    if not (par.pp >= 1 and par.tp * par.pp <= system.chip_count) or stages < par.pp:
        raise TegelError(f"need tp x pp ({par.tp} x {par.pp}) <= chips ({system.chip_count}) "
                         f"and stages ({stages}) >= pp")
    shards = shard_graph(graph, par.tp, par.ep)
    target = _Target(chip, params or default_params().dataflow, shards,
                     {op.name: _per_chip(op, shards[op.name]) for op in graph.ops})
    blueprint = partition_stages(graph, stages, req.layers, chip, req.pattern(graph))
    on_chip = tuple(i * par.pp // stages * par.tp for i in range(stages))
    levels = choose_levels(graph, blueprint, on_chip, target)
    regions = assign_regions(graph, blueprint, on_chip, levels, target, req.balance_regions)
    placed = tuple(Stage(i, r, segs) for i, (r, segs) in enumerate(zip(regions, blueprint, strict=True)))
    levels = fill_levels(graph, placed, levels, target)
    plan = CompiledPlan(
        graph=graph, system=system.name, phase=req.phase, parallelism=par,
        chips=par.pp * par.tp, grid=(chip.tiles.rows, chip.tiles.cols), levels=_level_specs(chip),
        stages=placed, splits=split_ops(graph, placed, levels, target),
        homes=place_tensors(graph, placed, levels, target, req.spill_activations),
        transfers=route_transfers(graph, placed, system), microbatches=req.microbatches,
        notes=(levels.note(tuple(lv.name for lv in chip.levels())),))
    return verify(plan)


def compile_llm(cfg: ModelConfig, system: System, phase: Phase, precision: Precision,
                parallelism: Parallelism, stages: int, microbatches: int = 1) -> CompiledPlan:
    """The compiled plan of one LLM phase (see `llm_request`): one layer per kind built and
    folded over the model's layers (`workload.folding`), with the shipped dataflow parameters."""
    req = llm_request(cfg, system, phase, parallelism, stages, microbatches)
    graph = folded_graph(cfg, req.phase, precision)
    return compile_for(graph, system, req)


# ---- 1. stages ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Fold:
    """A graph of one block per kind of layer: the ops before, of each block and after, and
    each block's carry (the residual stream it reads, the one it hands on)."""

    prologue: tuple[str, ...]
    blocks: dict[int, tuple[str, ...]]
    carries: dict[int, tuple[str, str] | None]
    epilogue: tuple[str, ...]


def _fold(graph: Graph) -> _Fold | None:
    """The prologue, blocks and epilogue of a graph whose blocks (op.layer >= 0) are contiguous
    runs of ops, one per layer; None otherwise."""
    ops = graph.ops
    body = [i for i, op in enumerate(ops) if op.layer >= 0]
    if not body or body != list(range(body[0], body[-1] + 1)):
        return None
    order = list(dict.fromkeys(ops[i].layer for i in body))
    runs = [ops[i].layer for i in body]
    if runs != sorted(runs, key=order.index):
        return None  # a layer's ops are not contiguous
    blocks = {layer: tuple(op.name for op in ops if op.layer == layer) for layer in order}
    made_by = {t.name: op.layer for op in ops for t in op.outputs}
    after_blocks = ops[body[-1] + 1:]
    carries: dict[int, tuple[str, str] | None] = {}
    for n, layer in enumerate(order):
        mine = [op for op in ops if op.layer == layer]
        later = {op.name for op in after_blocks} | {x for r in order[n + 1:] for x in blocks[r]}
        read = {t.name for op in mine for t in op.inputs
                if t.name in made_by and made_by[t.name] != layer}
        written = {t.name for op in ops if op.name in later for t in op.inputs
                   if made_by.get(t.name) == layer}
        carries[layer] = ((read.pop(), written.pop()) if len(read) == 1 and len(written) == 1
                          else None)
    return _Fold(tuple(op.name for op in ops[:body[0]]), blocks, carries,
                 tuple(op.name for op in after_blocks))


def partition_stages(graph: Graph, stages: int, layers: int, chip: Chip,
                     pattern: tuple[int, ...] = ()) -> Blueprint:
    """Segments of each of `stages` stages: whole layers (earlier stages take the remainder,
    the last holds the LM head) — each run of consecutive layers of one kind a segment of its
    block repeated — or balanced runs of ops for a graph that is not folded. `pattern`: per
    model layer, the block that stands for it (default: the graph's one block)."""
    if stages < 1:
        raise TegelError(f"stages must be >= 1, got {stages}")
    fold = _fold(graph)
    if fold is None or (not pattern and len(fold.blocks) > 1):
        if layers != 1:
            raise TegelError(f"{graph.name} is not one layer to fold, so layers must be 1")
        return _balanced(graph, stages, chip)
    pattern = pattern or (next(iter(fold.blocks)),) * layers
    if len(pattern) > len(fold.blocks) and None in fold.carries.values():
        raise TegelError(f"{graph.name}: the layer does not hand one tensor to the next, "
                         "so it cannot be repeated")
    if stages > len(pattern):
        raise TegelError(f"{stages} stages need at least as many layers, {graph.name} has "
                         f"{len(pattern)}")
    out = []
    for i, (first, stop) in enumerate(stage_layers(len(pattern), stages)):
        segs = [Segment(fold.prologue)] if i == 0 and fold.prologue else []
        segs += [Segment(fold.blocks[rep], count, start, fold.carries[rep])
                 for rep, start, count in LayerFold(pattern).runs(first, stop)]
        if i == stages - 1 and fold.epilogue:
            segs.append(Segment(fold.epilogue))
        out.append(tuple(segs))
    return tuple(out)


def _op_seconds(op: Op, chip: Chip) -> float:
    """A rough whole-chip time of an op (for balancing stages of unfolded graphs)."""
    w = work(op)
    peak = max(chip.peak_flops_per_s(d) for d in chip.dtypes)
    sram = sum(lv.read_bytes_per_s for lv in chip.levels() if lv.scope == "tile") or 1.0
    return w.flops / peak + (w.bytes_read + w.bytes_written) / sram


def _balanced(graph: Graph, stages: int, chip: Chip) -> Blueprint:
    """Contiguous runs of ops of about equal estimated time, cut only where the layer changes
    when the ops carry layers (anywhere otherwise)."""
    ops = graph.ops
    allowed = [i for i in range(1, len(ops)) if ops[i].layer != ops[i - 1].layer]
    if len(allowed) < stages - 1:
        allowed = list(range(1, len(ops)))
    if len(allowed) < stages - 1:
        raise TegelError(f"{stages} stages need at least as many ops, {graph.name} has {len(ops)}")
    cost = [_op_seconds(op, chip) + 1e-18 for op in ops]
    prefix = [0.0]
    for c in cost:
        prefix.append(prefix[-1] + c)
    cuts = [0]
    for j, i in enumerate(allowed):
        opened, left = len(cuts), len(allowed) - j  # stages opened; cut points still available
        if opened < stages and (prefix[i] >= prefix[-1] * opened / stages or left == stages - opened):
            cuts.append(i)
    cuts.append(len(ops))
    return tuple((Segment(tuple(op.name for op in ops[a:b])),) for a, b in itertools.pairwise(cuts))


# ---- 2. levels ------------------------------------------------------------------------------


def _level_specs(chip: Chip) -> tuple[LevelSpec, ...]:
    return tuple(LevelSpec(lv.name, lv.scope, lv.capacity_bytes, lv.total_bytes) for lv in chip.levels())


# ---- 3. regions -----------------------------------------------------------------------------


def assign_regions(graph: Graph, blueprint: Blueprint, on_chip: tuple[int, ...], levels: Levels,
                   target: _Target, by_time: bool = False) -> tuple[Rect, ...]:
    """A rectangle per stage on its chip, sized to the stage's GEMM weights (its estimated time
    if it has none, or always with `by_time`) with at least the tiles its tile-resident weights
    need."""
    chip = target.chip
    tile_level = next(lv for lv in chip.levels() if lv.name == levels.activations)
    per_tile = tile_level.capacity_bytes * target.params.sram_weight_fraction
    out: list[Rect] = []
    for c in sorted(set(on_chip)):
        stages = [i for i, cc in enumerate(on_chip) if cc == c]
        mine = [blueprint[i] for i in stages]
        sizes = [0.0 if by_time else stage_weights(graph, segs, target, gemm_only=True)
                 for segs in mine]
        if not sum(sizes):
            ops = {op.name: op for op in graph.ops}
            sizes = [sum(_op_seconds(ops[n], chip) * s.repeat for s in segs for n in s.ops)
                     for segs in mine]
        mins = [math.ceil(levels.held(i, tile_level.name) / per_tile) for i in stages]
        if len(mine) > chip.tile_count or sum(mins) > chip.tile_count:
            raise PlanError(f"{len(mine)} stages needing {sum(mins)} tiles do not fit the "
                             f"{chip.tile_count} tiles of {chip.name}")
        out += _cut(Rect(c, 0, 0, chip.tiles.rows, chip.tiles.cols), sizes, [max(1, m) for m in mins])
    return tuple(out)


def _cut(rect: Rect, sizes: list[float], mins: list[int]) -> list[Rect]:
    """Guillotine layout: split the stage list in two, the rectangle across its longer side in
    proportion (respecting each side's minimum), and recurse — neighbours stay adjacent."""
    n = len(sizes)
    if n == 1:
        return [rect]
    total = sum(sizes) or float(n)
    weights = sizes if sum(sizes) else [1.0] * n
    half, acc = 1, weights[0]
    while half < n - 1 and acc + weights[half] / 2 <= total / 2:
        acc += weights[half]
        half += 1
    for across_cols in sorted((True, False), key=lambda v: -(rect.cols if v else rect.rows)):
        length, breadth = (rect.cols, rect.rows) if across_cols else (rect.rows, rect.cols)
        lo = max(math.ceil(sum(mins[:half]) / breadth), math.ceil(half / breadth))
        hi = length - max(math.ceil(sum(mins[half:]) / breadth), math.ceil((n - half) / breadth))
        if lo <= hi:
            cut = min(max(round(length * acc / total), lo), hi)
            if across_cols:
                a = Rect(rect.chip, rect.row, rect.col, rect.rows, cut)
                b = Rect(rect.chip, rect.row, rect.col + cut, rect.rows, rect.cols - cut)
            else:
                a = Rect(rect.chip, rect.row, rect.col, cut, rect.cols)
                b = Rect(rect.chip, rect.row + cut, rect.col, rect.rows - cut, rect.cols)
            first, second = _cut(a, sizes[:half], mins[:half]), _cut(b, sizes[half:], mins[half:])
            # mirror the second half so that it starts next to where the first half ends
            options = [[_mirror(r, b, rows, cols) for r in second]
                       for rows in (False, True) for cols in (False, True)]
            return first + min(options, key=lambda rs: _gap(first[-1], rs[0]))
    raise PlanError(f"cannot lay out {n} stages needing {sum(mins)} tiles on {rect.label()}")


def _mirror(r: Rect, box: Rect, rows: bool, cols: bool) -> Rect:
    """`r` reflected inside `box` across its middle row and/or column."""
    row = box.row + box.row_end - r.row_end if rows else r.row
    col = box.col + box.col_end - r.col_end if cols else r.col
    return Rect(r.chip, row, col, r.rows, r.cols)


def _gap(a: Rect, b: Rect) -> int:
    """Grid lines between two rectangles (0 when they touch)."""
    return (max(0, b.row - a.row_end, a.row - b.row_end)
            + max(0, b.col - a.col_end, a.col - b.col_end))


# ---- 4. op splits ---------------------------------------------------------------------------


def _other(axis: str) -> str:
    return "cols" if axis == "rows" else "rows"


def split_ops(graph: Graph, stages: tuple[Stage, ...], levels: Levels,
              target: _Target) -> tuple[OpSplit, ...]:
    """How each op of each stage spreads over the stage's region (see OpSplit); with tensor
    parallelism, each chip's share of the op over the region of its own tiles."""
    ops = {op.name: op for op in graph.ops}
    out = []
    for st in stages:
        layout: dict[str, str] = {}  # tensor -> the region axis its channels are split along
        for name in dict.fromkeys(st.op_names()):
            out.append(_split(ops[name], st, layout, levels, target))
    return tuple(out)


def _systolic(target: _Target, m: float, n: int, k: int, taps: int = 1) -> float:
    arr = target.chip.tiles.compute.systolic
    if arr is None:
        return target.params.compute_peak_fraction
    return gemm_cycles(max(1, round(m)), n, k, arr.rows, arr.cols, arr.dataflow,
                       arr.count, arr.fold_overlap, taps).utilisation


def _conv_unroll(chip: Chip) -> str:
    arr = chip.tiles.compute.systolic
    return arr.conv_unroll if arr is not None else "im2col"


def _split(op: Op, st: Stage, layout: dict[str, str], levels: Levels, target: _Target) -> OpSplit:
    r = st.region
    total = r.tiles
    extent = {"rows": r.rows, "cols": r.cols}
    spread = (r.rows + r.cols) / 3.0  # mean distance between two tiles of the region
    acts = [t for t in op.inputs if t.role is Role.ACTIVATION]
    axis = layout.get(acts[0].name, "rows") if acts else "rows"
    out = op.outputs[0]
    shard = target.shards[op.name]
    if op.kind in (OpKind.MATMUL, OpKind.CONV2D):
        g = array_gemm(op, _conv_unroll(target.chip))
        # each chip's share: column-parallel splits N, row-parallel K (its input is split)
        m = g.m
        n = max(1, math.ceil(g.n / shard.write_div[0]))
        k = max(1, math.ceil(g.k / shard.read_div[0]))
        kf, nf = min(k, extent[axis]), min(n, extent[_other(axis)])
        n_tile, k_tile = math.ceil(n / nf), math.ceil(k / kf)
        quant = n * k / (nf * kf * n_tile * k_tile)
        byte_hops = (op.inputs[0].nbytes / shard.read_div[0] * (nf - 1)
                     + 4.0 * out.numel / shard.write_div[0] * (kf - 1))
        if op.inputs[1].role is not Role.WEIGHT:
            byte_hops += op.inputs[1].nbytes / shard.read_div[1] * spread
        layout[out.name] = _other(axis)
        util = kf * nf / total * quant * _systolic(target, m, n_tile, k_tile, g.taps)
        return OpSplit(op.name, st.index, 1, nf, kf, kf * nf, util, byte_hops, nf + kf - 2)
    layout[out.name] = axis
    line = extent[axis]
    div = shard.flops_div
    byte_hops, hops, peak = 0.0, 0, target.params.compute_peak_fraction
    tiles = min(total, max(1, math.ceil(out.numel / shard.write_div[0])))
    if op.kind is OpKind.MOE_EXPERTS:
        up = gemm_dims(op)[0]  # the gate/up GEMM of a touched expert
        a = op.attrs
        x = op.inputs[0]
        byte_hops = (x.nbytes + out.nbytes) * a.top_k * spread  # type: ignore[union-attr]
        hops = r.rows + r.cols - 2
        peak = _systolic(target, up.m, max(1, math.ceil(up.n / div)), up.k)
    elif op.kind in (OpKind.ATTENTION, OpKind.LATENT_ATTENTION):
        q, keys = op.inputs[0], op.inputs[1]
        b, lq, lk = q.shape[0], q.shape[1], keys.shape[1]
        heads = math.ceil(op.attrs.num_heads / div)  # type: ignore[union-attr]
        dim = partial_width(op)  # each key split's partial output per head, then max and sum
        rows = b * heads * math.ceil(lq / _QUERY_BLOCK)
        tiles = min(total, rows * math.ceil(lk / _KEY_BLOCK))
        key_splits = max(1, tiles // rows)
        byte_hops = b * heads * lq * (dim + 2) * 4.0 * (key_splits - 1) * spread / key_splits
        hops = r.rows + r.cols - 2 if key_splits > 1 else 0
    elif op.kind in (OpKind.RMSNORM, OpKind.LAYERNORM, OpKind.SOFTMAX):
        tokens = out.numel // out.shape[-1]
        byte_hops, hops = 8.0 * tokens * (line - 1), line - 1
    elif op.kind is OpKind.EMBEDDING and any(
            levels.of(t.role, st.index, t.name) == levels.activations
            for t in op.inputs if t.role is Role.WEIGHT):
        byte_hops, hops = out.nbytes / shard.write_div[0] * spread, r.rows + r.cols - 2
    elif len(acts) > 1 and any(layout.get(t.name, axis) != axis for t in acts[1:]):
        byte_hops = sum(t.nbytes for t in acts[1:] if layout.get(t.name, axis) != axis) * spread / div
        hops = r.rows + r.cols - 2
    return OpSplit(op.name, st.index, tiles, 1, 1, tiles, tiles / total * peak, byte_hops, hops)


# ---- 5. homes -------------------------------------------------------------------------------


def _per_chip(op: Op, shard: OpShard) -> list[tuple[Tensor, float]]:
    """(tensor, bytes each chip of the stage holds) for every tensor `op` reads or writes."""
    written = work(op).write_bytes
    out = [(t, t.nbytes / d) for t, d in zip(op.inputs, shard.read_div, strict=True)]
    for t, d, w in zip(op.outputs, shard.write_div, written, strict=True):
        size = w if t.role is Role.KV_CACHE else t.nbytes  # a cache is appended in place
        out.append((t, size / d))
    return out


def place_tensors(graph: Graph, stages: tuple[Stage, ...], levels: Levels,
                  target: _Target, spill_always: bool = False) -> tuple[Home, ...]:
    """A home for every tensor an op of a stage reads or writes, at that stage (its share on
    each chip of the stage). Activations and inputs live in tile SRAM unless a stage's largest
    op does not fit beside what is resident there (or `spill_always`:
    `PlanRequest.spill_activations`); then they spill to the KV cache's level."""
    kinds = {Role.WEIGHT: "weight", Role.KV_CACHE: "kv_cache", Role.INPUT: "input",
             Role.ACTIVATION: "activation"}
    tile = next(lv for lv in target.chip.levels() if lv.name == levels.activations)
    out: list[Home] = []
    for st in stages:
        resident = levels.held(st.index, tile.name)
        working = max(sum({t.name: b for t, b in target.per_chip[n]
                           if t.role in (Role.ACTIVATION, Role.INPUT)}.values())
                      for n in st.op_names())
        spill = spill_always or resident + working > tile.capacity_bytes * st.region.tiles
        here = replace(levels, activations=levels.kv_cache) if spill else levels
        homes: dict[str, Home] = {}
        for seg in st.segments:
            for name in seg.ops:
                for t, size in target.per_chip[name]:
                    if t.name in homes:
                        continue
                    if t.role in (Role.WEIGHT, Role.KV_CACHE):
                        size *= seg.repeat
                    level = here.of(t.role, st.index, t.name)
                    homes[t.name] = Home(t.name, st.index, level, kinds[t.role], size)
        out += homes.values()
    return tuple(out)


# ---- 6. transfers ---------------------------------------------------------------------------


def route_transfers(graph: Graph, stages: tuple[Stage, ...], system: System) -> tuple[Transfer, ...]:
    """A transfer for every activation a stage reads but an earlier stage produced (the
    residual stream of a folded layer arrives as the previous stage's carry), routed."""
    ops = {op.name: op for op in graph.ops}
    where: dict[str, int] = {}
    out: list[Transfer] = []
    outputs = Stream.of(stages).block_outputs
    arriving: str | None = None  # the name the previous stage handed the stream on under
    for st in stages:
        ready: set[str] = set()
        stream = Stream(outputs)
        for seg in st.segments:
            ready |= {name for name, holder in stream.aliases(seg) if holder in ready}
            for name in seg.ops:
                for t in ops[name].inputs:
                    if t.role is not Role.ACTIVATION or t.name in ready:
                        continue
                    source = t.name
                    if seg.carry and t.name == seg.carry[0] and arriving in where:
                        source = arriving
                    if source in where:
                        src = stages[where[source]].region
                        route = (noc_route(src, st.region, system.chip) if src.chip == st.region.chip
                                 else chip_route(src.chip, st.region.chip, system))
                        out.append(Transfer(source, t.name, where[source], st.index, t.nbytes, route))
                        ready.add(t.name)
                ready |= {t.name for t in ops[name].outputs}
            if seg.carry and seg.carry[1] in ready:
                ready.add(seg.carry[0])
            stream.passed(seg)
        where.update(dict.fromkeys(ready, st.index))
        arriving = stream.holder or arriving
    return tuple(out)
