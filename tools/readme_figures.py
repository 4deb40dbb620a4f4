"""Regenerate (or check) every figure in README.md that tegel computes.

README.md marks each generated block with `<!-- figures:NAME -->` ... `<!-- /figures:NAME -->`;
this script renders each block from the code as it is now. `--check` (what the test suite runs)
exits 1 and prints a diff when the README has drifted from the code; `--write` rewrites the
blocks in place. Blocks:
- main-job: the output of the README's main command (`tegel compare ...`);
- validation: the `tegel validate` summary, in sample, on the shipped H100 entries, and its
  serving group (entries taken under load, simulated request by request; out of sample);
- dataflow-limits: dataflow presets against their published single-user speeds;
- claim: the worked example of `tegel claim` against 8 x H100 and 8 x B200 (operating points).

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
# published single-user speeds of dataflow machines, with their sources
DATAFLOW_SPEEDS = (Path(__file__).parents[1] / "src" / "tegel" / "fidelity" / "data"
                   / "dataflow_single_user.yaml")


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
    from tegel.fidelity import validate

    report = validate()
    targets = {"throughput": "≤ 10 % on TensorRT-LLM fixed-length tables + MLPerf Offline "
                             "(8 × H100)",
               "ttft": "each batch-1 entry within 20 %", "tpot": "—",
               "energy": "within 25 % of ML.ENERGY v3.0 (not fitted: a prediction)"}
    labels = {"throughput": "throughput", "ttft": "TTFT (batch 1)", "tpot": "TPOT / ITL",
              "energy": "J/token"}
    rows = ["| metric group | entries | MAPE, all | MAPE, target set | target |",
            "|---|---:|---:|---:|---|"]
    for group, s in report.summary().items():
        def pct(v: float | None) -> str:
            return "—" if v is None else f"{v:.1f} %"
        rows.append(f"| {labels[group]} | {s['entries']} | {pct(s['mape_percent'])} | "
                    f"{pct(s['target_set_mape_percent'])} | {targets[group]} |")
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
    import yaml

    from tegel.serving import run

    rows = ["| model on system | tegel | published | |", "|---|---:|---:|---|"]
    for entry in yaml.safe_load(DATAFLOW_SPEEDS.read_text(encoding="utf-8")):
        model, system, precision = entry["model"], entry["system"], entry["precision"]
        published = entry["tokens_per_s_per_user"]
        where = f"[{entry['source']['title']}]({entry['source']['url']})"
        r = run(model, system, 1, 1024, 256, precision)
        ratio = r.tokens_per_s_per_user / published
        verdict = ("agrees" if abs(ratio - 1) < 0.1 else
                   f"{ratio:.1f}× high" if ratio >= 1.5 else f"{100 * (ratio - 1):+.0f} %")
        rows.append(f"| {model} on `{system}` ({precision}) | {r.tokens_per_s_per_user:,.0f} "
                    f"tok/s | ~{published:,} tok/s ({where}) | {verdict} |")
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


BLOCKS: dict[str, Callable[[], str]] = {"main-job": main_job, "validation": validation,
                                        "dataflow-limits": dataflow_limits, "claim": claim_tables}


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
