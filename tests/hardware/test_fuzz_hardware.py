"""Fuzzing the hardware YAML loader (issue 18): mutated presets (type swaps, extreme numbers, deep
nesting, alias bombs, unknown keys, deleted fields, long text, bytes that are not UTF-8,
self-references) load to finite figures or fail with one short TegelError line, each within a
time limit and a memory bound. Derandomized under CI (tests/conftest.py).

Memory is what each example itself allocates (tracemalloc's peak while it runs), not the process's
peak RSS: that peak is set by whatever ran before in the same process (other tests' models and
arrays), so a bound on its growth since import failed or passed depending on test order."""

from __future__ import annotations

import random
import signal
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.gen_hardware import KINDS, NonFinite, cases, generate
from tegel.errors import TegelError

# The slowest real case takes about 0.04 s, 0.4 s under tracemalloc (a 100,000-character string
# through the pure-Python YAML scanner), more on a loaded CI machine; an alias bomb took > 30 s.
SECONDS_PER_EXAMPLE = 5
MAX_EXAMPLE_MB = 64  # memory one example may allocate; real cases peak near 1 MB, the alias bomb
# (before the loader counted expanded values) reached 1.45 GB


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


@contextmanager
def _memory_limit(megabytes: int, label: str) -> Iterator[None]:
    """Fail if the block's Python allocations peak more than `megabytes` above what was allocated
    when it began (tracemalloc; left running if something else had started it)."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        yield
        grown_mb = (tracemalloc.get_traced_memory()[1] - base) / 2**20
    finally:
        if not tracing:
            tracemalloc.stop()
    assert grown_mb < megabytes, f"{label}: allocated {grown_mb:.0f} MB (at most {megabytes})"


def _check(label: str, thunk: object) -> str:
    """Run one case: 'ok' (finite figures) or 'error' (one short TegelError line)."""
    assert callable(thunk)
    with _memory_limit(MAX_EXAMPLE_MB, label), _time_limit(SECONDS_PER_EXAMPLE, label):
        try:
            thunk()
        except TegelError as err:
            message = str(err)
            assert "\n" not in message and len(message) < 1000, f"{label}: {message[:300]}"
            return "error"
    return "ok"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_mutated_presets_load_or_fail_with_one_line(rng: random.Random) -> None:
    label, thunk = generate(rng)
    assert label.split(":")[0] in KINDS
    try:
        _check(label, thunk)
    except NonFinite as err:
        pytest.fail(f"{label}: a non-finite figure: {err}")


def test_the_generator_is_reproducible_and_covers_every_kind() -> None:
    first = [label for label, _ in cases(7, 150)]
    assert first == [label for label, _ in cases(7, 150)]
    assert {label.split(":")[0] for label in first} == set(KINDS)
    outcomes = {_check(label, thunk) for label, thunk in cases(7, 60)}
    assert outcomes == {"ok", "error"}  # the generator yields both kinds of legitimate answer
