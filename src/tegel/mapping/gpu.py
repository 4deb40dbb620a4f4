"""The GPU mapping policy: one kernel per (fused) op, tensors in HBM between kernels.

Passes, in order (`plan_gpu` runs them):
1. `fuse_kernels` — matmuls that share an input become one GEMM (fused QKV, fused gate/up);
   elementwise ops, rotary embedding and the KV-cache append ride in the epilogue of the kernel
   that produced their input; norms, attention, embedding and MoE are kernels of their own.
2. tensor-parallel sharding (`sharding.shard_graph`) divides each op's work over the tp chips.
3. each kernel becomes a `Step`: weights and KV cache stream from HBM; activations passed
   between kernels stay in L2 when small enough, else go through HBM; GEMM operands are re-read
   from L2 once per tile row/column (tile reuse); compute efficiency from tile and wave
   quantization of the GEMM shape; a fixed launch overhead per kernel. A conv2d is an implicit
   GEMM (input windows staged once per tile, not im2col), a depthwise conv a memory-bound
   kernel (`mapping.conv`).

Achieved rates are the chip's own: the GEMM and STREAM shares its microbenchmarks measured
(`GpuParams.rates`, data/gpu_chips.yaml) times the serving shares fitted on H100. Attention runs
at the chip's GEMM share x `attention_serving_fraction`, in the wider of the query's and the KV
cache's formats (FP16 where the software stack has no FP8 context attention); a stack without
GQA-aware decode kernels (`gqa_kv_sharing` 0) reads each KV head once per query head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from tegel.hardware import Chip, System
from tegel.mapping.conv import implicit_gemm_staged_bytes, is_depthwise
from tegel.mapping.gpu_data import ChipRates
from tegel.mapping.params import GpuParams
from tegel.mapping.plan import (
    Plan,
    PlanRequest,
    Step,
    StepKind,
    compute_class,
    stage_layers,
    step_kind,
)
from tegel.mapping.sharding import OpShard, collective_traffic, shard_graph
from tegel.workload.attention_counts import shared_prefix_fraction
from tegel.workload.ir import GEMM_KINDS, Attention, Graph, Op, OpKind, OpRole, Role
from tegel.workload.ops import experts_touched, gemm_dims, work
from tegel.workload.roles import Section, block_output, op_positions

# SLICE: a view of its producer's output (MLA's split of kv_a into latent and rope key)
_EPILOGUE = frozenset({OpKind.UNARY, OpKind.BINARY, OpKind.ROPE, OpKind.KV_CACHE_WRITE,
                       OpKind.SLICE})
_ATTENTION_KINDS = frozenset({OpKind.ATTENTION, OpKind.LATENT_ATTENTION})


@dataclass(frozen=True, slots=True)
class Kernel:
    """Ops executed as one GPU kernel; `ops[0]` is the main op."""

    name: str
    ops: tuple[Op, ...]

    @property
    def kind(self) -> StepKind:
        return step_kind(self.ops[0])


def fuse_kernels(graph: Graph) -> tuple[Kernel, ...]:
    """Group the ops of `graph` into GPU kernels (horizontal GEMM fusion, epilogue fusion)."""
    kernels: list[list[Op]] = []
    home: dict[str, int] = {}  # tensor name -> kernel that produced it
    gemm_by_input: dict[tuple[str, int], int] = {}
    for op in graph.ops:
        target = None
        if (op.kind is OpKind.MATMUL and op.inputs[1].role is Role.WEIGHT
                and op.role is not OpRole.ROUTER):
            key = (op.inputs[0].name, op.layer)
            target = gemm_by_input.get(key)
            if target is None:
                gemm_by_input[key] = len(kernels)
        elif op.kind in _EPILOGUE:
            producers = [home[t.name] for t in op.inputs if t.name in home]
            fusable = [k for k in producers if kernels[k][0].kind in GEMM_KINDS | _ATTENTION_KINDS]
            target = max(fusable) if fusable else None
        if target is None:
            kernels.append([op])
            target = len(kernels) - 1
        else:
            kernels[target].append(op)
        for t in op.outputs:
            home[t.name] = target
    return tuple(Kernel("+".join(o.name for o in ops) if len(ops) < 3 else
                        f"{ops[0].name}+{len(ops) - 1}", tuple(ops)) for ops in kernels)


def gemm_efficiency(m: float, n: int, k: int, batch: int, sms: int, p: GpuParams,
                    share: float) -> float:
    """Share of peak a GEMM reaches: `share` (the best case: the chip's measured GEMM share x
    the serving share) after tile and wave quantization.

    Tiles of tile_m x tile_n (small_tile_m rows when M is small) are spread over the SMs in
    waves; a GEMM with fewer tiles than SMs splits K to fill them, down to split_k_min_k.
    """
    tm = p.small_tile_m if m <= p.small_tile_m else p.tile_m
    tiles_m, tiles_n = math.ceil(m / tm), math.ceil(n / p.tile_n)
    tiles = tiles_m * tiles_n * batch
    split = max(1, min(sms // tiles if tiles < sms else 1, k // p.split_k_min_k))
    waves = math.ceil(tiles * split / sms)
    wave_use = tiles * split / (waves * sms)
    tile_use = (m * n) / (tiles_m * tm * tiles_n * p.tile_n)
    return share * wave_use * tile_use


class _Levels:
    """Indices of the GPU's storage levels the policy uses."""

    def __init__(self, chip: Chip) -> None:
        levels = chip.levels()
        self.names = tuple(lv.name for lv in levels)
        scopes = [lv.scope for lv in levels]
        self.smem = max(i for i, s in enumerate(scopes) if s == "tile")
        chip_levels = [i for i, s in enumerate(scopes) if s == "chip"]
        self.l2 = chip_levels[-1] if chip_levels else None
        self.l2_bytes = levels[self.l2].capacity_bytes if self.l2 is not None else 0.0
        self.hbm = scopes.index("offchip")


