"""Speculative decoding as an input: who drafts, how many tokens, and how many are accepted.

A speculative decode iteration drafts k tokens per sequence cheaply, then runs the target model
once over the last accepted token and the k drafts (k + 1 new tokens); the target keeps the
longest prefix of drafts it agrees with plus one token of its own, so an iteration emits between
1 and k + 1 tokens per sequence (Leviathan, Kalman and Matias, "Fast Inference from
Transformers via Speculative Decoding", ICML 2023, arXiv:2211.17192; Chen et al., arXiv:
2302.01318). What an iteration costs is priced in `speculative_cost.py`; this module holds the
spec and the expected tokens per iteration E.

Drafters (`method`):

- `draft`: a separate, smaller model of the same tokenizer (llama-3.2-1b for llama-3.1-70b),
  k forward passes of one token each.
- `eagle`: a head on the target's own features, as EAGLE / EAGLE-3 (Li et al., arXiv:2401.15077,
  2503.01840) and Medusa-like heads are: one decoder layer of the target's width and shape
  (dense, its MLP as wide as the target's dense MLP) plus the target's LM head, k passes. Its
  weights are the one layer; the embedding and LM head are the target's own, not stored twice.
  The small fusion projection of the target's features (2 or 3 hidden widths -> 1) is left out.
- `ngram`: prompt lookup (drafts copied from earlier text that matches the last tokens): no
  model, no weights; drafting costs nothing next to a forward pass.

Acceptance is an i.i.d. per-token rate alpha — E = (1 - alpha^(k+1)) / (1 - alpha) (Leviathan
et al.; k + 1 at alpha = 1) — or a measured distribution of accepted drafts
P(0 accepted), ..., P(k accepted): E = 1 + its mean. Both are expectations over sequences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

from tegel.errors import TegelError
from tegel.workload.folding import layer_fold
from tegel.workload.ir import Graph
from tegel.workload.llm import Phase, Precision, build_llm_graph
from tegel.workload.model_config import ModelConfig

METHODS = ("draft", "eagle", "ngram")
_SUM_TOLERANCE = 1e-6  # acceptance probabilities must sum to 1 within this


def tokens_per_step_iid(acceptance_rate: float, draft_tokens: int) -> float:
    """Expected tokens one verify emits per sequence when each of `draft_tokens` drafts is
    accepted with probability `acceptance_rate`, independently, until the first rejection:
    (1 - a^(k+1)) / (1 - a) (Leviathan et al. 2023, arXiv:2211.17192: the expected
    tokens of one run of their Algorithm 1); k + 1 at a = 1."""
    a, k = acceptance_rate, draft_tokens
    if a == 1.0:
        return float(k + 1)
    return (1.0 - a ** (k + 1)) / (1.0 - a)


def acceptance_iid(acceptance_rate: float, draft_tokens: int) -> tuple[float, ...]:
    """P(exactly i drafts accepted), i = 0..k, under an i.i.d. rate: a^i (1 - a) below k and
    a^k at k (every draft accepted)."""
    a, k = acceptance_rate, draft_tokens
    return (*(a**i * (1.0 - a) for i in range(k)), a**k)


def tokens_per_step_of_lengths(probabilities: tuple[float, ...]) -> float:
    """Expected tokens per verify from P(i drafts accepted), i = 0..k: the mean accepted + 1
    (the target's own token after the accepted drafts)."""
    return 1.0 + sum(i * p for i, p in enumerate(probabilities))


@dataclass(frozen=True, slots=True)
class Speculation:
    """Speculative decoding of a run: the drafter, k drafts per iteration, and the acceptance —
    a rate (`acceptance_rate`) or a distribution of accepted drafts (`acceptance_lengths`,
    k + 1 probabilities of accepting 0..k), exactly one of the two. `draft_model` is the
    drafter of method "draft" (and only of it). Errors name the `tegel run` flag."""

    method: str
    draft_tokens: int
    acceptance_rate: float | None = None
    acceptance_lengths: tuple[float, ...] | None = None
    draft_model: ModelConfig | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise TegelError(f"--speculative: expected one of {', '.join(METHODS)}, "
                             f"got {self.method!r}")
        k = self.draft_tokens
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise TegelError(f"--draft-tokens: expected a positive integer, got {k!r}")
        if (self.method == "draft") != (self.draft_model is not None):
            raise TegelError("--draft: --speculative draft needs a draft model (--draft MODEL)"
                             if self.method == "draft" else
                             f"--draft: --speculative {self.method} drafts without a separate "
                             f"model; drop --draft")
        if (self.acceptance_rate is None) == (self.acceptance_lengths is None):
            raise TegelError("--acceptance: give the acceptance rate (--acceptance) or the "
                             "distribution of accepted drafts (--acceptance-lengths): exactly one")
        if self.acceptance_rate is not None:
            a = self.acceptance_rate
            if not (0.0 <= a <= 1.0):
                raise TegelError(f"--acceptance: expected a rate in [0, 1], got {a:g}")
        else:
            self._check_lengths(self.acceptance_lengths or ())

    def _check_lengths(self, probabilities: tuple[float, ...]) -> None:
        k = self.draft_tokens
        if len(probabilities) != k + 1:
            raise TegelError(f"--acceptance-lengths: expected {k + 1} probabilities (of accepting "
                             f"0..{k} drafts, --draft-tokens {k}), got {len(probabilities)}")
        if any(not (math.isfinite(p) and p >= 0.0) for p in probabilities):
            raise TegelError(f"--acceptance-lengths: probabilities must be >= 0, got "
                             f"{','.join(f'{p:g}' for p in probabilities)}")
        total = sum(probabilities)
        if abs(total - 1.0) > _SUM_TOLERANCE:
            raise TegelError(f"--acceptance-lengths: probabilities must sum to 1, got {total:g}")

    @property
    def tokens_per_step(self) -> float:
        """E: expected tokens emitted per sequence by one iteration (one verify)."""
        if self.acceptance_rate is not None:
            return tokens_per_step_iid(self.acceptance_rate, self.draft_tokens)
        return tokens_per_step_of_lengths(self.acceptance_lengths or ())

    @property
    def accepted_probabilities(self) -> tuple[float, ...]:
        """P(exactly i drafts accepted), i = 0..k, whichever way acceptance was given."""
        if self.acceptance_rate is not None:
            return acceptance_iid(self.acceptance_rate, self.draft_tokens)
        return self.acceptance_lengths or ()

    def drafter(self, target: ModelConfig) -> ModelConfig | None:
        """The model that drafts for `target` (None: n-gram lookup, no model); raises when a
        draft model does not share the target's vocabulary."""
        if self.method == "ngram":
            return None
        if self.method == "eagle":
            return eagle_head(target)
        draft = self.draft_model
        assert draft is not None
        if draft.vocab_size != target.vocab_size:
            raise TegelError(f"--draft: {draft.name} has a vocabulary of {draft.vocab_size:,} "
                             f"tokens, {target.name} {target.vocab_size:,}; a draft model must "
                             f"share the target's tokenizer")
        return draft

    def describe(self) -> str:
        drafter = {"draft": f"draft model {self.draft_model.name}" if self.draft_model else "",
                   "eagle": "EAGLE head (1 layer + LM head)", "ngram": "n-gram lookup"}
        acceptance = (f"acceptance rate {self.acceptance_rate:g} per token (i.i.d.)"
                      if self.acceptance_rate is not None else
                      "accepted drafts 0..k with probabilities "
                      + ",".join(f"{p:g}" for p in self.acceptance_lengths or ()))
        return (f"speculative decoding: {drafter[self.method]}, {self.draft_tokens} drafts per "
                f"step, {acceptance}: {self.tokens_per_step:.4g} tokens per verify")

    def to_dict(self) -> dict[str, object]:
        return {"method": self.method, "draft_tokens": self.draft_tokens,
                "draft_model": self.draft_model.name if self.draft_model else None,
                "acceptance_rate": self.acceptance_rate,
                "acceptance_lengths": (list(self.acceptance_lengths)
                                       if self.acceptance_lengths is not None else None),
                "tokens_per_step": self.tokens_per_step,
                "source": ("Leviathan et al. 2023, arXiv:2211.17192: E = (1 - a^(k+1)) / (1 - a)"
                           if self.acceptance_rate is not None else
                           "E = 1 + mean accepted drafts (the given distribution)")}


def eagle_head(target: ModelConfig) -> ModelConfig:
    """The EAGLE-style draft head of `target` as a model: one dense decoder layer of the
    target's width, heads and (dense) MLP width, with the target's vocabulary (module doc)."""
    width = target.dense_intermediate_size or target.intermediate_size
    return replace(target, name=f"{target.name}-eagle-head", num_layers=1, num_experts=0,
                   experts_per_token=0, dense_layers=frozenset(), dense_intermediate_size=0,
                   shared_intermediate_size=0, intermediate_size=width,
                   full_attention_layers=frozenset())


@lru_cache(maxsize=64)
def verify_folded_graph(cfg: ModelConfig, phase: Phase, precision: Precision) -> Graph:
    """`folding.folded_graph` of a verify pass: the same layers (one per kind), with logits for
    every new token (the target scores each of the k drafts and the token after them), not the
    last only."""
    return build_llm_graph(cfg, phase, precision, logits="all",
                           layers=layer_fold(cfg).representatives)
