"""The economics data file: every figure cited, every figure overridable, bad overrides are
one-line errors naming the flag and what was expected."""

from __future__ import annotations

import pickle

import pytest
from pydantic import ValidationError

from tegel.economics.assumptions import (
    ECONOMICS_FILE,
    Assumptions,
    assumptions_from_text,
    load_assumptions,
    parse_set_flags,
)
from tegel.errors import TegelError


def test_file_loads_and_every_figure_is_cited() -> None:
    a = load_assumptions()  # require_cited + check_citations run inside
    assert isinstance(a, Assumptions)
    assert a.pue >= 1 and 0 < a.utilization <= 1
    for source in a.sources.values():
        assert source.title and source.year


def test_overrides_replace_fields_and_map_entries() -> None:
    a = load_assumptions()
    b = a.with_overrides({"pue": "1.2", "memory_usd_per_gb.hbm3": 10,
                          "area.gpu_other_mm2": "20", "pricing": "cost"})
    assert (b.pue, b.memory_usd_per_gb["hbm3"], b.area.gpu_other_mm2, b.pricing) == (
        1.2, 10.0, 20.0, "cost")
    assert b.value("memory_usd_per_gb.hbm3") == 10.0
    assert a.pue == 1.56  # the original is unchanged


@pytest.mark.parametrize(("override", "message"), [
    ({"pu": "1.2"}, "--set pu: no assumption named 'pu'; did you mean pue?"),
    ({"pue": "high"}, "--set pue: expected a number, got 'high'"),
    ({"pue": "0.9"}, "--set pue: expected >= 1"),
    ({"utilization": "1.5"}, "--set utilization: expected a fraction in (0, 1)"),
    ({"years": "-1"}, "--set years: input should be greater than 0"),
    ({"memory_usd_per_gb": "3"}, "is a map; write memory_usd_per_gb.KEY=VALUE"),
    ({"pue.x": "3"}, "pue is a single figure"),
    ({"pricing": "cheap"}, "--set pricing: input should be 'market' or 'cost'"),
])
def test_bad_overrides_are_one_line_errors(override: dict[str, str], message: str) -> None:
    with pytest.raises(TegelError) as err:
        load_assumptions().with_overrides(override)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_set_flags_parse() -> None:
    assert parse_set_flags(["pue=1.2", " years = 5 "]) == {"pue": "1.2", "years": "5"}
    with pytest.raises(TegelError, match="expected NAME=VALUE"):
        parse_set_flags(["pue"])


def test_assumptions_are_a_value_cached_by_content() -> None:
    """Loading is cached by the file's text, never by path; each load is a value of its own."""
    text = ECONOMICS_FILE.read_text(encoding="utf-8")
    assert assumptions_from_text(text, "x") is assumptions_from_text(text, "x")  # cache hit
    a, b = load_assumptions(), load_assumptions()
    assert a == b and a is not b and a.memory_usd_per_gb is not b.memory_usd_per_gb
    edited = assumptions_from_text(text.replace("\npue: 1.56", "\npue: 1.3"), "edited.yaml")
    assert edited.pue == 1.3 and load_assumptions().pue == 1.56
    with pytest.raises(ValidationError):
        a.pue = 2.0  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(a)) == a


def test_changes_from_names_what_differs() -> None:
    a = load_assumptions()
    b = a.with_overrides({"pue": "1.2", "memory_usd_per_gb.hbm3": 10, "area.gpu_other_mm2": "20"})
    assert b.changes_from(a) == {"pue": 1.2, "memory_usd_per_gb.hbm3": 10.0,
                                 "area.gpu_other_mm2": 20.0}
    assert a.changes_from(a) == {}
    assert b.with_overrides(b.changes_from(a)) == b
