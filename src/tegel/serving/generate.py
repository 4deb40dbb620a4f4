"""Run a model on a simulated machine: greedy generation on the functional executor, with the
simulated time and energy of the same scenario, and an accuracy report per number format."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from tegel.errors import TegelError
from tegel.evaluate.functional import (
    ExecStats,
    Split,
    execute,
    quantize_weights,
    splits_for_compiled,
    splits_for_plan,
    stages_of_ops,
)
from tegel.hardware import System, load_system
from tegel.serving.run import RunResult, run
from tegel.serving.scenario import RunOptions, resolve_precision
from tegel.workload.dtypes import DType
from tegel.workload.llm import Phase, Precision, build_llm_graph, carried_caches
from tegel.workload.model_config import ModelConfig

Array = np.ndarray


@dataclass(frozen=True, slots=True)
class Generation:
    """Generated token ids, the last step's logits, the simulated cost, what the executor did."""

    token_ids: tuple[int, ...]
    last_logits: Array
    step_logits: tuple[Array, ...]  # logits of every generated token's step
    simulated: RunResult | None  # None when the chip has no arithmetic in the format
    simulation_note: str
    stats: ExecStats


class _Session:
    """A model with its weights quantized for one system and precision, ready to step."""

    def __init__(self, cfg: ModelConfig, weights: dict[str, Array], system: System,
                 prompt_len: int, new_tokens: int, precision: Precision | str | None,
                 accumulate: DType = DType.FP32, tp: int | None = None) -> None:
        self.cfg, self.system, self.accumulate = cfg, system, accumulate
        _check_finite_weights(cfg, weights)
        self.precision = resolve_precision(system, precision)
        self.simulated: RunResult | None = None
        self.note = ""
        try:
            structure = self.simulated = run(cfg, system, 1, prompt_len, max(1, new_tokens),
                                             self.precision, options=RunOptions(tp=tp))
        except TegelError as err:
            if "does not compute in" not in str(err):
                raise
            # numbers still run; time and energy need arithmetic in the format: plan the
            # structure (which splits GEMMs how) in the chip's own format instead
            self.note = f"no simulated cost: {err}"
            structure = run(cfg, system, 1, prompt_len, max(1, new_tokens), None,
                            options=RunOptions(tp=tp))
        prefill = build_llm_graph(cfg, Phase.prefill(1, prompt_len), self.precision)
        self.weights = quantize_weights(weights, prefill)
        chosen = structure.chosen
        decode = build_llm_graph(cfg, Phase.decode(1, prompt_len), self.precision)
        self.prefill_stages: dict[str, int] = {}
        self.decode_stages: dict[str, int] = {}
        if chosen.compiled is not None and chosen.parallelism.tp == 1:
            # the spatial compiler's plan: its K splits and its pipeline stages
            compiled_prefill, compiled_decode = chosen.compiled
            self.prefill_splits = splits_for_compiled(prefill, compiled_prefill)
            self.decode_splits = splits_for_compiled(decode, compiled_decode)
            self.prefill_stages = stages_of_ops(prefill, compiled_prefill)
            self.decode_stages = stages_of_ops(decode, compiled_decode)
        else:
            self.prefill_splits = splits_for_plan(prefill, chosen.prefill.plan)
            self.decode_splits = splits_for_plan(decode, chosen.decode.plan)
        self.blocks = self.partials = 0
        self.allreduce = self.transfers = 0.0

    def _run(self, phase: Phase, ids: Array, positions: Array, caches: dict[str, Array],
             splits: dict[str, Split], stages: dict[str, int], logits: str = "last"
             ) -> dict[str, Array]:
        graph = build_llm_graph(self.cfg, phase, self.precision, logits)
        feeds = {"input_ids": ids, "position_ids": positions, **self.weights}
        for past, present in carried_caches(graph):
            feeds[past.name] = caches[present.name]
        out, stats = execute(graph, feeds, splits, self.precision, self.accumulate,
                             stages=stages)
        self.blocks += stats.gemm_blocks
        self.partials += stats.partial_sums
        self.allreduce += stats.allreduce_bytes
        self.transfers += stats.stage_transfer_bytes
        return out

    def prefill(self, prompt: list[int], logits: str = "last") -> dict[str, Array]:
        ids = np.asarray([prompt], dtype=np.int64)
        return self._run(Phase.prefill(1, len(prompt)), ids, np.arange(len(prompt))[None], {},
                         self.prefill_splits, self.prefill_stages, logits)

    def step(self, token: int, position: int, caches: dict[str, Array]) -> dict[str, Array]:
        return self._run(Phase.decode(1, position), np.asarray([[token]]), np.asarray([[position]]),
                         caches, self.decode_splits, self.decode_stages)

    @property
    def stats(self) -> ExecStats:
        return ExecStats(self.blocks, self.partials, self.allreduce, self.transfers)


def _check_finite_weights(cfg: ModelConfig, weights: dict[str, Array]) -> None:
    """Weights with NaN or infinity would generate tokens from NaN logits (argmax: token 0):
    an error naming the first such tensor instead."""
    for name, w in weights.items():
        arr = np.asarray(w)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            raise TegelError(f"{cfg.name}: weight {name!r} has {bad} non-finite values "
                             f"(NaN or infinity) of {arr.size}")


