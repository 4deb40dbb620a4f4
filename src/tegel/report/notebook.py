"""HTML tables for notebooks: each result's `_repr_html_` renders here, from the same rows as
its terminal text, in the tables of `tegel report`'s page (no external assets, no scripts,
every cell escaped)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tegel.report.html import _table


def table_html(headers: Sequence[object], rows: Sequence[Sequence[object]],
               caption: str = "") -> str:
    """One escaped HTML table: the page's table (`report.html`), styled by the notebook."""
    return _table([str(h) for h in headers], [[str(c) for c in r] for r in rows], caption)


def _block(*parts: str) -> str:
    return '<div class="tegel">' + "".join(parts) + "</div>"


def _notes(notes: Sequence[str]) -> str:
    return "".join(f"<p><small>note: {html.escape(n)}</small></p>" for n in notes)


def run_html(result: Any) -> str:
    """A RunResult: metrics and energy per token (`tegel run`)."""
    from tegel.report import run

    d = result.to_dict()
    return _block(table_html(["metric", "value"], run.metric_rows(d), run.headline(d)),
                  table_html(["energy per token", "J", "share"], run.energy_rows(d)),
                  _notes(d["plan_notes"]))


def graph_html(result: Any) -> str:
    """A GraphResult: metrics and energy per inference (`tegel run MODEL.onnx`)."""
    from tegel.report import graph

    d = result.to_dict()
    head = (f"{d['model']} on {d['system']}: batch {d['batch']}, {d['policy']} policy, "
            f"schedule {d['schedule']}")
    return _block(table_html(["metric", "value"], graph.metric_rows(d), head),
                  table_html(["energy per inference", "J"], graph.energy_rows(d)),
                  _notes(d["notes"]))


def serve_html(result: Any) -> str:
    """A ServeResult: latency percentiles and the serving metrics (`tegel serve`)."""
    from tegel.report import serve

    d = result.to_dict()
    head = f"{d['model']} on {d['system']}: {d['workload']['description']}"
    return _block(table_html(["latency", "p50", "p90", "p99"], serve.latency_rows(d), head),
                  table_html(["metric", "value"], serve.metric_rows(d)), _notes(d["notes"]))


def curve_html(curve: Any) -> str:
    """A Curve: one row per concurrency (`tegel curve`)."""
    from tegel.report import serve

    head = (f"{curve.model} on {curve.system}: {curve.input_tokens} in / {curve.output_tokens} "
            f"out, scheduler {curve.scheduler}")
    return _block(table_html(serve.CURVE_HEADERS, serve.curve_rows(curve), head))


def claim_html(claim: Any) -> str:
    """A Claim: both systems side by side and the ratios (`tegel claim`)."""
    from tegel.report import claim as report

    d = claim.to_dict()
    r = d["ratios"]
    ratios = [["energy (tokens/J)", f"{r['energy']:.3g}x"],
              ["cost, TCO ($/Mtoken)", f"{r['cost']['tco']:.3g}x"],
              ["footprint, racks", f"{r['footprint']['racks']:.3g}x"]]
    head = f"{d['model']}: {d['on']} (A) vs {d['vs']} (B)"
    verdict = (f"<p>verdict: {html.escape(d['verdict']['text'])}</p>" if d["verdict"] else "")
    return _block(table_html(["", f"A: {d['on']}", f"B: {d['vs']}"], report.system_rows(d), head),
                  table_html(["ratio (A's advantage)", "x"], ratios), verdict)


def explore_html(result: Any) -> str:
    """An ExploreResult: its Pareto front (`tegel explore`)."""
    from tegel.explore.report import pareto
    from tegel.report.explore import pareto_rows

    objectives = list(result.space.objectives)
    front = pareto(result.points, objectives)
    headers, rows = pareto_rows(front, objectives, list(result.space.names), limit=15)
    head = (f"Pareto front of {result.space.spec.name}: {len(front)} of {len(result.points):,} "
            "points")
    return _block(table_html(headers, rows, head))


@dataclass(frozen=True, slots=True)
class Comparison:
    """Runs of one workload on several systems (`tegel compare` static batch): `records` are
    the runs' `to_dict()` by system, ratios against `baseline`."""

    records: dict[str, dict[str, Any]]
    baseline: str

    def __str__(self) -> str:
        from tegel.report.run import compare_text

        return compare_text(self.records, list(self.records), self.baseline,
                            "static batch on every system", operating=False)

    def _repr_html_(self) -> str:
        from tegel.report.run import compare_rows

        first = next(iter(self.records.values()))
        head = (f"{first['model']}: {first['input_tokens']} in / {first['output_tokens']} out; "
                f"ratios against {self.baseline} (x: better when > 1)")
        return _block(table_html(["metric", *self.records],
                                 compare_rows(self.records, list(self.records), self.baseline,
                                              operating=False), head))


def compare(results: Sequence[Any], baseline: str | None = None) -> Comparison:
    """The Comparison of RunResults of one workload (baseline: the first one's system)."""
    records = {r.to_dict()["system"]: r.to_dict() for r in results}
    return Comparison(records, baseline or next(iter(records)))
