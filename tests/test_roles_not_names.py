"""Roles, not names: no code that maps or evaluates a graph decides by a tensor's or an op's name.

Names are identities (keys of dictionaries) and labels for people; what an op *is* comes from its
kind, its typed role (`Op.role`) and its place in the graph. This test reads the source of the
stages that consume graphs and fails on any test of a name's content.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "tegel"
PACKAGES = ("mapping", "evaluate", "serving")
# a test of what an op's or a tensor's name says: equality with a literal, substring,
# prefix/suffix, slicing it apart (the subjects are the names graph objects go by in this code)
_OBJ = r"\b(op|main|t|w|x|tensor|weight|kern|kernel|g|gemm|inp|out|cache)\.name"
PATTERNS = [
    _OBJ + r"\s*(==|!=)\s*[\"']",
    r"[\"'][^\"']*[\"']\s+(not\s+)?in\s+" + _OBJ + r"\b",
    _OBJ + r"\.(startswith|endswith|split|replace|removeprefix|removesuffix)\(",
    r"[\"']layers\.0\.",
    _OBJ + r"\[\d*:",
    r"\bop_name\[\d*:",
]


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (SRC / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_decision_by_name(path: Path) -> None:
    hits = [f"{path.name}:{i}: {line.strip()}"
            for i, line in enumerate(path.read_text().splitlines(), 1)
            for pattern in PATTERNS if re.search(pattern, line)]
    assert not hits, "decides by name:\n" + "\n".join(hits)


def test_the_patterns_catch_what_the_first_wave_did() -> None:
    """The old code's tests of names, each caught (so a pass above means something)."""
    old = ['if "router" in op.name:', 'if op.name == "logits":',
           'return name.endswith((".attn.k", ".attn.v"))'.replace("name.", "op.name."),
           'w.name.startswith("layers.0.")', 'op_name[9:] if op.name[:9] == "x"']
    for line in old:
        assert any(re.search(p, line) for p in PATTERNS), line
