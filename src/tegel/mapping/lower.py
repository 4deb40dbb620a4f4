"""Lowering a compiled plan to the steps both evaluators price."""

from __future__ import annotations

from tegel.errors import TegelError
from tegel.hardware import System
from tegel.mapping.compiled import CompiledPlan
from tegel.mapping.params import DataflowParams, default_params
from tegel.mapping.plan import Plan, Step, StepKind, compute_class, step_kind
from tegel.mapping.sharding import collective_traffic, shard_graph
from tegel.workload.ops import work


def lower(plan: CompiledPlan, system: System, params: DataflowParams | None = None) -> Plan:
    """The steps of a compiled plan, which both evaluators price: one step per op and stage
    (repeated for the stage's layers, each chip's share under tensor parallelism), a collective
    step after every op whose partial results the tp chips combine, one step per transfer."""
    p = params or default_params().dataflow
    chip = system.chip
    names = tuple(lv.name for lv in plan.levels)
    index = {n: i for i, n in enumerate(names)}
    ops = {op.name: op for op in plan.graph.ops}
    par = plan.parallelism
    shards = shard_graph(plan.graph, par.tp, par.ep)
    link = system.scale_up
    tiles = plan.tiles_per_chip
    hop_s = chip.noc.hop_latency_s
    zeros = (0.0,) * len(names)
    steps: list[Step] = []
    splits = {(sp.stage, sp.op): sp for sp in plan.splits}
    homes_by_stage = plan.homes_by_stage()
    works = {op.name: work(op) for op in plan.graph.ops}
    for st in plan.stages:
        homes = homes_by_stage[st.index]
        share = st.region.tiles / tiles
        for seg in st.segments:
            for name in seg.ops:
                op, sp, shard = ops[name], splits[(st.index, name)], shards[name]
                w = works[name]
                reads, writes = [0.0] * len(names), [0.0] * len(names)
                for t, b, d in zip(op.inputs, w.read_bytes, shard.read_div, strict=True):
                    reads[index[homes[t.name].level]] += b / d
                for t, b, d in zip(op.outputs, w.write_bytes, shard.write_div, strict=True):
                    writes[index[homes[t.name].level]] += b / d
                steps.append(Step(name, step_kind(op), st.index, seg.repeat,
                                  w.flops / shard.flops_div, compute_class(op), sp.utilisation,
                                  tuple(reads), tuple(writes), noc_byte_hops=sp.noc_byte_hops,
                                  noc_latency_s=sp.noc_hops * hop_s,
                                  overhead_s=p.step_overhead_s, resource_share=share,
                                  ops=(name,), first_layer=seg.first_layer))
                if shard.collective and par.tp > 1:
                    if link is None:
                        raise TegelError(f"{system.name}: tensor parallelism needs chip-to-chip "
                                         "links, but the system has none")
                    sent, hops = collective_traffic(shard, par.tp, link.topology)
                    steps.append(Step(f"{name}.{shard.collective}", StepKind.COLLECTIVE,
                                      st.index, seg.repeat, 0.0, "bf16", 1.0, zeros, zeros,
                                      link_bytes=sent, link_latency_s=hops * link.latency_s,
                                      resource_share=share, ops=(name,),
                                      first_layer=seg.first_layer))
    for tr in plan.transfers:
        noc = [lk for lk in tr.route if lk.kind != "c2c"]
        c2c = [lk for lk in tr.route if lk.kind == "c2c"]
        share = plan.stages[tr.src_stage].region.tiles / tiles
        steps.append(Step(f"transfer {tr.tensor} {tr.src_stage}->{tr.dst_stage}",
                          StepKind.TRANSFER, tr.src_stage, 1, 0.0, "bf16", 1.0, zeros, zeros,
                          noc_byte_hops=tr.bytes * len(noc), link_bytes=tr.bytes if c2c else 0.0,
                          resource_share=share, route=tr.route, transfer_bytes=tr.bytes))
    efficiency = tuple(p.offchip_bandwidth_fraction if lv.scope == "offchip" else
                       p.sram_bandwidth_fraction for lv in plan.levels)
    return Plan(plan.system, "dataflow", plan.phase, par, names, efficiency,
                len(plan.stages), plan.microbatches, par.tp, tuple(steps), plan.notes)
