"""Issue 18, CI-sized fuzzing of the CLI arguments and measurement files: every generated input
ends in a result with only finite numbers or a one-line TegelError, within a time limit (no
traceback, no hang). benchmarks/fuzz.py runs the same generators at length, in workers under
RLIMIT_AS."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tegel.errors import TegelError

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: tests.fuzz
from tests.fuzz import gen_cli, gen_measurements
from tests.fuzz.limits import time_limit

NONFINITE = re.compile(r"(?<![\w.])(-?inf|nan|NaN|-?Infinity)(?![\w])")


def _finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return not NONFINITE.search(value)
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


def _check(thunk: object) -> None:
    with time_limit(10, "a fuzz case"):
        try:
            result = thunk()  # type: ignore[operator]
        except TegelError as err:
            assert "\n" not in str(err).strip() and len(str(err)) < 2000
            return
    assert _finite(result), repr(result)[:300]


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**32))
def test_fuzzed_command_lines(seed: int) -> None:
    for _, thunk in gen_cli.cases(seed, 1):
        _check(thunk)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**32))
def test_fuzzed_measurement_files(seed: int) -> None:
    for _, thunk in gen_measurements.cases(seed, 1):
        _check(thunk)


_VALUE = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.integers(-(10**20), 10**20).map(str), st.text(max_size=20))


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(flag=st.sampled_from(("--target", "--years", "--pue", "--rack-power-kw", "--rows",
                             "--claimed", "--input", "--output")), value=_VALUE)
def test_any_claim_flag_value_is_taken_or_refused_up_front(flag: str, value: str) -> None:
    """A claim flag's value is refused by argparse (before any model runs) unless it is a
    plausible number; the claim itself is stubbed, so only the refusal is timed."""
    from tegel.cli import build_parser

    parser = build_parser()
    with time_limit(5, "a fuzz case"):
        try:
            args = parser.parse_args(["claim", "llama-3.1-8b", "--on", "a", "--vs", "b",
                                      flag, value])
        except TegelError as err:  # refused by tegel.cli.argtypes, naming the flag
            assert flag.split("-")[-1] in str(err) or "--target" in str(err)
            return
        except SystemExit as exit_:  # argparse's own refusal (a flag without its value)
            assert exit_.code == 2
            return
    got = getattr(args, flag.lstrip("-").replace("-", "_").replace("target", "target_tokens_per_s"))
    assert isinstance(got, int | float) and math.isfinite(got)
    if flag != "--rows":
        assert got > 0
    else:
        assert got >= 0
