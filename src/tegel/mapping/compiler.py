"""The spatial compiler: a graph onto the tiles of a dataflow chip (or several) as a CompiledPlan.

`compile_for` is the whole compiler; its passes are pure functions run in order —
`partition_stages` (whole layers, or balanced runs of ops), `choose_levels` (where weights, KV
cache and activations live), `assign_regions` (a rectangle of tiles per stage, by guillotine
cuts), `split_ops` (each op m x n x k over its region), `place_tensors` (a home per tensor per
stage), `route_transfers` (what crosses stages, routed) — then `verify`. `lower` gives the Plan
of steps the analytical evaluator reads; the event simulator plays the compiled plan itself.
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
    Rect,
    Segment,
    Stage,
    Transfer,
    verify,
)
from tegel.mapping.dataflow import dataflow_params
from tegel.mapping.plan import Parallelism, Plan, Step, compute_class
from tegel.mapping.routing import chip_route, noc_route
from tegel.workload.ir import GEMM_KINDS, Graph, Op, OpKind, Role
from tegel.workload.llm import Phase, Precision, build_llm_graph
from tegel.workload.model_config import ModelConfig
from tegel.workload.ops import matmul_dims, work

Blueprint = tuple[tuple[Segment, ...], ...]  # the segments of each stage, before placement
_KIND = {OpKind.MATMUL: "gemm", OpKind.MOE_EXPERTS: "moe", OpKind.CONV2D: "gemm",
         OpKind.ATTENTION: "attention", OpKind.RMSNORM: "norm", OpKind.LAYERNORM: "norm",
         OpKind.EMBEDDING: "embedding"}
_QUERY_BLOCK = 16  # attention splits queries and keys in blocks of this many positions
_KEY_BLOCK = 16


def compile_for(graph: Graph, system: System, stages: int = 1, layers: int = 1,
                microbatches: int = 1, parallelism: Parallelism | None = None,
                phase: Phase | None = None) -> CompiledPlan:
    """Compile `graph` (one transformer layer standing for `layers` when layer-folded) onto
    `system` as `stages` pipeline stages over parallelism.pp chips; raises TegelError."""
    chip = system.chip
    par = parallelism or Parallelism()
    if chip.architecture != "dataflow":
        raise TegelError(f"{chip.name} is a GPU; the spatial compiler maps dataflow chips")
    if par.tp != 1:
        raise TegelError(f"{system.name}: this plan splits each layer over {par.tp} chips "
                         f"(tp{par.tp}); the spatial compiler places whole pipeline stages on "
                         f"chips — use the analytical evaluator, or a configuration with tp 1")
    if not 1 <= par.pp <= system.chip_count or stages < par.pp:
        raise TegelError(f"need 1 <= pp ({par.pp}) <= chips ({system.chip_count}) and "
                         f"stages ({stages}) >= pp")
    blueprint = partition_stages(graph, stages, layers, chip)
    on_chip = tuple(i * par.pp // stages for i in range(stages))
    levels = choose_levels(graph, blueprint, on_chip, chip)
    regions = assign_regions(graph, blueprint, on_chip, levels, chip)
    placed = tuple(Stage(i, r, segs) for i, (r, segs) in enumerate(zip(regions, blueprint, strict=True)))
    plan = CompiledPlan(
        graph=graph, system=system.name, phase=phase or Phase(1, 1, 0), parallelism=par,
        chips=par.pp, grid=(chip.tiles.rows, chip.tiles.cols), levels=_level_specs(chip),
        stages=placed, splits=split_ops(graph, placed, levels, chip),
        homes=place_tensors(graph, placed, levels, chip), transfers=route_transfers(graph, placed, system),
        microbatches=microbatches,
        notes=(f"weights in {levels.weights}, KV cache in {levels.kv_cache}",))
    return verify(plan)


def compile_llm(cfg: ModelConfig, system: System, phase: Phase, precision: Precision,
                parallelism: Parallelism, stages: int, microbatches: int = 1) -> CompiledPlan:
    """The compiled plan of one LLM phase (`phase.batch` sequences per micro-batch): one layer
    built and folded `num_layers` times. Stages are capped at one layer and one tile each, and
    micro-batches at one per stage (the sequences of merged micro-batches run together)."""
    stages = min(stages, cfg.num_layers, parallelism.pp * system.chip.tile_count)
    if microbatches > stages:
        sequences = phase.batch * microbatches
        microbatches = stages
        phase = replace(phase, batch=math.ceil(sequences / stages))
    graph = build_llm_graph(replace(cfg, num_layers=1), phase, precision)
    return compile_for(graph, system, stages, cfg.num_layers, microbatches, parallelism, phase)


# ---- 1. stages ------------------------------------------------------------------------------


def _fold(graph: Graph) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...],
                                  tuple[str, str] | None] | None:
    """(prologue, layer, epilogue, carry) of a graph holding exactly one layer (layer 0)."""
    ops = graph.ops
    body = [i for i, op in enumerate(ops) if op.layer >= 0]
    if not body or {ops[i].layer for i in body} != {0} or body != list(range(body[0], body[-1] + 1)):
        return None
    pro, mid, epi = ops[:body[0]], ops[body[0]:body[-1] + 1], ops[body[-1] + 1:]
    made_pro = {t.name for op in pro for t in op.outputs}
    made_mid = {t.name for op in mid for t in op.outputs}
    carried_in = {t.name for op in mid for t in op.inputs if t.name in made_pro}
    carried_out = {t.name for op in epi for t in op.inputs if t.name in made_mid}
    carry = ((carried_in.pop(), carried_out.pop())
             if len(carried_in) == 1 and len(carried_out) == 1 else None)
    pro_names, mid_names, epi_names = (tuple(op.name for op in part) for part in (pro, mid, epi))
    return pro_names, mid_names, epi_names, carry


def partition_stages(graph: Graph, stages: int, layers: int, chip: Chip) -> Blueprint:
    """Segments of each of `stages` stages: whole layers (earlier stages take the remainder,
    the last holds the LM head), or balanced runs of ops for a graph that is not folded."""
    if stages < 1:
        raise TegelError(f"stages must be >= 1, got {stages}")
    fold = _fold(graph)
    if fold is None:
        if layers != 1:
            raise TegelError(f"{graph.name} is not one layer to fold, so layers must be 1")
        return _balanced(graph, stages, chip)
    pro, body, epi, carry = fold
    if layers > 1 and carry is None:
        raise TegelError(f"{graph.name}: the layer does not hand one tensor to the next, "
                         "so it cannot be repeated")
    if stages > layers:
        raise TegelError(f"{stages} stages need at least as many layers, {graph.name} has {layers}")
    out, first = [], 0
    for i in range(stages):
        count = layers // stages + (1 if i < layers % stages else 0)
        segs = [Segment(pro)] if i == 0 and pro else []
        segs.append(Segment(body, count, first, carry))
        first += count
        if i == stages - 1 and epi:
            segs.append(Segment(epi))
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


@dataclass(frozen=True, slots=True)
class Levels:
    """Storage level names chosen for each kind of tensor."""

    weights: str
    kv_cache: str
    activations: str

    def of(self, role: Role) -> str:
        return {Role.WEIGHT: self.weights, Role.KV_CACHE: self.kv_cache}.get(role, self.activations)


def _level_specs(chip: Chip) -> tuple[LevelSpec, ...]:
    return tuple(LevelSpec(lv.name, lv.scope, lv.capacity_bytes, lv.total_bytes) for lv in chip.levels())


def _stage_weights(graph: Graph, segs: tuple[Segment, ...], gemm_only: bool = False) -> float:
    """Bytes of the weights a stage holds (each folded layer its own copy)."""
    ops = {op.name: op for op in graph.ops}
    seen: dict[str, float] = {}
    for seg in segs:
        for name in seg.ops:
            op = ops[name]
            if gemm_only and op.kind not in GEMM_KINDS:
                continue
            for t in op.inputs:
                if t.role is Role.WEIGHT:
                    seen[t.name] = t.nbytes * seg.repeat
    return sum(seen.values())


def choose_levels(graph: Graph, blueprint: Blueprint, on_chip: tuple[int, ...], chip: Chip) -> Levels:
    """Weights in the nearest level that takes every chip's share (a `sram_weight_fraction` of
    on-chip levels); the KV cache off chip when there is memory there; activations in tile SRAM."""
    levels = chip.levels()
    tile = [lv for lv in levels if lv.scope == "tile"]
    if not tile:
        raise TegelError(f"{chip.name}: a dataflow chip needs tile-level storage")
    sram = max(tile, key=lambda lv: lv.total_bytes)
    per_chip: dict[int, float] = {}
    for segs, c in zip(blueprint, on_chip, strict=True):
        per_chip[c] = per_chip.get(c, 0.0) + _stage_weights(graph, segs)
    need = max(per_chip.values())
    fraction = dataflow_params().sram_weight_fraction
    candidates = [sram, *(lv for lv in levels if lv.scope == "chip")]
    offchip = [lv for lv in levels if lv.scope == "offchip"]
    weights = next((lv.name for lv in candidates if need <= fraction * lv.total_bytes),
                   offchip[0].name if offchip else sram.name)
    kv = offchip[0].name if offchip else candidates[-1].name
    return Levels(weights, kv, sram.name)


# ---- 3. regions -----------------------------------------------------------------------------


def assign_regions(graph: Graph, blueprint: Blueprint, on_chip: tuple[int, ...], levels: Levels,
                   chip: Chip) -> tuple[Rect, ...]:
    """A rectangle per stage on its chip, sized to the stage's GEMM weights (its estimated time
    if it has none) with at least the tiles its tile-resident weights need."""
    tile_level = next(lv for lv in chip.levels() if lv.name == levels.activations)
    per_tile = tile_level.capacity_bytes * dataflow_params().sram_weight_fraction
    out: list[Rect] = []
    for c in sorted(set(on_chip)):
        mine = [segs for segs, cc in zip(blueprint, on_chip, strict=True) if cc == c]
        sizes = [_stage_weights(graph, segs, gemm_only=True) for segs in mine]
        if not sum(sizes):
            ops = {op.name: op for op in graph.ops}
            sizes = [sum(_op_seconds(ops[n], chip) * s.repeat for s in segs for n in s.ops)
                     for segs in mine]
        mins = [math.ceil(_stage_weights(graph, segs) / per_tile)
                if levels.weights == tile_level.name else 1 for segs in mine]
        if len(mine) > chip.tile_count or sum(mins) > chip.tile_count:
            raise TegelError(f"{len(mine)} stages needing {sum(mins)} tiles do not fit the "
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
    raise TegelError(f"cannot lay out {n} stages needing {sum(mins)} tiles on {rect.label()}")


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


def split_ops(graph: Graph, stages: tuple[Stage, ...], levels: Levels, chip: Chip) -> tuple[OpSplit, ...]:
    """How each op of each stage spreads over the stage's region (see OpSplit)."""
    ops = {op.name: op for op in graph.ops}
    out = []
    for st in stages:
        layout: dict[str, str] = {}  # tensor -> the region axis its channels are split along
        for name in dict.fromkeys(st.op_names()):
            out.append(_split(ops[name], st, layout, levels, chip))
    return tuple(out)


