"""`tegel.run`: one LLM inference scenario on one system, as a typed result with a stable dict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tegel.errors import TegelError
from tegel.evaluate.analytical import PhaseCost
from tegel.evaluate.cost import CATEGORIES, Category
from tegel.evaluate.terms import static_power_w
from tegel.hardware import System, load_system
from tegel.mapping.params import Params, default_params
from tegel.mapping.plan import Parallelism
from tegel.serving.llm import Evaluated
from tegel.serving.scenario import RunOptions, Scenario, resolve_precision
from tegel.serving.search import search
from tegel.serving.speculative import Speculation
from tegel.workload.llm import Precision
from tegel.workload.model_config import ModelConfig, load_model_config

_STATIC = CATEGORIES.index(Category.STATIC)


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one scenario costs on one whole system (SI units; per-token figures per generated
    token). Energy and power count every chip of the system: the replicas serving the batch,
    and the chips left idle (batch < data-parallel degree), with their hosts, at idle power."""

    model: str
    system: System
    batch: int
    input_tokens: int
    output_tokens: int
    precision: Precision
    chosen: Evaluated
    beams: int = 1  # beam search: hypotheses per request

    @property
    def system_name(self) -> str:
        return self.system.name

    @property
    def parallelism(self) -> Parallelism:
        return self.chosen.parallelism

    @property
    def ttft_s(self) -> float:
        return self.chosen.ttft_s

    @property
    def tpot_s(self) -> float:
        """Seconds per generated token after the first (with speculative decoding: an
        iteration's draft + verify time over the tokens it emits on average)."""
        return self.chosen.decode_per_token.time_s

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

    @property
    def replicas_busy(self) -> int:
        """Replicas serving the batch (the last one may be partly filled; it runs as if full)."""
        return min(self.parallelism.dp, -(-self.batch // self.chosen.batch_per_replica))

    @property
    def chips_busy(self) -> int:
        return self.replicas_busy * self.parallelism.chips_per_replica

    @property
    def chips_idle(self) -> int:
        return self.system.chip_count - self.chips_busy

    def _idle_w(self) -> tuple[float, float]:
        """(W, hosts' part) drawn by what the batch leaves idle: idle chips with their hosts'
        share, and the racks' own overhead (switches, power shelves)."""
        watts, host_w = static_power_w(self.system, self.chips_idle)
        rack_w = self.system.host.rack_overhead_w * self.system.rack_share
        return watts + rack_w, host_w + rack_w

    def _system_energy(self) -> tuple[float, ...]:
        """Energy by category of the whole system over one run (busy replicas + idle rest)."""
        busy = self.chosen.replica_energy_by_category_j()
        energy = [e * self.replicas_busy for e in busy]
        energy[_STATIC] += self._idle_w()[0] * self.e2e_latency_s
        return tuple(energy)

    @property
    def energy_breakdown_j_per_token(self) -> dict[str, float]:
        tokens = self.batch * self.output_tokens
        return {c.value: e / tokens for c, e in zip(CATEGORIES, self._system_energy(), strict=True)}

    @property
    def energy_j_per_token(self) -> float:
        return sum(self.energy_breakdown_j_per_token.values())

    @property
    def accelerator_energy_j_per_token(self) -> float:
        """Energy per token without hosts and racks (what GPU power counters measure)."""
        host_j = (self.chosen.replica_host_energy_j() * self.replicas_busy
                  + self._idle_w()[1] * self.e2e_latency_s)
        return self.energy_j_per_token - host_j / (self.batch * self.output_tokens)

    @property
    def power_w(self) -> float:
        """Average power of the whole system over the run, W (never below its idle power)."""
        return sum(self._system_energy()) / self.e2e_latency_s

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON contract of `tegel run --json`."""
        mem = self.chosen.memory
        par = self.parallelism
        spec = self.chosen.speculative
        return {
            "model": self.model,
            "system": self.system.name,
            "batch": self.batch,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "beams": self.beams,
            "precision": {"weights": self.precision.weights.value,
                          "activations": self.precision.activations.value,
                          "kv_cache": self.precision.kv_cache.value},
            "parallelism": {"tp": par.tp, "pp": par.pp, "ep": par.ep, "dp": par.dp,
                            "batch_per_replica": self.chosen.batch_per_replica,
                            "stages": self.chosen.config.stages},
            "chips_busy": self.chips_busy,
            "chips_idle": self.chips_idle,
            "ttft_s": self.ttft_s,
            "tpot_s": self.tpot_s,
            "e2e_latency_s": self.e2e_latency_s,
            "throughput_tokens_per_s": self.throughput_tokens_per_s,
            "tokens_per_s_per_user": self.tokens_per_s_per_user,
            "energy_j_per_token": self.energy_j_per_token,
            "energy_breakdown_j_per_token": self.energy_breakdown_j_per_token,
            "accelerator_energy_j_per_token": self.accelerator_energy_j_per_token,
            "power_capped": (self.chosen.prefill.power_capped or self.chosen.decode.power_capped
                             or (spec is not None and spec.power_capped)),
            "power_w": self.power_w,
            "memory_bytes": {"weights": mem.weights_bytes, "kv_cache": mem.kv_cache_bytes,
                             "activations": mem.activation_bytes, "total": mem.total_bytes,
                             "capacity": mem.capacity_bytes, "scope": "per chip"},
            "plan_notes": list(self.chosen.decode.plan.notes),
            "speculative": None if spec is None else {
                **spec.to_dict(), "plain_tpot_s": self.chosen.decode.time_s,
                "speedup_per_user": self.chosen.decode.time_s / self.tpot_s},
        }

    def op_rows(self) -> list[dict[str, Any]]:
        """One row per step and phase: time, energy, FLOPs, bytes, bounding resource. With
        speculative decoding, also one draft pass ("draft", run k times a step) and the verify
        ("verify"); "decode" is then the plain step they replace."""
        rows = []
        for phase_name, phase in (("prefill", self.chosen.prefill), ("decode", self.chosen.decode)):
            rows += _rows(phase_name, phase)
        spec = self.chosen.speculative
        if spec is not None:
            rows += (_rows("draft", spec.draft) if spec.draft is not None else [])
            rows += _rows("verify", spec.verify)
        return rows

    def op_table(self) -> Any:
        """The per-step rows as a pandas DataFrame (pandas must be installed)."""
        try:
            import pandas as pd
        except ImportError:
            raise TegelError("op_table() needs pandas: pip install pandas") from None
        return pd.DataFrame(self.op_rows())

    def _repr_html_(self) -> str:
        """An HTML table for notebooks (`tegel.report.notebook`)."""
        from tegel.report.notebook import run_html

        return run_html(self)


def _rows(phase_name: str, phase: PhaseCost) -> list[dict[str, Any]]:
    levels = phase.plan.levels
    out = []
    for sc in phase.steps:
        s = sc.step
        row: dict[str, Any] = {"phase": phase_name, "step": s.name, "kind": s.kind.value,
                               "stage": s.stage, "repeat": s.repeat, "time_s": sc.time_s,
                               "energy_j": sum(sc.energy_by_category_j), "bound": sc.bound_label,
                               "flops": s.flops}
        for name, rd, wr in zip(levels, s.reads, s.writes, strict=True):
            row[f"{name}_bytes"] = rd + wr
        out.append(row)
    return out


def run(model: str | ModelConfig, system: str | System, batch: int | str = 1,
        input_tokens: int = 1024, output_tokens: int = 256,
        precision: Precision | str | None = None, *, options: RunOptions | None = None,
        params: Params | None = None, speculation: Speculation | None = None) -> RunResult:
    """Evaluate LLM inference of `model` on `system`.

    batch: sequences served together (whole system), or "auto" — the largest batch that fits
    memory, chosen for maximum throughput. `options` constrain the mapping (parallel degrees,
    stages, beams... see RunOptions; unset degrees are searched: minimum end-to-end latency at a
    fixed batch, maximum throughput with "auto"); `params` are the policies' parameters
    (default: the shipped ones); `speculation` prices decode as draft + verify iterations
    (serving/speculative.py; tpot_s is then per generated token on average).
    """
    options = options or RunOptions()
    cfg = model if isinstance(model, ModelConfig) else load_model_config(model)
    sys_ = system if isinstance(system, System) else load_system(system)
    if batch != "auto" and (not isinstance(batch, int) or isinstance(batch, bool) or batch < 1):
        raise TegelError(f"batch: expected a positive integer or 'auto', got {batch!r}")
    scenario = Scenario(cfg, None if batch == "auto" else int(batch), input_tokens, output_tokens,
                        resolve_precision(sys_, precision), options.beams, speculation)
    best = search(scenario, sys_, options, params or default_params())
    total = best.batch_per_replica * best.parallelism.dp if scenario.batch is None else scenario.batch
    return RunResult(cfg.name, sys_, total, input_tokens, output_tokens, scenario.precision, best,
                     options.beams)
