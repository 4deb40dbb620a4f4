"""Tensor-parallel sharding of an LLM graph (Megatron style), propagated op by op.

Column-parallel matmuls (q/k/v, gate/up, the LM head) split their output channels over the tp
chips; embedding tables split their rows (the vocabulary), each chip looking up the ids it
holds, and an all-reduce sums the rows (Megatron's vocabulary-parallel embedding); the row-
parallel matmul that consumes a split tensor (o, down, the experts) splits its contraction and
leaves partial sums that an all-reduce combines. Attention splits by heads; keys and values by
kv heads (replicated where tp exceeds them). Latent attention (DeepSeek) splits by heads too
(q_b and kv_b column-parallel, o row-parallel); its down-projections q_a and kv_a and its one
latent cache are replicated. Norms and residual adds run replicated on every
chip. The result says, per op, by how much each chip's share of FLOPs and of each input and
output is divided, and which collective follows it."""

from __future__ import annotations

from dataclasses import dataclass

from tegel.workload.dtypes import DType
from tegel.workload.ir import Attention, Graph, LatentAttention, OpKind, OpRole, Role, Tensor


@dataclass(frozen=True, slots=True)
class OpShard:
    """Per-chip division of one op's work, and the collective that follows it (if any)."""

    flops_div: float
    read_div: tuple[float, ...]
    write_div: tuple[float, ...]
    collective: str = ""  # "" | "all_reduce" | "all_gather" | "all_to_all"
    collective_bytes: float = 0.0  # size of the full tensor the collective combines


def kv_heads(graph: Graph) -> int:
    """Key/value heads of the graph's attention (the fewest, if several; 1 without attention).
    Latent attention's cache is one head that every query head reads: replicated, as vLLM
    keeps it on each tensor-parallel rank."""
    heads = [op.attrs.num_kv_heads if isinstance(op.attrs, Attention) else 1
             for op in graph.ops if isinstance(op.attrs, (Attention, LatentAttention))]
    return min(heads, default=1)


def shard_graph(graph: Graph, tp: int, ep: int = 1) -> dict[str, OpShard]:
    """How each op of `graph` divides over `tp` chips (ep > 1: experts by all-to-all)."""
    kv_div = float(min(tp, kv_heads(graph)))
    split: dict[str, float] = {}  # tensor name -> how many ways it is split
    out: dict[str, OpShard] = {}
    full = 1.0
    for op in graph.ops:
        ins = [split.get(t.name, full) for t in op.inputs]
        kind = op.kind
        collective, coll_bytes = "", 0.0
        if tp == 1:
            shard = OpShard(1.0, tuple(ins), (1.0,) * len(op.outputs))
            out[op.name] = shard
            continue
        if kind is OpKind.MATMUL and op.inputs[1].role is Role.WEIGHT:
            if op.role in (OpRole.ROUTER, OpRole.LATENT_PROJ):  # MLA's q_a, kv_a: replicated
                reads, writes, flops_div = [1.0] * len(ins), [1.0], 1.0
            elif ins[0] > 1:  # row-parallel: partial sums, then all-reduce
                reads = [ins[0], float(tp)] + [1.0] * (len(ins) - 2)
                writes, flops_div = [1.0], float(tp)
                collective, coll_bytes = "all_reduce", partial_sum_bytes(op.outputs[0])
            else:  # column-parallel
                div = kv_div if op.role in (OpRole.K_PROJ, OpRole.V_PROJ) else float(tp)
                reads = [1.0, div] + [div] * (len(ins) - 2)
                writes, flops_div = [div], div
                if op.role is OpRole.LM_HEAD:
                    collective, coll_bytes = "all_gather", op.outputs[0].nbytes
        elif kind is OpKind.ATTENTION:
            reads, writes, flops_div = [float(tp), kv_div, kv_div], [float(tp)], float(tp)
        elif kind is OpKind.LATENT_ATTENTION:  # heads split: q and kv_b's rows; cache whole
            reads, writes, flops_div = [float(tp), 1.0, float(tp)], [float(tp)], float(tp)
        elif kind is OpKind.KV_CACHE_WRITE:
            reads, writes, flops_div = [kv_div] * len(ins), [kv_div], kv_div
        elif kind is OpKind.MOE_EXPERTS:
            reads = [1.0, 1.0, 1.0, float(tp), float(tp), float(tp)]
            writes, flops_div = [1.0], float(tp)
            collective = "all_to_all" if ep > 1 else "all_reduce"
            coll_bytes = (op.outputs[0].nbytes if ep > 1 else partial_sum_bytes(op.outputs[0]))
        elif kind is OpKind.EMBEDDING:  # vocabulary-parallel: rows split, partial rows summed
            reads, writes, flops_div = [1.0, float(tp)], [1.0], float(tp)
            collective, coll_bytes = "all_reduce", partial_sum_bytes(op.outputs[0])
        elif kind is OpKind.MOE_ROUTER or (
            kind is OpKind.MATMUL and op.inputs[1].role is not Role.WEIGHT
        ):
            reads, writes, flops_div = [1.0] * len(ins), [1.0] * len(op.outputs), 1.0
        else:  # elementwise, norms, rope, slice: follow the split of their activations
            div = max((d for d, t in zip(ins, op.inputs, strict=True) if t.role is not Role.WEIGHT),
                      default=1.0)
            reads = [d if t.role is not Role.WEIGHT else 1.0 for d, t in
                     zip(ins, op.inputs, strict=True)]
            writes, flops_div = [div] * len(op.outputs), div
        for t, d in zip(op.outputs, writes, strict=True):
            split[t.name] = d
        out[op.name] = OpShard(flops_div, tuple(reads), tuple(writes), collective, coll_bytes)
    return out


def partial_sum_bytes(t: Tensor) -> float:
    """Bytes of an all-reduce of `t`'s partial sums: `t` at 16 bits or wider. A GEMM with 8- or
    4-bit inputs writes its partial sums in the model's 16-bit format, and the engine reduces
    them in it (vLLM's FP8 linear: `cutlass_scaled_mm(..., out_dtype=input.dtype)` in
    quantization/utils/w8a8_utils.py, then `tensor_model_parallel_all_reduce(output_parallel)`
    in RowParallelLinear; NCCL 2.10's reduction types stop at 16-bit floats); summing in the
    quantized format would lose what the accumulator kept."""
    return max(float(t.nbytes), float(DType.BF16.nbytes(t.numel)))


def collective_traffic(shard: OpShard, tp: int, topology: str) -> tuple[float, int]:
    """(bytes each chip sends, sequential link traversals) of the collective after an op.

    An all-reduce sends 2(n-1)/n of the tensor per chip, an all-gather or all-to-all (n-1)/n.
    Through a switch or a full mesh the latency is two traversals (reduce-scatter, all-gather)
    or one; through a dragonfly the same traversals, each of up to three hops (local, global,
    local: the topology's diameter), since every chip reaches every other directly; on a ring,
    torus or mesh one per step of the ring algorithm.
    """
    reduce = shard.collective == "all_reduce"
    sent = (2.0 if reduce else 1.0) * (tp - 1) / tp * shard.collective_bytes
    per_traversal = {"switch": 1, "full": 1, "dragonfly": _DRAGONFLY_DIAMETER}.get(topology, tp - 1)
    hops = (2 if reduce else 1) * per_traversal
    return sent, hops


# Kim, Dally, Scott, Abts, "Technology-Driven, Highly-Scalable Dragonfly Topology", ISCA 2008:
# minimal routes take at most one local, one global and one local hop.
_DRAGONFLY_DIAMETER = 3
