"""What any graph costs before hardware, by op kind: the figures `tegel inspect model.onnx`
prints. MACs are the GEMMs' (`ops.gemm_dims`: convolutions, matmuls, attention), FLOPs and
bytes the ops' `work`; nothing here is a separate formula."""

from __future__ import annotations

from collections import Counter

from tegel.workload.ir import Graph
from tegel.workload.ops import gemm_dims, work
from tegel.workload.summary import graph_min_bytes


def graph_macs(graph: Graph) -> float:
    """Multiply-accumulates of every GEMM in the graph (half their FLOPs)."""
    return sum(g.flops for op in graph.ops for g in gemm_dims(op)) / 2.0


def graph_card(graph: Graph) -> dict:
    """Parameters, weight bytes, MACs, FLOPs and minimal bytes of `graph`, in total and per
    op kind (op bytes: each op reads its inputs and writes its outputs once)."""
    kinds: dict[str, dict[str, float]] = {}
    counts: Counter[str] = Counter()
    for op in graph.ops:
        w = work(op)
        row = kinds.setdefault(op.kind.value, {"macs": 0.0, "flops": 0.0, "op_bytes": 0.0})
        counts[op.kind.value] += 1
        row["macs"] += sum(g.flops for g in gemm_dims(op)) / 2.0
        row["flops"] += w.flops
        row["op_bytes"] += w.bytes_read + w.bytes_written
    return {
        "model": graph.name,
        "inputs": {t.name: list(t.shape) for t in graph.inputs},
        "outputs": {t.name: list(t.shape) for t in graph.outputs},
        "parameters": graph.parameter_count,
        "weight_bytes": sum(t.nbytes for t in graph.weights),
        "macs": graph_macs(graph),
        "flops": sum(r["flops"] for r in kinds.values()),
        "op_bytes": sum(r["op_bytes"] for r in kinds.values()),
        "graph_bytes": graph_min_bytes(graph),
        "ops": len(graph.ops),
        "ops_by_kind": {k: {"count": counts[k], **kinds[k]}
                        for k in sorted(kinds, key=lambda k: -kinds[k]["flops"])},
    }
