"""`tegel report`: one self-contained HTML page (inline CSS and SVG, nothing fetched) from a
result: the `--json` output of run, compare, curve, claim or explore show (`--from FILE`), or
the same arguments as those commands (`--claim MODEL --on A --vs B`)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from tegel.cli.outputs import add_force
from tegel.errors import TegelError

# --FLAG VALUE -> the command it runs with the rest of the arguments, and what it adds.
SOURCES: dict[str, tuple[str, ...]] = {
    "run": ("run", "--ops"),      # per-step FLOPs and bytes: the roofline
    "compare": ("compare",),
    "curve": ("curve",),
    "claim": ("claim",),
    "explore": ("explore", "show"),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", allow_abbrev=False, help="an HTML report of a run, compare, curve, claim or "
        "explore result",
        description="Write one self-contained HTML file (inline CSS and SVG charts, no network) "
        "from a result. Give --from FILE (the --json output of those commands), or one of --run, "
        "--compare, --curve, --claim MODEL or --explore STORE followed by that command's own "
        "arguments, e.g. `tegel report --claim llama-3.1-70b --on craftwerk-station --vs "
        "dgx-h100 -o claim.html`.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--from", dest="from_file", metavar="FILE", help="a --json result file")
    for name in ("run", "compare", "curve", "claim"):
        src.add_argument(f"--{name}", metavar="MODEL", help=f"run `tegel {name} MODEL ...` "
                         f"with the remaining arguments")
    src.add_argument("--explore", metavar="STORE", help="the store of `tegel explore show STORE`")
    p.add_argument("-o", dest="html_out", required=True, metavar="FILE.html",
                   help="the HTML file to write")
    add_force(p)
    p.set_defaults(func=report_command, takes_extra=True)


def report_command(args: argparse.Namespace) -> int:
    from tegel.report.html import render_html

    extra = list(getattr(args, "extra", ()))
    if args.from_file is not None:
        if extra:
            raise TegelError(f"--from: takes no command arguments, got {' '.join(extra)}")
        d = _load(args.from_file)
    else:
        d = _result(args, extra)
    html = render_html(d)
    from tegel.atomic import write_text

    write_text(args.html_out, html, "-o")  # through a temporary file: no partial page
    print(f"wrote {args.html_out}")
    return 0


def _load(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise TegelError(f"--from {path}: cannot read: {err.strerror or err}") from None
    except json.JSONDecodeError as err:
        raise TegelError(f"--from {path}: not JSON: {err.msg} at line {err.lineno}") from None


def _result(args: argparse.Namespace, extra: list[str]) -> Any:
    """Run the command the source flag names with `--json` and return what it printed."""
    name = next(n for n in SOURCES if getattr(args, n) is not None)
    command, *added = SOURCES[name]
    value = getattr(args, name)
    argv = ([command, *added, value] if name == "explore" else [command, value, *added])
    argv += [a for a in extra if a not in added] + ["--json"]
    with tempfile.TemporaryDirectory() as folder:
        trace = Path(folder) / "trace.json"
        if name == "run" and _value(extra, "--sim") == "event" and "--trace" not in extra:
            argv += ["--trace", str(trace)]  # the event simulation's timeline, for an excerpt
        d = _json_of(argv, name)
        if trace.exists():
            from tegel.report.charts import timeline_excerpt

            d["timeline"] = timeline_excerpt(json.loads(trace.read_text(encoding="utf-8")))
    if name == "compare" and d.get("mode") == "static batch":
        _add_steps(d, extra, value)
    return d


def _json_of(argv: list[str], flag: str) -> Any:
    """What `tegel ARGV` (ending in --json) prints, parsed."""
    from tegel.cli import build_parser

    inner = build_parser().parse_args(argv)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = inner.func(inner)
    if code != 0:
        raise TegelError(f"--{flag}: `tegel {' '.join(argv)}` ended with status {code}")
    return json.loads(out.getvalue())


def _value(argv: list[str], flag: str) -> str | None:
    """The value given to `flag` in argv (`--flag V` or `--flag=V`), None when absent."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _add_steps(d: dict[str, Any], extra: list[str], model: str) -> None:
    """A static-batch comparison is `tegel run` on each system: run each again with --ops so
    the report places its steps on a roofline."""
    rest, skip = [], False
    for arg in extra:
        if skip:
            skip = False
        elif arg in ("--on", "--baseline"):
            skip = True
        elif not arg.startswith(("--on=", "--baseline=")):
            rest.append(arg)
    for system, result in d["results"].items():
        result["ops"] = _json_of(["run", model, "--on", system, *rest, "--ops", "--json"],
                                 "compare")["ops"]
