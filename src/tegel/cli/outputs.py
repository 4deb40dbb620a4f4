"""Output paths of every command (`--trace`, `--requests-out`, `--write`, `--write-folds`,
`-o`, `--plot`, `--parquet`, make-model's folder or .onnx file), checked before any long work:
not empty, not a folder (a folder where one is expected), in a folder that exists and can be
written, never one of the command's inputs, and not an existing file unless `--force` is given.
The writes themselves go through a temporary file renamed into place (tegel.atomic)."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterable
from pathlib import Path

from tegel.atomic import short_path
from tegel.errors import TegelError


def add_force(p: argparse.ArgumentParser) -> None:
    """`--force` on a command that writes a file."""
    p.add_argument("--force", action="store_true",
                   help="overwrite output files that already exist (default: refuse)")


def _same(a: Path, b: str) -> bool:
    q = Path(b)
    return q.exists() and a.exists() and a.resolve() == q.resolve()


def check_target(path: str | None, flag: str, inputs: Iterable[str | None] = (),
                 directory: bool = False, force: bool = False,
                 names: Iterable[str] = ()) -> Path | None:
    """Raise a TegelError now if `path` cannot be written: empty, a directory (a file where
    `directory`), in a missing or unwritable folder, too long, one of the `inputs`, or (without
    `force`) an existing file — for a `directory`, one holding a file matching the glob patterns
    `names` (the files the command writes there)."""
    if path is None:
        return None
    where = f"{flag} {short_path(path)}"
    if not path.strip():
        raise TegelError(f"{flag}: expected a {'folder' if directory else 'file'} name, "
                         "got an empty one")
    if "\x00" in path:
        raise TegelError(f"{where}: a file name cannot hold a NUL byte")
    p = Path(path)
    try:
        if directory:
            if p.exists() and not p.is_dir():
                raise TegelError(f"{where}: not a folder")
        elif p.is_dir():
            raise TegelError(f"{where}: is a folder; give a file name")
        parent = p.parent if not (directory and p.is_dir()) else p
        while directory and not parent.exists() and parent != parent.parent:
            parent = parent.parent  # a folder is created with its missing parents
        if not parent.is_dir():
            raise TegelError(f"{where}: cannot write: folder {short_path(str(parent))} does not exist")
        try:  # a real probe: permission bits say nothing for root or on read-only mounts
            with tempfile.NamedTemporaryFile(dir=parent, prefix=".tegel-write-check-"):
                pass
        except OSError as err:
            raise TegelError(f"{where}: cannot write in folder {short_path(str(parent))} "
                             f"({err.strerror or err})") from None
        written = ([m for n in names for m in sorted(p.glob(n))] if p.is_dir() else []
                   ) if directory else [p]
        for item in inputs:
            if item and any(_same(w, item) for w in written):
                raise TegelError(f"{where}: is an input of this command; write elsewhere")
        existing = [w for w in written if w.exists()]
        if existing and not force:
            what = "exists" if not directory else f"holds {short_path(existing[0].name)}"
            raise TegelError(f"{where}: {what}; give --force to overwrite it")
    except (OSError, ValueError) as err:  # a name too long, a loop of links, a NUL byte
        raise TegelError(f"{where}: cannot write ({getattr(err, 'strerror', None) or err})") from None
    return p


# (attribute, flag) of every output flag checked here; `--trace` of `tegel serve` is an input,
# and validate's `--write` / `--write-folds` are checked by validate (they have defaults and
# must first be refused inside the installed package)
OUTPUT_FLAGS = (("trace", "--trace"), ("requests_out", "--requests-out"), ("html_out", "-o"),
                ("plot", "--plot"), ("parquet", "--parquet"))


def command_inputs(args: argparse.Namespace, outputs: Iterable[str] = ()) -> list[str]:
    """Every path-like value of a parsed command line other than the attributes `outputs`: the
    files an output must not overwrite (a YAML given to --on, a model file, a --from result)."""
    out: list[str] = []
    for key, value in vars(args).items():
        if key in outputs:
            continue
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out += [v for v in value if isinstance(v, str)]
    return out


def check_outputs(args: argparse.Namespace) -> None:
    """check_target on every output flag a parsed command line gives, before the command runs.
    `run --trace` without `--sim event` is left to run, which refuses the combination."""
    values = vars(args)
    command = values.get("command")
    outs = [(a, f) for a, f in OUTPUT_FLAGS if values.get(a) is not None
            and not (a == "trace" and (command == "serve" or values.get("sim") != "event"))]
    inputs = command_inputs(args, {a for a, _ in outs})
    for attr, flag in outs:
        check_target(values[attr], flag, inputs, force=bool(values.get("force")))
