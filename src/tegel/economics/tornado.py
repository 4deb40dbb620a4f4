"""A claim over its assumptions: each unannounced figure moved over its plausible range
(`ranges.py`), the break-even values, the worst and best cases, and the verdict.

- **Tornado**: each figure at its low and its high end with everything else central; the ratios
  (A's advantage) at each end. An economic figure or the chip price basis re-prices both
  systems' operating points (`cost_run`). A hardware figure rebuilds the system with it
  (`energy_knobs.system_at`) and serves the same requests again at the same concurrency and
  split (`evaluate.served_again`) at the end where it draws more power (the high end; for the
  nameplate share, the low end, where a power cap would bind first). If that run keeps the
  timing (throughput and speed per user unchanged), the chips' energy and power are affine in
  the figure and every other value is read between the two runs (`served.lerp`), on the rebuilt
  system (its TDP, idle power and nameplate derived again). The wall's power is not quite
  affine (the supplies' efficiency depends on their load), so the reading is checked against a
  third run at the midpoint and stands only within `AFFINE_TOLERANCE`; otherwise, or if the
  timing changes, each value is served again.
- **Break-even**: for each figure and ratio, the value inside the range where the ratio crosses
  1x and where it crosses the claimed figure (the crossing nearest the central value), or none:
  "never within [low, high]". Found on a grid of the range and refined by bisection (to 1e-9
  where values are re-priced or read between runs, to 1/32 of the range where each is served
  again, then marked approximate).
- **Worst and best cases**: for each ratio, every figure at the end that lowers (raises) it, all
  at once — hardware figures served again together; a figure neither of whose ends moves it
  that way stays central, one that does not move it at all stays where the other ratios put it
  (so the cases share their runs). Figures can interact (a rack power limit with a nameplate),
  so a case is taken no milder than any single figure's end.
- **Verdict**: for the claimed figure and for an advantage at all (1x), per ratio, "all" when
  even the worst case reaches it, "no" when not even the best case does, else "some", naming
  the figures whose break-even lies inside their range (or, where none does alone, the ones
  that move the ratio most towards the threshold).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tegel.economics.assumptions import Assumptions
from tegel.economics.energy_knobs import system_at
from tegel.economics.evaluate import (
    RATIOS,
    SystemEconomics,
    Workload,
    cost_run,
    ratios,
    served_again,
)
from tegel.economics.ranges import Range, economic_ranges, hardware_ranges, load_ranges
from tegel.economics.served import Served, lerp, same_timing
from tegel.mapping.params import Params

HEADLINE = ("energy", "cost_tco", "racks")  # what "better energy, cost and footprint" names
RATIO_LABELS = {"energy": "energy", "cost_tco": "cost (TCO)", "cost_capital": "cost (capital)",
                "racks": "racks", "kw": "facility kW", "serving_kw": "IT kW while serving"}
GRID = 17  # points of a range sampled for crossings
SIMULATED_STEPS = 5  # bisection steps where each value is served again (1/32 of the range)
# largest relative gap, over every ratio, between a value read as affine and the value served
# again at the midpoint, for the reading to stand (the supplies' efficiency curve bends it)
AFFINE_TOLERANCE = 1e-3
Ratios = dict[str, float]
Runs = dict[tuple[str, tuple[tuple[str, float], ...]], Served]


@dataclass(frozen=True, slots=True)
class TornadoRow:
    """One figure over its range: the ratios at its low and high end (the rest central), how
    they were obtained, and its break-evens per ratio (None: never within the range)."""

    name: str
    side: str | None  # "A", "B", or None (economic: both systems)
    figure: str
    unit: str
    ends: tuple[str, str, str]  # low, central, high as shown
    values: tuple[float, float, float] | None  # None for a choice
    basis: dict[str, str]
    how: str
    low: Ratios
    high: Ratios
    base: Ratios
    to_one: dict[str, float | None]
    to_claimed: dict[str, float | None]
    approximate: bool = False
    note: str = ""

    def moves(self, ratio: str) -> bool:
        return any(abs(math.log(end[ratio] / self.base[ratio])) > 1e-9
                   for end in (self.low, self.high))

    @property
    def influence(self) -> float:
        """Largest |ln(ratio / base ratio)| over both ends and every ratio."""
        return max(abs(math.log(end[k] / self.base[k])) for end in (self.low, self.high)
                   for k in RATIOS)

    def to_dict(self) -> dict[str, object]:
        return {"assumption": self.name, "side": self.side, "figure": self.figure,
                "unit": self.unit, "low": self.ends[0], "central": self.ends[1],
                "high": self.ends[2], "basis": self.basis, "how": self.how,
                "influence": self.influence, "ratios_low": self.low, "ratios_high": self.high,
                "note": self.note}

    def break_even_dict(self, claimed: float) -> dict[str, object]:
        def cell(x: float | None) -> dict[str, object]:
            return {"value": x, "text": self.crossing_text(x)}

        return {"assumption": self.name, "low": self.ends[0], "central": self.ends[1],
                "high": self.ends[2], "unit": self.unit, "approximate": self.approximate,
                "claimed": claimed,
                "ratios": {r: {"to_1x": cell(self.to_one[r]),
                               "to_claimed": cell(self.to_claimed[r])} for r in RATIOS}}

    def crossing_text(self, x: float | None) -> str:
        if self.values is None:
            return "n/a (a choice, not a range)"
        if x is None:
            return f"never within [{self.ends[0]}, {self.ends[2]}]"
        return ("~" if self.approximate else "") + _fmt(x)


@dataclass(frozen=True, slots=True)
class RatioVerdict:
    """One ratio over all the ranges: central, worst and best cases, and whether the claimed
    figure and an advantage (1x) hold under all, some or no plausible assumptions."""

    ratio: str
    central: float
    worst: float
    best: float
    worst_case: dict[str, str]
    best_case: dict[str, str]
    claim: str
    advantage: str
    claim_decided_by: tuple[str, ...]
    advantage_decided_by: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"central": self.central, "worst": self.worst, "best": self.best,
                "claim": self.claim, "advantage": self.advantage,
                "claim_decided_by": list(self.claim_decided_by),
                "advantage_decided_by": list(self.advantage_decided_by),
                "worst_case": self.worst_case, "best_case": self.best_case}


@dataclass(frozen=True, slots=True)
class Tornado:
    """The tornado rows (most influential first), the verdict, the claimed figure, and the
    serving runs it took (keyed by side and figures; pass them to `tornado(..., runs=)` to judge
    the same claim against another figure without serving again)."""

    rows: tuple[TornadoRow, ...]
    verdicts: dict[str, RatioVerdict]
    claimed: float
    runs: Runs

    @property
    def simulations(self) -> int:
        return len(self.runs)

    @property
    def claim(self) -> str:
        return _overall([self.verdicts[r].claim for r in HEADLINE])

    @property
    def advantage(self) -> str:
        return _overall([self.verdicts[r].advantage for r in HEADLINE])

    @property
    def text(self) -> str:
        """The one-line verdict."""
        v = self.verdicts
        best = ", ".join(f"{RATIO_LABELS[r]} {v[r].best:.3g}x" for r in HEADLINE)
        worst = ", ".join(f"{RATIO_LABELS[r]} {v[r].worst:.3g}x" for r in HEADLINE)
        out = (f"the claimed {self.claimed:g}x holds under {self.claim} plausible assumptions "
               f"(best cases: {best}; worst: {worst})")
        deciding = [f"{RATIO_LABELS[r]}: {', '.join(v[r].claim_decided_by)}" for r in HEADLINE
                    if v[r].claim == "some"]
        if deciding:
            out += f", decided by {'; '.join(deciding)}"
        groups = {k: [RATIO_LABELS[r] for r in HEADLINE if v[r].advantage == k]
                  for k in ("all", "some", "no")}
        parts = [f"under {k} in {' and '.join(names)}" for k, names in groups.items() if names]
        parts[0] = parts[0].replace(" in ", " plausible assumptions in ", 1)
        out += f"; an advantage (> 1x) holds {', '.join(parts)}"
        deciding = [f"{RATIO_LABELS[r]}: {', '.join(v[r].advantage_decided_by)}"
                    for r in HEADLINE if v[r].advantage == "some"]
        if deciding:
            out += f" (decided by {'; '.join(deciding)})"
        return out

    def to_dict(self) -> dict[str, object]:
        return {"claimed": self.claimed, "claim": self.claim, "advantage": self.advantage,
                "headline_ratios": list(HEADLINE), "text": self.text,
                "ratios": {r: v.to_dict() for r, v in self.verdicts.items()},
                "simulations": self.simulations}


def _overall(states: list[str]) -> str:
    if all(s == "all" for s in states):
        return "all"
    return "no" if all(s == "no" for s in states) else "some"


class _Model:
    """Ratios with figures moved; serving runs cached by (side, figures)."""

    def __init__(self, w: Workload, on: SystemEconomics, vs: SystemEconomics, a: Assumptions,
                 params: Params | None, runs: Runs) -> None:
        self.w, self.a, self.params = w, a, params
        self.sides = {"A": on, "B": vs}
        self.runs = runs

    def served(self, side: str, values: Mapping[str, float]) -> Served:
        base = self.sides[side]
        if not values:
            return base.result
        key = (side, tuple(sorted(values.items())))
        if key not in self.runs:
            moved = system_at(base.system, values)
            self.runs[key] = served_again(self.w, base.result, moved, self.params)
        return self.runs[key]

    def ratios(self, a: Assumptions | None = None, on: Served | None = None,
               vs: Served | None = None) -> Ratios:
        a = a or self.a
        return ratios(cost_run(self.w, on or self.sides["A"].result, a),
                      cost_run(self.w, vs or self.sides["B"].result, a))

    def on_side(self, side: str, served: Served) -> Ratios:
        return self.ratios(on=served) if side == "A" else self.ratios(vs=served)


def tornado(w: Workload, on: SystemEconomics, vs: SystemEconomics, a: Assumptions,
            claimed: float = 100.0, *, params: Params | None = None,
            runs: Runs | None = None) -> Tornado:
    """The tornado, break-evens, worst and best cases and verdict of A against B (module doc).
    `runs`: serving runs of an earlier call on the same systems, workload and parameters."""
    m = _Model(w, on, vs, a, params, {} if runs is None else runs)
    base = m.ratios()
    file = load_ranges()
    rows = [_economic_row(m, r, base, claimed) for r in economic_ranges(a, file)]
    choice = file.choices.get("pricing")
    if choice is not None:
        other = choice.other if a.pricing == choice.central else choice.central
        rows.append(_pricing_row(m, base, a.pricing, other, dict(choice.cite)))
    for side, s in (("A", on), ("B", vs)):
        rows += [_hardware_row(m, side, r, base, claimed) for r in hardware_ranges(s.system, file)]
    kept = sorted((r for r in rows if r.influence > 1e-12), key=lambda r: -r.influence)
    verdicts = {k: _verdict(m, kept, base, k, claimed) for k in RATIOS}
    return Tornado(tuple(kept), verdicts, claimed, m.runs)


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _economic_row(m: _Model, r: Range, base: Ratios, claimed: float) -> TornadoRow:
    def f(x: float) -> Ratios:
        return m.ratios(a=m.a.with_overrides({r.figure: x}, flag="ranges.yaml"))

    return _row(r, None, "re-priced", f, True, base, claimed)


def _pricing_row(m: _Model, base: Ratios, central: str, other: str,
                 basis: dict[str, str]) -> TornadoRow:
    moved = m.ratios(a=m.a.with_overrides({"pricing": other}, flag="ranges.yaml"))
    none = {k: None for k in RATIOS}
    return TornadoRow("chip price basis", None, "pricing", "", (other, central, central), None,
                      basis, "re-priced", moved, base, base, dict(none), dict(none))


def _hardware_row(m: _Model, side: str, r: Range, base: Ratios, claimed: float) -> TornadoRow:
    far = r.low if r.figure == "tdp_scale" else r.high
    if far == r.central:
        far = r.high if far == r.low else r.low
    at_far = m.served(side, {r.figure: far})
    start = m.sides[side].result
    if far != r.central and same_timing(start, at_far):
        def f(x: float) -> Ratios:
            t = (x - r.central) / (far - r.central)
            return m.on_side(side, lerp(start, at_far, t, system_at(start.system,
                                                                     {r.figure: x})))

        mid = (r.central + far) / 2
        off = _relative_gap(f(mid), m.on_side(side, m.served(side, {r.figure: mid})))
        if off <= AFFINE_TOLERANCE:
            how = (f"served again at {_fmt(far)} and {_fmt(mid)}; between, read as affine "
                   f"(timing unchanged; {off:.1e} off at {_fmt(mid)})")
            return _row(r, side, how, f, True, base, claimed)

    def g(x: float) -> Ratios:
        return m.on_side(side, m.served(side, {r.figure: x}))

    return _row(r, side, "served again at each value (timing changes)", g, False, base, claimed)


def _relative_gap(a: Ratios, b: Ratios) -> float:
    return max(abs(a[k] - b[k]) / max(abs(b[k]), 1e-30) for k in RATIOS)


def _row(r: Range, side: str | None, how: str, f: Callable[[float], Ratios], cheap: bool,
         base: Ratios, claimed: float) -> TornadoRow:
    lo, hi = f(r.low), f(r.high)
    grid = _grid(r.low, r.central, r.high, cheap)
    values = {x: (lo if x == r.low else hi if x == r.high else base if x == r.central else f(x))
              for x in grid}
    to_one = {k: _crossing(f, values, r.central, k, 1.0, cheap) for k in RATIOS}
    to_claimed = {k: _crossing(f, values, r.central, k, claimed, cheap) for k in RATIOS}
    ends = (_fmt(r.low), _fmt(r.central), _fmt(r.high))
    return TornadoRow(r.name, side, r.figure, r.unit, ends, (r.low, r.central, r.high), r.basis,
                      how, lo, hi, base, to_one, to_claimed, not cheap, r.note)


def _grid(lo: float, c: float, hi: float, cheap: bool) -> list[float]:
    if not cheap or hi <= lo:
        return sorted({lo, c, hi})
    if lo > 0 and hi / lo >= 4:
        xs = [lo * (hi / lo) ** (i / (GRID - 1)) for i in range(GRID)]
    else:
        xs = [lo + (hi - lo) * i / (GRID - 1) for i in range(GRID)]
    return sorted({*xs, c})


def _crossing(f: Callable[[float], Ratios], values: dict[float, Ratios], central: float,
              ratio: str, threshold: float, cheap: bool) -> float | None:
    """The value nearest `central` where f(x)[ratio] crosses `threshold` (None: no crossing on
    the grid), refined by bisection."""
    xs = sorted(values)

    def side(x: float) -> int:
        d = values[x][ratio] - threshold if x in values else f(x)[ratio] - threshold
        return 0 if d == 0 else (1 if d > 0 else -1)

    found = []
    for x0, x1 in itertools.pairwise(xs):
        s0, s1 = side(x0), side(x1)
        if s0 == 0:
            found.append((x0, x0))
        elif s0 != s1:
            found.append((x0, x1))
    if xs and side(xs[-1]) == 0:
        found.append((xs[-1], xs[-1]))
    if not found:
        return None
    if not cheap:  # each bisection step is a serving run: refine only the nearest bracket
        found = [min(found, key=lambda p: min(abs(p[0] - central), abs(p[1] - central)))]
    return min((_bisect(f, a, b, ratio, threshold, side(a), cheap) for a, b in found),
               key=lambda x: abs(x - central))


def _bisect(f: Callable[[float], Ratios], a: float, b: float, ratio: str, threshold: float,
            sa: int, cheap: bool) -> float:
    """The crossing in [a, b], where f(a) is on side `sa` of the threshold (0: at it)."""
    if sa == 0:
        return a
    for _ in range(60 if cheap else SIMULATED_STEPS):
        if b - a <= 1e-12 * max(1.0, abs(b)):
            break
        mid = (a + b) / 2
        sm = f(mid)[ratio] - threshold
        if (sm > 0) == (sa > 0) and sm != 0:
            a = mid
        else:
            b = mid
    return (a + b) / 2


def _verdict(m: _Model, rows: list[TornadoRow], base: Ratios, ratio: str,
             claimed: float) -> RatioVerdict:
    worst = _case(m, rows, ratio, worst=True)
    best = _case(m, rows, ratio, worst=False)

    def state(threshold: float) -> str:
        if worst[0] >= threshold:
            return "all"
        return "no" if best[0] < threshold else "some"

    def deciders(threshold: float, crossings: str) -> tuple[str, ...]:
        names = [f"{r.name} ({threshold:g}x at {r.crossing_text(getattr(r, crossings)[ratio])})"
                 for r in rows if getattr(r, crossings)[ratio] is not None]
        names += [f"{r.name} ({r.ends[0]}: {r.low[ratio]:.3g}x)" for r in rows
                  if r.values is None and min(r.low[ratio], r.high[ratio]) < threshold
                  <= max(r.low[ratio], r.high[ratio])]
        if names:
            return tuple(names)
        up = base[ratio] < threshold  # the ratio must rise to reach it
        movers = sorted((r for r in rows if r.moves(ratio)), key=lambda r: -abs(math.log(
            (max if up else min)(r.low[ratio], r.high[ratio]) / base[ratio])))
        return tuple(f"{r.name} (jointly)" for r in movers[:3])

    claim_state, adv_state = state(claimed), state(1.0)
    return RatioVerdict(ratio, base[ratio], worst[0], best[0], worst[1], best[1], claim_state,
                        adv_state,
                        deciders(claimed, "to_claimed") if claim_state == "some" else (),
                        deciders(1.0, "to_one") if adv_state == "some" else ())


def _case(m: _Model, rows: list[TornadoRow], ratio: str,
          worst: bool) -> tuple[float, dict[str, str]]:
    """The ratio with every figure at the end that lowers (worst) or raises it, all at once;
    figures that do not move it at the end the headline ratios put them (shared runs)."""
    pick = min if worst else max
    econ: dict[str, object] = {}
    hw: dict[str, dict[str, float]] = {"A": {}, "B": {}}
    shown: dict[str, str] = {}
    for r in rows:
        deciding = ratio if r.moves(ratio) else next((k for k in HEADLINE + RATIOS
                                                      if r.moves(k)), ratio)
        end = pick(("low", "high"), key=lambda e: getattr(r, e)[deciding])
        moved = getattr(r, end)[deciding]
        if moved == r.base[deciding] or (moved > r.base[deciding]) == worst:
            continue  # neither end moves it this way: the central value stays
        index = 0 if end == "low" else 2
        if r.values is None:
            econ[r.figure] = r.ends[index]
        elif r.side is None:
            econ[r.figure] = r.values[index]
        else:
            hw[r.side][r.figure] = r.values[index]
        if r.moves(ratio):
            shown[r.name] = r.ends[index]
    a = m.a.with_overrides(econ, flag="ranges.yaml") if econ else m.a
    value = m.ratios(a=a, on=m.served("A", hw["A"]), vs=m.served("B", hw["B"]))[ratio]
    # figures that interact (a rack limit with a nameplate) can make one figure alone go
    # further than all together: the case is never milder than any single figure's end
    single = [getattr(r, e)[ratio] for r in rows for e in ("low", "high")]
    return pick([value, *single]), shown