@dataclass(frozen=True, slots=True)
class _Context:
    """What every kernel of one plan shares."""

    shards: dict[str, OpShard]
    consumers: dict[str, set[int]]  # tensor -> kernels that read it
    graph_outputs: set[str]
    levels: _Levels
    chip: Chip
    params: GpuParams
    rates: ChipRates  # the chip's measured microbenchmark shares
    layers: int  # per stage, for a block not in the request's layer pattern
    repeats: dict[int, int]  # block layer -> the model layers it stands for, per stage
    first_layers: dict[int, int]  # block layer -> the first model layer it stands for

    def repeat(self, op: Op) -> int:
        return self.repeats.get(op.layer, self.layers) if op.layer >= 0 else 1


def _kernel_step(kernel: Kernel, index: int, ctx: _Context) -> Step:
    lv, p, shards, consumers = ctx.levels, ctx.params, ctx.shards, ctx.consumers
    reads = [0.0] * len(lv.names)
    writes = [0.0] * len(lv.names)
    inside = {t.name for op in kernel.ops for t in op.outputs}
    flops = 0.0
    resident = p.l2_resident_fraction * lv.l2_bytes

    def place(nbytes: float, role: Role, into: list[float]) -> None:
        if role is Role.ACTIVATION and lv.l2 is not None and nbytes <= resident:
            into[lv.l2] += nbytes
            return
        into[lv.hbm] += nbytes
        if lv.l2 is not None:  # everything to and from HBM passes through L2
            into[lv.l2] += nbytes

    for op in kernel.ops:
        w, shard = work(op), shards[op.name]
        flops += w.flops / shard.flops_div
        for t, b, d in zip(op.inputs, w.read_bytes, shard.read_div, strict=True):
            if t.name not in inside:
                place(b / d, t.role, reads)
        for t, b, d in zip(op.outputs, w.write_bytes, shard.write_div, strict=True):
            if t.name in ctx.graph_outputs or consumers.get(t.name, set()) - {index}:
                place(b / d, t.role, writes)
    main = kernel.ops[0]
    efficiency = 1.0
    level_share: tuple[float, ...] = ()
    cls = compute_class(main)
    if kernel.kind in (StepKind.GEMM, StepKind.MOE) and not is_depthwise(main):
        share = ctx.rates.gemm_fraction(cls) * p.gemm_serving_fraction
        efficiency, smem = _gemm_traffic(kernel, shards, ctx.chip, p, share)
        reads[lv.smem] += smem
        writes[lv.smem] += smem
        if lv.l2 is not None:
            reads[lv.l2] += max(0.0, smem - reads[lv.l2])
    elif kernel.kind is StepKind.ATTENTION:
        cls = _attention_class(main, p)
        efficiency = ctx.rates.gemm_fraction(cls) * p.attention_serving_fraction
        beams, heads = _kv_rereads(main, p)
        for t, b, d in zip(main.inputs[1:], work(main).read_bytes[1:],
                           shards[main.name].read_div[1:], strict=True):
            place(beams * b / d, t.role, reads)
            if lv.l2 is not None:
                reads[lv.l2] += heads * b / d
            else:
                place(heads * b / d, t.role, reads)
        if lv.l2 is not None and _per_query_head(main, p):
            level_share = tuple(p.per_head_attention_l2_fraction / p.l2_bandwidth_fraction
                                if i == lv.l2 else 1.0 for i in range(len(lv.names)))
    return Step(name=kernel.name, kind=kernel.kind, stage=-1 if main.layer >= 0 else 0,
                repeat=ctx.repeat(main), flops=flops,
                compute_class=cls, compute_efficiency=efficiency,
                reads=tuple(reads), writes=tuple(writes), overhead_s=p.kernel_overhead_s,
                level_share=level_share,
                ops=tuple(o.name for o in kernel.ops),
                first_layer=ctx.first_layers.get(main.layer, 0) if main.layer >= 0 else -1)


