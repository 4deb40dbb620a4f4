"""How a whole graph (a CNN, any model that is not an LLM config) is scheduled on a system.

Two schedules, as ZigZag/Stream name them:

- **layer** (layer by layer): one stage on the whole chip; each op split over every tile in
  turn, the whole batch at once. Activations stay in tile SRAM when the largest op's working
  set fits beside the resident weights, else they spill to off-chip memory between ops
  (`compiler.place_tensors`).
- **fused** (layer-fused, pipelined across tile regions, as Stream, Symons et al.,
  arXiv 2212.10612): consecutive layers (blocks of ops with one `op.layer`; ops when the graph
  has none) on their own regions of tiles — at most one stage per tile, each region sized to
  its layer's estimated time (`PlanRequest.balance_regions`) — weights resident there,
  activations streamed region to region; the batch goes through as micro-batches of one image
  (the graph rebuilt at the smaller batch, `rebatch`), so the regions work on successive images
  at once and each holds one image's activations. A graph that cannot be rebuilt at the
  smaller batch runs as one micro-batch (said in the notes).

A GPU runs kernel by kernel whatever the schedule (both give its one plan). The default is
`auto`: a graph run prices both on a dataflow chip and keeps the faster, saying so — which one
wins depends on the network, the batch and the chip (layer by layer when one layer can use the
whole chip and nothing spills; fused when activations would spill or a pipeline of images
keeps every region busy).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from tegel.errors import TegelError
from tegel.hardware import System
from tegel.mapping.plan import Parallelism, PlanRequest
from tegel.workload.graph import GraphError, verify
from tegel.workload.ir import Graph, Op, Role, Tensor
from tegel.workload.llm import Phase
from tegel.workload.ops import ShapeError, infer, work


class Schedule(enum.Enum):
    LAYER = "layer"
    FUSED = "fused"
    AUTO = "auto"  # both, the faster kept (serving.graph_run)

    @classmethod
    def parse(cls, text: str) -> Schedule:
        try:
            return cls(text)
        except ValueError:
            raise TegelError(f"--schedule: expected layer, fused or auto, got {text!r}") from None


DEFAULT_SCHEDULE = Schedule.AUTO


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A graph as a policy is asked to plan it: the graph (at the micro-batch size), the
    request, and what was decided on the way (for the result's notes)."""

    graph: Graph
    request: PlanRequest
    schedule: Schedule
    batch: int  # inferences (images) of one forward call
    notes: tuple[str, ...] = ()


def graph_batch(graph: Graph) -> int:
    """The batch of a graph: the leading size shared by its (non-weight) inputs (1 if none)."""
    sizes = {t.shape[0] for t in graph.inputs if t.shape}
    return sizes.pop() if len(sizes) == 1 else 1


def blocks(graph: Graph) -> list[int]:
    """The layer blocks of a graph in order (each distinct `op.layer` >= 0)."""
    return list(dict.fromkeys(op.layer for op in graph.ops if op.layer >= 0))


def rebatch(graph: Graph, batch: int) -> Graph | None:
    """`graph` with every input's leading size `batch`, every output shape inferred again by
    the op rules; None where an op's attributes fix the batch (inference fails) or the work does
    not scale with it (FLOPs not in proportion)."""
    old = graph_batch(graph)
    if batch == old:
        return graph
    renamed: dict[str, Tensor] = {}
    inputs = []
    for t in graph.inputs:
        nt = replace(t, shape=(batch, *t.shape[1:])) if t.shape else t
        renamed[t.name] = nt
        inputs.append(nt)
    for t in graph.weights:
        renamed[t.name] = t
    ops: list[Op] = []
    try:
        for op in graph.ops:
            ins = tuple(renamed[t.name] for t in op.inputs)
            specs = infer(op.kind, ins, op.attrs)
            outs = tuple(replace(t, shape=shape) for t, (shape, _) in
                         zip(op.outputs, specs, strict=True))
            renamed.update({t.name: t for t in outs})
            ops.append(replace(op, inputs=ins, outputs=outs))
        out = verify(replace(graph, inputs=tuple(inputs), ops=tuple(ops),
                             outputs=tuple(renamed[t.name] for t in graph.outputs)))
    except (ShapeError, GraphError, KeyError, ValueError):
        return None
    scale = old / batch
    for a, b in zip(graph.ops, out.ops, strict=True):
        if abs(work(b).flops * scale - work(a).flops) > 1e-9 * max(1.0, work(a).flops):
            return None
    return out


def schedule_graph(graph: Graph, system: System, schedule: Schedule,
                   single: Graph | None = None, spill_activations: bool = False) -> Scheduled:
    """The graph and request of `schedule` (module doc) for one replica on one chip; `single`
    is the network at batch 1 when the caller has it (else `rebatch` derives it);
    `spill_activations` as `PlanRequest`'s."""
    batch = graph_batch(graph)
    chip = system.chip
    if any(t.role is Role.KV_CACHE for t in graph.inputs):
        raise TegelError(f"{graph.name}: a graph with a KV cache is an LLM phase; use a model "
                         "config (`tegel run MODEL`)")
    if chip.architecture != "dataflow" or schedule is Schedule.LAYER:
        note = () if chip.architecture == "dataflow" else (
            f"{chip.name} runs kernel by kernel: the schedule does not apply",)
        req = PlanRequest(Phase(batch, 1, 0), Parallelism(), 1, 1,
                          spill_activations=spill_activations)
        return Scheduled(graph, req, schedule, batch, note)
    units = len(blocks(graph)) or len(graph.ops)
    stages = max(1, min(units, chip.tile_count))
    notes: list[str] = []
    if stages == 1:
        notes.append(f"{chip.name}: one region ({chip.tile_count} tile(s), {units} layer(s)): "
                     "fused is layer by layer")
    micro, per_call = batch, graph
    if batch > 1 and stages > 1:
        smaller = single if single is not None and graph_batch(single) == 1 else rebatch(graph, 1)
        if smaller is None:
            micro = 1
            notes.append(f"{graph.name}: cannot be rebuilt at batch 1; one micro-batch")
        else:
            per_call = smaller
    else:
        micro = 1
    req = PlanRequest(Phase(graph_batch(per_call), 1, 0), Parallelism(), 1, stages,
                      microbatches=micro, balance_regions=True,
                      spill_activations=spill_activations)
    return Scheduled(per_call, req, schedule, batch, tuple(notes))
