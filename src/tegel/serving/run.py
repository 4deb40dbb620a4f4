"""`tegel.run`: one LLM inference scenario on one system, as a typed result with a stable dict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tegel.errors import TegelError
from tegel.evaluate.analytical import PhaseCost
from tegel.evaluate.cost import CATEGORIES
from tegel.hardware import System, load_system
from tegel.mapping.plan import Parallelism
from tegel.report.text import si
from tegel.serving.llm import (
    Evaluated,
    Scenario,
    candidate_parallelisms,
    evaluate_config,
    max_batch,
    memory_per_chip,
)
from tegel.workload.dtypes import DType
from tegel.workload.llm import Precision
from tegel.workload.model_config import ModelConfig, load_model_config

_NEAR = 1.0 - 1e-9


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one scenario costs on one system (SI units; per-token figures per generated token)."""

    model: str
    system: str
    batch: int
    input_tokens: int
    output_tokens: int
    precision: Precision
    chosen: Evaluated

    @property
    def parallelism(self) -> Parallelism:
        return self.chosen.parallelism

    @property
    def ttft_s(self) -> float:
        return self.chosen.ttft_s

    @property
    def tpot_s(self) -> float:
        return self.chosen.decode.time_s

    @property
    def e2e_latency_s(self) -> float:
        return self.chosen.e2e_s

    @property
    def throughput_tokens_per_s(self) -> float:
        """Generated tokens per second of the whole system."""
        return self.batch * self.output_tokens / self.e2e_latency_s

    @property
    def tokens_per_s_per_user(self) -> float:
        return 1.0 / self.tpot_s

    def _replica_energy(self) -> tuple[float, ...]:
        c = self.chosen
        steps = self.output_tokens - 1
        return tuple(p + steps * d for p, d in zip(c.prefill.cost.energy_by_category_j,
                                                   c.decode.cost.energy_by_category_j, strict=True))

    @property
    def energy_breakdown_j_per_token(self) -> dict[str, float]:
        tokens = self.chosen.batch_per_replica * self.output_tokens
        return {c.value: e / tokens for c, e in zip(CATEGORIES, self._replica_energy(), strict=True)}

    @property
    def energy_j_per_token(self) -> float:
        return sum(self.energy_breakdown_j_per_token.values())

    @property
    def accelerator_energy_j_per_token(self) -> float:
        """Energy per token without the hosts' share (what GPU power counters measure)."""
        c = self.chosen
        host_j = (c.prefill.host_w * c.prefill.time_s
                  + (self.output_tokens - 1) * c.decode.host_w * c.decode.time_s)
        return self.energy_j_per_token - host_j / (c.batch_per_replica * self.output_tokens)

    @property
    def power_w(self) -> float:
        """Average power of the replicas serving the batch over the run, W."""
        replicas = -(-self.batch // self.chosen.batch_per_replica)
        return replicas * sum(self._replica_energy()) / self.e2e_latency_s

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON contract of `tegel run --json`."""
        mem = self.chosen.memory
        par = self.parallelism
        return {
            "model": self.model,
            "system": self.system,
            "batch": self.batch,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "precision": {"weights": self.precision.weights.value,
                          "activations": self.precision.activations.value,
                          "kv_cache": self.precision.kv_cache.value},
            "parallelism": {"tp": par.tp, "pp": par.pp, "ep": par.ep, "dp": par.dp,
                            "batch_per_replica": self.chosen.batch_per_replica},
            "ttft_s": self.ttft_s,
            "tpot_s": self.tpot_s,
            "e2e_latency_s": self.e2e_latency_s,
            "throughput_tokens_per_s": self.throughput_tokens_per_s,
            "tokens_per_s_per_user": self.tokens_per_s_per_user,
            "energy_j_per_token": self.energy_j_per_token,
            "energy_breakdown_j_per_token": self.energy_breakdown_j_per_token,
            "accelerator_energy_j_per_token": self.accelerator_energy_j_per_token,
            "power_capped": self.chosen.prefill.power_capped or self.chosen.decode.power_capped,
            "power_w": self.power_w,
            "memory_bytes": {"weights": mem.weights_bytes, "kv_cache": mem.kv_cache_bytes,
                             "activations": mem.activation_bytes, "total": mem.total_bytes,
                             "capacity": mem.capacity_bytes, "scope": "per chip"},
            "plan_notes": list(self.chosen.decode.plan.notes),
        }

    def op_rows(self) -> list[dict[str, Any]]:
        """One row per step and phase: time, energy, FLOPs, bytes, bounding resource."""
        rows = []
        for phase_name, phase in (("prefill", self.chosen.prefill), ("decode", self.chosen.decode)):
            rows += _rows(phase_name, phase)
        return rows

    def op_table(self) -> Any:
        """The per-step rows as a pandas DataFrame (pandas must be installed)."""
        try:
            import pandas as pd
        except ImportError:
            raise TegelError("op_table() needs pandas: pip install pandas") from None
        return pd.DataFrame(self.op_rows())


def _rows(phase_name: str, phase: PhaseCost) -> list[dict[str, Any]]:
    levels = phase.plan.levels
    out = []
    for sc in phase.steps:
        s = sc.step
        row: dict[str, Any] = {"phase": phase_name, "step": s.name, "kind": s.kind,
                               "stage": s.stage, "repeat": s.repeat, "time_s": sc.time_s,
                               "energy_j": sum(sc.energy_by_category_j), "bound": sc.bound,
                               "flops": s.flops}
        for name, rd, wr in zip(levels, s.reads, s.writes, strict=True):
            row[f"{name}_bytes"] = rd + wr
        out.append(row)
    return out


def resolve_precision(system: System, precision: Precision | str | None) -> Precision:
    """A Precision from a name ('fp8'), an object, or None/'auto' (bf16 where the chip has it)."""
    if isinstance(precision, Precision):
        return precision
    if precision is None or precision == "auto":
        classes = system.chip.dtypes
        for dtype in (DType.BF16, DType.FP16, DType.FP8_E4M3, DType.INT8):
            if dtype.compute_class in classes:
                return Precision.uniform(dtype)
        raise TegelError(f"{system.chip.name}: no supported format among bf16, fp16, fp8, int8")
    try:
        return Precision.uniform(DType.parse(precision))
    except ValueError as err:
        raise TegelError(f"precision: {err}") from None


def run(model: str | ModelConfig, system: str | System, batch: int | str = 1,
        input_tokens: int = 1024, output_tokens: int = 256,
        precision: Precision | str | None = None, tp: int | None = None, pp: int | None = None,
        ep: int | None = None, stages: int | None = None, max_batch_per_replica: int = 2048,
        beams: int = 1, software: str | None = None, sim: str = "analytical") -> RunResult:
    """Evaluate LLM inference of `model` on `system`.

    batch: sequences served together (whole system), or "auto" — the largest batch that fits
    memory, chosen for maximum throughput. Unset tp/pp/ep are chosen automatically: minimum
    end-to-end latency at a fixed batch, maximum throughput with batch "auto". sim="event":
    the configuration so chosen is compiled onto the tiles and played in the event simulator.
    """
    if sim not in ("analytical", "event"):
        raise TegelError(f"sim: expected 'analytical' or 'event', got {sim!r}")
    cfg = model if isinstance(model, ModelConfig) else load_model_config(model)
    sys_ = system if isinstance(system, System) else load_system(system)
    if input_tokens < 1 or output_tokens < 1:
        raise TegelError("input and output tokens must be >= 1")
    auto = batch == "auto"
    if not auto and (not isinstance(batch, int) or batch < 1):
        raise TegelError(f"batch: expected a positive integer or 'auto', got {batch!r}")
    if beams < 1:
        raise TegelError(f"beams: expected a positive integer, got {beams}")
    scenario = Scenario(cfg, sys_, None if auto else int(batch), input_tokens, output_tokens,
                        resolve_precision(sys_, precision), max_batch_per_replica, beams,
                        software)
    best: Evaluated | None = None
    shortfall: float | None = None
    context = input_tokens + output_tokens
    for par in candidate_parallelisms(scenario, tp, pp, ep):
        if auto:
            b = max_batch(cfg, sys_, par, context, input_tokens, scenario.precision,
                          max_batch_per_replica, beams)
            if b == 0:
                shortfall = _shortfall(scenario, par, 1, shortfall)
                continue
        else:  # replicas beyond the batch stay idle and are not counted
            b = -(-scenario.batch // par.dp)  # type: ignore[operator]
            mem = memory_per_chip(cfg, sys_, par, b, context, input_tokens, scenario.precision,
                                  beams)
            if not mem.fits:
                short = mem.total_bytes - mem.capacity_bytes
                shortfall = short if shortfall is None else min(shortfall, short)
                continue
        stage_options: list[int | None] = [None]
        if sys_.chip.architecture != "gpu" and stages is None:
            stage_options = [par.pp * 2**j for j in range(12) if par.pp * 2**j <= cfg.num_layers]
        elif stages is not None:
            stage_options = [stages]
        for st in stage_options:  # memory no longer depends on the stages: it fits here
            ev = evaluate_config(scenario, par, b, st)
            if best is None or _better(ev, best, auto):
                best = ev
    if best is None:
        raise TegelError(_no_fit_message(scenario, shortfall))
    if sim == "event":
        best = evaluate_config(scenario, best.parallelism, best.batch_per_replica,
                               best.decode.plan.stages, sim="event")
    total_batch = best.batch_per_replica * best.parallelism.dp if auto else int(batch)
    return RunResult(cfg.name, sys_.name, total_batch, input_tokens, output_tokens,
                     scenario.precision, best)


def _better(a: Evaluated, b: Evaluated, auto: bool) -> bool:
    if auto:
        return a.throughput_tokens_per_s > b.throughput_tokens_per_s / _NEAR
    return a.e2e_s < b.e2e_s * _NEAR


def _shortfall(s: Scenario, par: Parallelism, batch: int, current: float | None) -> float:
    mem = memory_per_chip(s.model, s.system, par, batch, s.input_tokens + s.output_tokens,
                          s.input_tokens, s.precision, s.beams)
    short = mem.total_bytes - mem.capacity_bytes
    return short if current is None else min(current, short)


def _no_fit_message(s: Scenario, shortfall: float | None) -> str:
    what = f"batch {s.batch}" if s.batch else "even batch 1"
    short = f"; short by {si(shortfall, 'B')} per chip at best" if shortfall else ""
    bits = s.precision.weights.info.element_bits
    smaller = ("--precision fp8" if bits > 8 else "--weights fp4 (or int4)" if bits > 4.5 else "")
    options = ", ".join(o for o in ("a system with more chips", "a smaller batch or context",
                                    smaller) if o)
    return (f"{s.model.name} does not fit on {s.system.name} with {what}, "
            f"{s.input_tokens}+{s.output_tokens} tokens, weights in {s.precision.weights.value}"
            f"{short}; try {options}")
