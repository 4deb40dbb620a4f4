"""`tegel run` and `tegel compare` (LLMs): the text and JSON of a RunResult, and of the same
workload on several systems."""

from __future__ import annotations

from typing import Any

from tegel.report import jsonout
from tegel.report.text import si, table

METRICS = (  # (key, label, unit, higher is better)
    ("ttft_s", "TTFT", "s", False),
    ("tpot_s", "TPOT", "s", False),
    ("e2e_latency_s", "end-to-end latency", "s", False),
    ("throughput_tokens_per_s", "throughput (system)", "tok/s", True),
    ("tokens_per_s_per_user", "speed per user", "tok/s", True),
    ("energy_j_per_token", "energy per token", "J", False),
    ("power_w", "average power", "W", False),
)
SLO_METRICS = (  # the latencies at a service level, then METRICS from throughput on
    ("ttft_p99_s", "p99 TTFT", "s", False),
    ("tpot_p50_s", "median TPOT", "s", False),
    *METRICS[3:],
)
ACCOUNTING = ("energy and power count the whole system: {busy} chip(s) serving, {idle} idle at "
              "idle power, with their hosts' and racks' share")


def to_json(result: Any, ops: bool = False) -> str:
    """`tegel run --json`: the result's `to_dict()`, with the per-step rows under "ops"."""
    d = result.to_dict()
    if ops:
        d["ops"] = result.op_rows()
    return jsonout.dumps(d, indent=2)


def render_text(result: Any, ops: bool = False) -> str:
    """`tegel run`: the workload line, metrics, energy and memory breakdowns, notes (and the
    per-step table with `ops`)."""
    d = result.to_dict()
    out = [headline(d)]
    out.append(table(["metric", "value"], metric_rows(d)))
    out.append(ACCOUNTING.format(busy=d["chips_busy"], idle=d["chips_idle"]))
    out.append("\n" + table(["energy per token", "J", "share"], energy_rows(d)))
    mem = d["memory_bytes"]
    out.append("\n" + table(["memory per chip", "bytes"],
                            [[k, si(mem[k], "B")] for k in ("weights", "kv_cache", "activations",
                                                            "total", "capacity")]))
    if d["speculative"] is not None:
        out.append("\n" + speculative_table(d["speculative"]))
    out += [f"note: {note}" for note in d["plan_notes"]]
    if ops:
        rows = [[r["phase"], r["step"][:40], r["kind"], r["repeat"], si(r["time_s"], "s"),
                 si(r["energy_j"], "J"), r["bound"]] for r in result.op_rows()]
        out.append("\n" + table(["phase", "step", "kind", "x", "time", "energy", "bound"], rows))
    return "\n".join(out)


def headline(d: dict[str, Any]) -> str:
    """The run's first line: model, system, batch, lengths, format and parallelism."""
    par = d["parallelism"]
    beams = f" x {d['beams']} beams" if d.get("beams", 1) > 1 else ""
    return (f"{d['model']} on {d['system']}: batch {d['batch']}, {d['input_tokens']} in / "
            f"{d['output_tokens']} out{beams}, weights {d['precision']['weights']}, "
            f"tp{par['tp']} pp{par['pp']} ep{par['ep']} dp{par['dp']}")


def metric_rows(d: dict[str, Any]) -> list[list[str]]:
    """(label, value) of METRICS for a run's dict."""
    return [[label, si(d[key], unit)] for key, label, unit, _ in METRICS]


def energy_rows(d: dict[str, Any]) -> list[list[str]]:
    """(category, J per token, share) of a run's energy."""
    return [[k, si(v, "J"), f"{v / d['energy_j_per_token']:.1%}"]
            for k, v in d["energy_breakdown_j_per_token"].items()]


