"""Fuzzing the hardware YAML loader (issue 18): mutated presets (type swaps, extreme numbers, deep
nesting, alias bombs, unknown keys, deleted fields, long text, bytes that are not UTF-8,
self-references) load to finite figures or fail with one short TegelError line, each within a
time limit; the process's memory stays bounded. Derandomized under CI (tests/conftest.py)."""

from __future__ import annotations

import random
import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.gen_hardware import KINDS, NonFinite, cases, generate
from tegel.errors import TegelError

SECONDS_PER_EXAMPLE = 2  # the slowest real case takes about 0.1 s; an alias bomb took > 30 s
MAX_GROWTH_MB = 512  # peak memory the whole run may add; the alias bomb reached 1.45 GB


class _TooSlow(Exception):
    pass


@contextmanager
def _time_limit(seconds: int, label: str) -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise _TooSlow(f"{label}: ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _check(label: str, thunk: object) -> str:
    """Run one case: 'ok' (finite figures) or 'error' (one short TegelError line)."""
    assert callable(thunk)
    with _time_limit(SECONDS_PER_EXAMPLE, label):
        try:
            thunk()
        except TegelError as err:
            message = str(err)
            assert "\n" not in message and len(message) < 1000, f"{label}: {message[:300]}"
            return "error"
    return "ok"


START_MB = _peak_mb()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_mutated_presets_load_or_fail_with_one_line(rng: random.Random) -> None:
    label, thunk = generate(rng)
    assert label.split(":")[0] in KINDS
    try:
        _check(label, thunk)
    except NonFinite as err:
        pytest.fail(f"{label}: a non-finite figure: {err}")
    assert _peak_mb() - START_MB < MAX_GROWTH_MB


def test_the_generator_is_reproducible_and_covers_every_kind() -> None:
    first = [label for label, _ in cases(7, 150)]
    assert first == [label for label, _ in cases(7, 150)]
    assert {label.split(":")[0] for label in first} == set(KINDS)
    outcomes = {_check(label, thunk) for label, thunk in cases(7, 60)}
    assert outcomes == {"ok", "error"}  # the generator yields both kinds of legitimate answer
