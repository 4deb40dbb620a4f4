"""`tegel claim`: one workload on two systems — energy, cost and footprint ratios, how they hold
over the plausible range of every unannounced figure, the same comparison at equal load, and how
far each machine is from the energy floor.

Like for like: both systems are held to the same service level — a speed per user (1 / median
TPOT at steady state) and a p99 TTFT limit (default 2 s, set for 1,024-token prompts), served by
the same scheduler (chunked prefill by default) — each at the operating point of its serving
curve (`serving/operating.py`: the concurrency and split of highest throughput meeting both),
and each is charged for all the hardware it occupies: the serving run's whole-system energy and
power (busy replicas, chips outside them at idle power, hosts, rack overhead), the whole
system's capital and nameplate power. A fixed batch for either side (`batch_on`, `batch_vs`)
runs both as static batches instead (`tegel run`; the other side at its largest static batch
meeting the speed, `tco.interactive_run`), with no TTFT limit — the static path, said so.

Ratios are A's advantage over B (> 1: A is better by that factor): energy = tokens/J of A /
tokens/J of B; cost = B's $/Mtoken / A's (TCO and capital only); footprint = B's racks, kW
(nameplate, facility) and serving kW / A's.

Over the assumptions (`tornado.py`): every unannounced figure with a range in
`data/ranges.yaml` is moved over it — the tornado, the break-even values (1x and the claimed
figure), the worst and best cases and the one-line verdict. At equal load (`equal_load.py`):
both systems serve the same tokens/s (default: the slower one's top throughput at the service
level), each sized in whole systems and charged for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from tegel.economics import energy_knobs
from tegel.economics.assumptions import Assumptions, load_assumptions
from tegel.economics.equal_load import EqualLoad, equal_load
from tegel.economics.evaluate import (
    RATIOS,
    SystemEconomics,
    Workload,
    cost_run,
    evaluate_system,
    ratios,
    served_again,
)
from tegel.economics.served import ServingPoint
from tegel.economics.tornado import Tornado, tornado
from tegel.errors import TegelError
from tegel.hardware import System, load_system
from tegel.mapping.params import Params
from tegel.serving.replica import SchedulerConfig
from tegel.workload.llm import Precision
from tegel.workload.model_config import ModelConfig, load_model_config

__all__ = ["RATIOS", "Claim", "ClaimOptions", "SystemEconomics", "Workload", "claim", "cost_run",
           "evaluate_system", "like_for_like", "ratios", "served_again"]


@dataclass(frozen=True, slots=True)
class ClaimOptions:
    """What the claim is checked on besides the model and systems: lengths, formats (None: each
    system's default, bf16 where it has it), the speed per user (None: the assumptions'
    `min_tokens_per_s_per_user`), the throughput the footprint is sized for, fixed batches
    (None: each system at its operating point; either fixed: static batches for both), the
    p99 TTFT limit (None: the default, 2 s for 1,024-token prompts), the scheduler of the
    operating points, the claimed advantage the verdict tests (`claimed`, x), whether to run the
    tornado over the ranges (`tornado`) and the equal-load comparison (`equal_load`; its load in
    tokens/s, None: the slower system's top throughput at the service level)."""

    input_tokens: int = 1024
    output_tokens: int = 256
    precision: Precision | None = None
    min_tokens_per_s_per_user: float | None = None
    target_tokens_per_s: float = 1e6
    batch_on: int | None = None
    batch_vs: int | None = None
    max_ttft_s: float | None = None
    scheduler: str = "chunked"
    claimed: float = 100.0
    tornado: bool = True
    equal_load: bool = True
    equal_load_tokens_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """The claim check: both systems, the ratios, the tornado over the ranges with its verdict
    (None: not run), the equal-load comparison (None: not run, or static batches) and the
    floor; `overrides`: the assumptions that differ from the shipped file."""

    workload: Workload
    on: SystemEconomics
    vs: SystemEconomics
    tornado: Tornado | None
    equal_load: EqualLoad | None
    assumptions: Assumptions
    overrides: dict[str, object]

    @property
    def ratios(self) -> dict[str, float]:
        return ratios(self.on, self.vs)

    @property
    def energy_floor_j_per_token(self) -> float:
        """The workload's floor: the lower of the two systems' floors (node and batch)."""
        return min(self.on.floor.j_per_token, self.vs.floor.j_per_token)

    @property
    def notes(self) -> list[str]:
        """What the reader must know besides the numbers: the asymmetry of arithmetic energy
        where one side's comes from its TDP and the other's does not, an operating point that
        the scheduler's limit stopped rather than the service level, and footprint notes."""
        out = []
        from_tdp = [s.system.name for s in (self.on, self.vs)
                    if energy_knobs.pj_from_tdp(s.system.chip)]
        if len(from_tdp) == 1:
            f = energy_knobs.gpu_power_fraction()
            other = next(s.system.name for s in (self.on, self.vs) if s.system.name != from_tdp[0])
            out.append(f"{from_tdp[0]}'s arithmetic energy is derived from its TDP (a share "
                       f"{f.central:g} of dynamic power at peak, range {f.low:g}..{f.high:g}); "
                       f"{other}'s bottom-up from the technology library's MAC energy: an "
                       f"asymmetry in {other}'s favour")
        for s in (self.on, self.vs):
            if isinstance(s.result, ServingPoint) and s.result.op.at_scheduler_limit:
                r = s.result.op.point.result
                out.append(f"{s.system.name} runs as many sequences as its scheduler allows "
                           f"({r.config.parallelism.dp} replicas x {r.scheduler.max_seqs}): the "
                           f"service level does not bind it there")
        return out + [n for s in (self.on, self.vs) for n in s.footprint.notes]

    def to_dict(self) -> dict[str, object]:
        r = self.ratios
        w = self.workload
        t = self.tornado
        return {
            "model": w.model.name, "on": self.on.system.name, "vs": self.vs.system.name,
            "workload": {"input_tokens": w.input_tokens, "output_tokens": w.output_tokens,
                         "min_tokens_per_s_per_user": w.min_tokens_per_s_per_user,
                         "max_ttft_s": None if w.service is None else w.service.ttft_limit_s,
                         "target_tokens_per_s": w.target_tokens_per_s},
            "service_level": w.service_dict(),
            "ratios": {"energy": r["energy"],
                       "cost": {"tco": r["cost_tco"], "capital": r["cost_capital"]},
                       "footprint": {"racks": r["racks"], "kw": r["kw"],
                                     "serving_kw": r["serving_kw"]},
                       "meaning": "A's advantage over B: > 1 means A is better by that factor"},
            "energy_floor_j_per_token": self.energy_floor_j_per_token,
            "systems": {s.system.name: s.to_dict() for s in (self.on, self.vs)},
            "tornado": [] if t is None else [row.to_dict() for row in t.rows],
            "break_even": [] if t is None else [row.break_even_dict(t.claimed) for row in t.rows
                                                if row.values is not None],
            "verdict": None if t is None else t.to_dict(),
            "equal_load": None if self.equal_load is None else self.equal_load.to_dict(),
            "accounting": like_for_like(w),
            "notes": self.notes,
            "assumptions": {"pricing": self.assumptions.pricing,
                            "years": self.assumptions.years,
                            "utilization": self.assumptions.utilization,
                            "electricity_usd_per_kwh": self.assumptions.electricity_usd_per_kwh,
                            "pue": self.assumptions.pue,
                            "rack_power_limit_w": self.assumptions.rack_power_limit_w,
                            "overrides": self.overrides},
        }

    def _repr_html_(self) -> str:
        """An HTML table for notebooks (`tegel.report.notebook`)."""
        from tegel.report.notebook import claim_html

        return claim_html(self)


def like_for_like(w: Workload) -> str:
    """The accounting sentence of the report: the service level both are held to, and what
    each is charged for."""
    charged = ("each is charged for all the hardware it occupies (busy chips, chips left idle at "
               "idle power, hosts and racks).")
    s = w.service
    if s is None:
        return (f"Like for like: static batches (no TTFT limit), a batch not fixed the largest "
                f"at >= {w.min_tokens_per_s_per_user:g} tokens/s per user; {charged}")
    return (f"Like for like: both systems held to the same service level (>= "
            f"{s.min_tokens_per_s_per_user:g} tokens/s per user, p99 TTFT <= "
            f"{s.ttft_limit_s:g} s, {s.scheduler.kind} scheduler), each at the concurrency and "
            f"split of its highest throughput there; {charged}")


def claim(model: str | ModelConfig, on: str | System, vs: str | System,
          a: Assumptions | None = None, *, options: ClaimOptions | None = None,
          params: Params | None = None) -> Claim:
    """Check the claim "A beats B" on one workload (module doc). `a`: the economics
    assumptions (None: the shipped file); `params`: the mapping policies' (None: shipped)."""
    shipped = load_assumptions()
    a = shipped if a is None else a
    o = options or ClaimOptions()
    cfg = model if isinstance(model, ModelConfig) else load_model_config(model)
    sys_on = on if isinstance(on, System) else load_system(on)
    sys_vs = vs if isinstance(vs, System) else load_system(vs)
    speed = (a.min_tokens_per_s_per_user if o.min_tokens_per_s_per_user is None
             else o.min_tokens_per_s_per_user)
    static = o.batch_on is not None or o.batch_vs is not None
    if static and o.max_ttft_s is not None:
        raise TegelError("--max-ttft: a fixed --batch-on/--batch-vs runs static batches (tegel "
                         "run), which have no TTFT limit; give one or the other")
    w = Workload(cfg, o.input_tokens, o.output_tokens, o.precision, speed, o.target_tokens_per_s,
                 o.max_ttft_s, None if static else SchedulerConfig(kind=o.scheduler))
    eo = evaluate_system(w, sys_on, a, o.batch_on, params=params, basis="fixed (--batch-on)")
    ev = evaluate_system(w, sys_vs, a, o.batch_vs, params=params, basis="fixed (--batch-vs)")
    if not o.claimed > 0:
        raise TegelError(f"--claimed: expected a positive factor, got {o.claimed:g}")
    t = tornado(w, eo, ev, a, o.claimed, params=params) if o.tornado else None
    level = (equal_load(w, eo, ev, a, o.equal_load_tokens_per_s, params=params)
             if o.equal_load and not static else None)
    return Claim(w, eo, ev, t, level, a, a.changes_from(shipped))
