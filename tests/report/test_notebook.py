"""docs/examples/tegel-tour.ipynb runs top to bottom (any cell error fails) and its results
show as HTML tables."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).parents[2] / "docs" / "examples" / "tegel-tour.ipynb"
SRC = Path(__file__).parents[2] / "src"


def test_the_tour_notebook_runs_and_shows_tables(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # the kernel imports this checkout's tegel, installed or not
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.perf_counter() - start
    html = [o["data"]["text/html"] for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert len(html) == 3  # run, comparison, serve
    assert "llama-3.1-8b on h100-sxm: batch 8" in html[0] and "<table" in html[0]
    assert "craftwerk-station" in html[1] and "x)" in html[1]
    assert "TTFT" in html[2] and "goodput" in html[2]
    assert elapsed < 60, f"the tour took {elapsed:.0f} s"
