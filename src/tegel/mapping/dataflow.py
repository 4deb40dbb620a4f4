"""The dataflow mapping policy: layers pinned to regions of tiles, weights resident.

A first, analytical placement (the spatial compiler of `tegel.mapping` refines it later):
- the model's layers are cut into `stages` pipeline stages, each a region of 1/r of a chip
  (r = stages / chips); stages on successive chips pass activations over chip-to-chip links;
- weights live in tile SRAM when a chip's share fits (a `sram_weight_fraction` of it),
  otherwise they stream from the chip's stacked / off-chip memory; the KV cache lives in
  off-chip memory when the chip has it, else in tile SRAM;
- every GEMM is split 2-D over its region (K over rows, N over columns): inputs are broadcast
  along rows and partial sums reduced along columns over the network-on-chip; other ops pass
  their outputs on at the region's mean hop distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from tegel.errors import TegelError
from tegel.hardware import Chip
from tegel.hardware.systolic import gemm_cycles
from tegel.mapping.plan import Parallelism, Plan, Step, compute_class
from tegel.mapping.sharding import collective_traffic, shard_graph
from tegel.workload.ir import Graph, MoEExperts, Op, OpKind, Role
from tegel.workload.llm import Phase
from tegel.workload.ops import matmul_dims, work

_KIND = {OpKind.MATMUL: "gemm", OpKind.MOE_EXPERTS: "moe", OpKind.ATTENTION: "attention",
         OpKind.RMSNORM: "norm", OpKind.LAYERNORM: "norm", OpKind.EMBEDDING: "embedding"}


@dataclass(frozen=True, slots=True)
class DataflowParams:
    compute_peak_fraction: float
    sram_weight_fraction: float
    sram_bandwidth_fraction: float
    offchip_bandwidth_fraction: float
    step_overhead_s: float


@cache
def dataflow_params() -> DataflowParams:
    text = (resources.files("tegel.mapping") / "data" / "dataflow.yaml").read_text()
    return DataflowParams(**yaml.safe_load(text))


@dataclass(frozen=True, slots=True)
class Placement:
    """Where weights and the KV cache live on a dataflow chip (storage level indices)."""

    sram: int
    weights: int
    kv_cache: int
    weights_resident: bool


def place(chip: Chip, weight_bytes_per_chip: float) -> Placement:
    """Weights in tile SRAM if they fit, else in off-chip memory; KV cache off chip if any."""
    levels = chip.levels()
    tile = [i for i, lv in enumerate(levels) if lv.scope == "tile"]
    if not tile:
        raise TegelError(f"{chip.name}: a dataflow chip needs tile-level storage")
    sram = max(tile, key=lambda i: levels[i].total_bytes)
    offchip = next((i for i, lv in enumerate(levels) if lv.scope == "offchip"), None)
    budget = dataflow_params().sram_weight_fraction * levels[sram].total_bytes
    resident = weight_bytes_per_chip <= budget or offchip is None
    return Placement(sram, sram if resident else offchip,  # type: ignore[arg-type]
                     offchip if offchip is not None else sram, resident)


def gemm_efficiency(op: Op, chip: Chip, split: int, default: float) -> float:
    """Achievable share of peak of a weight GEMM cut `split` ways along N and K: on a systolic
    chip the array's utilisation for one tile's share (fill, drain, folds; hardware/systolic),
    elsewhere `default`."""
    arr = chip.tiles.compute.systolic
    if arr is None or op.kind not in (OpKind.MATMUL, OpKind.MOE_EXPERTS):
        return default
    if op.kind is OpKind.MOE_EXPERTS:
        a: MoEExperts = op.attrs  # type: ignore[assignment]
        x = op.inputs[0]
        _, n, k = op.inputs[3].shape
        m = max(1, round(x.numel // x.shape[-1] * a.top_k / a.num_experts))
    else:
        batch, m, n, k = matmul_dims(op.inputs[0].shape, op.inputs[1].shape, op.attrs)  # type: ignore[arg-type]
        m *= math.prod(batch)
    return gemm_cycles(m, math.ceil(n / split), math.ceil(k / split), arr.rows, arr.cols,
                       arr.dataflow, arr.count).utilisation


def plan_dataflow(graph: Graph, chip: Chip, system_name: str, phase: Phase,
                  parallelism: Parallelism, layers: int, stages: int,
                  weight_bytes_per_chip: float, link_latency_s: float,
                  microbatches: int = 1, num_kv_heads: int = 1,
                  link_topology: str = "switch") -> Plan:
    """Region-per-stage plan of a (layer-folded) graph; `stages` is a multiple of pp.

    With tensor parallelism (tp > 1) each stage spans tp chips that split every op as
    `sharding.shard_graph` says (Groq-style: a layer too large for one chip), with the
    collectives that implies on the chip-to-chip links.
    """
    p = dataflow_params()
    pp, tp = parallelism.pp, parallelism.tp
    shards = shard_graph(graph, tp, num_kv_heads, parallelism.ep)
    if stages % pp or stages < pp:
        raise TegelError(f"stages ({stages}) must be a positive multiple of pp ({pp})")
    where = place(chip, weight_bytes_per_chip)
    regions_per_chip = stages // pp
    share = 1.0 / regions_per_chip
    region_tiles = max(1.0, chip.tile_count * share)
    edge = math.sqrt(region_tiles)
    hop_s = chip.noc.hop_latency_s
    names = tuple(lv.name for lv in chip.levels())
    per_stage = math.ceil(layers / stages)
    steps: list[Step] = []
    for op in graph.ops:
        w, shard = work(op), shards[op.name]
        reads = [0.0] * len(names)
        writes = [0.0] * len(names)
        for t, b, d in zip(op.inputs, w.read_bytes, shard.read_div, strict=True):
            level = (where.weights if t.role is Role.WEIGHT else
                     where.kv_cache if t.role is Role.KV_CACHE else where.sram)
            reads[level] += b / d
        for t, b, d in zip(op.outputs, w.write_bytes, shard.write_div, strict=True):
            writes[where.kv_cache if t.role is Role.KV_CACHE else where.sram] += b / d
        activations_in = sum(b / d for t, b, d in zip(op.inputs, w.read_bytes, shard.read_div,
                                                      strict=True) if t.role is Role.ACTIVATION)
        out_bytes = sum(b / d for b, d in zip(w.write_bytes, shard.write_div, strict=True))
        kind = _KIND.get(op.kind, "elementwise")
        compute_eff = p.compute_peak_fraction
        if kind in ("gemm", "moe") and op.inputs[1].role is Role.WEIGHT:
            byte_hops = activations_in * edge + 2.0 * out_bytes * edge  # fp32 partial sums
            latency = 2.0 * edge * hop_s
            compute_eff = gemm_efficiency(op, chip, max(1, int(edge)), compute_eff)
        else:
            byte_hops = out_bytes * (2.0 * edge / 3.0)
            latency = (2.0 * edge / 3.0) * hop_s
        in_layer = op.layer >= 0
        head = op.kind is not OpKind.EMBEDDING and op.name not in ("pos_embed", "embed_sum")
        stage = -1 if in_layer else (stages - 1 if head else 0)
        steps.append(Step(op.name, kind, stage, per_stage if in_layer else 1,
                          w.flops / shard.flops_div, compute_class(op), compute_eff, tuple(reads),
                          tuple(writes), noc_byte_hops=byte_hops, noc_latency_s=latency,
                          overhead_s=p.step_overhead_s, resource_share=share, ops=(op.name,)))
        if shard.collective and tp > 1:
            sent, hops = collective_traffic(shard, tp, link_topology)
            steps.append(Step(f"{op.name}.{shard.collective}", "collective", stage,
                              per_stage if in_layer else 1, 0.0, "bf16", 1.0,
                              (0.0,) * len(names), (0.0,) * len(names), link_bytes=sent,
                              link_latency_s=hops * link_latency_s, resource_share=share))
    if stages > 1:
        hidden = next(op for op in graph.ops if op.kind is OpKind.EMBEDDING).outputs[0].nbytes
        crossing = (pp - 1) / stages  # share of stage boundaries that cross chips
        steps.append(Step("stage_transfer", "transfer", -1, 1, 0.0, "bf16", 1.0,
                          (0.0,) * len(names), (0.0,) * len(names),
                          noc_byte_hops=hidden * edge * (1 - crossing), noc_latency_s=edge * hop_s,
                          link_bytes=hidden * crossing, link_latency_s=link_latency_s * crossing,
                          resource_share=share))
    efficiency = tuple(p.offchip_bandwidth_fraction if lv.scope == "offchip" else
                       p.sram_bandwidth_fraction for lv in chip.levels())
    residency = "resident in tile SRAM" if where.weights_resident else (
        f"streamed from {names[where.weights]}")
    notes = (f"weights {residency}; KV cache in {names[where.kv_cache]}",
             f"{stages} stage(s), {regions_per_chip} region(s) per chip of {region_tiles:.0f} tiles")
    return Plan(system_name, "dataflow", phase, parallelism, names, efficiency, stages,
                microbatches, tp, tuple(steps), notes)
