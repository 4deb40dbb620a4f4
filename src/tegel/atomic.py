"""Atomic file writes: every file tegel writes goes to a temporary file in the target's folder,
renamed onto the target (`os.replace`) only once it is complete, so a failed or interrupted write
never leaves a partial file and never damages the file that was there."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tegel.errors import TegelError


def short_path(text: str, limit: int = 120) -> str:
    """A path as given, cut in the middle past `limit` characters (a 10 kB name is not echoed);
    `errors.short` is for values, quoted."""
    return text if len(text) <= limit else f"{text[:limit // 2]}...{text[-limit // 2:]}"


@contextlib.contextmanager
def _renamed_onto(tmp: Path, target: Path, where: str) -> Iterator[None]:
    """Rename `tmp` onto `target` when the block ends; on any error remove `tmp`, leave `target`
    as it was, and turn an OSError into a TegelError starting with `where` (flag and path)."""
    try:
        yield
        os.replace(tmp, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError):
            raise TegelError(f"{where}: cannot write ({err.strerror or err})") from None
        raise


@contextlib.contextmanager
def atomic_open(path: str | Path, flag: str, mode: str = "w") -> Iterator[IO[Any]]:
    """A file object writing to a temporary file beside `path`, renamed onto it when the block
    ends; on any error the temporary file is removed and `path` left as it was. `flag` names
    the path in errors (`--trace`, `make-model DIR`)."""
    p, where = Path(path), f"{flag} {short_path(str(path))}"
    try:
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name[:100]}.", suffix=".tmp")
    except OSError as err:
        raise TegelError(f"{where}: cannot write ({err.strerror or err})") from None
    with _renamed_onto(Path(tmp), p, where), os.fdopen(
            fd, mode, encoding=None if "b" in mode else "utf-8",
            newline=None if "b" in mode else "") as f:
        yield f


def write_text(path: str | Path, text: str, flag: str) -> None:
    """Write `text` to `path` atomically (see atomic_open)."""
    with atomic_open(path, flag) as f:
        f.write(text)


def write_bytes(path: str | Path, data: bytes, flag: str) -> None:
    """Write `data` to `path` atomically (see atomic_open)."""
    with atomic_open(path, flag, "wb") as f:
        f.write(data)


@contextlib.contextmanager
def atomic_path(path: str | Path, flag: str) -> Iterator[Path]:
    """A temporary path beside `path` (same suffix) for writers that take a file name
    (matplotlib, duckdb, torch.onnx); renamed onto `path` when the block ends."""
    p = Path(path)
    tmp = p.with_name(f".{p.name[:100]}.{os.getpid()}.tmp{p.suffix}")
    with _renamed_onto(tmp, p, f"{flag} {short_path(str(path))}"):
        yield tmp