def _finite_logits(cfg: ModelConfig, out: dict[str, Array], step: int) -> Array:
    """The last position's logits of one step, which must be finite (an overflow in the
    format, or weights that make one, is an error, not token 0)."""
    logits = out["logits"][0, -1]
    if not np.isfinite(np.asarray(logits, dtype=np.float64)).all():
        raise TegelError(f"{cfg.name}: step {step} gives non-finite logits (NaN or infinity): "
                         f"the weights or the number format overflow")
    return logits


def _check_prompt(cfg: ModelConfig, prompt: list[int], new_tokens: int) -> None:
    if not prompt:
        raise TegelError("the prompt needs at least one token id")
    bad = [t for t in prompt if not 0 <= t < cfg.vocab_size]
    if bad:
        raise TegelError(f"token id {bad[0]} out of range 0..{cfg.vocab_size - 1} for {cfg.name}")
    if new_tokens < 1:
        raise TegelError(f"max new tokens must be >= 1, got {new_tokens}")


def generate(cfg: ModelConfig, weights: dict[str, Array], system: System | str,
             prompt: list[int], max_new_tokens: int, precision: Precision | str | None = None,
             accumulate: DType = DType.FP32, tp: int | None = None,
             progress: Callable[[int], None] | None = None) -> Generation:
    """Greedy generation of `max_new_tokens` after `prompt` on the functional executor;
    `progress(n)` is called after each of the n tokens generated."""
    _check_prompt(cfg, prompt, max_new_tokens)
    sys_ = system if isinstance(system, System) else load_system(system)
    s = _Session(cfg, weights, sys_, len(prompt), max_new_tokens, precision, accumulate, tp)
    out = s.prefill(prompt)
    logits = [_finite_logits(cfg, out, 1)]
    tokens = [int(np.argmax(logits[-1]))]
    if progress is not None:
        progress(1)
    for i in range(1, max_new_tokens):
        out = s.step(tokens[-1], len(prompt) + i - 1, out)
        logits.append(_finite_logits(cfg, out, i + 1))
        tokens.append(int(np.argmax(logits[-1])))
        if progress is not None:
            progress(i + 1)
    return Generation(tuple(tokens), logits[-1], tuple(logits), s.simulated, s.note, s.stats)


@dataclass(frozen=True, slots=True)
class Accuracy:
    """Agreement of a number format with the fp32 reference on the same tokens."""

    precision: str
    steps: int
    top1_agreement: float
    max_logit_error: float
    mean_logit_error: float
    perplexity: float
    reference_perplexity: float
    text_tokens: int


def sample_text_ids(cfg: ModelConfig, folder: str | Path | None, limit: int = 96) -> list[int]:
    """Token ids of the text tegel ships: with the folder's tokenizer.json when there is one,
    else the text's UTF-8 bytes folded into the vocabulary (enough to compare formats)."""
    text = (resources.files("tegel.serving") / "data" / "sample.txt").read_text()
    tokenizer_file = Path(folder) / "tokenizer.json" if folder else None
    if tokenizer_file and tokenizer_file.is_file():
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise TegelError("tokenizer.json found but the `tokenizers` package is not installed") from None
        ids = Tokenizer.from_file(str(tokenizer_file)).encode(text).ids
    else:
        ids = [b % cfg.vocab_size for b in text.encode("utf-8")]
    return ids[: min(limit, cfg.max_position_embeddings - 1)]  # room for the one step simulated


def _perplexity(logits: Array, ids: list[int]) -> float:
    z = logits[0, :-1].astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    nll = -logp[np.arange(len(ids) - 1), ids[1:]]
    return float(math.exp(nll.mean()))


def accuracy(cfg: ModelConfig, weights: dict[str, Array], system: System | str,
             precision: Precision | str, prompt: list[int], steps: int,
             folder: str | Path | None = None) -> Accuracy:
    """Compare `precision` with fp32 over `steps` greedy steps (teacher-forced on the fp32
    tokens) and by perplexity on the shipped text."""
    reference = generate(cfg, weights, system, prompt, steps, "fp32")
    sys_ = system if isinstance(system, System) else load_system(system)
    s = _Session(cfg, weights, sys_, len(prompt), steps, precision)
    out = s.prefill(prompt)
    logits = [out["logits"][0, -1]]
    for i, token in enumerate(reference.token_ids[:-1], start=1):
        out = s.step(token, len(prompt) + i - 1, out)
        logits.append(out["logits"][0, -1])
    errors = [np.abs(a - b) for a, b in zip(logits, reference.step_logits, strict=True)]
    agree = [int(np.argmax(a)) == t for a, t in zip(logits, reference.token_ids, strict=True)]
    ids = sample_text_ids(cfg, folder)
    quantized_ppl = _perplexity(s.prefill(ids, "all")["logits"], ids)
    fp32 = _Session(cfg, weights, sys_, len(ids), 1, "fp32")
    reference_ppl = _perplexity(fp32.prefill(ids, "all")["logits"], ids)
    return Accuracy(s.precision.weights.value, steps, sum(agree) / len(agree),
                    float(max(e.max() for e in errors)), float(np.mean([e.mean() for e in errors])),
                    quantized_ppl, reference_ppl, len(ids))
