"""`tegel run MODEL.onnx`: the text and JSON of a GraphResult (any graph on a system)."""

from __future__ import annotations

from typing import Any

from tegel.report import jsonout
from tegel.report.text import si, table


def to_json(result: Any, ops: bool = False) -> str:
    """`--json`: the result's `to_dict()` (per-layer rows always; per-op rows with `ops`)."""
    d = result.to_dict()
    if ops:
        d["ops"] = [r.to_dict() for r in result.ops]
    return jsonout.dumps(d, indent=2)


def _rows_table(rows: Any, columns: tuple[str, ...], head: str) -> str:
    shown = [c for c in columns if any(dict(r.energy_j).get(c, 0.0) for r in rows)]
    body = [[r.key[:32], si(r.time_s, "s"), r.bound, si(r.macs),
             *(si(dict(r.energy_j)[c], "J") for c in shown)] for r in rows]
    return table([head, "time", "bound", "MACs", *shown], body)


def metric_rows(d: dict[str, Any]) -> list[list[str]]:
    """(label, value): latency, throughput, energy, power and bound of a graph run's dict."""
    return [["latency", si(d["latency_s"], "s")],
            ["throughput", si(d["throughput_inferences_per_s"], "inf/s")],
            ["energy per inference", si(d["energy_j_per_inference"], "J")],
            ["average power", si(d["power_w"], "W")], ["bound", d["bound"]]]


def energy_rows(d: dict[str, Any]) -> list[list[str]]:
    """(category, J per inference) of a graph run's dict."""
    return [[k, si(v, "J")] for k, v in d["energy_breakdown_j_per_inference"].items()]


def render_text(result: Any, layers: bool = False, ops: bool = False) -> str:
    """The run's line, metrics and energy by category, notes; with `layers` / `ops` the
    per-layer / per-op tables (energy by the chip's storage levels)."""
    from tegel.serving.graph_layers import energy_columns

    d = result.to_dict()
    out = [f"{d['model']} on {d['system']}: batch {d['batch']}, {d['policy']} policy, schedule "
           f"{d['schedule']}, {d['stages']} stage(s) x {d['microbatches']} micro-batch(es)"]
    out.append(table(["metric", "value"], metric_rows(d)))
    out.append("\n" + table(["energy per inference", "J"], energy_rows(d)))
    out += [f"note: {note}" for note in d["notes"]]
    columns = energy_columns(result.phase.plan.levels)
    if layers or ops:
        out.append(f"\nper layer / op: busy time and energy of the whole call ({d['batch']} "
                   "inference(s)); energy by the chip's storage levels")
    if layers:
        out.append("\n" + _rows_table(result.layers, columns, "layer"))
    if ops:
        out.append("\n" + _rows_table(result.ops, columns, "op"))
    return "\n".join(out)


def plan_json(result: Any) -> str:
    """`tegel plan MODEL.onnx --json`: the compiled plan, or the kernel-by-kernel steps."""
    from tegel.mapping.compiled import to_dict

    if result.compiled is not None:
        return jsonout.dumps(to_dict(result.compiled), indent=2)
    plan = result.phase.plan
    return jsonout.dumps({"policy": plan.policy, "system": plan.system,
                       "steps": [s.name for s in plan.steps]}, indent=2)


def plan_text(result: Any, brief: bool = False) -> str:
    """`tegel plan MODEL.onnx`: the compiled plan (or the steps) as text."""
    from tegel.mapping.compiled import describe

    if result.compiled is not None:
        return describe(result.compiled, not brief)
    return str(result.phase.plan.describe())
