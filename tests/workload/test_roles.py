"""Op roles from graph structure: every op of every shipped model, names scrambled, graphs that
are not transformers; and op positions that match a one-layer graph with a full one.

The builder's op names are the independent reference here (tests may read names; the pass may
not): `layers.{i}.attn.k` must be a K projection, and so on.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace

import pytest
from hypothesis import given, settings

from tegel.workload import GraphBuilder, Phase, build_llm_graph, load_model_config, shipped_models
from tegel.workload.dtypes import DType
from tegel.workload.graph import verify
from tegel.workload.ir import (
    Attention,
    Binary,
    BinaryFn,
    Graph,
    MatMul,
    Op,
    OpKind,
    OpRole,
    Role,
    Tensor,
    Unary,
    UnaryFn,
)
from tegel.workload.roles import (
    OpPosition,
    Section,
    assign_roles,
    block_input,
    block_output,
    fold_keys,
    layer_weights,
    non_layer_weights,
    op_positions,
)
from workload.test_ops_work import random_op

R = OpRole
# op name (with the layer index replaced by {i}) -> the role the builder means by it
ROLE_OF_NAME = {
    "embed": R.EMBEDDING,
    "pos_embed": R.POSITION_EMBEDDING,
    "embed_sum": R.POSITION_EMBEDDING,
    "layers.{i}.attn_norm": R.NORM,
    "layers.{i}.mlp_norm": R.NORM,
    "layers.{i}.post_attn_norm": R.NORM,
    "layers.{i}.post_mlp_norm": R.NORM,
    "final_norm": R.NORM,
    "layers.{i}.attn.q": R.Q_PROJ,
    "layers.{i}.attn.k": R.K_PROJ,
    "layers.{i}.attn.v": R.V_PROJ,
    "layers.{i}.attn.o": R.O_PROJ,
    "layers.{i}.attn.q_norm": R.NORM,
    "layers.{i}.attn.k_norm": R.NORM,
    "layers.{i}.attn.q_l2norm": R.NORM,  # Llama 4's unweighted q/k norms after rotary
    "layers.{i}.attn.k_l2norm": R.NORM,
    "layers.{i}.attn.q_rope": R.ROPE,
    "layers.{i}.attn.k_rope": R.ROPE,
    "present.{i}.k": R.KV_WRITE,
    "present.{i}.v": R.KV_WRITE,
    "layers.{i}.attn.sdpa": R.ATTENTION,
    "layers.{i}.attn_residual": R.RESIDUAL,
    "layers.{i}.mlp_residual": R.RESIDUAL,
    "layers.{i}.mlp.gate": R.GATE_PROJ,
    "layers.{i}.mlp.up": R.UP_PROJ,
    "layers.{i}.mlp.down": R.DOWN_PROJ,
    "layers.{i}.mlp.act": R.ACTIVATION,
    "layers.{i}.mlp.gated": R.GATING,
    "layers.{i}.moe.router": R.ROUTER,
    "layers.{i}.moe.route": R.ROUTE,
    "layers.{i}.moe.experts": R.EXPERTS,
    "layers.{i}.moe.shared.gate": R.GATE_PROJ,  # the shared expert is a gated MLP (Llama 4)
    "layers.{i}.moe.shared.up": R.UP_PROJ,
    "layers.{i}.moe.shared.down": R.DOWN_PROJ,
    "layers.{i}.moe.shared.act": R.ACTIVATION,
    "layers.{i}.moe.shared.gated": R.GATING,
    "layers.{i}.moe.sum": R.OTHER,  # routed + shared: neither is computed from the other
    "layers.{i}.attn.q_a": R.LATENT_PROJ,  # multi-head latent attention (DeepSeek)
    "layers.{i}.attn.q_a_norm": R.NORM,
    "layers.{i}.attn.q_b": R.Q_PROJ,
    "layers.{i}.attn.kv_a": R.LATENT_PROJ,
    "layers.{i}.attn.kv_latent": R.SLICE,
    "layers.{i}.attn.k_pe": R.SLICE,
    "layers.{i}.attn.kv_a_norm": R.NORM,
    "present.{i}.kv": R.KV_WRITE,
    "layers.{i}.attn.mla": R.ATTENTION,
    "last_token": R.SLICE,
    "logits": R.LM_HEAD,
    "lm_head": R.LM_HEAD,  # the head's matmul when soft-capping follows it (Gemma 2)
}
PHASES = {"prefill": Phase.prefill(2, 5), "decode": Phase.decode(2, 7)}


def small_graph(model: str, phase: Phase, layers: int = 2) -> Graph:
    return build_llm_graph(replace(load_model_config(model), num_layers=layers), phase)


def name_role(name: str) -> tuple[OpRole, int]:
    """(role, layer) the builder means by an op name."""
    match = re.match(r"(layers|present)\.(\d+)\.", name)
    layer = int(match.group(2)) if match else -1
    pattern = name.replace(f"{match.group(1)}.{layer}.", f"{match.group(1)}.{{i}}.", 1) if match else name
    assert pattern in ROLE_OF_NAME, f"the test does not know op {name!r}"
    return ROLE_OF_NAME[pattern], layer


def scrambled(graph: Graph, seed: int = 0) -> Graph:
    """The same graph with every tensor, op and the graph itself renamed at random, and every
    role reset to OTHER."""
    rng = random.Random(seed)
    names = [t.name for t in (*graph.inputs, *graph.weights)] + [
        t.name for op in graph.ops for t in op.outputs]
    new = {n: f"t{rng.getrandbits(48):012x}" for n in names}

    def t(x: Tensor) -> Tensor:
        return replace(x, name=new[x.name])

    ops = tuple(replace(op, name=f"o{rng.getrandbits(48):012x}", inputs=tuple(map(t, op.inputs)),
                        outputs=tuple(map(t, op.outputs)), role=OpRole.OTHER) for op in graph.ops)
    return verify(Graph(f"g{rng.getrandbits(32)}", tuple(map(t, graph.inputs)),
                        tuple(map(t, graph.weights)), ops, tuple(map(t, graph.outputs))))


# ---- every op of every shipped model ---------------------------------------------------------


@pytest.mark.parametrize("phase", sorted(PHASES))
@pytest.mark.parametrize("model", shipped_models())
def test_every_op_of_every_shipped_model_has_its_role(model: str, phase: str) -> None:
    graph = small_graph(model, PHASES[phase])
    for op in graph.ops:
        role, layer = name_role(op.name)
        if op.kind is OpKind.UNARY and op.name == "logits":  # the soft-cap after the head
            role = R.OTHER
        assert (op.role, op.layer) == (role, layer), op.name
    cfg = load_model_config(model)
    roles = {op.role for op in graph.ops}
    routed = [cfg.routed(i) for i in range(2)]  # small_graph's two layers
    dense_mlp = not all(routed) or (any(routed) and cfg.shared_intermediate_size > 0)
    assert (R.GATE_PROJ in roles) == (cfg.gated_mlp and dense_mlp)
    assert (R.ROUTER in roles) == (R.EXPERTS in roles) == any(routed)
    assert (R.POSITION_EMBEDDING in roles) == cfg.learned_positions
    assert (R.SLICE in roles) == (phase == "prefill" or cfg.is_mla)  # MLA splits kv_a


def test_logits_for_every_position_still_find_the_head() -> None:
    cfg = replace(load_model_config("qwen2.5-0.5b"), num_layers=1)
    graph = build_llm_graph(cfg, Phase.prefill(1, 4), logits="all")
    assert [op.role for op in graph.ops if op.role is R.LM_HEAD] == [R.LM_HEAD]
    assert R.SLICE not in {op.role for op in graph.ops}


@pytest.mark.parametrize("model", ["gpt2", "gpt-j-6b", "mixtral-8x7b", "llama-3.1-8b"])
def test_roles_do_not_depend_on_names(model: str) -> None:
    for phase in PHASES.values():
        graph = small_graph(model, phase)
        other = scrambled(graph, seed=len(model))
        assert {op.name for op in graph.ops}.isdisjoint(op.name for op in other.ops)
        assert [op.role for op in assign_roles(other).ops] == [op.role for op in graph.ops]


def test_an_untied_gpt2_head_still_tells_token_from_position_embedding() -> None:
    cfg = replace(load_model_config("gpt2"), num_layers=1, tie_word_embeddings=False)
    graph = scrambled(build_llm_graph(cfg, Phase.decode(1, 3)), seed=3)
    roles = [op.role for op in assign_roles(graph).ops]
    assert roles[:3] == [R.EMBEDDING, R.POSITION_EMBEDDING, R.POSITION_EMBEDDING]


def test_assign_roles_is_idempotent() -> None:
    graph = small_graph("mixtral-8x7b", PHASES["decode"])
    assert assign_roles(graph) == graph


# ---- graphs that are not transformers --------------------------------------------------------


def _mlp_graph(residual: bool) -> Graph:
    g = GraphBuilder("mlp")
    x = g.input("x", (2, 8), DType.FP32)
    up = g.op1(OpKind.MATMUL, MatMul(), (x, g.weight("w1", (8, 16), DType.FP32)), "a")
    act = g.op1(OpKind.UNARY, Unary(UnaryFn.RELU), (up,), "b")
    down = g.op1(OpKind.MATMUL, MatMul(), (act, g.weight("w2", (16, 8), DType.FP32)), "c")
    if residual:
        down = g.op1(OpKind.BINARY, Binary(BinaryFn.ADD), (x, down), "d")
    return g.build((down,))


def test_a_graph_without_embedding_gets_roles_without_error() -> None:
    g = GraphBuilder("tiny")
    x = g.input("x", (4, 8), DType.FP32)
    y = g.op1(OpKind.MATMUL, MatMul(), (x, g.weight("w", (8, 3), DType.FP32)), "y")
    z = g.op1(OpKind.UNARY, Unary(UnaryFn.NEG), (y,), "z")
    graph = assign_roles(g.build((z,)))
    assert [op.role for op in graph.ops] == [R.OTHER, R.OTHER]
    assert op_positions(graph) == {"y": OpPosition(Section.PROLOGUE, -1, 0),
                                   "z": OpPosition(Section.PROLOGUE, -1, 1)}
    assert block_output(graph) is None and block_input(graph) is None
    assert layer_weights(graph) == () and non_layer_weights(graph) == graph.weights


@settings(max_examples=60, deadline=None)
@given(op=random_op())
def test_any_single_op_graph_gets_a_role_without_error(op: Op) -> None:
    defined = {t.name for t in op.outputs}
    inputs = tuple(dict.fromkeys(t for t in op.inputs if t.name not in defined))
    graph = assign_roles(verify(Graph("one", inputs, (), (op,), op.outputs)))
    (role,) = (o.role for o in graph.ops)
    assert role in (R.OTHER, R.NORM, R.ROPE, R.KV_WRITE, R.ATTENTION, R.ROUTE, R.EXPERTS,
                    R.SLICE, R.ACTIVATION, R.EMBEDDING)


def test_a_plain_mlp_with_a_skip_connection() -> None:
    roles = [op.role for op in assign_roles(_mlp_graph(residual=True)).ops]
    assert roles == [R.UP_PROJ, R.ACTIVATION, R.DOWN_PROJ, R.RESIDUAL]
    # a head-less MLP whose output leaves the graph is still an MLP, not an LM head
    roles = [op.role for op in assign_roles(_mlp_graph(residual=False)).ops]
    assert roles == [R.UP_PROJ, R.ACTIVATION, R.DOWN_PROJ]


def test_encoder_attention_without_cache_or_rope() -> None:
    g = GraphBuilder("enc")
    x = g.input("x", (1, 4, 8), DType.FP32)
    q, k, v = (g.op1(OpKind.MATMUL, MatMul(), (x, g.weight(f"w{n}", (8, 8), DType.FP32)), n)
               for n in "qkv")
    a = g.op1(OpKind.ATTENTION, Attention(2, 2, 4, 0.5, causal=False), (q, k, v), "a")
    o = g.op1(OpKind.MATMUL, MatMul(), (a, g.weight("wo", (8, 8), DType.FP32)), "o")
    h = g.op1(OpKind.BINARY, Binary(BinaryFn.ADD), (o, x), "h")
    bias = g.op1(OpKind.BINARY, Binary(BinaryFn.ADD), (h, g.weight("bias", (8,), DType.FP32)), "b")
    roles = [op.role for op in assign_roles(g.build((bias,))).ops]
    assert roles == [R.Q_PROJ, R.K_PROJ, R.V_PROJ, R.ATTENTION, R.O_PROJ, R.RESIDUAL, R.OTHER]


# ---- positions and folding -------------------------------------------------------------------


@pytest.mark.parametrize("phase", sorted(PHASES))
@pytest.mark.parametrize("model", ["gpt2", "gpt-j-6b", "mixtral-8x7b", "llama-3.1-8b"])
def test_folded_and_unfolded_graphs_match_op_for_op(model: str, phase: str) -> None:
    folded, full = small_graph(model, PHASES[phase], 1), small_graph(model, PHASES[phase], 3)
    fold_pos, full_pos = op_positions(folded), op_positions(full)
    fold_keyed, full_keyed = fold_keys(folded), fold_keys(full)
    by_key = {fold_keyed[op.name]: op for op in folded.ops}
    assert len(by_key) == len(folded.ops)
    for op in full.ops:
        pos = full_pos[op.name]
        twin = by_key[full_keyed[op.name]]
        assert (twin.kind, twin.role) == (op.kind, op.role), op.name
        assert [t.shape for t in twin.inputs] == [t.shape for t in op.inputs], op.name
        # the names agree too, once the layer index is taken out (the test's own reference)
        assert name_role(twin.name)[0] == name_role(op.name)[0]
        assert pos.layer == op.layer and (pos.section is Section.BLOCK) == (op.layer >= 0)
    per_section = {s: sum(1 for p in full_pos.values() if p.section is s) for s in Section}
    assert per_section[Section.BLOCK] == 3 * sum(
        1 for p in fold_pos.values() if p.section is Section.BLOCK)
    assert full_pos[full.ops[0].name].section is Section.PROLOGUE
    assert full_pos[full.ops[-1].name].section is Section.EPILOGUE


def test_positions_survive_scrambled_names() -> None:
    graph = small_graph("gpt2", PHASES["prefill"], 3)
    other = scrambled(graph)
    assert list(op_positions(graph).values()) == list(op_positions(other).values())


@pytest.mark.parametrize("model", ["gpt2", "mixtral-8x7b", "llama-3.1-8b"])
def test_layer_and_non_layer_weights_add_up(model: str) -> None:
    full, folded = small_graph(model, PHASES["decode"], 3), small_graph(model, PHASES["decode"], 1)
    one, rest = layer_weights(full), non_layer_weights(full)
    assert all(w.role is Role.WEIGHT for w in (*one, *rest))
    assert {w.name for w in one} == {w.name for w in full.weights if w.name.startswith("layers.0.")}
    assert 3 * sum(w.nbytes for w in one) + sum(w.nbytes for w in rest) == pytest.approx(
        sum(w.nbytes for w in full.weights))
    assert [w.shape for w in layer_weights(folded)] == [w.shape for w in one]
    assert set(non_layer_weights(folded)) == set(rest)


@pytest.mark.parametrize("model", ["gpt2", "gpt-j-6b", "llama-3.1-8b"])
def test_block_input_and_output_are_the_residual_stream(model: str) -> None:
    for layers in (1, 3):
        graph = small_graph(model, PHASES["prefill"], layers)
        out, inp = block_output(graph), block_input(graph)
        assert out is not None and out.name == f"layers.{layers - 1}.mlp_residual"
        made = graph.producers()
        assert made[out.name].role is R.RESIDUAL
        assert inp is not None and inp.name == ("embed_sum" if model == "gpt2" else "embed")
        # names scrambled: the same tensors, by position
        other = assign_roles(scrambled(graph))
        index = {t.name: i for i, t in enumerate(t for op in graph.ops for t in op.outputs)}
        other_made = [t.name for op in other.ops for t in op.outputs]
        assert block_output(other).name == other_made[index[out.name]]  # type: ignore[union-attr]
        assert block_input(other).name == other_made[index[inp.name]]  # type: ignore[union-attr]
