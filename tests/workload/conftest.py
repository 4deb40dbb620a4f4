"""Fixtures of the workload tests: the zoo networks written as ONNX once per session, by the
CLI a user would run (`tegel make-model NAME FILE`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def zoo_onnx(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """name -> the path of the zoo network `name` as ONNX (seed 0, dynamic batch, 224x224)."""
    from tegel.cli import main

    folder = tmp_path_factory.mktemp("zoo")
    made: dict[str, Path] = {}

    def path(name: str) -> Path:
        if name not in made:
            target = folder / f"{name}.onnx"
            assert main(["make-model", name, str(target), "--seed", "0"]) == 0
            made[name] = target
        return made[name]

    return path
