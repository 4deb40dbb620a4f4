"""The README's computed figures are the code's: regenerating them changes nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

TOOL = Path(__file__).parents[1] / "tools" / "readme_figures.py"


def _tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("readme_figures", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_figures_are_regenerated_from_the_code() -> None:
    """One render (it runs validate, claims and the main job) serves both checks: the README
    is what the code prints, and a figure changed by hand is put back."""
    tool = _tool()
    text = tool.README.read_text(encoding="utf-8")
    blocks = set(tool.BLOCKS)
    assert all(f"<!-- figures:{name} -->" in text for name in blocks)  # every block is in use
    tampered = text.replace("| throughput | 73 |", "| throughput | 74 |")
    assert tampered != text
    assert tool.render(tampered) == text, ("README.md drifted: run python "
                                           "tools/readme_figures.py --write")
