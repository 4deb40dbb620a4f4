"""The charts of a result, as data: one extraction that both renderers (inline SVG for
`tegel report`, matplotlib for `--plot`) draw.

A result is the `--json` output of `tegel run` (with `--ops` for the roofline), `compare`,
`curve`, `claim` or `explore show`; `result_kind` tells them apart by their keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from tegel.errors import TegelError

ResultKind = Literal["run", "compare", "curve", "claim", "explore"]
ChartKind = Literal["stack", "lines", "roofline", "tornado", "scatter", "timeline"]

# Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour-vision
# deficiencies. Black is kept for roofs and reference lines.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
             "#000000")
TORNADO_ROWS = 12
TIMELINE_EVENTS = 80  # the excerpt of an event simulation's trace a report shows


@dataclass(frozen=True, slots=True)
class Series:
    """One named series: points (xs[i], ys[i]); `labels` name the points (bars, steps);
    `style` is `line`, `points` or `bar`; for a tornado or timeline bar, xs are where bars
    start; `rows` places a timeline's bars on the chart's categories (default: point i, row i)."""

    name: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    labels: tuple[str, ...] = ()
    style: Literal["line", "points", "bar"] = "line"
    rows: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart to draw: `categories` are the bars of a stack or tornado (one per y position)."""

    chart_id: str
    kind: ChartKind
    title: str
    x_label: str
    y_label: str
    series: tuple[Series, ...]
    categories: tuple[str, ...] = ()
    log_x: bool = False
    log_y: bool = False
    reference_x: float | None = None  # a vertical line: the tornado's central ratio


def result_kind(d: Any) -> ResultKind:
    """Which command's `--json` output `d` is (TegelError naming --from when none)."""
    if isinstance(d, list) and d and all(isinstance(c, dict) and "points" in c for c in d):
        return "curve"
    if isinstance(d, dict):
        if "verdict" in d or ("ratios" in d and "systems" in d and "vs" in d):
            return "claim"
        if "results" in d and "baseline" in d:
            return "compare"
        if "pareto" in d and "objectives" in d:
            return "explore"
        if "energy_breakdown_j_per_token" in d and "system" in d:
            return "run"
    raise TegelError("--from: not the --json output of tegel run, compare, curve, claim or "
                     "explore show")


def charts_for(kind: ResultKind, d: Any) -> tuple[Chart, ...]:
    """Every chart the result has data for, in reading order."""
    if kind == "run":
        return (energy_stack({d["system"]: d["energy_breakdown_j_per_token"]}),
                *([roofline(d)] if d.get("ops") else []),
                *([timeline(d["timeline"])] if d.get("timeline") else []))
    if kind == "compare":
        results = d["results"]
        energy = {n: r["energy_breakdown_j_per_token"] for n, r in results.items()
                  if "energy_breakdown_j_per_token" in r}
        return (*([energy_stack(energy)] if energy else []),
                *[roofline(r) for r in results.values() if r.get("ops")])
    if kind == "curve":
        return (throughput_curve(d),)
    if kind == "claim":
        charts = [energy_stack({n: s["energy_breakdown_j_per_token"]
                                for n, s in d["systems"].items()})]
        if d.get("tornado"):
            charts.append(tornado(d, "energy", "energy (tokens/J)"))
            charts.append(tornado(d, "cost_tco", "cost, TCO ($/Mtoken)"))
        return tuple(charts)
    return (pareto_scatter(d),)


def energy_stack(breakdowns: dict[str, dict[str, float]]) -> Chart:
    """Stacked energy per token by category, one bar per system (J/token)."""
    systems = tuple(breakdowns)
    categories = [c for c in next(iter(breakdowns.values()), {})
                  if any(b.get(c, 0.0) > 0 for b in breakdowns.values())]
    series = tuple(Series(c, tuple(range(len(systems))),
                          tuple(float(breakdowns[s].get(c, 0.0)) for s in systems), systems, "bar")
                   for c in categories)
    return Chart("energy", "stack", "Energy per token by category (whole system)",
                 "J per token", "", series, systems)


def _roofs(d: dict[str, Any]) -> tuple[float, float] | None:
    """(peak FLOP/s, off-chip bytes/s) of one chip of the run's system, None when the system
    is not a preset tegel can load (a --from file of a custom system)."""
    from tegel.hardware import load_system

    try:
        chip = load_system(d["system"]).chip
        return (chip.peak_flops_per_s(d["precision"]["activations"]), chip.offchip_bytes_per_s)
    except (TegelError, KeyError, ValueError):
        return None


def _offchip_bytes(op: dict[str, Any]) -> float:
    """The op's off-chip bytes: its last memory level (hbm3_bytes, dram_bytes, ...)."""
    levels = [k for k in op if k.endswith("_bytes")]
    return float(op[levels[-1]]) if levels else 0.0


def roofline(d: dict[str, Any]) -> Chart:
    """One chip's roofline (attainable FLOP/s against FLOPs per off-chip byte) with each step
    of the run placed at its achieved FLOP/s, one series per phase."""
    phases: dict[str, tuple[list[float], list[float], list[str]]] = {}
    for op in d["ops"]:
        moved, flops = _offchip_bytes(op), float(op["flops"])
        if flops <= 0 or moved <= 0 or op["time_s"] <= 0:
            continue
        xs, ys, labels = phases.setdefault(op["phase"], ([], [], []))
        xs.append(flops / moved)
        ys.append(flops / op["time_s"])
        labels.append(op["step"])
    series = [Series(f"{phase} steps", tuple(xs), tuple(ys), tuple(labels), "points")
              for phase, (xs, ys, labels) in phases.items()]
    roofs = _roofs(d)
    if roofs is not None and series:
        peak, bw = roofs
        lo = min(min(s.xs) for s in series) / 2
        hi = max(max(s.xs) for s in series) * 2
        knee = peak / bw
        xs_roof = tuple(x for x in (lo, knee, hi) if lo <= x <= hi) or (lo, hi)
        series.insert(0, Series("roof", xs_roof, tuple(min(peak, bw * x) for x in xs_roof)))
    return Chart(f"roofline-{d['system']}", "roofline", f"Roofline of one {d['system']} chip",
                 "FLOPs per off-chip byte", "FLOP/s", tuple(series), log_x=True, log_y=True)


