"""One self-contained HTML page from a result: inline CSS (print and phone layouts), charts as
inline SVG, no script, nothing fetched. Links go only to the sources of assumptions."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from tegel.report.charts import ResultKind, charts_for, result_kind
from tegel.report.svg import chart_svg
from tegel.report.text import si

CSS = """
:root{--ink:#1a1a1a;--muted:#555;--rule:#d0d0d0;--band:#f4f4f4}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
margin:0 auto;max-width:1000px;padding:1rem}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;margin:1.6rem 0 .4rem;
border-bottom:1px solid var(--rule)}
p.sub{color:var(--muted);margin:.2rem 0 1rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:.4rem 0;font-variant-numeric:tabular-nums}
th,td{padding:.25rem .6rem;border-bottom:1px solid var(--rule);text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}
tbody tr:nth-child(even){background:var(--band)}
td.text,th.text{text-align:left}
figure{margin:1rem 0;break-inside:avoid;page-break-inside:avoid}
figcaption{color:var(--muted);font-size:.9rem}
svg.chart{width:100%;height:auto;max-width:760px;display:block;font-size:11px}
svg .axis{stroke:#333;stroke-width:1}svg .grid{stroke:#e3e3e3;stroke-width:1}
svg .reference{stroke:#000;stroke-width:1.5;stroke-dasharray:4 3}
svg text{fill:#222}svg .label{font-size:12px}
.verdict{border-left:4px solid #0072B2;padding:.5rem .8rem;background:var(--band)}
footer{color:var(--muted);font-size:.85rem;margin-top:2rem}
@media (max-width:600px){body{font-size:14px;padding:.5rem}th,td{padding:.2rem .35rem}}
@media print{body{max-width:none;font-size:10pt}a{color:inherit}
a[href]::after{content:" (" attr(href) ")";font-size:8pt;word-break:break-all}
.scroll{overflow:visible}tbody tr:nth-child(even){background:none}
h2{break-after:avoid}}
"""


def render_html(d: Any, kind: ResultKind | None = None) -> str:
    """The page for a result (`--json` output of run, compare, curve, claim or explore show)."""
    kind = kind or result_kind(d)
    title, subtitle = _heading(kind, d)
    sections = [SUMMARIES[kind](d)]
    charts = charts_for(kind, d)
    if charts:
        sections.append('<section id="charts"><h2>Charts</h2>'
                        + "".join(_figure(c) for c in charts) + "</section>")
    if kind == "claim":
        sections.append(_break_evens(d))
    sections.append(_assumptions(kind, d))
    from tegel import __version__

    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>"
            f'<body data-report="{kind}"><header><h1>{escape(title)}</h1>'
            f'<p class="sub">{escape(subtitle)}</p></header>'
            + "".join(s for s in sections if s)
            + f"<footer>tegel {escape(__version__)} — a model, not a measurement: every figure "
            "rests on the assumptions listed above.</footer></body></html>\n")


def _figure(chart: Any) -> str:
    return (f'<figure id="fig-{escape(chart.chart_id)}">{chart_svg(chart)}'
            f"<figcaption>{escape(chart.title)}</figcaption></figure>")


def _table(headers: list[str], rows: list[list[str]], caption: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return (f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _heading(kind: ResultKind, d: Any) -> tuple[str, str]:
    if kind == "run":
        return (f"{d['model']} on {d['system']}", f"tegel run: batch {d['batch']}, "
                f"{d['input_tokens']} in / {d['output_tokens']} out, weights "
                f"{d['precision']['weights']}")
    if kind == "compare":
        first = next(iter(d["results"].values()))
        return (f"{first['model']} on {', '.join(d['results'])}",
                f"tegel compare ({d.get('mode', 'static batch')}): ratios against "
                f"{d['baseline']}, x > 1 better")
    if kind == "curve":
        return (f"{d[0]['model']}: throughput against interactivity",
                f"tegel curve: {d[0]['input_tokens']} in / {d[0]['output_tokens']} out, "
                f"scheduler {d[0].get('scheduler', '')}")
    if kind == "claim":
        return (f"Claim: {d['on']} against {d['vs']} on {d['model']}",
                f"tegel claim: {d['service_level'].get('text', '')}")
    return (f"Design space {d.get('space')}", f"tegel explore show {d.get('store', '')}")


RUN_METRICS = (("ttft_s", "TTFT", "s"), ("tpot_s", "TPOT", "s"),
               ("ttft_p99_s", "p99 TTFT", "s"), ("tpot_p50_s", "median TPOT", "s"),
               ("e2e_latency_s", "end-to-end latency", "s"),
               ("throughput_tokens_per_s", "throughput (system)", "tok/s"),
               ("tokens_per_s_per_user", "speed per user", "tok/s"),
               ("energy_j_per_token", "energy per token", "J"), ("power_w", "average power", "W"))


def _run_summary(d: dict[str, Any]) -> str:
    rows = [[label, si(d[key], unit)] for key, label, unit in RUN_METRICS if key in d]
    par = d["parallelism"]
    rows.append(["parallelism", f"tp{par['tp']} pp{par['pp']} ep{par['ep']} dp{par['dp']}"])
    rows.append(["chips busy / idle", f"{d['chips_busy']} / {d['chips_idle']}"])
    energy = _table(["energy per token", "J", "share"],
                    [[k, si(v, "J"), f"{v / d['energy_j_per_token']:.1%}"]
                     for k, v in d["energy_breakdown_j_per_token"].items()])
    return f'<section id="summary"><h2>Results</h2>{_table(["metric", "value"], rows)}{energy}</section>'


def _compare_summary(d: dict[str, Any]) -> str:
    results, base = d["results"], d["results"][d["baseline"]]
    headers = ["metric", *results]
    rows = []
    for key, label, unit in RUN_METRICS:
        if key not in base:
            continue
        higher = key in ("throughput_tokens_per_s", "tokens_per_s_per_user")
        row = [label]
        for name, r in results.items():
            gain = r[key] / base[key] if higher else base[key] / r[key]
            row.append(si(r[key], unit) + ("" if name == d["baseline"] else f" ({gain:.2f}x)"))
        rows.append(row)
    rows.append(["batch / concurrency", *[str(r["batch"]) for r in results.values()]])
    rows.append(["chips busy / idle", *[f"{r['chips_busy']} / {r['chips_idle']}"
                                       for r in results.values()]])
    rows.append(["weights format", *[r["precision"]["weights"] for r in results.values()]])
    return f'<section id="summary"><h2>Comparison</h2>{_table(headers, rows)}</section>'


def _curve_summary(curves: list[dict[str, Any]]) -> str:
    parts = []
    for c in curves:
        rows = [[str(p["concurrency"]), si(p["throughput_tokens_per_s"], "tok/s"),
                 si(p["tokens_per_s_per_user"], "tok/s"), si(p["ttft_s"]["p99"], "s"),
                 si(p["energy_j_per_token"], "J")] for p in c["points"]]
        parts.append(_table(["concurrency", "throughput", "per user", "p99 TTFT", "J/token"],
                            rows, c["system"]))
    return '<section id="summary"><h2>Serving curves</h2>' + "".join(parts) + "</section>"


def _claim_summary(d: dict[str, Any]) -> str:
    systems = d["systems"]
    headers = ["", *systems]
    rows = [
        ["concurrency / batch", *[str(s["batch"]) for s in systems.values()]],
        ["speed per user", *[si(s["tokens_per_s_per_user"], "tok/s") for s in systems.values()]],
        ["throughput per system", *[si(s["throughput_tokens_per_s"], "tok/s")
                                    for s in systems.values()]],
        ["chips busy / idle", *[f"{s['chips_busy']} / {s['chips_idle']}"
                                for s in systems.values()]],
        ["energy per token", *[si(s["energy_j_per_token"], "J") for s in systems.values()]],
        ["distance to the energy floor", *[f"{s['floor_ratio']:.1f}x" for s in systems.values()]],
        ["$ per million tokens, TCO", *[f"${s['usd_per_mtoken']:.2f}" for s in systems.values()]],
    ]
    r = d["ratios"]
    ratios = [["energy (tokens/J)", f"{r['energy']:.2f}x"],
              ["cost, TCO ($/Mtoken)", f"{r['cost']['tco']:.2f}x"],
              ["cost, capital only", f"{r['cost']['capital']:.2f}x"],
              ["footprint, racks", f"{r['footprint']['racks']:.2f}x"],
              ["footprint, facility kW", f"{r['footprint']['kw']:.2f}x"]]
    verdict = d.get("verdict")
    said = (f'<p class="verdict" id="verdict"><strong>Verdict:</strong> {escape(verdict["text"])}</p>'
            if verdict else "")
    eq = d.get("equal_load")
    equal = ""
    if eq:
        equal = _table(["at equal load", *eq["systems"]],
                       [["energy per token", *[si(s["energy_j_per_token"], "J")
                                               for s in eq["systems"].values()]],
                        ["$ per million tokens", *[f"${s['usd_per_mtoken']:.2f}"
                                                   for s in eq["systems"].values()]],
                        ["racks", *[str(s["footprint"]["racks"]) for s in eq["systems"].values()]]],
                       f"equal load: {si(eq['tokens_per_s'], 'tok/s')} ({eq['basis']})")
    advantage = _table([f"{d['on']}'s advantage", f"vs {d['vs']}"], ratios)
    return (f'<section id="summary"><h2>Comparison</h2>{said}{_table(headers, rows)}'
            f"{advantage}{equal}</section>")


def _explore_summary(d: dict[str, Any]) -> str:
    objectives = list(d["objectives"])
    params = sorted({k for p in d["pareto"] for k in p.get("params", {})})
    rows = [[str(p["trial"]), *[f"{p['metrics'].get(o, float('nan')):.4g}" for o in objectives],
             *[str(p["params"].get(k, "")) for k in params]] for p in d["pareto"]]
    counts = d.get("ruled_out") or {}
    said = (f"<p>{counts.get('points', len(d['pareto']))} designs, {counts.get('feasible', '?')} "
            f"feasible; {len(d['pareto'])} on the Pareto front.</p>" if counts else "")
    return (f'<section id="summary"><h2>Pareto front</h2>{said}'
            f'{_table(["trial", *objectives, *params], rows)}</section>')


SUMMARIES: dict[str, Callable[[Any], str]] = {
    "run": _run_summary, "compare": _compare_summary, "curve": _curve_summary,
    "claim": _claim_summary, "explore": _explore_summary}


def _break_evens(d: dict[str, Any]) -> str:
    rows = []
    for b in d.get("break_even") or []:
        for ratio in ("energy", "cost_tco", "racks"):
            ends = b["ratios"].get(ratio)
            if ends and (ends["to_1x"]["value"] is not None or ends["to_claimed"]["value"] is not None):
                rows.append([b["assumption"], ratio, f"{b['low']}..{b['high']} {b['unit']}",
                             ends["to_1x"]["text"], ends["to_claimed"]["text"]])
    if not rows:
        return ""
    return ('<section id="break-even"><h2>Break-evens</h2><p>Where each advantage falls to 1x '
            f'and where it would reach the claimed {d["verdict"]["claimed"]:g}x; figures that '
            "never cross within their range are left out.</p>"
            + _table(["assumption", "ratio", "range", "1x at", "claimed at"], rows) + "</section>")


def _sources() -> dict[str, Any]:
    """Every citable source of the shipped economics and ranges files, by id."""
    from tegel.economics.assumptions import load_assumptions
    from tegel.economics.ranges import load_ranges

    return {**load_assumptions().sources, **load_ranges().sources}


def _economic_cites() -> dict[str, str]:
    """The basis of each shipped economic figure (economics.yaml `cite`), by name."""
    from tegel.economics.assumptions import load_assumptions

    return dict(load_assumptions().cite)


def _cited(text: str, sources: dict[str, Any]) -> str:
    """A basis string ('source-id: detail' or 'assumption: ...') with its source linked."""
    key, _, detail = text.partition(":")
    source = sources.get(key.strip())
    if source is None or not source.url:
        return escape(text)
    link = f'<a href="{escape(source.url)}" rel="noreferrer">{escape(source.title)}</a>'
    return link + (f": {escape(detail.strip())}" if detail.strip() else "")


def _assumptions(kind: ResultKind, d: Any) -> str:
    items: list[str] = []
    if kind == "claim":
        sources, cites = _sources(), _economic_cites()
        a = d.get("assumptions", {})
        items += [f"<li>{escape(k)}: {escape(str(v))}"
                  + (" (overridden)" if k in a.get("overrides", {}) else
                     f" ({_cited(cites[k], sources)})" if k in cites else "") + "</li>"
                  for k, v in a.items() if k != "overrides"]
        rows = []
        for t in d.get("tornado") or []:
            basis = t.get("basis", {})
            rows.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in (
                t["assumption"], f"{t['low']} / {t['central']} / {t['high']} {t['unit']}"))
                + '<td class="text">' + "<br>".join(
                    f"{end}: {_cited(basis[end], sources)}" for end in ("low", "central", "high")
                    if basis.get(end)) + "</td></tr>")
        table = ('<div class="scroll"><table><thead><tr><th>assumption</th><th>low / central / '
                 'high</th><th class="text">basis</th></tr></thead><tbody>' + "".join(rows)
                 + "</tbody></table></div>") if rows else ""
        notes = [*d.get("notes", []), d.get("accounting", "")]
    elif kind == "curve":
        table, notes = "", [n for c in d for n in c.get("notes", [])]
    elif kind == "compare":
        table, notes = "", [n for r in d["results"].values() for n in r.get("plan_notes", [])]
    elif kind == "run":
        table, notes = "", list(d.get("plan_notes", []))
    else:
        table, notes = "", [f"baseline: {d.get('baseline')}"] if d.get("baseline") else []
    items += [f"<li>{escape(str(n))}</li>" for n in dict.fromkeys(notes) if n]
    if not items and not table:
        return ""
    return ('<section id="assumptions"><h2>Assumptions and notes</h2>'
            + (f"<ul>{''.join(items)}</ul>" if items else "") + table + "</section>")