def _attention_class(op: Op, p: GpuParams) -> str:
    """The format attention computes in: the wider of the query's and the KV cache's (FP4
    activations with an FP8 cache attend in FP8), 16-bit without FP8 context attention."""
    widest = max((t.dtype for t in op.inputs), key=lambda d: d.bits)
    if widest.bits <= 8 and not p.fp8_context_attention:
        return "bf16"
    return widest.compute_class


def _decoding(op: Op) -> bool:
    """Whether an attention op is a decode step's: one query token per sequence."""
    return isinstance(op.attrs, Attention) and op.inputs[0].shape[1] == 1


def _per_query_head(op: Op, p: GpuParams) -> bool:
    """Whether a decode attention op runs the kernel of one thread block per query head (a
    stack without GQA-aware generation kernels), whose L2 rate is
    `per_head_attention_l2_fraction`. Latent attention is never such a kernel."""
    return _decoding(op) and p.gqa_kv_sharing < 1.0


def _kv_rereads(op: Op, p: GpuParams) -> tuple[float, float]:
    """(re-reads from HBM, re-reads from L2) of the KV cache, in multiples of what the op
    counts, of a decode attention kernel. One that reads per beam (`beam_kv_sharing` 0) reads
    the prompt's cache, which the beams of a request share in memory, once per beam, from HBM.
    One not GQA-aware reads each KV head again for every query head of its group: from L2, as
    its grid is (heads, batch), so the blocks that re-read run beside the first reader
    (`per_head_attention_l2_fraction` in mapping/data/gpu.yaml). None for latent attention: its
    kernels (FlashMLA, vLLM's MLA backends) read the latent cache once for all heads."""
    a = op.attrs
    if not isinstance(a, Attention) or not _decoding(op):
        return 0.0, 0.0
    group = a.num_heads // a.num_kv_heads
    heads = (group - 1) * (1.0 - p.gqa_kv_sharing)
    counted = shared_prefix_fraction(a.kv_group, a.kv_shared, op.inputs[1].shape[1])
    beams = (1.0 / counted - 1.0) * (1.0 - p.beam_kv_sharing)
    return beams, heads * (1.0 + beams)