def throughput_curve(curves: list[dict[str, Any]]) -> Chart:
    """Tokens/s per user against tokens/s of the system, one line per system."""
    series = tuple(Series(c["system"], tuple(p["throughput_tokens_per_s"] for p in c["points"]),
                          tuple(p["tokens_per_s_per_user"] for p in c["points"]),
                          tuple(f"concurrency {p['concurrency']}" for p in c["points"]))
                   for c in curves)
    return Chart("curve", "lines", "Throughput against interactivity", "tokens/s (system)",
                 "tokens/s per user", series, log_x=True, log_y=True)


def tornado(d: dict[str, Any], ratio: str, label: str) -> Chart:
    """A's advantage (`ratio`) as each assumption moves over its range, the widest first: two
    series, the ratio at the figure's low end and at its high end, each a bar from the central
    ratio."""
    central = _central_ratio(d, ratio)
    rows = sorted(d["tornado"], key=lambda r: -abs(math.log(r["ratios_high"][ratio] /
                                                            r["ratios_low"][ratio])))
    rows = [r for r in rows if r["ratios_low"][ratio] != r["ratios_high"][ratio]][:TORNADO_ROWS]
    names = tuple(r["assumption"] for r in rows)
    series = tuple(Series(f"at the {end} end", tuple(central for _ in rows),
                          tuple(r[f"ratios_{end}"][ratio] for r in rows),
                          tuple(f"{r[end]} {r['unit']}" for r in rows), "bar")
                   for end in ("low", "high"))
    return Chart(f"tornado-{ratio}", "tornado", f"Tornado: {d['on']}'s advantage in {label}",
                 f"{d['on']} / {d['vs']} (x, > 1: {d['on']} better)", "", series, names,
                 log_x=True, reference_x=central)


def _central_ratio(d: dict[str, Any], ratio: str) -> float:
    r = d["ratios"]
    return float({"energy": r["energy"], "cost_tco": r["cost"]["tco"],
                  "cost_capital": r["cost"]["capital"], "racks": r["footprint"]["racks"],
                  "kw": r["footprint"]["kw"]}.get(ratio, 1.0))


def pareto_scatter(d: dict[str, Any]) -> Chart:
    """The explore store's Pareto front (and re-evaluated designs) in its first two
    objectives."""
    objectives = list(d["objectives"])
    x_name = objectives[0]
    y_name = objectives[1] if len(objectives) > 1 else "energy_j_per_token"
    series = []
    for name, points in (("pareto front", d["pareto"]), ("re-evaluated", d.get("refined") or [])):
        pts = sorted((p for p in points if p.get("metrics")),
                     key=lambda p: p["metrics"].get(x_name, 0.0))
        if pts:
            series.append(Series(name, tuple(p["metrics"][x_name] for p in pts),
                                 tuple(p["metrics"].get(y_name, 0.0) for p in pts),
                                 tuple(f"trial {p['trial']}" for p in pts), "points"))
    return Chart("pareto", "scatter", f"Pareto front of {d.get('space') or 'the store'}",
                 f"{x_name} ({d['objectives'][x_name]})",
                 f"{y_name} ({d['objectives'].get(y_name, '')})".replace(" ()", ""),
                 tuple(series))


def timeline_excerpt(trace: dict[str, Any], limit: int = TIMELINE_EVENTS) -> list[dict[str, Any]]:
    """The first `limit` events of a Chrome trace written by `--sim event --trace`, each
    {track, name, kind, start_s, end_s}; tracks are 'process: thread' as Perfetto shows them."""
    names: dict[tuple[str, int], str] = {}
    for e in trace.get("traceEvents", []):
        if e.get("ph") == "M" and e.get("name") in ("process_name", "thread_name"):
            key = ("p", e["pid"]) if e["name"] == "process_name" else ("t", e["tid"])
            names[key] = str(e["args"]["name"])
    spans = sorted((e for e in trace.get("traceEvents", []) if e.get("ph") == "X"),
                   key=lambda e: (e["ts"], e["pid"], e["tid"]))[:limit]
    return [{"track": f"{names.get(('p', e['pid']), e['pid'])}: {names.get(('t', e['tid']), e['tid'])}",
             "name": e["name"], "kind": e.get("cat", ""), "start_s": e["ts"] * 1e-6,
             "end_s": (e["ts"] + e.get("dur", 0.0)) * 1e-6} for e in spans]


def timeline(events: list[dict[str, Any]]) -> Chart:
    """An excerpt of an event simulation: one row per track, one series per kind of event."""
    tracks = tuple(dict.fromkeys(e["track"] for e in events))
    kinds: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        kinds.setdefault(e["kind"] or "event", []).append(e)
    series = tuple(Series(kind, tuple(e["start_s"] * 1e6 for e in es),
                          tuple(e["end_s"] * 1e6 for e in es), tuple(e["name"] for e in es), "bar",
                          tuple(tracks.index(e["track"]) for e in es))
                   for kind, es in kinds.items())
    return Chart("timeline", "timeline", f"Event simulation: the first {len(events)} events",
                 "time (µs)", "", series, tracks)