def speculative_table(d: dict[str, Any]) -> str:
    """What speculative decoding assumed and how a decode step splits into draft and verify."""
    k = d["draft_tokens"]
    drafter = {"draft": f"draft model {d['draft_model']}", "ngram": "n-gram prompt lookup",
               "eagle": "EAGLE-style head (1 layer + the model's LM head)"}[d["method"]]
    acceptance = (f"acceptance {d['acceptance_rate']:g} per token (i.i.d.)"
                  if d["acceptance_rate"] is not None else "P(0..k accepted) = "
                  + ",".join(f"{p:g}" for p in d["acceptance_lengths"]))
    mem = d["drafter_memory_bytes"]
    rows = [[f"draft ({k} passes)", si(d["draft_s_per_step"], "s"),
             f"{d['draft_share_of_step']:.1%}"],
            [f"verify ({k + 1} tokens)", si(d["verify_s_per_step"], "s"),
             f"{1 - d['draft_share_of_step']:.1%}"],
            ["step", si(d["step_s"], "s"), ""],
            [f"per token (step / {d['tokens_per_step']:.4g})", si(d["tpot_s"], "s"), ""],
            ["plain decode step", si(d["plain_tpot_s"], "s"), ""],
            ["speed-up per user", f"{d['speedup_per_user']:.2f}x", ""],
            ["drafter weights / KV per chip",
             f"{si(mem['weights'], 'B')} / {si(mem['kv_cache'], 'B')}", ""]]
    head = (f"speculative decoding: {drafter}, k = {k} drafts per step, {acceptance}: "
            f"E = {d['tokens_per_step']:.4g} tokens per verify (Leviathan et al. 2023, "
            f"arXiv:2211.17192)")
    return head + "\n" + table(["decode step", "time", "share"], rows)


def _par(p: dict) -> str:
    return f"tp{p['tp']} pp{p['pp']} dp{p['dp']}"


def compare_json(results: dict[str, dict[str, Any]], baseline: str,
                 service: dict[str, Any] | None) -> str:
    """`tegel compare --json`: every system's flat record and its ratios to the baseline;
    `service` is the service level's `to_dict` (None: static batch)."""
    metrics = METRICS if service is None else SLO_METRICS
    base = results[baseline]
    ratios = {name: {key: r[key] / base[key] for key, *_ in metrics} for name, r in results.items()}
    mode = ({"mode": "static batch"} if service is None
            else {"mode": "operating point", "service_level": service})
    return jsonout.dumps({"baseline": baseline, **mode, "results": results, "ratios": ratios},
                      indent=2)


def compare_text(results: dict[str, dict[str, Any]], systems: list[str], baseline: str,
                 said: str, operating: bool) -> str:
    """`tegel compare`: one column per system, each metric with its gain over the baseline
    (x > 1 is better); `said` explains the mode, `operating` marks operating points."""
    first = results[systems[0]]
    out = [f"{first['model']}: {first['input_tokens']} in / {first['output_tokens']} out; ratios "
           f"against {baseline} (x: better when > 1)", said,
           table(["metric", *systems], compare_rows(results, systems, baseline, operating))]
    out.append("energy and power count every chip of each system (idle ones at idle power) with "
               "its hosts and racks" + ("" if not operating else " over the whole serving run; "
                                        "throughput, speed per user and latencies at steady state"))
    return "\n".join(out)


def compare_rows(results: dict[str, dict[str, Any]], systems: list[str], baseline: str,
                 operating: bool) -> list[list[str]]:
    """One row per metric, a column per system (with its gain over `baseline`), then batch,
    parallelism, chips and weights format."""
    metrics = SLO_METRICS if operating else METRICS
    base = results[baseline]
    rows = []
    for key, label, unit, higher in metrics:
        row = [label]
        for name in systems:
            value = results[name][key]
            gain = value / base[key] if higher else base[key] / value
            row.append(si(value, unit) + ("" if name == baseline else f" ({gain:.2f}x)"))
        rows.append(row)
    rows.append(["concurrency" if operating else "batch",
                 *[str(results[n]["batch"]) for n in systems]])
    rows.append(["parallelism", *[_par(results[n]["parallelism"]) for n in systems]])
    rows.append(["chips busy / idle", *[f"{results[n]['chips_busy']} / {results[n]['chips_idle']}"
                                       for n in systems]])
    rows.append(["weights format", *[results[n]["precision"]["weights"] for n in systems]])
    return rows
