"""Lowering a compiled plan to the steps both evaluators price.

Besides the compiled work, lowering adds what a deployed system spends around it (parameters in
`DataflowParams`, values and sources in `mapping/data/dataflow.yaml`): each forward call's host
round trip (the sampled token goes back through the host to the first stage) on the plan's last
op, a pipeline hand-off on every transfer between chips (a host round trip instead where the
link passes through host servers), a synchronisation on every collective between chips, and the
achieved share of NoC bandwidth. They are terms of the steps, so both evaluators see them.
So are the operands' register accesses in the array (where the chip's energy per op leaves
them out) and their staging through on-chip SRAM on the way to and from off-chip memory
(`mapping.registers`).
"""

from __future__ import annotations

from dataclasses import replace

from tegel.errors import TegelError
from tegel.hardware import System
from tegel.mapping.compiled import CompiledPlan
from tegel.mapping.params import DataflowParams, default_params
from tegel.mapping.plan import Link, Plan, Step, StepKind, compute_class, step_kind
from tegel.mapping.registers import OperandPaths, operand_of
from tegel.mapping.routing import noc_links
from tegel.mapping.sharding import collective_traffic, shard_graph
from tegel.workload.ir import MoEExperts, Op
from tegel.workload.ops import experts_touched, work


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
    link = system.collective_link(par.tp)
    tiles = plan.tiles_per_chip
    hop_s = chip.noc.hop_latency_s
    noc_bps = chip.noc.link_bytes_per_s * noc_links(chip)
    # the NoC's unachieved share, as seconds on top of the pooled traffic's (energy unchanged)
    noc_slack = 1.0 / p.noc_bandwidth_fraction - 1.0
    zeros = (0.0,) * len(names)
    steps: list[Step] = []
    splits = {(sp.stage, sp.op): sp for sp in plan.splits}
    homes_by_stage = plan.homes_by_stage()
    works = {op.name: work(op) for op in plan.graph.ops}
    paths = OperandPaths.of(chip)
    for st in plan.stages:
        homes = homes_by_stage[st.index]
        share = st.region.tiles / tiles
        for seg in st.segments:
            for name in seg.ops:
                op, sp, shard = ops[name], splits[(st.index, name)], shards[name]
                w = works[name]
                reads, writes = [0.0] * len(names), [0.0] * len(names)
                for t, b, d in zip(op.inputs, w.read_bytes, shard.read_div, strict=True):
                    at = index[homes[t.name].level]
                    reads[at] += b / d
                    _stage(paths.staged(at, operand_of(t, False)), b / d, reads, writes)
                for t, b, d in zip(op.outputs, w.write_bytes, shard.write_div, strict=True):
                    at = index[homes[t.name].level]
                    writes[at] += b / d
                    _stage(paths.staged(at, operand_of(t, True)), b / d, reads, writes)
                for at, rd, wr in paths.register_bytes(op, 1.0 / shard.flops_div,
                                                       compute_class(op)):
                    reads[at] += rd
                    writes[at] += wr
                steps.append(Step(name, step_kind(op), st.index, seg.repeat,
                                  w.flops / shard.flops_div, compute_class(op), sp.utilisation,
                                  tuple(reads), tuple(writes), noc_byte_hops=sp.noc_byte_hops,
                                  noc_latency_s=sp.noc_hops * hop_s + noc_slack * (
                                      sp.noc_byte_hops / (noc_bps * share) if sp.noc_byte_hops
                                      else 0.0),
                                  overhead_s=p.step_overhead_s,
                                  resource_share=share / _busiest(op, par.ep),
                                  ops=(name,), first_layer=seg.first_layer))
                if shard.collective and par.tp > 1:
                    if link is None:
                        raise TegelError(f"{system.name}: tensor parallelism needs chip-to-chip "
                                         "links, but the system has none")
                    sent, hops = collective_traffic(shard, par.tp, link.topology)
                    steps.append(Step(f"{name}.{shard.collective}", StepKind.COLLECTIVE,
                                      st.index, seg.repeat, 0.0, "bf16", 1.0, zeros, zeros,
                                      link_bytes=sent, link_latency_s=hops * link.latency_s,
                                      overhead_s=p.collective_sync_s + (
                                          p.host_round_trip_s if link.via_host else 0.0),
                                      resource_share=share, ops=(name,),
                                      first_layer=seg.first_layer))
    steps = _with_round_trip(steps, p.host_round_trip_s)
    handoff = p.host_round_trip_s if link is not None and link.via_host else p.stage_handoff_s
    for tr in plan.transfers:
        noc = [lk for lk in tr.route if lk.kind != "c2c"]
        c2c = [lk for lk in tr.route if lk.kind == "c2c"]
        share = plan.stages[tr.src_stage].region.tiles / tiles
        steps.append(Step(f"transfer {tr.tensor} {tr.src_stage}->{tr.dst_stage}",
                          StepKind.TRANSFER, tr.src_stage, 1, 0.0, "bf16", 1.0, zeros, zeros,
                          noc_byte_hops=tr.bytes * len(noc), link_bytes=tr.bytes if c2c else 0.0,
                          overhead_s=handoff if c2c else 0.0, resource_share=share,
                          route=_achieved(tr.route, p.noc_bandwidth_fraction),
                          transfer_bytes=tr.bytes))
    efficiency = tuple(p.offchip_bandwidth_fraction if lv.scope == "offchip" else
                       p.sram_bandwidth_fraction for lv in plan.levels)
    return Plan(plan.system, "dataflow", plan.phase, par, names, efficiency,
                len(plan.stages), plan.microbatches, par.tp, tuple(steps), plan.notes)


def _stage(level: int | None, nbytes: float, reads: list[float], writes: list[float]) -> None:
    """An operand staged through on-chip `level` (None: not staged): written there, read out."""
    if level is not None:
        reads[level] += nbytes
        writes[level] += nbytes


def _with_round_trip(steps: list[Step], seconds: float) -> list[Step]:
    """`steps` with the call's host round trip on the last op of the last stage (spread over
    its repeats when that op is in a repeated segment)."""
    if not seconds or not steps:
        return steps
    last = max(range(len(steps)), key=lambda i: (steps[i].stage, i))
    s = steps[last]
    out = list(steps)
    out[last] = replace(s, overhead_s=s.overhead_s + seconds / s.repeat)
    return out


def _achieved(route: tuple[Link, ...], fraction: float) -> tuple[Link, ...]:
    """A transfer's route with its on-chip bundles at the achieved share of their bandwidth."""
    if fraction == 1.0:
        return route
    return tuple(lk if lk.kind == "c2c" else replace(lk, bytes_per_s=lk.bytes_per_s * fraction)
                 for lk in route)


def _busiest(op: Op, ep: int) -> float:
    """How much longer than the average chip the busiest one works on an expert op split over
    `ep` chips: the experts a call touches sit on some chips only (ep >= experts: each expert
    on ep / experts chips; fewer: up to experts / ep touched experts on one chip). Its time is
    that chip's; the energy (work x energy per action) is unchanged."""
    a = op.attrs
    if ep <= 1 or not isinstance(a, MoEExperts):
        return 1.0
    tokens = op.inputs[0].numel // op.inputs[0].shape[-1]
    touched = experts_touched(a, tokens)
    return max(1.0, min(float(ep), a.num_experts / touched)) if touched else 1.0
