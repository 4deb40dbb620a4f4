"""A plan: what each chip does for one forward call, as data.

Each `Step` is one kernel (GPU) or one op on a region of tiles (dataflow chip): its FLOPs,
bytes per storage level, byte-hops on the network-on-chip and bytes on chip-to-chip links,
per chip. Steps of a repeated transformer layer are listed once with `repeat` = layers per
pipeline stage (layer folding: the layers of these models are identical, so evaluating one and
multiplying is exact and keeps a 126-layer model as cheap to evaluate as a 1-layer one).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace

from tegel.errors import TegelError
from tegel.hardware import System
from tegel.workload.folding import layer_fold
from tegel.workload.ir import GEMM_KINDS, Graph, Op, OpKind
from tegel.workload.llm import Phase
from tegel.workload.model_config import ModelConfig


class StepKind(enum.Enum):
    """What a step does, for reports and for the policies' rules."""

    GEMM = "gemm"
    MOE = "moe"
    ATTENTION = "attention"
    NORM = "norm"
    EMBEDDING = "embedding"
    ELEMENTWISE = "elementwise"
    COLLECTIVE = "collective"
    TRANSFER = "transfer"


_STEP_KIND = {OpKind.MATMUL: StepKind.GEMM, OpKind.CONV2D: StepKind.GEMM,
              OpKind.MOE_EXPERTS: StepKind.MOE, OpKind.ATTENTION: StepKind.ATTENTION,
              OpKind.LATENT_ATTENTION: StepKind.ATTENTION,
              OpKind.RMSNORM: StepKind.NORM, OpKind.LAYERNORM: StepKind.NORM,
              OpKind.EMBEDDING: StepKind.EMBEDDING}


def step_kind(op: Op) -> StepKind:
    """The kind of step an op becomes (every policy uses this one table)."""
    return _STEP_KIND.get(op.kind, StepKind.ELEMENTWISE)


@dataclass(frozen=True, slots=True)
class Link:
    """A bundle of parallel links: on a mesh/torus, the `hi - lo` links that cross grid line
    `line` (kind x: between columns line-1 and line, for rows lo..hi-1; kind y: between rows,
    for columns lo..hi-1) in `direction` (+1 east/south, -1 west/north). Kind xbar: the ports of
    tiles lo..hi-1 of a crossbar; kind c2c: chip `chip` to chip `line` (or a switch port)."""

    kind: str  # x | y | xbar | c2c
    chip: int
    line: int
    direction: int
    lo: int
    hi: int
    bytes_per_s: float  # all links of the bundle together
    latency_s: float

    @property
    def width(self) -> int:
        return self.hi - self.lo

    def label(self) -> str:
        arrow = "+" if self.direction > 0 else "-"
        if self.kind in ("x", "y"):
            span = "rows" if self.kind == "x" else "cols"
            return f"chip {self.chip} {self.kind}{arrow} line {self.line} {span} {self.lo}-{self.hi - 1}"
        if self.kind == "xbar":
            return f"chip {self.chip} xbar{arrow} tiles {self.lo}-{self.hi - 1}"
        return f"c2c {self.chip}->{self.line}" if self.line >= 0 else f"c2c {self.chip} switch{arrow}"


@dataclass(frozen=True, slots=True)
class Parallelism:
    """How a model is split over chips: tensor, pipeline, expert and data parallel degrees.

    A replica spans tp x pp chips; expert parallelism shares the tensor-parallel chips
    (ep divides tp); dp replicas each serve batch / dp sequences.
    """

    tp: int = 1
    pp: int = 1
    ep: int = 1
    dp: int = 1

    @property
    def chips_per_replica(self) -> int:
        return self.tp * self.pp

    @property
    def chips(self) -> int:
        return self.tp * self.pp * self.dp

    def label(self) -> str:
        return f"tp{self.tp} pp{self.pp} ep{self.ep} dp{self.dp}"


