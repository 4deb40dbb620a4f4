"""What each op is to the model, read from the graph's structure; and where it sits in it.

`assign_roles` is frontend-neutral: it reads op kinds and attributes, tensor roles (weight,
runtime input, KV cache), producer/consumer edges and the graph's outputs — never a name —
so a graph from a config, from `torch.export` or from ONNX gets the same roles, and mapping
can dispatch on roles (DESIGN.md, "Engine invariants"). What it does not recognise stays
`OpRole.OTHER`; it never raises.

`op_positions` places every op in the prologue, a block or the epilogue, so a graph built with
one layer per kind can be matched op for op with the full graph (`fold_keys`), again without
names.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass, replace

from tegel.workload.ir import (
    Binary,
    BinaryFn,
    Graph,
    Op,
    OpKind,
    OpRole,
    RMSNorm,
    Role,
    Tensor,
    Unary,
    UnaryFn,
)

# Roles that follow from an op's kind alone.
_KIND_ROLE = {
    OpKind.RMSNORM: OpRole.NORM,
    OpKind.LAYERNORM: OpRole.NORM,
    OpKind.ROPE: OpRole.ROPE,
    OpKind.KV_CACHE_WRITE: OpRole.KV_WRITE,
    OpKind.ATTENTION: OpRole.ATTENTION,
    OpKind.LATENT_ATTENTION: OpRole.ATTENTION,
    OpKind.MOE_ROUTER: OpRole.ROUTE,
    OpKind.MOE_EXPERTS: OpRole.EXPERTS,
    OpKind.SLICE: OpRole.SLICE,
}
# Elementwise functions that are an MLP's nonlinearity (NEG is arithmetic, not an activation).
_ACTIVATIONS = frozenset({UnaryFn.SILU, UnaryFn.GELU, UnaryFn.GELU_TANH, UnaryFn.RELU})
_PROJECTION_OF_ATTENTION_INPUT = (OpRole.Q_PROJ, OpRole.K_PROJ, OpRole.V_PROJ)


def _is_weight_matmul(op: Op) -> bool:
    """A matmul by a parameter matrix (a linear layer, the LM head, the router)."""
    return op.kind is OpKind.MATMUL and op.inputs[1].role is Role.WEIGHT


def _passes_through(op: Op) -> bool:
    """Ops between a projection and attention that keep the projection's meaning: rotary
    embedding, the KV-cache append and a per-head norm (Qwen3's q/k norms)."""
    if op.kind in (OpKind.ROPE, OpKind.KV_CACHE_WRITE):
        return True
    return isinstance(op.attrs, RMSNorm) and op.attrs.group > 0


def _passes_logits(op: Op) -> bool:
    """Ops between the LM head and the logits output: the last-token slice, a soft-cap."""
    return op.kind is OpKind.SLICE or (isinstance(op.attrs, Unary)
                                       and op.attrs.fn is UnaryFn.SOFTCAP)


def _is_binary(op: Op, fn: BinaryFn) -> bool:
    return isinstance(op.attrs, Binary) and op.attrs.fn is fn


class _Structure:
    """Producer and consumer edges of one graph, and the roles being assigned to its ops."""

    def __init__(self, graph: Graph) -> None:
        self.graph, self.ops = graph, graph.ops
        self.producer: dict[str, int] = {t.name: i for i, op in enumerate(self.ops) for t in op.outputs}
        self.consumers: dict[str, list[tuple[int, int]]] = defaultdict(list)  # (op, input slot)
        for i, op in enumerate(self.ops):
            for slot, t in enumerate(op.inputs):
                self.consumers[t.name].append((i, slot))
        self.outputs = {t.name for t in graph.outputs}
        self.roles = [_KIND_ROLE.get(op.kind, OpRole.OTHER) for op in self.ops]
        for i, op in enumerate(self.ops):
            if isinstance(op.attrs, Unary) and op.attrs.fn in _ACTIVATIONS:
                self.roles[i] = OpRole.ACTIVATION

    def made_by(self, t: Tensor) -> int | None:
        return self.producer.get(t.name)

    def weight_matmul_making(self, t: Tensor) -> int | None:
        i = self.made_by(t)
        return i if i is not None and _is_weight_matmul(self.ops[i]) else None

    def readers(self, t: Tensor, slot: int | None = None) -> list[int]:
        """Ops reading `t` (in input `slot` only, when given)."""
        return [i for i, s in self.consumers.get(t.name, ()) if slot is None or s == slot]

    def claim(self, i: int | None, role: OpRole) -> None:
        """Give op `i` `role` unless an earlier, more specific rule named it already."""
        if i is not None and self.roles[i] is OpRole.OTHER:
            self.roles[i] = role

    def projection_source(self, t: Tensor) -> int | None:
        """The weight matmul `t` comes from, looking back through rotary embedding (its x), a
        per-head norm (its x: Qwen3's q/k norms) and the KV-cache append (its new entries)."""
        i = self.made_by(t)
        while i is not None and _passes_through(self.ops[i]):
            op = self.ops[i]
            i = self.made_by(op.inputs[-1] if op.kind is OpKind.KV_CACHE_WRITE else op.inputs[0])
        return i if i is not None and _is_weight_matmul(self.ops[i]) else None

    # ---- the rules, most specific first --------------------------------------------------------

    def attention(self) -> None:
        """Q/K/V: the weight matmuls behind attention inputs 0/1/2; O: a weight matmul reading
        the attention output."""
        for op in self.ops:
            if op.kind is not OpKind.ATTENTION:
                continue
            for t, role in zip(op.inputs, _PROJECTION_OF_ATTENTION_INPUT, strict=True):
                self.claim(self.projection_source(t), role)
            for j in self.readers(op.outputs[0], slot=0):
                if _is_weight_matmul(self.ops[j]):
                    self.claim(j, OpRole.O_PROJ)

    def latent_attention(self) -> None:
        """Multi-head latent attention: Q the weight matmul behind the queries (through rotary
        embedding), LATENT the matmul behind a low-rank bottleneck before it (through its norm:
        q_a) and the one behind the cache's new entries (through rotary embedding, norm and the
        split of its output: kv_a); O a weight matmul reading the output."""
        for op in self.ops:
            if op.kind is not OpKind.LATENT_ATTENTION:
                continue
            q = self.projection_source(op.inputs[0])
            self.claim(q, OpRole.Q_PROJ)
            if q is not None:
                self.claim(self._behind(self.ops[q].inputs[0]), OpRole.LATENT_PROJ)
            write = self.made_by(op.inputs[1])
            if write is not None and self.ops[write].kind is OpKind.KV_CACHE_WRITE:
                pieces = self.ops[write].attrs.pieces  # type: ignore[union-attr]
                for t in self.ops[write].inputs[-pieces:]:
                    self.claim(self._behind(t), OpRole.LATENT_PROJ)
            for j in self.readers(op.outputs[0], slot=0):
                if _is_weight_matmul(self.ops[j]):
                    self.claim(j, OpRole.O_PROJ)

    def _behind(self, t: Tensor) -> int | None:
        """The weight matmul `t` comes from through norms, rotary embedding and slices."""
        i = self.made_by(t)
        while i is not None and self.ops[i].kind in (OpKind.RMSNORM, OpKind.LAYERNORM,
                                                     OpKind.ROPE, OpKind.SLICE):
            i = self.made_by(self.ops[i].inputs[0])
        return i if i is not None and _is_weight_matmul(self.ops[i]) else None

    def moe(self) -> None:
        """ROUTER: the weight matmul whose logits the top-k choice (ROUTE) reads."""
        for op in self.ops:
            if op.kind is OpKind.MOE_ROUTER:
                self.claim(self.weight_matmul_making(op.inputs[0]), OpRole.ROUTER)

    def mlp(self) -> None:
        """Gated: act(x W_gate) * (x W_up), then W_down: the matmul under the activation is
        GATE, the other factor of the MUL (GATING) is UP, the matmul reading the product DOWN.
        Plain: act(x W_up) W_down: the matmul under the activation is UP, the reader DOWN."""
        for i, act in enumerate(self.ops):
            if self.roles[i] is not OpRole.ACTIVATION:
                continue
            under = self.weight_matmul_making(act.inputs[0])
            for j in self.readers(act.outputs[0]):
                mul = self.ops[j]
                if _is_weight_matmul(mul) and mul.inputs[0] == act.outputs[0]:
                    self.claim(under, OpRole.UP_PROJ)
                    self.claim(j, OpRole.DOWN_PROJ)
                    continue
                if not _is_binary(mul, BinaryFn.MUL):
                    continue
                other = mul.inputs[1] if mul.inputs[0] == act.outputs[0] else mul.inputs[0]
                up = self.weight_matmul_making(other)
                if up is None:
                    continue
                self.claim(j, OpRole.GATING)
                self.claim(under, OpRole.GATE_PROJ)
                self.claim(up, OpRole.UP_PROJ)
                for k in self.readers(mul.outputs[0], slot=0):
                    if _is_weight_matmul(self.ops[k]):
                        self.claim(k, OpRole.DOWN_PROJ)

    def lm_head(self) -> None:
        """LM_HEAD: a weight matmul not named yet whose output is a graph output, directly or
        through a slice or a soft-cap (Gemma 2's logits)."""
        for i, op in enumerate(self.ops):
            if not _is_weight_matmul(op):
                continue
            out = op.outputs[0]
            if out.name in self.outputs or any(
                _passes_logits(self.ops[j]) and self.ops[j].outputs[0].name in self.outputs
                for j in self.readers(out)
            ):
                self.claim(i, OpRole.LM_HEAD)

    def embeddings(self) -> None:
        """Token or position lookup. An embedding whose ids rotary embedding also reads is a
        position lookup; one whose table the LM head reads (tied) is the token lookup; the
        rest in the order of their ids among the graph inputs: the first is the token lookup
        (`input_ids` comes before `position_ids`), later ones are position lookups. An add of
        two lookups (GPT-2's token + position) belongs to the position embedding."""
        lookups = [i for i, op in enumerate(self.ops) if op.kind is OpKind.EMBEDDING]
        rope_ids = {op.inputs[1].name for op in self.ops if op.kind is OpKind.ROPE}
        head_tables = {op.inputs[1].name for op, r in zip(self.ops, self.roles, strict=True)
                       if r is OpRole.LM_HEAD}
        rank = {t.name: n for n, t in enumerate(self.graph.inputs)}
        undecided = []
        for i in lookups:
            ids, table = self.ops[i].inputs
            if ids.name in rope_ids:
                self.roles[i] = OpRole.POSITION_EMBEDDING
            elif table.name in head_tables:
                self.roles[i] = OpRole.EMBEDDING
            else:
                undecided.append(i)
        undecided.sort(key=lambda i: (rank.get(self.ops[i].inputs[0].name, len(rank)), i))
        has_token = OpRole.EMBEDDING in (self.roles[i] for i in lookups)
        for n, i in enumerate(undecided):
            first_token = n == 0 and not has_token
            self.roles[i] = OpRole.EMBEDDING if first_token else OpRole.POSITION_EMBEDDING
        for i, op in enumerate(self.ops):
            if _is_binary(op, BinaryFn.ADD):
                made = [self.made_by(t) for t in op.inputs]
                if all(j is not None and j in lookups for j in made) and any(
                    self.roles[j] is OpRole.POSITION_EMBEDDING for j in made if j is not None
                ):
                    self.claim(i, OpRole.POSITION_EMBEDDING)

    def residuals(self) -> None:
        """RESIDUAL: an add of two activations where one is computed from the other (x + f(x)),
        or that continues the residual stream (an input is a RESIDUAL's output: GPT-J's
        x + attn(n(x)) + mlp(n(x)))."""
        bits: dict[str, int] = {}
        upstream: dict[str, int] = {}  # tensor -> bitset of the activations it is computed from

        def bit(t: Tensor) -> int:
            return bits.setdefault(t.name, 1 << len(bits))

        for i, op in enumerate(self.ops):
            ins = [t for t in op.inputs if t.role is not Role.WEIGHT]
            reach = 0
            for t in ins:
                reach |= upstream.get(t.name, 0) | bit(t)
            for t in op.outputs:
                upstream[t.name] = reach
            if not _is_binary(op, BinaryFn.ADD) or len(ins) != 2:
                continue
            a, b = ins
            skip = bool(upstream.get(b.name, 0) & bit(a) or upstream.get(a.name, 0) & bit(b))
            stream = any(j is not None and self.roles[j] is OpRole.RESIDUAL
                         for j in (self.made_by(a), self.made_by(b)))
            if skip or stream:
                self.claim(i, OpRole.RESIDUAL)


def assign_roles(graph: Graph) -> Graph:
    """`graph` with every op's role set from its structure (previous roles are ignored).

    Rules, in order (an op keeps the first role it gets): roles of kind (norms, rope, KV
    append, attention, MoE route and experts, slice, activation functions); attention's
    Q/K/V/O projections; latent attention's Q, LATENT and O projections; the MoE router; MLP
    gate/up/down and gating; the LM head; token and
    position embeddings; residual adds. Everything else is OTHER.
    """
    s = _Structure(graph)
    s.attention()
    s.latent_attention()
    s.moe()
    s.mlp()
    s.lm_head()
    s.embeddings()
    s.residuals()
    ops = tuple(op if op.role is role else replace(op, role=role)
                for op, role in zip(graph.ops, s.roles, strict=True))
    return replace(graph, ops=ops)


# ---- positions: prologue, blocks, epilogue -----------------------------------------------------


class Section(enum.Enum):
    PROLOGUE = "prologue"  # before the first block: embeddings
    BLOCK = "block"  # ops of a transformer block (op.layer >= 0)
    EPILOGUE = "epilogue"  # after the first block's start: final norm, LM head


@dataclass(frozen=True, slots=True)
class OpPosition:
    """Where an op sits: its section, its block (-1 outside blocks) and its index among the
    ops of that section (within a block: among the ops of that block)."""

    section: Section
    layer: int
    index: int


def op_positions(graph: Graph) -> dict[str, OpPosition]:
    """Op name -> position. Ops with layer >= 0 are BLOCK ops; the others are PROLOGUE before
    the first block op and EPILOGUE after it (all PROLOGUE in a graph without blocks)."""
    first_block = next((i for i, op in enumerate(graph.ops) if op.layer >= 0), len(graph.ops))
    seen: dict[tuple[Section, int], int] = defaultdict(int)
    out: dict[str, OpPosition] = {}
    for i, op in enumerate(graph.ops):
        if op.layer >= 0:
            section = Section.BLOCK
        else:
            section = Section.PROLOGUE if i < first_block else Section.EPILOGUE
        key = (section, op.layer)
        out[op.name] = OpPosition(section, op.layer, seen[key])
        seen[key] += 1
    return out


def layer_signatures(graph: Graph) -> dict[int, tuple[object, ...]]:
    """Block layer -> what makes it the layer it is, names aside: each op's kind, attributes,
    role and tensor shapes, formats and roles, and where each input comes from (an op of the
    same block, by index, or outside it). Two layers with equal signatures compute the same
    function of their inputs and weights, so one can stand for the other (layer folding)."""
    blocks: dict[int, list[Op]] = defaultdict(list)
    for op in graph.ops:
        if op.layer >= 0:
            blocks[op.layer].append(op)
    out: dict[int, tuple[object, ...]] = {}
    for layer, ops in blocks.items():
        made = {t.name: (i, j) for i, op in enumerate(ops) for j, t in enumerate(op.outputs)}
        out[layer] = tuple(
            (op.kind, op.attrs, op.role,
             tuple((t.shape, t.dtype, t.role, made.get(t.name)) for t in op.inputs),
             tuple((t.shape, t.dtype, t.role) for t in op.outputs))
            for op in ops)
    return out


def fold_keys(graph: Graph) -> dict[str, tuple[object, ...]]:
    """Op name -> what it shares with the same op of another block of the same kind, or of a
    folded graph (one block per kind of layer): section, the block's signature (None outside
    blocks) and index (the layer number is dropped)."""
    signatures = layer_signatures(graph)
    return {name: (pos.section, signatures.get(pos.layer), pos.index)
            for name, pos in op_positions(graph).items()}


def _block_layers(graph: Graph) -> list[int]:
    return sorted({op.layer for op in graph.ops if op.layer >= 0})


def _unique(tensors: list[Tensor]) -> tuple[Tensor, ...]:
    return tuple(dict.fromkeys(tensors))


def layer_weights(graph: Graph, layer: int | None = None) -> tuple[Tensor, ...]:
    """Weights read by the ops of block `layer` (None: the first block): one layer's
    parameters. () in a graph without blocks."""
    layers = _block_layers(graph)
    if not layers:
        return ()
    layer = layers[0] if layer is None else layer
    read = {t.name for op in graph.ops if op.layer == layer for t in op.inputs}
    return _unique([w for w in graph.weights if w.name in read])


def non_layer_weights(graph: Graph) -> tuple[Tensor, ...]:
    """Weights that no block op reads (embedding tables, final norm, LM head): so the weights
    of a model are these plus `num_layers` times `layer_weights`."""
    read = {t.name for op in graph.ops if op.layer >= 0 for t in op.inputs}
    return _unique([w for w in graph.weights if w.name not in read])


def block_output(graph: Graph) -> Tensor | None:
    """The activation the last block hands on (the residual stream): produced by a block op of
    the last layer and read by an epilogue op, or failing that a graph output it produces that
    is not a KV cache. None in a graph without blocks (or when no such tensor exists)."""
    layers = _block_layers(graph)
    if not layers:
        return None
    last = [op for op in graph.ops if op.layer == layers[-1]]
    made = {t.name: t for op in last for t in op.outputs}
    positions = op_positions(graph)
    read_after = [t for op in graph.ops if positions[op.name].section is Section.EPILOGUE
                  for t in op.inputs if t.name in made]
    outputs = [t for t in graph.outputs if t.name in made and t.role is not Role.KV_CACHE]
    candidates = read_after or outputs
    return candidates[0] if candidates else None


def block_input(graph: Graph) -> Tensor | None:
    """The activation the first block receives: produced by a prologue op and read by a block
    op of the first layer (the residual stream entering the blocks). None when there is none."""
    layers = _block_layers(graph)
    if not layers:
        return None
    positions = op_positions(graph)
    made = {t.name for op in graph.ops if positions[op.name].section is Section.PROLOGUE
            for t in op.outputs}
    read = [t for op in graph.ops if op.layer == layers[0] for t in op.inputs if t.name in made]
    return read[-1] if read else None
