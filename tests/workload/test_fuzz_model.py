"""Fuzzing in the suite (issue 18): mutated shipped config.json files and mutated safetensors
folders end in a TegelError or a valid, finite result, within a time limit per example. The
generators are tests/fuzz/gen_*.py (shared with benchmarks/fuzz.py); Hypothesis picks their
seeds, derandomized under CI (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import gen_config, gen_safetensors
from fuzz.limits import time_limit
from tegel.errors import TegelError

LIMIT_S = 5.0  # per example; a regression that hangs fails here instead of stalling the suite


def _one(cases: Callable[[int, int], Iterator[tuple[str, Callable[[], object]]]],
         seed: int) -> None:
    ((label, thunk),) = list(cases(seed, 1))
    with time_limit(LIMIT_S, label):
        try:
            thunk()  # returns only after its own checks (finite, in bounds) passed
        except TegelError as err:
            message = str(err)
            assert message and "\n" not in message and len(message) < 600, (label, message)


FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.integers(0, 2**32 - 1))
def test_mutated_configs(seed: int) -> None:
    _one(gen_config.cases, seed)


@FUZZ
@given(st.integers(0, 2**32 - 1))
def test_mutated_safetensors(seed: int) -> None:
    _one(gen_safetensors.cases, seed)


def test_the_generators_are_deterministic() -> None:
    for cases in (gen_config.cases, gen_safetensors.cases):
        assert [label for label, _ in cases(7, 20)] == [label for label, _ in cases(7, 20)]
