"""`tegel` command line: one argparse tree, one module per command group.

Each command module exposes ``register(subparsers)``, which adds its parser(s) and sets
``func`` (``args -> exit code``). Modules are imported lazily by name so ``tegel --help``
stays fast and a command group never pulls in the heavy dependencies of another.
"""

from __future__ import annotations

import argparse
import importlib
import reprlib
import sys
from typing import NoReturn

from tegel.errors import TegelError

# Command modules in pipeline order; each registers its sub-commands.
COMMAND_MODULES: tuple[str, ...] = (
    "tegel.cli.inspect_cmd",
    "tegel.cli.hw_cmd",
    "tegel.cli.run_cmd",
    "tegel.cli.serve_cmd",
    "tegel.cli.plan_cmd",
    "tegel.cli.claim_cmd",
    "tegel.cli.validate_cmd",
    "tegel.cli.generate_cmd",
    "tegel.cli.make_model_cmd",
    "tegel.cli.execute_cmd",
    "tegel.cli.explore_cmd",
    "tegel.cli.report_cmd",
)


def _version() -> str:
    """The installed distribution's version, or the package's own when run from a source tree."""
    from importlib import metadata

    try:
        return metadata.version("tegel")
    except metadata.PackageNotFoundError:
        from tegel import __version__

        return __version__


_TYPED: list[str] = []  # the command line being parsed: an error names a flag as it was typed


def _flag(argument_name: str) -> str:
    """The flag of an argparse error as the user typed it (`--tp`, not `--tp/--tensor-parallel`),
    else its first long name; a positional keeps argparse's `argument NAME`."""
    names = argument_name.split("/")
    if not names[0].startswith("-"):
        return f"argument {argument_name}"
    for word in _TYPED:
        if word.split("=", 1)[0] in names:
            return word.split("=", 1)[0]
    return next((n for n in names if n.startswith("--")), names[0])


class _Parser(argparse.ArgumentParser):
    """argparse with tegel's one-line errors: `tegel: error: --flag: ...`, exit 2
    (`tegel CMD --help` still shows the usage)."""

    def error(self, message: str) -> NoReturn:
        from tegel.cli.argtypes import Refused

        err = sys.exc_info()[1]
        if isinstance(err, argparse.ArgumentError) and err.argument_name:
            message = f"{_flag(err.argument_name)}: {err.message}"
        if isinstance(getattr(err, "__context__", None), Refused):  # out of range
            raise TegelError(message)
        self.exit(2, f"tegel: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole `tegel` argument parser."""
    parser = _Parser(
        prog="tegel",
        description="An executable model of AI inference hardware: inspect models, describe "
        "machines, run and compare workloads.",
    )
    parser.add_argument("--version", action="version", version=f"tegel {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tegel` console script; returns the process exit code."""
    parser = build_parser()
    _TYPED[:] = sys.argv[1:] if argv is None else argv
    try:
        args, extra = parser.parse_known_args(argv)
    except TegelError as err:  # a flag's value out of range (tegel.cli.argtypes)
        print(f"tegel: error: {err}", file=sys.stderr)
        return 2
    if extra:  # only a command that passes arguments on (`tegel report --claim ...`) takes them
        if not getattr(args, "takes_extra", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.extra = extra
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        from tegel.cli.outputs import check_outputs

        check_outputs(args)  # before any long work, not after it
        return int(args.func(args))
    except TegelError as err:
        print(f"tegel: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as err:  # a file the command named cannot be read or written (too long, ...)
        name = reprlib.repr(err.filename) if err.filename is not None else "a file"
        print(f"tegel: error: {name}: {err.strerror or err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