def _systolic(chip: Chip, m: int, n: int, k: int) -> float:
    arr = chip.tiles.compute.systolic
    if arr is None:
        return dataflow_params().compute_peak_fraction
    return gemm_cycles(m, n, k, arr.rows, arr.cols, arr.dataflow, arr.count).utilisation


def _split(op: Op, st: Stage, layout: dict[str, str], levels: Levels, chip: Chip) -> OpSplit:
    r = st.region
    total = r.tiles
    extent = {"rows": r.rows, "cols": r.cols}
    spread = (r.rows + r.cols) / 3.0  # mean distance between two tiles of the region
    acts = [t for t in op.inputs if t.role is Role.ACTIVATION]
    axis = layout.get(acts[0].name, "rows") if acts else "rows"
    out = op.outputs[0]
    if op.kind is OpKind.MATMUL:
        _, m, n, k = matmul_dims(op.inputs[0].shape, op.inputs[1].shape, op.attrs)  # type: ignore[arg-type]
        m *= math.prod(out.shape[:-2])
        kf, nf = min(k, extent[axis]), min(n, extent[_other(axis)])
        n_tile, k_tile = math.ceil(n / nf), math.ceil(k / kf)
        quant = n * k / (nf * kf * n_tile * k_tile)
        byte_hops = op.inputs[0].nbytes * (nf - 1) + 4.0 * out.numel * (kf - 1)
        if op.inputs[1].role is not Role.WEIGHT:
            byte_hops += op.inputs[1].nbytes * spread
        layout[out.name] = _other(axis)
        util = kf * nf / total * quant * _systolic(chip, m, n_tile, k_tile)
        return OpSplit(op.name, st.index, 1, nf, kf, kf * nf, util, byte_hops, nf + kf - 2)
    layout[out.name] = axis
    line = extent[axis]
    byte_hops, hops, peak = 0.0, 0, dataflow_params().compute_peak_fraction
    tiles = min(total, max(1, out.numel))
    if op.kind is OpKind.MOE_EXPERTS:
        a = op.attrs
        x = op.inputs[0]
        tokens = x.numel // x.shape[-1]
        _, f, h = op.inputs[3].shape
        per_expert = max(1, round(tokens * a.top_k / a.num_experts))  # type: ignore[union-attr]
        byte_hops = (x.nbytes + out.nbytes) * a.top_k * spread  # type: ignore[union-attr]
        hops, peak = r.rows + r.cols - 2, _systolic(chip, per_expert, f, h)
    elif op.kind is OpKind.ATTENTION:
        q, keys = op.inputs[0], op.inputs[1]
        b, lq, lk = q.shape[0], q.shape[1], keys.shape[1]
        heads, dim = op.attrs.num_heads, op.attrs.head_dim  # type: ignore[union-attr]
        rows = b * heads * math.ceil(lq / _QUERY_BLOCK)
        tiles = min(total, rows * math.ceil(lk / _KEY_BLOCK))
        key_splits = max(1, tiles // rows)
        byte_hops = b * heads * lq * (dim + 2) * 4.0 * (key_splits - 1) * spread / key_splits
        hops = r.rows + r.cols - 2 if key_splits > 1 else 0
    elif op.kind in (OpKind.RMSNORM, OpKind.LAYERNORM, OpKind.SOFTMAX):
        tokens = out.numel // out.shape[-1]
        byte_hops, hops = 8.0 * tokens * (line - 1), line - 1
    elif op.kind is OpKind.EMBEDDING and levels.weights == levels.activations:
        byte_hops, hops = out.nbytes * spread, r.rows + r.cols - 2
    elif len(acts) > 1 and any(layout.get(t.name, axis) != axis for t in acts[1:]):
        byte_hops = sum(t.nbytes for t in acts[1:] if layout.get(t.name, axis) != axis) * spread
        hops = r.rows + r.cols - 2
    return OpSplit(op.name, st.index, tiles, 1, 1, tiles, tiles / total * peak, byte_hops, hops)


# ---- 5. homes -------------------------------------------------------------------------------


def place_tensors(graph: Graph, stages: tuple[Stage, ...], levels: Levels,
                  chip: Chip) -> tuple[Home, ...]:
    """A home for every tensor an op of a stage reads or writes, at that stage. Activations
    and inputs live in tile SRAM unless a stage's largest op does not fit beside what is
    resident there; then they spill to the KV cache's level."""
    ops = {op.name: op for op in graph.ops}
    kinds = {Role.WEIGHT: "weight", Role.KV_CACHE: "kv_cache", Role.INPUT: "input",
             Role.ACTIVATION: "activation"}
    tile = next(lv for lv in chip.levels() if lv.name == levels.activations)
    out: list[Home] = []
    for st in stages:
        resident = _stage_weights(graph, st.segments) if levels.weights == tile.name else 0.0
        working = max(sum(t.nbytes for t in {*ops[n].inputs, *ops[n].outputs}
                          if t.role in (Role.ACTIVATION, Role.INPUT)) for n in st.op_names())
        spill = resident + working > tile.capacity_bytes * st.region.tiles
        here = replace(levels, activations=levels.kv_cache) if spill else levels
        homes: dict[str, Home] = {}
        for seg in st.segments:
            for name in seg.ops:
                op = ops[name]
                w = work(op)
                written = dict(zip((t.name for t in op.outputs), w.write_bytes, strict=True))
                for t in (*op.inputs, *op.outputs):
                    if t.name in homes:
                        continue
                    size = t.nbytes
                    if t.role is Role.KV_CACHE and t.name in written:  # appended in place
                        size = written[t.name]
                    if t.role in (Role.WEIGHT, Role.KV_CACHE):
                        size *= seg.repeat
                    homes[t.name] = Home(t.name, st.index, here.of(t.role), kinds[t.role], size)
        out += homes.values()
    return tuple(out)


# ---- 6. transfers ---------------------------------------------------------------------------


def route_transfers(graph: Graph, stages: tuple[Stage, ...], system: System) -> tuple[Transfer, ...]:
    """A transfer for every activation a stage reads but an earlier stage produced (the
    residual stream of a folded layer arrives as the previous stage's carry), routed."""
    ops = {op.name: op for op in graph.ops}
    where: dict[str, int] = {}
    out: list[Transfer] = []
    for st in stages:
        ready: set[str] = set()
        for seg in st.segments:
            for name in seg.ops:
                for t in ops[name].inputs:
                    if t.role is not Role.ACTIVATION or t.name in ready:
                        continue
                    source = t.name
                    if seg.carry and t.name == seg.carry[0] and seg.carry[1] in where:
                        source = seg.carry[1]
                    if source in where:
                        src = stages[where[source]].region
                        route = (noc_route(src, st.region, system.chip) if src.chip == st.region.chip
                                 else chip_route(src.chip, st.region.chip, system))
                        out.append(Transfer(source, t.name, where[source], st.index, t.nbytes, route))
                        ready.add(t.name)
                ready |= {t.name for t in ops[name].outputs}
            if seg.carry and seg.carry[1] in ready:
                ready.add(seg.carry[0])
        where.update(dict.fromkeys(ready, st.index))
    return tuple(out)


# ---- lowering to steps ----------------------------------------------------------------------


def layer_name(op_name: str, layer: int) -> str:
    """`layers.0.attn.q` of a folded graph as the op of layer `layer` (others unchanged)."""
    return f"layers.{layer}.{op_name[9:]}" if op_name.startswith("layers.0.") and layer >= 0 else op_name


def lower(plan: CompiledPlan, chip: Chip) -> Plan:
    """The steps of a compiled plan for the analytical evaluator: one step per op and stage
    (repeated for the stage's layers), one per transfer."""
    names = tuple(lv.name for lv in plan.levels)
    index = {n: i for i, n in enumerate(names)}
    ops = {op.name: op for op in plan.graph.ops}
    tiles = plan.tiles_per_chip
    hop_s = chip.noc.hop_latency_s
    steps: list[Step] = []
    for st in plan.stages:
        homes = plan.homes_at(st.index)
        share = st.region.tiles / tiles
        for seg in st.segments:
            for name in seg.ops:
                op, sp = ops[name], plan.split(st.index, name)
                w = work(op)
                reads, writes = [0.0] * len(names), [0.0] * len(names)
                for t, b in zip(op.inputs, w.read_bytes, strict=True):
                    reads[index[homes[t.name].level]] += b
                for t, b in zip(op.outputs, w.write_bytes, strict=True):
                    writes[index[homes[t.name].level]] += b
                label = name if seg.first_layer < 0 else (
                    f"layers.{seg.first_layer}-{seg.first_layer + seg.repeat - 1}.{name[9:]}")
                steps.append(Step(label, _KIND.get(op.kind, "elementwise"), st.index, seg.repeat,
                                  w.flops, compute_class(op), sp.utilisation, tuple(reads),
                                  tuple(writes), noc_byte_hops=sp.noc_byte_hops,
                                  noc_latency_s=sp.noc_hops * hop_s, resource_share=share,
                                  ops=(name,)))
    zeros = (0.0,) * len(names)
    for tr in plan.transfers:
        noc = [lk for lk in tr.route if lk.kind != "c2c"]
        c2c = [lk for lk in tr.route if lk.kind == "c2c"]
        share = plan.stages[tr.src_stage].region.tiles / tiles
        steps.append(Step(f"transfer {tr.tensor} {tr.src_stage}->{tr.dst_stage}", "transfer",
                          tr.src_stage, 1, 0.0, "bf16", 1.0, zeros, zeros,
                          noc_byte_hops=tr.bytes * len(noc),
                          noc_latency_s=sum(lk.latency_s for lk in noc),
                          link_bytes=tr.bytes if c2c else 0.0,
                          link_latency_s=sum(lk.latency_s for lk in c2c), resource_share=share))
    p = dataflow_params()
    efficiency = tuple(p.offchip_bandwidth_fraction if lv.scope == "offchip" else
                       p.sram_bandwidth_fraction for lv in plan.levels)
    return Plan(plan.system, "compiled", plan.phase, plan.parallelism, names, efficiency,
                len(plan.stages), plan.microbatches, 1, tuple(steps), plan.notes)
