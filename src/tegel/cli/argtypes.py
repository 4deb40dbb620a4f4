"""argparse types for numeric flags: a value that is out of range is a one-line
`tegel: error: argument --flag: ...` (exit 2), never a silent clip, an `inf` or a traceback."""

from __future__ import annotations

import argparse
import math
import reprlib
from collections.abc import Callable


class Refused(argparse.ArgumentTypeError):
    """A flag's value out of range: `tegel` answers a one-line error and exit status 2 from
    main() (other argparse errors, an unknown flag or choice, still exit through SystemExit)."""


_SHORT = reprlib.Repr()
_SHORT.maxstring = 40


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Refused(f"expected a number, got {_SHORT.repr(text)}") from None
    if not math.isfinite(value):
        raise Refused(f"expected a finite number, got {_SHORT.repr(text)}")
    return value


def finite(text: str) -> float:
    """Any finite number."""
    return _float(text)


LARGEST = 1e15  # above any plausible rate, price, power or time; keeps products finite


def positive_of(what: str) -> Callable[[str], float]:
    """A finite number > 0 and at most LARGEST; an error says what it is (`number of
    seconds`, `factor`)."""

    def parse(text: str) -> float:
        value = _float(text)
        if not 0 < value <= LARGEST:
            raise Refused(f"expected a positive {what} <= {LARGEST:g}, got {_SHORT.repr(text)}")
        return value

    parse.__name__ = what
    return parse


positive = positive_of("number")
seconds = positive_of("number of seconds")


def nonnegative(text: str) -> float:
    """A finite number >= 0."""
    value = _float(text)
    if not 0 <= value <= LARGEST:
        raise Refused(f"expected a finite number >= 0, got {_SHORT.repr(text)}")
    return value


def fraction(text: str) -> float:
    """A finite number in [0, 1]."""
    value = _float(text)
    if not 0 <= value <= 1:
        raise Refused(f"expected a number from 0 to 1, got {_SHORT.repr(text)}")
    return value


def bounded_int(low: int = 1, high: int = 1 << 31) -> Callable[[str], int]:
    """An integer in [low, high] (the upper bound keeps memory and time bounded)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise Refused(f"expected an integer, got {_SHORT.repr(text)}") from None
        if value < low:
            want = ("a positive integer" if low == 1 else "a non-negative integer" if low == 0
                    else f"an integer >= {low}")
            raise Refused(f"expected {want}, got {_SHORT.repr(text)}")
        if value > high:
            raise Refused(f"expected an integer <= {high}, got {_SHORT.repr(text)}")
        return value

    parse.__name__ = "integer"
    return parse


count = bounded_int(1, 1 << 31)  # tokens, batches, requests, rows: at least one


def batch_or_auto(text: str) -> str:
    """'auto', or a batch of 1 to 2**31 sequences (kept as text; the runner parses it)."""
    if text.strip().lower() == "auto":
        return text
    count(text)
    return text
