"""A compiled plan: a graph placed on the tiles of one or more chips, as data.

The spatial compiler (`tegel.mapping.compiler`) emits it; the analytical evaluator and the
event simulator both read it. Everything is a frozen record and aggregate — a region is a
rectangle of tiles, a network transfer is a list of link bundles (all links that cross one grid
line over a span), a tensor's home is a level and the region whose storage holds it — so a
16,384-tile chip costs no more to describe than a 16-tile one.

A plan can be checked (`verify`), printed (`describe`), diffed (`diff`) and serialised
(`to_dict`). Layer folding: a `Segment` of ops repeated `repeat` times is a run of identical
transformer layers; `carry` names the tensor one repetition hands the next. A graph folded
onto one block per kind of layer (`workload.folding`) runs runs of those blocks in model order;
`Stream` says which tensor holds the residual stream between them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tegel.errors import TegelError
from tegel.mapping.plan import Link, Parallelism
from tegel.workload.ir import Graph
from tegel.workload.llm import Phase

PERSISTENT = ("weight", "kv_cache")  # home kinds that live across calls (others are transient)


class PlanError(TegelError):
    """A compiled plan that breaks an invariant (no home, over capacity, no route, order)."""


@dataclass(frozen=True, slots=True)
class Rect:
    """Tiles [row, row + rows) x [col, col + cols) of chip `chip`."""

    chip: int
    row: int
    col: int
    rows: int
    cols: int

    @property
    def tiles(self) -> int:
        return self.rows * self.cols

    @property
    def row_end(self) -> int:
        return self.row + self.rows

    @property
    def col_end(self) -> int:
        return self.col + self.cols

    def overlaps(self, other: Rect) -> bool:
        return (self.chip == other.chip and self.row < other.row_end and other.row < self.row_end
                and self.col < other.col_end and other.col < self.col_end)

    def label(self) -> str:
        return (f"chip {self.chip} rows {self.row}-{self.row_end - 1} cols {self.col}-"
                f"{self.col_end - 1} ({self.tiles} tiles)")


@dataclass(frozen=True, slots=True)
class Segment:
    """Ops run in this order, `repeat` times (layers first_layer .. first_layer + repeat - 1).

    `carry` = (read, written): repetition i > 0 reads what repetition i - 1 wrote as `written`
    wherever the graph says `read` (the residual stream of a folded layer).
    """

    ops: tuple[str, ...]
    repeat: int = 1
    first_layer: int = -1
    carry: tuple[str, str] | None = None


class Stream:
    """The residual stream through a stage's segments: the name of the tensor that holds it.

    A segment of a folded block reads the stream where its graph says `carry[0]` and hands it
    on as `carry[1]`; in a graph of several blocks (one per kind of layer) a block's `carry[0]`
    names whatever precedes it in the folded graph, not in the model, so before each segment
    `aliases` says which name the stream is held under now; after the blocks, the epilogue
    reads the stream under any block's `carry[1]`. A stage starts with no holder: its first
    block reads the stream from a transfer (or, in stage 0, from the prologue).
    """

    def __init__(self, block_outputs: frozenset[str]) -> None:
        self.block_outputs = block_outputs
        self.holder: str | None = None

    @classmethod
    def of(cls, stages: tuple[Stage, ...]) -> Stream:
        return cls(frozenset(seg.carry[1] for st in stages for seg in st.segments if seg.carry))

    def aliases(self, seg: Segment) -> tuple[tuple[str, str], ...]:
        """(name the segment's ops read, name that holds its value now) pairs, before `seg`."""
        h = self.holder
        if h is None:
            return ()
        if seg.carry:
            return ((seg.carry[0], h),) if seg.carry[0] != h else ()
        return tuple((w, h) for w in sorted(self.block_outputs) if w != h)

    def passed(self, seg: Segment) -> None:
        """After `seg` ran: a block hands the stream on under its `carry[1]`."""
        if seg.carry:
            self.holder = seg.carry[1]


@dataclass(frozen=True, slots=True)
class Stage:
    """A pipeline stage: the segments it runs, on one rectangle of tiles."""

    index: int
    region: Rect
    segments: tuple[Segment, ...]

    @property
    def layers(self) -> int:
        return sum(s.repeat for s in self.segments if s.first_layer >= 0)

    def op_names(self) -> Iterator[str]:
        for seg in self.segments:
            yield from seg.ops


@dataclass(frozen=True, slots=True)
class OpSplit:
    """How one op of a stage spreads over its region's tiles.

    A GEMM out[M, N] = a[M, K] w[K, N] is cut m x n x k ways (tiles = m n k); k-slices of the
    input are multicast along one axis of the region and fp32 partial sums reduced along the
    other. `utilisation` is the achievable fraction of the region's peak (tiles used, systolic
    fill and drain); `noc_byte_hops` the op's traffic inside its region, `noc_hops` its longest
    chain (for latency).
    """

    op: str
    stage: int
    m: int
    n: int
    k: int
    tiles: int
    utilisation: float
    noc_byte_hops: float
    noc_hops: int


@dataclass(frozen=True, slots=True)
class Home:
    """Where a tensor lives for one stage: a storage level of (or attached to) the stage's
    region. `bytes` covers every layer of the stage (a folded weight is held once per layer)."""

    tensor: str
    stage: int
    level: str
    kind: str  # weight | kv_cache | input | activation
    bytes: float


@dataclass(frozen=True, slots=True)
class Transfer:
    """`bytes` of `tensor` from stage src to stage dst, where it is read as `into`."""

    tensor: str
    into: str
    src_stage: int
    dst_stage: int
    bytes: float
    route: tuple[Link, ...]

    @property
    def noc_hops(self) -> int:
        return sum(1 for link in self.route if link.kind != "c2c")

    @property
    def chip_hops(self) -> int:
        return sum(1 for link in self.route if link.kind == "c2c")


@dataclass(frozen=True, slots=True)
class LevelSpec:
    """A storage level as the plan sees it: per-instance and whole-chip capacity, bytes."""

    name: str
    scope: str  # tile | chip | offchip
    capacity_bytes: float
    total_bytes: float


@dataclass(frozen=True, slots=True)
class CompiledPlan:
    """One forward call of one replica, placed: stages on regions, op splits, tensor homes,
    routed transfers. `graph` is the (layer-folded) graph the plan executes."""

    graph: Graph
    system: str
    phase: Phase
    parallelism: Parallelism
    chips: int
    grid: tuple[int, int]
    levels: tuple[LevelSpec, ...]
    stages: tuple[Stage, ...]
    splits: tuple[OpSplit, ...]
    homes: tuple[Home, ...]
    transfers: tuple[Transfer, ...]
    microbatches: int = 1
    notes: tuple[str, ...] = ()

    @property
    def tiles_per_chip(self) -> int:
        return self.grid[0] * self.grid[1]

    def level(self, name: str) -> LevelSpec:
        return next(lv for lv in self.levels if lv.name == name)

    def split(self, stage: int, op: str) -> OpSplit:
        return self._splits()[(stage, op)]

    def _splits(self) -> dict[tuple[int, str], OpSplit]:
        return {(s.stage, s.op): s for s in self.splits}

    def homes_by_stage(self) -> dict[int, dict[str, Home]]:
        """Stage -> tensor -> home (one pass over the homes)."""
        out: dict[int, dict[str, Home]] = {}
        for h in self.homes:
            out.setdefault(h.stage, {})[h.tensor] = h
        return out


# ---- verification ---------------------------------------------------------------------------


def verify(plan: CompiledPlan) -> CompiledPlan:
    """Check a plan's invariants and return it unchanged; raise PlanError naming the first
    broken one: regions on the grid and disjoint; every op of the graph in a stage with a split;
    every tensor an op touches has a home at its stage; no level over capacity; every transfer
    has a well-formed route; every op's inputs are produced (or delivered) before it runs."""
    _check_regions(plan)
    _check_splits(plan)
    _check_homes(plan)
    _check_capacity(plan)
    _check_routes(plan)
    _check_order(plan)
    return plan


def _check_regions(plan: CompiledPlan) -> None:
    rows, cols = plan.grid
    for i, st in enumerate(plan.stages):
        r = st.region
        if st.index != i:
            raise PlanError(f"stage {i} is numbered {st.index}")
        if not (0 <= r.chip < plan.chips and r.rows > 0 and r.cols > 0 and r.row >= 0
                and r.col >= 0 and r.row_end <= rows and r.col_end <= cols):
            raise PlanError(f"stage {i}: region {r.label()} is not on the {rows}x{cols} grid")
        for other in plan.stages[:i]:
            if r.overlaps(other.region):
                raise PlanError(f"stages {other.index} and {i} share tiles ({r.label()})")


def _check_splits(plan: CompiledPlan) -> None:
    splits = plan._splits()
    placed = {name for st in plan.stages for name in st.op_names()}
    missing = [op.name for op in plan.graph.ops if op.name not in placed]
    if missing:
        raise PlanError(f"op {missing[0]} is in no stage")
    for st in plan.stages:
        for name in st.op_names():
            sp = splits.get((st.index, name))
            if sp is None:
                raise PlanError(f"op {name} in stage {st.index} has no split")
            if sp.m * sp.n * sp.k != sp.tiles or not 0 < sp.tiles <= st.region.tiles:
                raise PlanError(f"op {name} in stage {st.index}: split {sp.m}x{sp.n}x{sp.k} does "
                                f"not fit its {st.region.tiles} tiles")


def _check_homes(plan: CompiledPlan) -> None:
    ops = {op.name: op for op in plan.graph.ops}
    names = {lv.name for lv in plan.levels}
    for h in plan.homes:
        if h.level not in names:
            raise PlanError(f"tensor {h.tensor} (stage {h.stage}) lives in unknown level {h.level}")
    by_stage = plan.homes_by_stage()
    for st in plan.stages:
        homes = by_stage.get(st.index, {})
        for name in st.op_names():
            for t in (*ops[name].inputs, *ops[name].outputs):
                if t.name not in homes:
                    raise PlanError(f"tensor {t.name} of op {name} has no home in stage {st.index}")


def _check_capacity(plan: CompiledPlan) -> None:
    ops = {op.name: op for op in plan.graph.ops}
    by_stage = plan.homes_by_stage()
    for st in plan.stages:
        homes = by_stage.get(st.index, {})
        for lv in plan.levels:
            held = sum(h.bytes for h in homes.values() if h.level == lv.name and h.kind in PERSISTENT)
            working = max((sum(homes[t.name].bytes for t in {*ops[n].inputs, *ops[n].outputs}
                               if homes[t.name].level == lv.name and homes[t.name].kind
                               not in PERSISTENT) for n in st.op_names()), default=0.0)
            share = st.region.tiles / plan.tiles_per_chip
            capacity = (lv.capacity_bytes * st.region.tiles if lv.scope == "tile"
                        else lv.total_bytes * share)
            if held + working > capacity * (1 + 1e-9):
                raise PlanError(f"stage {st.index}: {lv.name} holds {held + working:.4g} B, more "
                                f"than the {capacity:.4g} B of {st.region.label()}")


def _check_routes(plan: CompiledPlan) -> None:
    for t in plan.transfers:
        what = f"transfer of {t.tensor} from stage {t.src_stage} to {t.dst_stage}"
        if not 0 <= t.src_stage < t.dst_stage < len(plan.stages):
            raise PlanError(f"{what}: stages must be increasing and exist")
        if not t.route:
            raise PlanError(f"{what} has no route")
        for link in t.route:
            if link.width < 1 or link.bytes_per_s <= 0:
                raise PlanError(f"{what}: link {link.label()} carries nothing")
        src, dst = plan.stages[t.src_stage].region, plan.stages[t.dst_stage].region
        if t.route[0].chip != src.chip or (src.chip != dst.chip) != (t.chip_hops > 0):
            raise PlanError(f"{what}: route does not leave chip {src.chip} for chip {dst.chip}")


def _check_order(plan: CompiledPlan) -> None:
    ops = {op.name: op for op in plan.graph.ops}
    sources = {t.name for t in (*plan.graph.inputs, *plan.graph.weights)}
    produced_by_stage: list[set[str]] = []
    by_stage = plan.homes_by_stage()
    outputs = Stream.of(plan.stages).block_outputs
    for st in plan.stages:
        stream = Stream(outputs)
        ready = {t for t in by_stage.get(st.index, {}) if t in sources}
        for tr in plan.transfers:
            if tr.dst_stage == st.index:
                if tr.tensor not in produced_by_stage[tr.src_stage]:
                    raise PlanError(f"transfer of {tr.tensor} leaves stage {tr.src_stage} "
                                    "before it is produced there")
                ready.add(tr.into)
        for seg in st.segments:
            ready |= {name for name, holder in stream.aliases(seg) if holder in ready}
            for name in seg.ops:
                for t in ops[name].inputs:
                    if t.name not in ready:
                        raise PlanError(f"op {name} in stage {st.index} reads {t.name} before "
                                        "it is produced or delivered")
                ready |= {t.name for t in ops[name].outputs}
            if seg.carry and seg.carry[1] in ready:
                ready.add(seg.carry[0])
            stream.passed(seg)
        produced_by_stage.append(ready)


# ---- printing, diffing, serialising -------------------------------------------------------


def _si(value: float, unit: str) -> str:
    return f"{value:.3g} {unit}"


def _entries(plan: CompiledPlan) -> dict[str, str]:
    """Every element of the plan as key -> one-line rendering (the unit of `diff`)."""
    out: dict[str, str] = {}
    for st in plan.stages:
        segs = ", ".join(_segment_label(s) for s in st.segments)
        out[f"stage {st.index}"] = f"{st.region.label()}: {segs}"
    for sp in plan.splits:
        out[f"split {sp.stage}/{sp.op}"] = (
            f"m{sp.m} n{sp.n} k{sp.k} on {sp.tiles} tiles, utilisation {sp.utilisation:.1%}, "
            f"noc {_si(sp.noc_byte_hops, 'B')}-hop, {sp.noc_hops} hops")
    for h in plan.homes:
        out[f"home {h.stage}/{h.tensor}"] = f"{h.kind} in {h.level}, {_si(h.bytes, 'B')}"
    for t in plan.transfers:
        route = ", ".join(link.label() for link in t.route[:3])
        more = f", ... ({len(t.route)} bundles)" if len(t.route) > 3 else ""
        out[f"transfer {t.src_stage}->{t.dst_stage}/{t.tensor}"] = (
            f"{_si(t.bytes, 'B')} as {t.into} via {route}{more}")
    return out


def _segment_label(seg: Segment) -> str:
    if seg.first_layer >= 0:
        last = seg.first_layer + seg.repeat - 1
        return f"layers {seg.first_layer}-{last} ({len(seg.ops)} ops each)"
    return ", ".join(seg.ops) if len(seg.ops) <= 3 else f"{seg.ops[0]} .. {seg.ops[-1]} ({len(seg.ops)} ops)"


def describe(plan: CompiledPlan, ops: bool = True) -> str:
    """A readable listing: stages and regions, op splits, homes by level, routed transfers."""
    p = plan.phase
    lines = [f"compiled plan of {plan.graph.name} on {plan.system}: {len(plan.stages)} stage(s) on "
             f"{plan.chips} chip(s) of {plan.grid[0]}x{plan.grid[1]} tiles, {plan.microbatches} "
             f"micro-batch(es), phase B={p.batch} L={p.new_tokens} K={p.past_tokens}"]
    entries = _entries(plan)
    for st in plan.stages:
        lines.append(f"stage {st.index}: {entries[f'stage {st.index}']}")
        by_level: dict[tuple[str, str], float] = {}
        for h in plan.homes:
            if h.stage == st.index:
                by_level[(h.level, h.kind)] = by_level.get((h.level, h.kind), 0.0) + h.bytes
        lines.append("  homes: " + "; ".join(f"{kind} {_si(b, 'B')} in {lv}"
                                             for (lv, kind), b in sorted(by_level.items())))
        if ops:
            for name in dict.fromkeys(st.op_names()):
                lines.append(f"  {name:<28} {entries[f'split {st.index}/{name}']}")
    for key, text in entries.items():
        if key.startswith("transfer"):
            lines.append(f"{key}: {text}")
    return "\n".join(lines + [f"note: {n}" for n in plan.notes])


def diff(a: CompiledPlan, b: CompiledPlan) -> list[str]:
    """Lines `- key: old` / `+ key: new` for every stage, split, home or transfer that differs."""
    ea, eb = _entries(a), _entries(b)
    out = []
    for key in dict.fromkeys([*ea, *eb]):
        if ea.get(key) != eb.get(key):
            if key in ea:
                out.append(f"- {key}: {ea[key]}")
            if key in eb:
                out.append(f"+ {key}: {eb[key]}")
    return out


def to_dict(plan: CompiledPlan) -> dict[str, Any]:
    """The plan as JSON-ready data (SI units)."""
    def rect(r: Rect) -> dict[str, int]:
        return {"chip": r.chip, "row": r.row, "col": r.col, "rows": r.rows, "cols": r.cols}

    def link(lk: Link) -> dict[str, Any]:
        return {"kind": lk.kind, "chip": lk.chip, "line": lk.line, "direction": lk.direction,
                "lo": lk.lo, "hi": lk.hi, "bytes_per_s": lk.bytes_per_s, "latency_s": lk.latency_s}

    p = plan.phase
    return {
        "graph": plan.graph.name, "system": plan.system, "chips": plan.chips,
        "grid": list(plan.grid), "microbatches": plan.microbatches,
        "phase": {"batch": p.batch, "new_tokens": p.new_tokens, "past_tokens": p.past_tokens},
        "levels": [{"name": lv.name, "scope": lv.scope, "capacity_bytes": lv.capacity_bytes}
                   for lv in plan.levels],
        "stages": [{"index": st.index, "region": rect(st.region), "layers": st.layers,
                    "segments": [{"ops": list(s.ops), "repeat": s.repeat,
                                  "first_layer": s.first_layer} for s in st.segments]}
                   for st in plan.stages],
        "splits": [{"op": s.op, "stage": s.stage, "m": s.m, "n": s.n, "k": s.k, "tiles": s.tiles,
                    "utilisation": s.utilisation, "noc_byte_hops": s.noc_byte_hops,
                    "noc_hops": s.noc_hops} for s in plan.splits],
        "homes": [{"tensor": h.tensor, "stage": h.stage, "level": h.level, "kind": h.kind,
                   "bytes": h.bytes} for h in plan.homes],
        "transfers": [{"tensor": t.tensor, "into": t.into, "src_stage": t.src_stage,
                       "dst_stage": t.dst_stage, "bytes": t.bytes,
                       "route": [link(lk) for lk in t.route]} for t in plan.transfers],
        "notes": list(plan.notes),
    }
