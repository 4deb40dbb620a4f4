"""`tegel serve` and `tegel curve`: the text and JSON of a ServeResult and of Curves."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tegel.report import jsonout
from tegel.report.text import si, table


def clean(value: Any) -> Any:
    """JSON has no NaN: a figure that does not exist (no request had two tokens) is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def _record(result: Any, mlperf: dict[str, Any] | None) -> dict[str, Any]:
    d = result.to_dict()
    if mlperf is not None:
        d["mlperf"] = mlperf
    return d


def to_json(result: Any, mlperf: dict[str, Any] | None = None) -> str:
    """`tegel serve --json`: the result's `to_dict()` (NaN as null), with the MLPerf search."""
    return jsonout.dumps(clean(_record(result, mlperf)), indent=2)


def render_text(result: Any, mlperf: dict[str, Any] | None = None) -> str:
    """`tegel serve`: workload and scheduler, latency percentiles, throughput, goodput, energy,
    KV cache, SLO, speculation, notes and drops."""
    d = _record(result, mlperf)
    par = d["parallelism"]
    s = d["scheduler"]
    out = [f"{d['model']} on {d['system']}: {d['workload']['description']}",
           f"scheduler {s['kind']} (max {s['max_seqs']} sequences/replica), "
           f"{par['dp']} replica(s) of tp{par['tp']} pp{par['pp']} ep{par['ep']}"
           + (f", {s['prefill_replicas']} prefilling" if s["prefill_replicas"] else "")]
    if "mlperf" in d:
        m = d["mlperf"]
        limits = ", ".join(f"{name} {m[key]:g} s" for name, key in (
            ("TTFT", "ttft_p99_limit_s"), ("TPOT", "tpot_p99_limit_s"),
            ("end-to-end", "e2e_p99_limit_s")) if m.get(key) is not None)
        beams = (f" (beam search, {m['beams']} beams a request)" if m.get("beams", 1) > 1
                 else "")
        if "rate_per_s" not in m and beams:
            out.append(f"MLPerf {m['benchmark']} {m['scenario']}{beams}")
        if "rate_per_s" in m:
            out.append(f"MLPerf {m['benchmark']} {m['scenario']}{beams}: highest rate within p99 "
                       f"limits ({limits}) = "
                       f"{m['rate_per_s']:.4g} req/s (offline {m['offline_rate_per_s']:.4g} req/s); "
                       + (f"each rate probed with {m['min_duration_s']:g} s of arrivals (LoadGen's "
                          "minimum run)" if m.get("min_duration_s") else
                          "each rate probed with --requests arrivals"))
    out.append(table(["latency", "p50", "p90", "p99"], latency_rows(d)))
    out.append(table(["metric", "value"], metric_rows(d)))
    out.append(f"energy and power count the whole system: {d['chips_busy']} chip(s) in replicas, "
               f"{d['chips_idle']} outside at idle power, with their hosts' and racks' share")
    out += [f"SLO: {line}" for line in d["slo"]["binding"]]
    sp = d["speculative"]
    if sp is not None:
        drafter = sp["draft_model"] or {"eagle": "an EAGLE-style head", "ngram": "n-gram lookup"}[
            sp["method"]]
        out.append(f"speculative decoding: {drafter}, k = {sp['draft_tokens']}, E = "
                   f"{sp['tokens_per_step']:.4g} tokens per verify expected, "
                   f"{sp['tokens_per_verify_simulated']:.4g} simulated (seeded accepted lengths)")
    out += [f"note: {note}" for note in d["notes"]]
    out += [f"dropped {count}: {reason}" for reason, count in d["dropped_reasons"].items()]
    return "\n".join(out)


def latency_rows(d: dict[str, Any]) -> list[list[str]]:
    """TTFT, TPOT and end-to-end latency at p50, p90 and p99 of a serving run's dict."""
    return [[name, *(si(d[key][q], "s") for q in ("p50", "p90", "p99"))]
            for key, name in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "end to end"))]


def metric_rows(d: dict[str, Any]) -> list[list[str]]:
    """(label, value): completions, throughput, goodput, energy, power, KV cache, prefix cache."""
    slo = d["slo"]
    at = ", ".join(f"{k.removesuffix('_s').upper()} <= {slo[k]:g} s" for k in ("ttft_s", "tpot_s")
                   if slo[k])
    rows = [["completed / dropped", f"{d['completed']} / {d['dropped']}"],
            ["throughput", si(d["throughput_tokens_per_s"], "tok/s")],
            ["requests", si(d["requests_per_s"], "req/s")],
            ["speed per user (median)", si(d["tokens_per_s_per_user"], "tok/s")],
            [f"goodput ({at or 'no SLO given'})", si(d["goodput_requests_per_s"], "req/s")],
            ["energy per token", si(d["energy_j_per_token"], "J")],
            ["average power", si(d["power_w"], "W")],
            ["KV cache peak", f"{d['kv_cache']['peak_fraction']:.1%} of "
                              f"{si(d['kv_cache']['tokens_per_replica'], 'tok')}/replica"],
            ["preemptions", str(d["preemptions"])]]
    pc = d["prefix_cache"]
    if pc["shared_prefixes"]:
        rows.append(["prefix cache hit rate", f"{pc['hit_rate']:.1%} of "
                     f"{si(pc['prompt_tokens'], 'tok')} prompt tokens"
                     + ("" if pc["enabled"] else " (--no-prefix-cache)")])
    return rows


def curve_json(curves: Sequence[Any], at_slo: Sequence[dict[str, Any]]) -> str:
    """`tegel curve --json`: each curve's `to_dict()` with its operating point at the SLO
    (`at_slo`, one dict per curve, empty without an SLO)."""
    out = [c.to_dict() | extra for c, extra in zip(curves, at_slo, strict=True)]
    return jsonout.dumps(clean(out), indent=2)


def curve_text(curves: Sequence[Any], at_slo: Sequence[dict[str, Any]]) -> str:
    """`tegel curve`: per system, one row per concurrency and the operating point at the SLO."""
    out: list[str] = []
    for c, extra in zip(curves, at_slo, strict=True):
        d = c.to_dict() | extra
        par = d["parallelism"]
        out.append(f"{c.model} on {c.system}: {c.input_tokens} in / {c.output_tokens} out, "
                   f"scheduler {c.scheduler}, {par['dp']} replica(s) of tp{par['tp']} "
                   f"pp{par['pp']}")
        out.append(table(CURVE_HEADERS, curve_rows(c)))
        if "operating_point" in d:
            op = d["operating_point"]
            out.append(f"at the SLO ({d['slo']}): concurrency {op['concurrency']}, "
                       f"{si(op['tokens_per_s_per_user'], 'tok/s')} per user, "
                       f"{si(op['throughput_tokens_per_s'], 'tok/s')} system")
        elif "slo_error" in d:
            out.append(f"at the SLO ({d['slo']}): {d['slo_error']}")
        out.append("")
    return "\n".join(out)


CURVE_HEADERS = ["concurrency", "per user", "system", "TTFT p50", "TTFT p99", "J/token"]


def curve_rows(c: Any) -> list[list[Any]]:
    """One row per point of a Curve (CURVE_HEADERS)."""
    return [[p.concurrency, si(p.tokens_per_s_per_user, "tok/s"),
             si(p.throughput_tokens_per_s, "tok/s"), si(p.ttft_p50_s, "s"),
             si(p.ttft_p99_s, "s"), si(p.energy_j_per_token, "J")] for p in c.points]
