"""The functional executor: a plan run on real numbers, in the plan's number formats.

Where the plan splits a GEMM, the executor splits it the same way: over the tensor-parallel
chips (column blocks, or contraction blocks whose partial sums an all-reduce adds in chip
order) and, inside a chip, over the tiles of the op's region (contraction blocks whose partial
sums are reduced over the network-on-chip, in tile order, at the accumulation precision). Every
tensor is stored in its format (weights, activations, KV cache), rounded with `numerics`. Its
outputs are compared with the graph's reference execution (`workload.reference`) in tests.

What is emulated: storage formats bit-exactly, GEMM accumulation precision and reduction
order. What is not: the internal accumulation order of attention, norms and softmax, which run
with the reference semantics in fp32 on stored inputs (as fused kernels keep them in fp32).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tegel.evaluate.numerics import quantize
from tegel.mapping.compiled import CompiledPlan
from tegel.mapping.plan import Plan
from tegel.mapping.sharding import shard_graph
from tegel.workload.dtypes import DType
from tegel.workload.ir import Graph, MatMul, Op, OpKind, Role
from tegel.workload.llm import Precision
from tegel.workload.reference import graph_feeds, run_op
from tegel.workload.roles import fold_keys


@dataclass(frozen=True, slots=True)
class Split:
    """How one GEMM is divided: over `tp` chips (`mode`), then K over `k_tiles` tiles per chip."""

    tp: int = 1
    mode: str = "replicated"  # "column" | "row" | "replicated"
    k_tiles: int = 1


@dataclass(frozen=True, slots=True)
class ExecStats:
    """What the executor did: GEMM blocks computed and partial sums reduced."""

    gemm_blocks: int
    partial_sums: int  # additions of partial results (NoC reductions and all-reduces)
    allreduce_bytes: float
    stage_transfer_bytes: float = 0.0  # activations copied from one pipeline stage to the next


def splits_for_plan(graph: Graph, plan: Plan) -> dict[str, Split]:
    """The tensor-parallel GEMM splits of a plan of steps for `graph` (the unfolded graph of the
    same phase): column/row splits of `shard_graph`, one block per chip. Used for GPU plans and
    dataflow plans with tp > 1 (whose K splits within a chip are not emulated)."""
    out: dict[str, Split] = {}
    tp = plan.parallelism.tp
    shards = shard_graph(graph, tp)
    for op in graph.ops:
        if op.kind is not OpKind.MATMUL or op.inputs[1].role is not Role.WEIGHT:
            continue
        sh = shards[op.name]
        if sh.collective == "all_reduce":
            out[op.name] = Split(tp, "row")
        elif sh.write_div[0] > 1:
            out[op.name] = Split(int(sh.write_div[0]), "column")
    return out


def _folded_ops(graph: Graph, compiled: CompiledPlan) -> dict[str, str]:
    """Op of the unfolded `graph` -> the op of the compiled plan's folded graph it repeats,
    matched by position (section, the kind of its layer, place within it), never by name."""
    folded = {key: name for name, key in fold_keys(compiled.graph).items()}
    return {name: folded[key] for name, key in fold_keys(graph).items() if key in folded}


def splits_for_compiled(graph: Graph, compiled: CompiledPlan) -> dict[str, Split]:
    """The GEMM splits of a compiled dataflow plan, for the unfolded `graph` of its phase.

    Each GEMM's contraction is cut into the plan's k slices (one per tile along the reduction
    axis of its region); the m x n blocks are independent and computed together. The compiled
    plan holds one transformer layer; every layer of `graph` takes its split.
    """
    by_name = {s.op: s for s in compiled.splits}
    folded = _folded_ops(graph, compiled)
    out: dict[str, Split] = {}
    for op in graph.ops:
        if op.kind is not OpKind.MATMUL or op.inputs[1].role is not Role.WEIGHT:
            continue
        split = by_name.get(folded.get(op.name, ""))
        if split is not None:
            out[op.name] = Split(1, "replicated", max(1, min(split.k, op.inputs[0].shape[-1])))
    return out


def stages_of_ops(graph: Graph, compiled: CompiledPlan) -> dict[str, int]:
    """The pipeline stage each op of the unfolded `graph` runs in, from a compiled plan."""
    where: dict[tuple[str, int], int] = {}  # (folded op name, layer or -1) -> stage
    for st in compiled.stages:
        for seg in st.segments:
            layers = range(seg.first_layer, seg.first_layer + seg.repeat) if seg.first_layer >= 0 else [-1]
            for layer in layers:
                for name in seg.ops:
                    where[(name, layer)] = st.index
    folded = _folded_ops(graph, compiled)
    return {op.name: where.get((folded.get(op.name, ""), op.layer), 0) for op in graph.ops}


class _Executor:
    def __init__(self, precision: Precision, accumulate: DType, block_size: int,
                 stages: Mapping[str, int] | None = None) -> None:
        self.p, self.acc, self.block = precision, accumulate, block_size
        self.blocks = self.partials = 0
        self.allreduce_bytes = self.transfer_bytes = 0.0
        self.stages = stages or {}
        self.home: dict[str, int] = {}  # activation -> the stage that holds it

    def round(self, x: np.ndarray, dtype: DType) -> np.ndarray:
        return quantize(x, dtype, self.block) if dtype.info.is_float and x.dtype.kind == "f" else x

    def reduce(self, parts: list[np.ndarray]) -> np.ndarray:
        """Sum partial results in order, rounding each step to the accumulation format."""
        total = parts[0]
        for part in parts[1:]:
            total = self.round(total + part, self.acc)
            self.partials += 1
        return total

    def chip_gemm(self, a: np.ndarray, w: np.ndarray, k_tiles: int) -> np.ndarray:
        """a [..., K] x w [N, K]^T on one chip: K over `k_tiles` tiles, partial sums reduced."""
        bounds = np.linspace(0, a.shape[-1], k_tiles + 1).astype(int)
        parts = []
        for lo, hi in itertools.pairwise(bounds):
            self.blocks += 1
            parts.append(self.round(np.matmul(a[..., lo:hi], w[:, lo:hi].T), self.acc))
        return self.reduce(parts)

    def matmul(self, op: Op, xs: list[np.ndarray], split: Split) -> np.ndarray:
        a, w = xs[0].astype(np.float32), xs[1].astype(np.float32)
        if split.mode == "column":
            cols = np.array_split(np.arange(w.shape[0]), split.tp)
            out = np.concatenate([self.chip_gemm(a, w[c], split.k_tiles) for c in cols], axis=-1)
        elif split.mode == "row":
            ks = np.array_split(np.arange(w.shape[1]), split.tp)
            parts = [self.chip_gemm(a[..., k], w[:, k], split.k_tiles) for k in ks]
            self.allreduce_bytes += parts[0].nbytes * (split.tp - 1)
            out = self.reduce(parts)  # the all-reduce, in chip order
        else:
            out = self.chip_gemm(a, w, split.k_tiles)
        if len(xs) == 3:
            out = out + xs[2].astype(np.float32)
        return out

    def run(self, graph: Graph, feeds: Mapping[str, np.ndarray], splits: Mapping[str, Split]
            ) -> dict[str, np.ndarray]:
        env = graph_feeds(graph, feeds)
        for t in (*graph.inputs, *graph.weights):  # stored in their formats
            if t.dtype.info.is_float:
                env[t.name] = self.round(env[t.name].astype(np.float32), t.dtype)
        for op in graph.ops:
            here = self.stages.get(op.name, 0)
            for t in op.inputs:  # an activation made by another stage moves here first
                if self.home.get(t.name, here) != here:
                    env[t.name] = np.array(env[t.name], copy=True)
                    self.transfer_bytes += t.nbytes
                    self.home[t.name] = here
            xs = [env[t.name] for t in op.inputs]
            if op.kind is OpKind.MATMUL and isinstance(op.attrs, MatMul) and op.attrs.transpose_b \
                    and op.inputs[1].role is Role.WEIGHT:
                results = [self.matmul(op, xs, splits.get(op.name, Split()))]
            else:
                results = run_op(op, xs)
            for t, value in zip(op.outputs, results, strict=True):
                env[t.name] = self.round(np.asarray(value), t.dtype) if t.dtype.info.is_float \
                    else value
                self.home[t.name] = here
        return {t.name: env[t.name] for t in graph.outputs}


def execute(graph: Graph, feeds: Mapping[str, np.ndarray], splits: Mapping[str, Split],
            precision: Precision, accumulate: DType = DType.FP32, block_size: int = 32,
            stages: Mapping[str, int] | None = None) -> tuple[dict[str, np.ndarray], ExecStats]:
    """Run `graph` on `feeds` (inputs and weights) following `splits`, in `precision`.

    Weights are expected already in their storage format (`quantize_weights`); activations
    and KV-cache entries are rounded to theirs as they are produced. GEMM partial sums are
    accumulated in `accumulate`. `stages` (op -> pipeline stage) makes activations that cross
    stages move as copies, counted in the stats.
    """
    ex = _Executor(precision, accumulate, block_size, stages)
    outputs = ex.run(graph, feeds, splits)
    return outputs, ExecStats(ex.blocks, ex.partials, ex.allreduce_bytes, ex.transfer_bytes)


def quantize_weights(weights: Mapping[str, np.ndarray], graph: Graph, block_size: int = 32
                     ) -> dict[str, np.ndarray]:
    """The quantization pass: every weight rounded to the format its graph tensor declares."""
    formats = {t.name: t.dtype for t in graph.weights}
    return {name: quantize(np.asarray(value, dtype=np.float32), formats[name], block_size)
            if name in formats else np.asarray(value, dtype=np.float32)
            for name, value in weights.items()}
