"""Regenerate (or check) every figure in README.md that tegel computes.

README.md marks each generated block with `<!-- figures:NAME -->` ... `<!-- /figures:NAME -->`;
this script renders each block from the code as it is now. `--check` (what the test suite runs)
exits 1 and prints a diff when the README has drifted from the code; `--write` rewrites the
blocks in place. Blocks:
- main-job: the output of the README's main command (`tegel compare ...`);
- validation: the `tegel validate` summary, in sample, on the shipped H100 entries, and its
  serving group (entries taken under load, simulated request by request; out of sample);
- dataflow-limits: dataflow presets against their published single-user speeds;
- claim: the worked example of `tegel claim` against 8 x H100 and 8 x B200 (operating points);
- explore: the shipped design-space example's answer to the 100x question (`tegel explore`).

    python tools/readme_figures.py --check
    python tools/readme_figures.py --write
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import re
import sys
from collections.abc import Callable
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"
MAIN_JOB = ["compare", "llama-3.1-70b", "--on", "dgx-h100,hgx-b200,craftwerk-station",
            "--baseline", "dgx-h100"]


def _cli(argv: list[str]) -> str:
    from tegel.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    if code:
        raise SystemExit(f"tegel {' '.join(argv)} failed ({code})")
    return out.getvalue().rstrip("\n")


def main_job() -> str:
    return "```text\n$ tegel " + " ".join(MAIN_JOB) + "\n" + _cli(MAIN_JOB) + "\n```"


def validation() -> str:
    """Out-of-sample figures only: H100 entries as predicted by the k-fold fit that held their
    publication out, other GPUs never fitted, the serving group, the power group."""
    from tegel.fidelity import validate
    from tegel.fidelity.cases import load_entries, other_gpu_entries
    from tegel.fidelity.folds import load_folds
    from tegel.fidelity.power import cap_mape, max_rate_mape, power_report
    from tegel.fidelity.power import mape as power_mape

    report = validate(load_entries() + other_gpu_entries(), folds=load_folds())
    labels = {"throughput": "throughput", "ttft": "TTFT (batch 1)", "tpot": "TPOT / ITL",
              "energy": "J/token"}

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{v:.1f} %"

    rows = ["H100, each entry predicted by the fit that did not see its publication (5 folds):",
            "", "| metric group | entries | MAPE | MAPE, target set |", "|---|---:|---:|---:|"]
    for group, s in report.summary().items():
        rows.append(f"| {labels[group]} | {s['out_of_sample_entries']} | "
                    f"{pct(s['out_of_sample_mape_percent'])} | "
                    f"{pct(s['out_of_sample_target_set_mape_percent'])} |")
    rows += ["", "Other GPUs, never fitted (their specifications, their own microbenchmarks, "
             "the H100-fitted serving shares):", "",
             "| GPU | throughput entries | MAPE | TTFT entries | MAPE |", "|---|---:|---:|---:|---:|"]
    for gpu, groups in report.gpu_summary().items():
        t, f = groups.get("throughput"), groups.get("ttft")
        rows.append(f"| {gpu} | {t['entries'] if t else 0} | {pct(t['mape_percent'] if t else None)}"
                    f" | {f['entries'] if f else 0} | {pct(f['mape_percent'] if f else None)} |")
    power = power_report()
    rows += ["", f"Power at the wall, MLPerf Inference Power (H100 nodes, nothing fitted; Server "
             f"runs at the load LoadGen scheduled): tokens/J MAPE "
             f"{pct(power_mape(power, 'validation'))} (watts "
             f"{pct(power_mape(power, 'validation', 'system_w'))}; with Server at tegel's own "
             f"highest rate within the limits instead: {pct(max_rate_mape(power, 'validation'))})"
             f"; other GPUs predicted (H200 MaxQ, B200 at its own 1,000 W): "
             f"{pct(power_mape(power, 'predicted'))} (watts "
             f"{pct(power_mape(power, 'predicted', 'system_w'))}). The cap's effect alone "
             f"(MaxQ runs: tokens/s under the limit / the same round's run without it), Offline: "
             f"H100 {pct(cap_mape(power, 'validation', 'offline'))}, H200 "
             f"{pct(cap_mape(power, 'predicted', 'offline'))}."]
    return "\n".join(rows) + "\n\n" + _serving_table(report.to_dict()["serving"])


def _serving_table(group: dict) -> str:
    """The serving group's MAPE per metric (and per kind of entry where there are several)."""
    labels = {"ttft": "TTFT (mean at concurrency C)", "tpot": "ITL / TPOT (mean)",
              "throughput": "throughput"}
    kinds = {"NIM closed loop": "NIM concurrency sweeps (closed loop)",
             "MLPerf Server": "MLPerf Server (highest rate within its p99 limits)"}

    def row(label: str, s: dict) -> str:
        miss = s["largest_miss"]
        worst = "—" if miss is None else f"`{miss['id']}` {miss['error_percent']:+.0f} %"
        mape = "—" if s["mape_percent"] is None else f"{s['mape_percent']:.1f} %"
        return f"| {label} | {s['entries']} | {mape} | {worst} |"

    rows = ["Serving group — the entries taken under load, simulated request by request",
            "(`tegel serve`, chunked prefill); **out of sample: not fitted**:", "",
            "| metric (serving group) | entries | MAPE | largest miss |", "|---|---:|---:|---|"]
    for metric, s in group["metrics"].items():
        rows.append(row(labels[metric], s))
        if len(s["by_kind"]) > 1:
            rows += [row(f"… {kinds[k]}", k_s) for k, k_s in s["by_kind"].items()]
    return "\n".join(rows)


