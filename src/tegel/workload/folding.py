"""Layer folding: a model's layers as repeats of a few representative layers.

A transformer's layers mostly compute the same function with their own weights, so the engine
plans one layer and repeats it. Today's models mix a few kinds of layer — Gemma's sliding and
global attention, DeepSeek-V3's dense and MoE layers, Llama 4's chunked/NoPE and dense/MoE
layers — so a model folds onto one representative per kind: the first layer of that kind.
Kinds are told apart by the graph's structure (`roles.layer_signatures`: op kinds, attributes,
shapes and wiring), never by names or per-family flags, so a new family folds correctly without
being taught to.

`folded_graph` is the graph every evaluator plans (the representatives in model order, each
reading the previous one's output); `LayerFold.pattern` says which representative each model
layer repeats, in order (pipeline stages cut that sequence). `kv_layout` reads, per layer, the
KV-cache elements a token adds and the positions an attention keeps (a sliding window's), from
the same folded graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from tegel.workload.ir import Attention, Graph, OpKind, Role
from tegel.workload.llm import Phase, Precision, build_llm_graph
from tegel.workload.model_config import ModelConfig
from tegel.workload.roles import layer_signatures, layer_weights, non_layer_weights


@dataclass(frozen=True, slots=True)
class LayerFold:
    """For each model layer, in order, the representative layer (its index) it repeats."""

    pattern: tuple[int, ...]

    @property
    def representatives(self) -> tuple[int, ...]:
        """The layers the folded graph holds, in model order."""
        return tuple(dict.fromkeys(self.pattern))

    def count(self, layer: int) -> int:
        """Model layers that `layer` (a representative) stands for."""
        return self.pattern.count(layer)

    def runs(self, start: int, stop: int) -> tuple[tuple[int, int, int], ...]:
        """(representative, first model layer, length) of each run of consecutive layers of one
        kind among model layers start .. stop - 1."""
        out: list[tuple[int, int, int]] = []
        for i in range(start, stop):
            rep = self.pattern[i]
            if out and out[-1][0] == rep:
                out[-1] = (rep, out[-1][1], out[-1][2] + 1)
            else:
                out.append((rep, i, 1))
        return tuple(out)


@lru_cache(maxsize=256)
def layer_fold(cfg: ModelConfig) -> LayerFold:
    """How `cfg`'s layers fold: layers with equal signatures (one decode step's graph) repeat
    the first of them."""
    signatures = layer_signatures(build_llm_graph(cfg, Phase(1, 1, 1)))
    first: dict[object, int] = {}
    return LayerFold(tuple(first.setdefault(signatures[i], i) for i in range(cfg.num_layers)))


@lru_cache(maxsize=512)
def folded_graph(cfg: ModelConfig, phase: Phase, precision: Precision) -> Graph:
    """The graph of `phase` with one layer per kind (`layer_fold`); plans repeat each as its
    pattern says. Cached by content: the key is the (frozen) configuration, phase and formats."""
    return build_llm_graph(cfg, phase, precision, layers=layer_fold(cfg).representatives)


def model_weight_bytes(cfg: ModelConfig, precision: Precision) -> float:
    """Bytes of all weights in the precision's formats: each representative layer's times the
    layers it stands for, plus those outside the layers."""
    one = folded_graph(cfg, Phase(1, 1, 0), precision)
    fold = layer_fold(cfg)
    per_kind = sum(fold.count(r) * sum(w.nbytes for w in layer_weights(one, r))
                   for r in fold.representatives)
    return per_kind + sum(w.nbytes for w in non_layer_weights(one))


@dataclass(frozen=True, slots=True)
class KVLayer:
    """What one kind of layer keeps in the KV cache: elements per cached token (all its cache
    tensors: keys and values, or MLA's one latent) and the positions its attention can still
    read (None: all; a sliding window or an attention chunk: at most that many)."""

    elements_per_token: int
    window: int | None


@dataclass(frozen=True, slots=True)
class KVLayout:
    """The KV cache of every model layer, in order."""

    layers: tuple[KVLayer, ...]

    @property
    def elements_per_token(self) -> int:
        """Elements one token adds across all layers (before any window drops it)."""
        return sum(lay.elements_per_token for lay in self.layers)

    def elements(self, tokens: float) -> float:
        """Elements a sequence of `tokens` positions holds: a windowed layer keeps at most its
        window (engines with per-layer KV allocation free the rest, e.g. vLLM's hybrid
        allocator for Gemma 2/3)."""
        return sum(lay.elements_per_token * (tokens if lay.window is None
                                             else min(tokens, lay.window))
                   for lay in self.layers)


@lru_cache(maxsize=256)
def kv_layout(cfg: ModelConfig) -> KVLayout:
    """Per model layer, from its representative in a decode step's folded graph: the last
    dimension of the KV-cache tensors it writes, and its attention's window."""
    graph = folded_graph(cfg, Phase(1, 1, 1), Precision())
    per_rep: dict[int, KVLayer] = {}
    for rep in layer_fold(cfg).representatives:
        ops = [op for op in graph.ops if op.layer == rep]
        elements = sum(t.shape[-1] for op in ops if op.kind is OpKind.KV_CACHE_WRITE
                       for t in op.outputs if t.role is Role.KV_CACHE)
        # a sliding window keeps its last `window` positions, chunked attention the current chunk
        windows = [op.attrs.window or op.attrs.chunk for op in ops
                   if isinstance(op.attrs, Attention)]
        window = None if not windows or None in windows else max(w for w in windows if w)
        per_rep[rep] = KVLayer(elements, window)
    return KVLayout(tuple(per_rep[r] for r in layer_fold(cfg).pattern))
