"""One progress bar for every long command: a rich bar with elapsed time and ETA on stderr.

It shows only when both stdout and stderr are terminals and the command is not printing JSON,
so pipes, files and tests see exactly what they saw before. The bar is transient: it leaves
nothing behind when the work ends. rich is imported only when a bar is really drawn.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any


def wants_bar(quiet: bool = False) -> bool:
    """Whether a command should draw a bar: not `quiet` (--json), stdout and stderr terminals."""
    return not quiet and sys.stdout.isatty() and sys.stderr.isatty()


class Bar:
    """A progress bar, or nothing: `with Bar("serving", total=n) as bar: bar.update(i)`.

    `total` None draws a bar without an end (elapsed time, no ETA) until one is given.
    `console` (a rich Console) replaces the terminal test: the bar draws when it is a terminal.
    """

    def __init__(self, label: str, total: float | None = None, *, quiet: bool = False,
                 console: Any = None) -> None:
        self.label = label
        self.enabled = (not quiet and console.is_terminal) if console is not None else wants_bar(quiet)
        self._console = console
        self._progress: Any = None
        self._task: Any = None
        self._total = total

    def __enter__(self) -> Bar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            console = self._console or Console(file=sys.stderr)
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(),
                                      TextColumn("ETA"), TimeRemainingColumn(),
                                      TextColumn("{task.fields[info]}"),
                                      console=console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self._total, info="")
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def update(self, done: float, total: float | None = None, info: str = "") -> None:
        """`done` of `total` (None: the total given before) finished; `info` after the ETA."""
        if self._progress is None:
            return
        fields: dict[str, Any] = {"completed": done, "info": info}
        if total is not None:
            fields["total"] = total
        self._progress.update(self._task, **fields)

    def advance(self, steps: float = 1, info: str = "") -> None:
        """`steps` more finished."""
        if self._progress is not None:
            self._progress.update(self._task, advance=steps, info=info)

    def note(self, line: str) -> None:
        """A line of text for the log: above the bar when one is drawn, else on stderr."""
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=sys.stderr)