def dataflow_limits() -> str:
    from tegel.fidelity.dataflow import validate_dataflow

    report = validate_dataflow()
    rows = ["| model on system | set | tegel | published | |", "|---|---|---:|---:|---|"]
    for r in report.rows:
        c = r.case
        where = f"[{c.source['title'].split(':')[0]}]({c.source['url']})"
        ratio = r.predicted / c.measured
        verdict = ("agrees" if abs(ratio - 1) < 0.1 else
                   f"{ratio:.1f}× high" if ratio >= 1.5 else f"{100 * (ratio - 1):+.0f} %")
        rows.append(f"| {c.model} on `{c.system}` ({c.precision}) | {c.set.replace('_', '-')} | "
                    f"{r.predicted:,.0f} tok/s | ~{c.measured:,.0f} tok/s ({where}) | {verdict} |")
    mape = {s: report.mape(s) for s in ("train", "held_out")}
    rows.append("")
    rows.append(f"MAPE: training {mape['train']:.1f} %, held out {mape['held_out']:.1f} %; "
                f"excluded (not scored, with reasons in the data file): "
                f"{', '.join(c.id for c in report.excluded)}.")
    return "\n".join(rows)


def _si(value: float, unit: str) -> str:
    from tegel.report.text import si

    return si(value, unit)


