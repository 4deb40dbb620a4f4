"""`tegel explore SPACE` and `tegel explore show STORE`: design-space exploration (docs/explore.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tegel.cli import argtypes
from tegel.cli.outputs import add_force
from tegel.errors import TegelError
from tegel.report import jsonout
from tegel.report.plots import write_plot


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explore", help="search a design space (grid, random, TPE, NSGA-II)",
                       description="Search the chip designs a space file describes, each point "
                       "evaluated by the engine of `tegel run`/`tegel claim`; results in a DuckDB "
                       "store, resumable. `tegel explore show STORE` reads a store.")
    p.add_argument("space", help="space file (YAML), or `show` to read a store")
    p.add_argument("store_arg", nargs="?", metavar="STORE", help="with show: the store to read")
    p.add_argument("--trials", type=argtypes.count, help="trials to run (default: the file's search.trials)")
    p.add_argument("--store", metavar="PATH", help="DuckDB store (default: next to the space, "
                   ".duckdb)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local process pool (default) or a Ray cluster")
    p.add_argument("--address", help="Ray cluster address (default: start a local one)")
    p.add_argument("--workers", type=argtypes.count, help="worker processes (default: the CPUs)")
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
    add_force(p)
    p.set_defaults(func=explore_command)


def explore_command(args: argparse.Namespace) -> int:
    if args.space == "show":
        if not args.store_arg:
            raise TegelError("explore show: expected a store path")
        return show_command(args)
    if args.store is not None and not args.store.strip():  # not an in-memory store: lost work
        raise TegelError("--store: expected a file name, got an empty one")
    if args.trials is not None and args.trials < 1:
        raise TegelError(f"--trials: expected a positive integer, got {args.trials}")
    if args.workers is not None and args.workers < 1:
        raise TegelError(f"--workers: expected a positive integer, got {args.workers}")
    from tegel.explore.run import explore
    from tegel.explore.space import load_space
    from tegel.report.explore import ExploreProgress
    from tegel.report.progress import Bar

    space = load_space(args.space)
    with Bar("explore (trials)", quiet=args.json) as bar:
        result = explore(space, trials=args.trials,
                         store_path=Path(args.store) if args.store else None,
                         executor=args.executor, workers=args.workers, address=args.address,
                         allow_mixed=args.allow_mixed, baseline=not args.no_baseline,
                         progress=ExploreProgress(space.objectives[0], bar))
    from tegel.explore.summary import summary_dict
    from tegel.report.explore import summary_text

    if args.json:
        print(jsonout.dumps(summary_dict(result), indent=2, default=str))
    else:
        print(summary_text(result))
    return 130 if result.interrupted else 0


def show_command(args: argparse.Namespace) -> int:
    from tegel.explore.store import Store
    from tegel.explore.summary import show_dict
    from tegel.report.explore import show_text, sql_text

    store = Store(Path(args.store_arg))
    try:
        if args.parquet:
            from tegel.atomic import atomic_path

            with atomic_path(args.parquet, "--parquet") as tmp:  # no partial file
                n = store.parquet(tmp)
            print(f"wrote {n:,} points to {args.parquet}", file=sys.stderr)
        if args.sql:
            cols, rows = store.sql(args.sql)
            if args.json:
                print(jsonout.dumps([dict(zip(cols, r, strict=True)) for r in rows], indent=2,
                                 default=str))
            else:
                print(sql_text(cols, rows))
            return 0
        if args.parquet:
            return 0
        if args.plot:
            write_plot(args.plot, "explore", show_dict(store, pareto_only=args.pareto))
        if args.json:
            print(jsonout.dumps(show_dict(store, pareto_only=args.pareto), indent=2, default=str))
        else:
            print(show_text(store, pareto_only=args.pareto))
    finally:
        store.close()
    return 0