@dataclass(frozen=True, slots=True)
class Step:
    """One unit of scheduled work on each chip of a pipeline stage (all figures per chip)."""

    name: str
    kind: StepKind
    stage: int  # -1: in every stage (a repeated layer); otherwise the stage index
    repeat: int
    flops: float
    compute_class: str
    compute_efficiency: float  # achievable fraction of peak for this step's shape
    reads: tuple[float, ...]  # bytes per storage level, nearest level first
    writes: tuple[float, ...]
    noc_byte_hops: float = 0.0
    noc_latency_s: float = 0.0
    link_bytes: float = 0.0  # bytes each chip sends on chip-to-chip links
    link_latency_s: float = 0.0
    # share of the plan's collective rate a collective reaches at its message size (GPU:
    # NCCL's measured sweep above the engine's custom all-reduce limit)
    link_share: float = 1.0
    overhead_s: float = 0.0  # fixed cost: kernel launch, synchronisation
    resource_share: float = 1.0  # fraction of one chip's compute and bandwidth the step has
    # per storage level: the share of the plan's bandwidth there this step's kernel reaches
    # (empty: all of it, as the streaming kernels the plan's shares describe do)
    level_share: tuple[float, ...] = ()
    ops: tuple[str, ...] = ()  # IR ops this step carries out
    route: tuple[Link, ...] = ()  # a transfer's link bundles: its time is over these
    transfer_bytes: float = 0.0  # bytes a transfer moves over each bundle of its route
    first_layer: int = -1  # the first model layer a repeated step stands for (-1: none)


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """What a policy is asked to plan: one forward call of a (layer-folded) graph standing for
    `layers` model layers, split as `parallelism` says, in `stages` pipeline stages (a multiple
    of pp; on a GPU, pp) with `microbatches` micro-batches of `phase.batch` sequences each."""

    phase: Phase
    parallelism: Parallelism
    layers: int
    stages: int
    microbatches: int = 1
    software: str | None = None  # GPU software generation (None: current)
    # per model layer, the graph's block layer that stands for it (`workload.folding`); empty:
    # the graph's one block stands for all `layers`
    layer_pattern: tuple[int, ...] = ()
    # size each stage's region by its estimated op time (a compute-balanced pipeline, as
    # Stream's layer fusion) instead of its GEMM weight bytes (dataflow compiler)
    balance_regions: bool = False
    # activations and graph inputs off chip between ops even where they fit on chip: each op
    # reads its operands from and writes its results to off-chip memory, as ZigZag evaluates a
    # layer (no inter-layer data locality); dataflow compiler, `compiler.place_tensors`
    spill_activations: bool = False

    def pattern(self, graph: Graph) -> tuple[int, ...]:
        """Per model layer, the block of `graph` it repeats: `layer_pattern`, or the graph's one
        block `layers` times (() for a graph without blocks or with several and no pattern)."""
        blocks = sorted({op.layer for op in graph.ops if op.layer >= 0})
        if self.layer_pattern:
            if len(self.layer_pattern) != self.layers or not set(self.layer_pattern) <= set(blocks):
                raise TegelError(f"{graph.name}: layer pattern of {len(self.layer_pattern)} "
                                 f"layers over blocks {sorted(set(self.layer_pattern))} does not "
                                 f"fit {self.layers} layers over the graph's blocks {blocks}")
            return self.layer_pattern
        return (blocks[0],) * self.layers if len(blocks) == 1 else ()


def stage_layers(layers: int, stages: int) -> tuple[tuple[int, int], ...]:
    """(first, stop) model layers of each of `stages` pipeline stages: contiguous runs, the
    earlier stages taking the remainder."""
    out, first = [], 0
    for i in range(stages):
        count = layers // stages + (1 if i < layers % stages else 0)
        out.append((first, first + count))
        first += count
    return tuple(out)


def llm_request(cfg: ModelConfig, system: System, phase: Phase, parallelism: Parallelism,
                stages: int, microbatches: int = 1) -> PlanRequest:
    """The request of one LLM phase (`phase.batch` sequences per micro-batch) for a layer-folded
    graph, for any policy: stages capped at one layer and one tile each, micro-batches at one per
    stage (the sequences of merged micro-batches run together)."""
    stages = min(stages, cfg.num_layers, parallelism.pp * system.chip.tile_count)
    if microbatches > stages:
        sequences = phase.batch * microbatches
        microbatches = stages
        phase = replace(phase, batch=math.ceil(sequences / stages))
    return PlanRequest(phase, parallelism, cfg.num_layers, stages, microbatches,
                       layer_pattern=layer_fold(cfg).pattern)


@dataclass(frozen=True, slots=True)
class Plan:
    """Steps of one forward call of one replica, with the pipeline shape that schedules them."""

    system: str
    policy: str
    phase: Phase
    parallelism: Parallelism
    levels: tuple[str, ...]  # storage level names, nearest first, as in Chip.levels()
    bandwidth_efficiency: tuple[float, ...]  # achievable fraction of each level's bandwidth
    stages: int
    microbatches: int
    chips_per_stage: int  # chips that share each stage's work (tp on a GPU; 1 when a stage
    # is a region of one chip)
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = field(default=())
    # achieved share of the chip-to-chip link rate of the collectives (bus-bandwidth convention:
    # a collective's bytes / its time); other link traffic runs at the link rate
    collective_efficiency: float = 1.0

    def describe(self) -> str:
        """A readable listing: one line per step."""
        head = (f"plan {self.policy} on {self.system}: {self.parallelism.label()}, "
                f"{self.stages} stage(s) x {self.microbatches} micro-batch(es), "
                f"phase B={self.phase.batch} L={self.phase.new_tokens} K={self.phase.past_tokens}")
        lines = [head]
        for s in self.steps:
            traffic = ", ".join(f"{name} {r + w:.3g} B" for name, r, w in
                                zip(self.levels, s.reads, s.writes, strict=True) if r + w)
            lines.append(f"  [{s.stage:>2}] x{s.repeat:<4} {s.kind.value:<11} {s.name:<28} "
                         f"{s.flops:.3g} FLOP  {traffic}")
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


def compute_class(op: Op) -> str:
    """The dtype class an op computes in: GEMMs at the rate of their wider operand (a W8A16
    GEMM runs at the bf16 rate); other ops in the format of their first float input."""
    if op.kind in GEMM_KINDS and len(op.inputs) > 1:
        a, b = op.inputs[0].dtype, op.inputs[1].dtype
        return (a if a.bits >= b.bits else b).compute_class
    floats = [t.dtype for t in op.inputs if t.dtype.info.is_float]
    return floats[0].compute_class if floats else "int8"