def claim_tables() -> str:
    """The worked example: CRAFTWERK station against 8 x H100 and 8 x B200, each at its
    operating point at the default service level (no sensitivity)."""
    from tegel.economics.claim import ClaimOptions, claim

    options = ClaimOptions(tornado=False, equal_load=False)
    claims = [claim("llama-3.1-70b", "craftwerk-station", vs, options=options).to_dict()
              for vs in ("dgx-h100", "hgx-b200")]
    systems = {**claims[0]["systems"], **claims[1]["systems"]}  # type: ignore[dict-item]
    names = ["craftwerk-station", "dgx-h100", "hgx-b200"]
    floor = systems[names[0]]["energy_floor_j_per_token"]

    def row(label: str, cell: Callable[[dict], str]) -> str:
        return f"| {label} | " + " | ".join(cell(systems[n]) for n in names) + " |"

    first = ["| | " + " | ".join(names) + " |", "|---|---:|---:|---:|",
             row("concurrency at the service level", lambda d: f"{d['batch']:,}"),
             row("speed per user / p99 TTFT", lambda d: f"{d['tokens_per_s_per_user']:.0f} "
                 f"tok/s / {_si(d['ttft_p99_s'], 's')}"),
             row("throughput per system", lambda d: _si(d["throughput_tokens_per_s"], "tok/s")),
             row("chips busy / idle", lambda d: f"{d['chips_busy']} / {d['chips_idle']}"),
             row("energy per token (whole system)", lambda d: _si(d["energy_j_per_token"], "J")),
             row(f"distance to the energy floor ({_si(floor, 'J')}/token)",
                 lambda d: f"{d['floor_ratio']:.1f}×"),
             row("$ per million tokens, TCO", lambda d: f"${d['usd_per_mtoken']:.2f}")]
    r = [c["ratios"] for c in claims]
    second = ["| CRAFTWERK's advantage | vs 8 × H100 | vs 8 × B200 |", "|---|---:|---:|"]
    for label, get in (("energy (tokens/J)", lambda x: x["energy"]),
                       ("cost, TCO ($/Mtoken)", lambda x: x["cost"]["tco"]),
                       ("cost, capital only", lambda x: x["cost"]["capital"]),
                       ("footprint, racks", lambda x: x["footprint"]["racks"]),
                       ("footprint, facility kW at nameplate", lambda x: x["footprint"]["kw"])):
        second.append(f"| {label} | {get(r[0]):.2f}× | {get(r[1]):.2f}× |")
    return "\n".join(first) + "\n\n" + "\n".join(second)


EXPLORE_EXAMPLE = Path(__file__).parents[1] / "examples" / "craftwerk-70b.yaml"


def explore_answer() -> str:
    """The example's best design at the SLO against 8 x H100 in the same number format, and
    what holds it back (a fresh store: nothing answered from an earlier run)."""
    import tempfile

    from tegel.explore import explore, load_space
    from tegel.explore.summary import at_edges, summary_dict
    from tegel.report.explore import against_text

    with tempfile.TemporaryDirectory() as tmp:
        r = explore(load_space(EXPLORE_EXAMPLE), store_path=Path(tmp) / "store.duckdb")
    d = summary_dict(r)
    a = d["against_baseline"]
    if a is None or r.baseline_label is None:
        raise SystemExit("the explore example found no feasible design")
    best = ", ".join(f"{k}={v:g}" if isinstance(v, int | float) else f"{k}={v}"
                     for k, v in a["best"]["params"].items())
    lines = [f"$ tegel explore examples/craftwerk-70b.yaml --trials {r.trials}",
             f"{len(r.points):,} distinct designs, {sum(p.feasible for p in r.points):,} feasible; "
             f"the {len(r.refined)} best re-evaluated at the SLO's operating point",
             f"best design: {best}",
             against_text(a, r.baseline_label)]
    edges = at_edges(r.space, a["best"]["params"])
    if edges:
        lines.append(f"  at the space's edge: {', '.join(edges)}")
    return "```text\n" + "\n".join(lines) + "\n```"


BLOCKS: dict[str, Callable[[], str]] = {"main-job": main_job, "validation": validation,
                                        "dataflow-limits": dataflow_limits, "claim": claim_tables,
                                        "explore": explore_answer}


def render(text: str, only: set[str] | None = None) -> str:
    """`text` with every marked block regenerated."""
    def block(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in BLOCKS:
            raise SystemExit(f"README.md: unknown figures block {name!r}")
        if only is not None and name not in only:
            return match.group(0)
        return f"<!-- figures:{name} -->\n{BLOCKS[name]()}\n<!-- /figures:{name} -->"

    return re.sub(r"<!-- figures:([\w-]+) -->\n(?:.*?\n)?<!-- /figures:\1 -->", block, text,
                  flags=re.DOTALL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if README.md has drifted")
    mode.add_argument("--write", action="store_true", help="rewrite the blocks in README.md")
    parser.add_argument("--only", nargs="*", help="blocks to regenerate (default: all)")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = render(text, set(args.only) if args.only else None)
    if args.write:
        README.write_text(new, encoding="utf-8")
        return 0
    if new != text:
        sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), new.splitlines(True),
                                                   "README.md", "generated"))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
