"""`tegel explore SPACE` and `tegel explore show STORE`: design-space exploration (docs/explore.md)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from tegel.errors import TegelError
from tegel.report.plots import write_plot


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explore", help="search a design space (grid, random, TPE, NSGA-II)",
                       description="Search the chip designs a space file describes, each point "
                       "evaluated by the engine of `tegel run`/`tegel claim`; results in a DuckDB "
                       "store, resumable. `tegel explore show STORE` reads a store.")
    p.add_argument("space", help="space file (YAML), or `show` to read a store")
    p.add_argument("store_arg", nargs="?", metavar="STORE", help="with show: the store to read")
    p.add_argument("--trials", type=int, help="trials to run (default: the file's search.trials)")
    p.add_argument("--store", metavar="PATH", help="DuckDB store (default: next to the space, "
                   ".duckdb)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local process pool (default) or a Ray cluster")
    p.add_argument("--address", help="Ray cluster address (default: start a local one)")
    p.add_argument("--workers", type=int, help="worker processes (default: the CPUs)")
    p.add_argument("--allow-mixed", action="store_true",
                   help="resume a store written by another engine version")
    p.add_argument("--no-baseline", action="store_true", help="skip the baseline system")
    p.add_argument("--pareto", action="store_true", help="show: the Pareto front only")
    p.add_argument("--sql", metavar="QUERY", help="show: run a SQL query on the store "
                   "(tables points, refined, meta)")
    p.add_argument("--parquet", metavar="OUT", help="show: export the points to Parquet")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--plot", metavar="FILE", help="show: also draw the Pareto front into FILE "
                   "(.png or .svg, matplotlib)")
    p.set_defaults(func=explore_command)


def explore_command(args: argparse.Namespace) -> int:
    if args.space == "show":
        if not args.store_arg:
            raise TegelError("explore show: expected a store path")
        return show_command(args)
    if args.trials is not None and args.trials < 1:
        raise TegelError(f"--trials: expected a positive integer, got {args.trials}")
    if args.workers is not None and args.workers < 1:
        raise TegelError(f"--workers: expected a positive integer, got {args.workers}")
    from tegel.explore.run import explore
    from tegel.explore.space import load_space

    space = load_space(args.space)
    bar = ProgressLine(space.objectives[0])
    result = explore(space, trials=args.trials,
                     store_path=Path(args.store) if args.store else None,
                     executor=args.executor, workers=args.workers, address=args.address,
                     allow_mixed=args.allow_mixed, baseline=not args.no_baseline,
                     progress=bar)
    bar.finish()
    from tegel.explore.summary import summary_dict, summary_text

    if args.json:
        print(json.dumps(summary_dict(result), indent=2, default=str))
    else:
        print(summary_text(result))
    return 130 if result.interrupted else 0


class ProgressLine:
    """Trials done, rate, ETA and the best feasible point so far, on stderr: one updating line
    on a terminal, a line per tenth otherwise."""

    def __init__(self, objective: tuple[str, str]) -> None:
        self.objective = objective
        self.tty = sys.stderr.isatty()
        self._tenth = -1

    def __call__(self, p: Any) -> None:
        name = self.objective[0]
        best = (f"best {name} {p.best.metrics[name]:.4g} (trial {p.best.trial})" if p.best
                else "no feasible point yet")
        eta = "" if math.isnan(p.eta_s) else f" ETA {_duration(p.eta_s)}"
        frac = p.trials_done / p.trials
        bar = "#" * int(20 * frac)
        text = (f"[{bar:<20}] {p.trials_done:,}/{p.trials:,} trials, {p.evaluated:,} evaluated, "
                f"{p.feasible:,} feasible, {_duration(p.elapsed_s)}{eta}; {best}")
        if self.tty:
            print(f"\r{text}\033[K", end="", file=sys.stderr, flush=True)
        elif int(10 * frac) != self._tenth:
            self._tenth = int(10 * frac)
            print(text, file=sys.stderr, flush=True)

    def finish(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _duration(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def show_command(args: argparse.Namespace) -> int:
    from tegel.explore.store import Store
    from tegel.explore.summary import show_dict, show_text

    store = Store(Path(args.store_arg))
    try:
        if args.parquet:
            n = store.parquet(Path(args.parquet))
            print(f"wrote {n:,} points to {args.parquet}", file=sys.stderr)
        if args.sql:
            cols, rows = store.sql(args.sql)
            if args.json:
                print(json.dumps([dict(zip(cols, r, strict=True)) for r in rows], indent=2,
                                 default=str))
            else:
                from tegel.report.text import table

                print(table(cols, [[_cell(v) for v in r] for r in rows]))
            return 0
        if args.parquet:
            return 0
        if args.plot:
            write_plot(args.plot, "explore", show_dict(store, pareto_only=args.pareto))
        if args.json:
            print(json.dumps(show_dict(store, pareto_only=args.pareto), indent=2, default=str))
        else:
            print(show_text(store, pareto_only=args.pareto))
    finally:
        store.close()
    return 0


def _cell(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
