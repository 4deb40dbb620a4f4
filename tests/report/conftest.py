"""One small result of each kind a report takes, from the CLI's own `--json` (seconds in all):
Qwen2.5-0.5B on one or two GPUs, a static-batch claim, and a tiny explore store."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest

from report.cases import REPORT_ARGS, SPACE, tegel_json
from tegel.cli import main


@pytest.fixture(scope="session")
def explore_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("explore")
    space = folder / "tiny.yaml"
    space.write_text(SPACE)
    store = folder / "tiny.duckdb"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["explore", str(space), "--store", str(store), "--workers", "1",
                     "--no-baseline"]) == 0
    return store


@pytest.fixture(scope="session")
def results(explore_store: Path) -> dict[str, Any]:
    """kind -> the `--json` result of that command."""
    out = {}
    for kind, args in REPORT_ARGS.items():
        command = [kind, *args[1:]] + (["--ops"] if kind == "run" else [])
        out[kind] = tegel_json(command)
    out["explore"] = tegel_json(["explore", "show", str(explore_store)])
    return out

