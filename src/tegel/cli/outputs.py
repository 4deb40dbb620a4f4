"""Output paths of every command (`--trace`, `--requests-out`, `--write`, `--write-folds`,
`-o`, `--plot`, `--parquet`, make-model's folder): checked before any long work, written through a
temporary file renamed into place (no partial file on a write error), never over an input.

Existing files are overwritten: the documented commands (README, tools/readme_figures.py)
regenerate their outputs in place, so refusing them would break them."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from tegel.errors import TegelError


def _short(text: str, limit: int = 120) -> str:
    """A path as given, cut in the middle past `limit` characters (a 10 kB name is not echoed)."""
    return text if len(text) <= limit else f"{text[:limit // 2]}...{text[-limit // 2:]}"


def check_target(path: str | None, flag: str, inputs: Iterable[str | None] = (),
                 directory: bool = False) -> Path | None:
    """Raise a TegelError now if `path` cannot be written: empty, a directory (a file where
    `directory`), in a missing or unwritable folder, too long, or one of the `inputs`."""
    if path is None:
        return None
    where = f"{flag} {_short(path)}"
    if not path.strip():
        raise TegelError(f"{flag}: expected a file name, got an empty one")
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
        if not parent.is_dir():
            raise TegelError(f"{where}: cannot write: folder {_short(str(parent))} does not exist")
        try:  # a real probe: permission bits say nothing for root or on read-only mounts
            with tempfile.NamedTemporaryFile(dir=parent, prefix=".tegel-write-check-"):
                pass
        except OSError as err:
            raise TegelError(f"{where}: cannot write in folder {_short(str(parent))} "
                             f"({err.strerror or err})") from None
        for item in inputs:
            if item and Path(item).exists() and p.exists() and p.resolve() == Path(item).resolve():
                raise TegelError(f"{where}: is an input of this command; write elsewhere")
    except (OSError, ValueError) as err:  # a name too long, a loop of links, a NUL byte
        raise TegelError(f"{where}: cannot write ({getattr(err, 'strerror', None) or err})") from None
    return p


# (attribute, flag, a folder) of every output flag; `--trace` of `tegel serve` is an input
OUTPUT_FLAGS = (("trace", "--trace", False), ("requests_out", "--requests-out", False),
                ("write", "--write", False), ("write_folds", "--write-folds", True),
                ("html_out", "-o", False), ("plot", "--plot", False),
                ("parquet", "--parquet", False))


def check_outputs(args: object) -> None:
    """check_target on every output flag a parsed command line gives, before the command runs;
    every other path-like argument of the command is an input not to be overwritten."""
    values = vars(args)
    command = values.get("command")
    outs = [(a, f, d) for a, f, d in OUTPUT_FLAGS
            if values.get(a) is not None and not (a == "trace" and command == "serve")]
    names = {a for a, _, _ in outs}
    inputs: list[str] = []
    for key, value in values.items():
        if key in names:
            continue
        if isinstance(value, str):
            inputs.append(value)
        elif isinstance(value, list):
            inputs += [v for v in value if isinstance(v, str)]
    for attr, flag, directory in outs:
        path = values[attr]
        if attr == "write" and _is_dir(path):  # validate --write DIR: DIR/gpu_calibration.yaml
            continue
        check_target(path, flag, inputs, directory)


def _is_dir(path: str) -> bool:
    try:
        return bool(path.strip()) and Path(path).is_dir()
    except (OSError, ValueError):  # too long, a NUL byte: check_target says so
        return False


@contextlib.contextmanager
def atomic_open(path: str | Path, flag: str, mode: str = "w") -> Iterator[IO[str]]:
    """A file object writing to a temporary file beside `path`, renamed onto it when the block
    ends; on any error the temporary file is removed and `path` left as it was."""
    p = Path(path)
    where = f"{flag} {_short(str(path))}"
    try:
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name[:100]}.", suffix=".tmp")
    except OSError as err:
        raise TegelError(f"{where}: cannot write ({err.strerror or err})") from None
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8",
                       newline=None if "b" in mode else "") as f:
            yield f
        os.replace(tmp, p)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise TegelError(f"{where}: cannot write ({err.strerror or err})") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path: str | Path, text: str, flag: str) -> None:
    """Write `text` to `path` atomically (see atomic_open)."""
    with atomic_open(path, flag) as f:
        f.write(text)


def atomic_path(path: str | Path, flag: str) -> contextlib.AbstractContextManager[Path]:
    """A temporary path beside `path` for writers that take a file name; renamed onto `path`."""
    return _atomic_path(Path(path), flag)


@contextlib.contextmanager
def _atomic_path(p: Path, flag: str) -> Iterator[Path]:
    where = f"{flag} {_short(str(p))}"
    tmp = p.with_name(f".{p.name[:100]}.{os.getpid()}.tmp{p.suffix}")
    try:
        yield tmp
        os.replace(tmp, p)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise TegelError(f"{where}: cannot write ({err.strerror or err})") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
