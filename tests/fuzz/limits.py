"""A time limit for one fuzz case: a hang fails the test instead of stalling the suite."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


class OverTime(BaseException):
    """Raised by `time_limit`; a BaseException, so code under test that catches Exception
    cannot swallow it."""


@contextmanager
def time_limit(seconds: float, label: str) -> Iterator[None]:
    def fire(signum: int, frame: object) -> None:
        raise OverTime(f"{label}: over {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
