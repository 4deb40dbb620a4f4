"""ruff and mypy are part of the test suite, so CI keeps the code clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("tool", [["ruff", "check", "src", "tests"], ["mypy"]])
def test_tool_is_clean(tool: list[str]) -> None:
    beside_python = Path(sys.executable).parent / tool[0]
    exe = str(beside_python) if beside_python.exists() else shutil.which(tool[0])
    if exe is None:
        pytest.skip(f"{tool[0]} not installed")
    result = subprocess.run([exe, *tool[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
