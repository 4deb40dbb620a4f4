"""A plan: what each chip does for one forward call, as data.

Each `Step` is one kernel (GPU) or one op on a region of tiles (dataflow chip): its FLOPs,
bytes per storage level, byte-hops on the network-on-chip and bytes on chip-to-chip links,
per chip. Steps of a repeated transformer layer are listed once with `repeat` = layers per
pipeline stage (layer folding: the layers of these models are identical, so evaluating one and
multiplying is exact and keeps a 126-layer model as cheap to evaluate as a 1-layer one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tegel.workload.ir import GEMM_KINDS, Op
from tegel.workload.llm import Phase


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
    kind: str  # gemm | attention | elementwise | norm | embedding | moe | collective | transfer
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
    overhead_s: float = 0.0  # fixed cost: kernel launch, synchronisation
    resource_share: float = 1.0  # fraction of one chip's compute and bandwidth the step has
    ops: tuple[str, ...] = ()  # IR ops this step carries out


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
    # energy per FLOP the policy knows better than the technology library (dtype class, pJ)
    compute_pj_per_flop: tuple[tuple[str, float], ...] = ()

    def describe(self) -> str:
        """A readable listing: one line per step."""
        head = (f"plan {self.policy} on {self.system}: {self.parallelism.label()}, "
                f"{self.stages} stage(s) x {self.microbatches} micro-batch(es), "
                f"phase B={self.phase.batch} L={self.phase.new_tokens} K={self.phase.past_tokens}")
        lines = [head]
        for s in self.steps:
            traffic = ", ".join(f"{name} {r + w:.3g} B" for name, r, w in
                                zip(self.levels, s.reads, s.writes, strict=True) if r + w)
            lines.append(f"  [{s.stage:>2}] x{s.repeat:<4} {s.kind:<11} {s.name:<28} "
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