def _gemm_traffic(kernel: Kernel, shards: dict[str, OpShard], chip: Chip,
                  p: GpuParams, share: float) -> tuple[float, float]:
    """(compute efficiency, bytes staged through shared memory) of a (fused) GEMM kernel."""
    gemms = [op for op in kernel.ops if op.kind in GEMM_KINDS]
    main = gemms[0]
    if main.kind is OpKind.MOE_EXPERTS:
        a = main.attrs
        tokens = main.inputs[0].numel // main.inputs[0].shape[-1]
        _, f, h = main.inputs[3].shape
        # expected tokens per expert that receives any: the same (fractional) count the FLOPs use
        touched = experts_touched(a, tokens)  # type: ignore[arg-type]
        per_expert = tokens * a.top_k / touched  # type: ignore[union-attr]
        f_chip = max(1, f // int(shards[main.name].flops_div))
        eff = p.moe_gemm_efficiency * gemm_efficiency(per_expert, 2 * f_chip, h, math.ceil(touched),
                                                      chip.tile_count, p, share)
        staged = sum(work(main).read_bytes[3:]) / shards[main.name].flops_div
        return eff, staged * math.ceil(per_expert / p.tile_m) + main.inputs[0].nbytes * 3
    dims = gemm_dims(main)[0]
    m, k, batch = dims.m, dims.k, math.ceil(dims.count)
    if main.kind is OpKind.CONV2D:  # an implicit GEMM: input windows staged, not im2col
        out_div = shards[main.name].write_div[0]
        n_conv = max(1, int(dims.n / out_div))
        tm = p.small_tile_m if m <= p.small_tile_m else p.tile_m
        return (gemm_efficiency(m, n_conv, k, batch, chip.tile_count, p, share),
                implicit_gemm_staged_bytes(main, tm, p.tile_n, out_div))
    n = sum(gemm_dims(g)[0].n / shards[g.name].write_div[0] for g in gemms)
    n_int = max(1, int(n))
    eff = gemm_efficiency(m, n_int, k, batch, chip.tile_count, p, share)
    tm = p.small_tile_m if m <= p.small_tile_m else p.tile_m
    bytes_a = main.inputs[0].nbytes / shards[main.name].read_div[0]
    bytes_b = sum(work(g).read_bytes[1] / shards[g.name].read_div[1] for g in gemms)
    staged = bytes_a * math.ceil(n_int / p.tile_n) + bytes_b * math.ceil(m / tm)
    return eff, staged


def plan_gpu(graph: Graph, system: System, req: PlanRequest, params: GpuParams) -> Plan:
    """Kernel-by-kernel plan of a (layer-folded) graph on each chip of a replica.

    Each of the graph's transformer layers (one per kind of layer: `workload.folding`) repeats
    as often as the request's layer pattern says; with pipeline parallelism each of the pp
    stages runs 1 / pp of them, the first stage also what comes before the layers and the last
    what comes after.
    """
    p = params.for_software(req.software)
    par, chip = req.parallelism, system.chip
    link = system.collective_link(par.tp)
    link_latency_s, topology = (link.latency_s, link.topology) if link else (0.0, "switch")
    # the node's measured all-reduce share applies to collectives on its scale-up network
    on_scale_up = link is not None and link is system.scale_up
    lv = _Levels(chip)
    kernels = fuse_kernels(graph)
    consumers: dict[str, set[int]] = {}
    for i, kern in enumerate(kernels):
        for op in kern.ops:
            for t in op.inputs:
                consumers.setdefault(t.name, set()).add(i)
    rates = p.rates(chip.name, chip.same_silicon_as)
    pattern = req.pattern(graph)
    ctx = _Context(shard_graph(graph, par.tp, par.ep), consumers,
                   {t.name for t in graph.outputs}, lv, chip, p, rates,
                   math.ceil(req.layers / par.pp),
                   {r: math.ceil(pattern.count(r) / par.pp) for r in set(pattern)},
                   {r: pattern.index(r) for r in set(pattern)})
    after_layers = {name for name, pos in op_positions(graph).items()
                    if pos.section is Section.EPILOGUE}
    # several kinds of layer over pipeline stages: each stage runs its own layers of each kind
    per_stage = par.pp > 1 and len(set(pattern)) > 1
    ranges = stage_layers(len(pattern), par.pp)
    steps: list[Step] = []
    for i, kern in enumerate(kernels):
        step = _kernel_step(kern, i, ctx)
        main = kern.ops[0]
        if main.name in after_layers:
            step = _with_stage(step, par.pp - 1)
        elif i == 0 and step.repeat == 1:
            # the engine's host work per forward call (schedule, sample) before kernel 0
            step = replace(step, overhead_s=step.overhead_s + p.iteration_overhead_s)
        copies = [step]
        if per_stage and main.layer >= 0:
            copies = [replace(step, stage=st, repeat=pattern[a:b].count(main.layer),
                              first_layer=a + pattern[a:b].index(main.layer))
                      for st, (a, b) in enumerate(ranges) if main.layer in pattern[a:b]]
        for each in copies:
            steps.append(each)
            for op in kern.ops:
                shard = ctx.shards[op.name]
                if shard.collective and par.tp > 1:
                    steps.append(_collective(op.name, shard, par.tp, each, lv, link_latency_s,
                                             topology, p, rates if on_scale_up else None))
    carried = block_output(graph)
    if par.pp > 1 and carried is not None:
        steps.append(Step("stage_transfer", StepKind.TRANSFER, -1, 1, 0.0, "bf16", 1.0,
                          (0.0,) * len(lv.names), (0.0,) * len(lv.names),
                          link_bytes=carried.nbytes, link_latency_s=link_latency_s))
    efficiencies = tuple(rates.hbm_fraction * p.hbm_serving_fraction if i == lv.hbm else
                         p.l2_bandwidth_fraction if i == lv.l2 else 1.0
                         for i in range(len(lv.names)))
    measured = ("microbenchmarks: measured" if rates.measured and not rates.sibling else
                f"microbenchmarks: none for {chip.name}; GEMM and HBM shares of {rates.sibling}, "
                "the same die (gpu_chips.yaml)" if rates.measured else
                f"microbenchmarks: none for {chip.name}; default shares assumed (gpu_chips.yaml)")
    return Plan(system.name, "gpu", req.phase, par, lv.names, efficiencies, par.pp,
                req.microbatches, par.tp, tuple(steps),
                notes=(f"software: {p.software}", measured),
                collective_efficiency=rates.allreduce_fraction if on_scale_up else 1.0)


def _with_stage(step: Step, stage: int) -> Step:
    return replace(step, stage=stage)


def _collective(name: str, shard: OpShard, tp: int, after: Step, lv: _Levels,
                link_latency_s: float, topology: str, p: GpuParams,
                scale_up_rates: ChipRates | None) -> Step:
    """The collective after a tensor-parallel op, staged through L2 (else HBM). On the node's
    scale-up network (`scale_up_rates`: its chip's rates; None off it) an all-reduce larger than the engine's
    custom kernel takes goes through NCCL / RCCL at the bus bandwidth the chip's sweep measured
    at that message size, the whole operation's time (no fixed cost on top); smaller ones run
    at the large-message share plus the fitted fixed cost."""
    sent, hops = collective_traffic(shard, tp, topology)
    traffic = [0.0] * len(lv.names)
    traffic[lv.l2 if lv.l2 is not None else lv.hbm] = sent
    share, overhead = 1.0, p.collective_overhead_s
    limit = p.custom_allreduce_max_bytes_tp2 if tp <= 2 else p.custom_allreduce_max_bytes
    if scale_up_rates is not None and shard.collective == "all_reduce" \
            and shard.collective_bytes > limit:
        share, overhead = scale_up_rates.allreduce_share_at(shard.collective_bytes), 0.0
    return Step(f"{name}.{shard.collective}", StepKind.COLLECTIVE, after.stage, after.repeat, 0.0, "bf16",
                1.0, tuple(traffic), tuple(traffic), link_bytes=sent,
                link_latency_s=hops * link_latency_s, link_share=share, overhead_s=overhead)
