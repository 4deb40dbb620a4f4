"""The workload IR: immutable tensors, ops with typed attributes, and graphs of them.

One op kind enum lists every kind; each kind has one attribute dataclass. Semantics of each
kind (shape inference, FLOPs, minimal bytes, NumPy reference) are registered per kind in
`tegel.workload.ops` — the IR itself holds data only.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from tegel.workload.dtypes import DType
from tegel.workload.ir_cnn import (  # noqa: F401  (PoolFn re-exported with its Pool2d)
    BatchNorm,
    Concat,
    Pool2d,
    PoolFn,
    Reshape,
    Transpose,
)


class Role(enum.Enum):
    """What a tensor is to the running program; decides where a mapping may keep it."""

    INPUT = "input"  # fed per call: token ids, positions
    WEIGHT = "weight"  # parameters, fixed across calls
    ACTIVATION = "activation"  # produced and consumed within one call
    KV_CACHE = "kv_cache"  # state carried between calls


@dataclass(frozen=True, slots=True)
class Tensor:
    """A named, typed array value. Shapes are row-major; sizes are element counts."""

    name: str
    shape: tuple[int, ...]
    dtype: DType
    role: Role = Role.ACTIVATION

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> float:
        """Bytes of memory the tensor occupies in its dtype (block scales included)."""
        return self.dtype.nbytes(self.numel)


class OpKind(enum.Enum):
    MATMUL = "matmul"
    ATTENTION = "attention"
    UNARY = "unary"
    BINARY = "binary"
    RMSNORM = "rmsnorm"
    LAYERNORM = "layernorm"
    SOFTMAX = "softmax"
    EMBEDDING = "embedding"
    ROPE = "rope"
    MOE_ROUTER = "moe_router"
    MOE_EXPERTS = "moe_experts"
    KV_CACHE_WRITE = "kv_cache_write"
    CONV2D = "conv2d"
    SLICE = "slice"
    LATENT_ATTENTION = "latent_attention"
    POOL2D = "pool2d"
    BATCHNORM = "batchnorm"
    RESHAPE = "reshape"
    TRANSPOSE = "transpose"
    CONCAT = "concat"


class OpRole(enum.Enum):
    """What an op is to the model, set from graph structure by `workload.roles.assign_roles`.

    Mapping and evaluation read roles (and shapes), never names. OTHER is anything the pass
    does not recognise (a convolution, a softmax, an op of a graph that is not a transformer).
    """

    OTHER = "other"
    EMBEDDING = "embedding"  # token embedding lookup
    POSITION_EMBEDDING = "position_embedding"  # learned position lookup and its add (GPT-2)
    NORM = "norm"
    Q_PROJ = "q_proj"
    K_PROJ = "k_proj"
    V_PROJ = "v_proj"
    O_PROJ = "o_proj"
    LATENT_PROJ = "latent_proj"  # MLA's down-projections (q_a, kv_a) into latents all heads share
    ROPE = "rope"
    KV_WRITE = "kv_write"
    ATTENTION = "attention"
    GATE_PROJ = "gate_proj"  # dense MLP projections; a non-gated MLP has UP and DOWN only
    UP_PROJ = "up_proj"
    DOWN_PROJ = "down_proj"
    ACTIVATION = "activation"
    GATING = "gating"  # the elementwise act(gate) * up
    ROUTER = "router"  # the MoE router's logits matmul
    ROUTE = "route"  # the top-k choice (MOE_ROUTER)
    EXPERTS = "experts"
    RESIDUAL = "residual"
    LM_HEAD = "lm_head"
    SLICE = "slice"


GEMM_KINDS = frozenset({OpKind.MATMUL, OpKind.MOE_EXPERTS, OpKind.CONV2D})


class UnaryFn(enum.Enum):
    SILU = "silu"
    GELU = "gelu"  # exact, erf-based
    GELU_TANH = "gelu_tanh"  # tanh approximation (GPT-2 "gelu_new")
    RELU = "relu"
    NEG = "neg"
    SOFTCAP = "softcap"  # cap * tanh(x / cap): Gemma 2's logit soft-capping
    RELU6 = "relu6"  # min(max(x, 0), 6)
    SIGMOID = "sigmoid"
    HARDSIGMOID = "hardsigmoid"  # min(max(x / 6 + 1/2, 0), 1), torch's definition
    HARDSWISH = "hardswish"  # x * hardsigmoid(x)


class BinaryFn(enum.Enum):
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    DIV = "div"


# ---- per-kind attributes -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MatMul:
    """out[..., M, N] = a[..., M, K] @ b[..., K, N] (+ bias[N]); a 2-D `b` broadcasts.

    With `transpose_b`, `b` is stored [..., N, K] (the layout of a `torch.nn.Linear` weight).
    """

    transpose_a: bool = False
    transpose_b: bool = False


@dataclass(frozen=True, slots=True)
class Attention:
    """Scaled dot-product attention of q [B, Lq, Hq*D] over k, v [B, Lk, Hkv*D].

    Queries are the last Lq positions of the Lk keys: query i sits at position Lk - Lq + i
    and, when `causal`, sees keys at positions <= its own (and within `window` of it; and,
    with `chunk`, only keys of its own chunk of positions: p // chunk == its own // chunk,
    Llama 4's chunked local attention). Prefill has Lq = Lk; a decode step has Lq = 1 over
    the whole cache. Hq must be a multiple of Hkv (multi-head: equal; grouped-query: a
    divisor; multi-query: Hkv = 1). With `temperature`, the query at position p is scaled
    as `QueryTemperature` says before its scores (Llama 4's NoPE layers).
    """

    num_heads: int
    num_kv_heads: int
    head_dim: int
    scale: float
    causal: bool = True
    window: int | None = None  # sliding window in positions (Mistral); None: unbounded
    # memory sharing, not semantics: groups of `kv_group` consecutive batch rows (the beams of
    # one request) hold the same first `kv_shared` positions once, so they are read once
    kv_group: int = 1
    kv_shared: int = 0
    softcap: float | None = None  # scores become softcap * tanh(scores / softcap) (Gemma 2)
    chunk: int | None = None  # chunked local attention in positions (Llama 4); None: unchunked
    temperature: QueryTemperature | None = None  # per-position query scale (Llama 4 NoPE layers)


@dataclass(frozen=True, slots=True)
class QueryTemperature:
    """Attention temperature tuning (arXiv 2501.19399, Llama 4's NoPE layers): the query at
    position p is multiplied by 1 + strength * log(1 + floor((p + 1) / floor_scale))."""

    floor_scale: float
    strength: float


@dataclass(frozen=True, slots=True)
class Unary:
    """fn(x) elementwise; `cap` is SOFTCAP's bound (the other functions ignore it)."""

    fn: UnaryFn
    cap: float = 1.0


@dataclass(frozen=True, slots=True)
class Binary:
    """Elementwise a (op) b with NumPy broadcasting."""

    fn: BinaryFn


@dataclass(frozen=True, slots=True)
class RMSNorm:
    """x / sqrt(mean(x^2) + eps) * weight, over the last axis, computed in fp32.

    With `group` > 0 the last axis is split into groups of `group` channels (the heads of a
    q or k projection, Qwen3's q/k norms), each normalised alone, all by one weight [group].
    Without `weighted` there is no weight input (Llama 4's L2 norm of q and k heads).
    """

    eps: float
    group: int = 0
    weighted: bool = True


@dataclass(frozen=True, slots=True)
class LayerNorm:
    """(x - mean) / sqrt(var + eps) * weight + bias, over the last axis."""

    eps: float


@dataclass(frozen=True, slots=True)
class Softmax:
    axis: int = -1


@dataclass(frozen=True, slots=True)
class Embedding:
    """Rows of a table [V, H] gathered by integer ids [...] -> [..., H], times `scale` (Gemma
    multiplies its token embeddings by sqrt(H))."""

    scale: float = 1.0


@dataclass(frozen=True, slots=True)
class RopeScaling:
    """Llama-3 style frequency-dependent scaling of rotary frequencies."""

    factor: float
    low_freq_factor: float
    high_freq_factor: float
    original_max_position_embeddings: int


@dataclass(frozen=True, slots=True)
class LinearScaling:
    """Position interpolation: every rotary frequency divided by `factor` (Gemma 3's global
    layers; transformers' rope_type 'linear')."""

    factor: float


@dataclass(frozen=True, slots=True)
class YarnScaling:
    """YaRN scaling of rotary frequencies (DeepSeek-V3): frequencies between the correction
    range of `beta_fast` and `beta_slow` rotations over the original context are blended from
    extrapolated (unscaled) to interpolated (divided by `factor`) ones; cos and sin are
    multiplied by `attention_factor` = mscale(factor, mscale) / mscale(factor, mscale_all_dim)."""

    factor: float
    original_max_position_embeddings: int
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    mscale: float = 1.0
    mscale_all_dim: float = 0.0  # 0: not given

    @property
    def attention_factor(self) -> float:
        if self.mscale and self.mscale_all_dim:
            return yarn_mscale(self.factor, self.mscale) / yarn_mscale(self.factor,
                                                                       self.mscale_all_dim)
        return yarn_mscale(self.factor)


def yarn_mscale(factor: float, mscale: float = 1.0) -> float:
    """YaRN's attention temperature correction 0.1 * mscale * ln(factor) + 1 (1 for factor <= 1)."""
    return 1.0 if factor <= 1.0 else 0.1 * mscale * math.log(factor) + 1.0


@dataclass(frozen=True, slots=True)
class Rope:
    """Rotary position embedding of x [B, L, H*D] at integer positions [B, L].

    Channels `rotary_offset` to `rotary_offset + rotary_dim` of each head's D channels rotate
    (the first ones by default; DeepSeek's rope part is the last). `interleaved` pairs channels
    (0,1), (2,3), ... (GPT-J, DeepSeek); otherwise channel i pairs with i + rotary_dim/2
    (Llama/NeoX).
    """

    num_heads: int
    head_dim: int
    rotary_dim: int
    theta: float
    interleaved: bool = False
    scaling: RopeScaling | YarnScaling | LinearScaling | None = None
    rotary_offset: int = 0


@dataclass(frozen=True, slots=True)
class MoERouter:
    """Top-k expert choice from router logits [..., E] -> (weights [..., k], indices [..., k]).

    Scores are softmax(logits) (`scoring` "softmax": Mixtral, Qwen3 MoE) or sigmoid(logits)
    ("sigmoid": DeepSeek-V3, Llama 4); the k highest-scoring experts are chosen and their
    scores are the weights, renormalised over the k when `normalize`, times `scaling_factor`.

    DeepSeek-V3 (`correction_bias`: a second input, a weight [E]) chooses by score + bias but
    weighs by the score alone; with `groups` > 1 the experts form `groups` equal groups, each
    group ranked by the sum of its two best (biased) scores, and only the experts of the
    `topk_groups` best groups may be chosen.
    """

    num_experts: int
    top_k: int
    normalize: bool = True
    scoring: str = "softmax"
    groups: int = 1
    topk_groups: int = 1
    scaling_factor: float = 1.0
    correction_bias: bool = False


@dataclass(frozen=True, slots=True)
class MoEExperts:
    """Gated-MLP experts applied to the tokens routed to them, weighted and summed.

    Inputs: x [..., H], routing weights [..., k], indices [..., k], w_gate [E, F, H],
    w_up [E, F, H], w_down [E, H, F]. For each token t and choice j with e = idx[t, j]:
    out[t] += w[t, j] * (act(x[t] W_gate[e]^T) * (x[t] W_up[e]^T)) W_down[e]^T, or with
    `scale_input` the weight scales the expert's input instead (Llama 4):
    out[t] += expert_e(w[t, j] * x[t]) — not the same, the expert being nonlinear.
    `expert_token_counts` (tokens routed to each expert) is the routing the cost models use;
    None means the expectation under uniform routing.
    """

    num_experts: int
    top_k: int
    activation: UnaryFn = UnaryFn.SILU
    expert_token_counts: tuple[int, ...] | None = None
    scale_input: bool = False


@dataclass(frozen=True, slots=True)
class KVCacheWrite:
    """Append new keys or values [B, L, Hkv*D] to a cache [B, K, Hkv*D] -> [B, K+L, Hkv*D].

    With no past input (K = 0) the cache is just the new entries. The append is in place in
    memory: only the new entries are written. With `pieces` > 1 the new entries arrive as that
    many inputs laid side by side along the channels (MLA's normed latent and rotated shared
    key: vLLM's `concat_and_cache_mla`); inputs are (past, *pieces) or (*pieces).
    """

    pieces: int = 1


@dataclass(frozen=True, slots=True)
class LatentAttention:
    """Multi-head latent attention (DeepSeek-V2/V3) of q over one latent cache per layer.

    Inputs: q [B, Lq, H*(dn+dr)] (per head dn channels without position, then dr rotated
    ones), the cache [B, Lk, dc+dr] (normed latent c_kv, then the rotated key part k_pe shared
    by all heads) and kv_b [H*(dn+dv), dc] (per head dn rows of W_UK, then dv rows of W_UV).
    Output [B, Lq, H*dv]. Meaning: k_h = [c_kv W_UK_h^T, k_pe], v_h = c_kv W_UV_h^T, then
    scaled dot-product attention per head, causal as `Attention`.
    """

    num_heads: int
    nope_dim: int
    rope_dim: int
    v_dim: int
    latent_dim: int
    scale: float
    causal: bool = True
    kv_group: int = 1  # memory sharing, as Attention's: beams read a shared prompt prefix once
    kv_shared: int = 0


@dataclass(frozen=True, slots=True)
class Conv2d:
    """NCHW convolution of x [N, C, H, W] by w [O, C/groups, kh, kw] (+ bias [O])."""

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    dilation: tuple[int, int] = (1, 1)  # kernel taps sit `dilation` pixels apart


@dataclass(frozen=True, slots=True)
class Slice:
    """x[..., start:stop, ...] along `axis` (e.g. the last position's hidden state)."""

    axis: int
    start: int
    stop: int


Attrs = (
    MatMul
    | Attention
    | Unary
    | Binary
    | RMSNorm
    | LayerNorm
    | Softmax
    | Embedding
    | Rope
    | MoERouter
    | MoEExperts
    | KVCacheWrite
    | Conv2d
    | Slice
    | LatentAttention
    | Pool2d
    | BatchNorm
    | Reshape
    | Transpose
    | Concat
)

ATTRS_OF_KIND: dict[OpKind, type] = {
    OpKind.MATMUL: MatMul,
    OpKind.ATTENTION: Attention,
    OpKind.UNARY: Unary,
    OpKind.BINARY: Binary,
    OpKind.RMSNORM: RMSNorm,
    OpKind.LAYERNORM: LayerNorm,
    OpKind.SOFTMAX: Softmax,
    OpKind.EMBEDDING: Embedding,
    OpKind.ROPE: Rope,
    OpKind.MOE_ROUTER: MoERouter,
    OpKind.MOE_EXPERTS: MoEExperts,
    OpKind.KV_CACHE_WRITE: KVCacheWrite,
    OpKind.CONV2D: Conv2d,
    OpKind.SLICE: Slice,
    OpKind.LATENT_ATTENTION: LatentAttention,
    OpKind.POOL2D: Pool2d,
    OpKind.BATCHNORM: BatchNorm,
    OpKind.RESHAPE: Reshape,
    OpKind.TRANSPOSE: Transpose,
    OpKind.CONCAT: Concat,
}


@dataclass(frozen=True, slots=True)
class Op:
    """One operation: a kind, its typed attributes, the tensors it reads and writes.

    `layer` is the model block the op belongs to (-1 for embedding/head ops); mapping
    policies use it to partition graphs into pipeline stages. `role` says what the op is to
    the model (a K projection, the LM head, ...); frontends leave it OTHER and
    `workload.roles.assign_roles` sets it from the graph's structure.
    """

    name: str
    kind: OpKind
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    attrs: Attrs
    layer: int = -1
    role: OpRole = OpRole.OTHER


@dataclass(frozen=True, slots=True)
class Graph:
    """A flat, topologically ordered program: runtime inputs, weights, ops, outputs."""

    name: str
    inputs: tuple[Tensor, ...]
    weights: tuple[Tensor, ...]
    ops: tuple[Op, ...]
    outputs: tuple[Tensor, ...]

    @property
    def parameter_count(self) -> int:
        """Elements of all (unique) weight tensors."""
        return sum(w.numel for w in self.weights)

    def producers(self) -> dict[str, Op]:
        """Tensor name -> the op that writes it."""
        return {t.name: op for op in self.ops for t in op.outputs}
