"""`tegel run MODEL.onnx` / `tegel plan MODEL.onnx` wiring and `tegel.run_graph`, with a
stand-in ONNX frontend (the real one, `tegel.workload.onnx_frontend`, is merged separately):
the stand-in builds a small CNN at the batch it is asked for."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

import tegel
from mapping.cnn_graphs import small_cnn
from tegel.cli import main
from tegel.errors import TegelError
from tegel.mapping.schedule import Schedule
from tegel.serving.graph_run import GraphRunOptions, run_graph
from tegel.workload import Graph


@pytest.fixture
def onnx_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[tuple[str, int]]]:
    """A file named tiny.onnx and a stand-in `tegel.workload.onnx_frontend` recording its calls."""
    path = tmp_path / "tiny.onnx"
    path.write_bytes(b"stand-in")
    calls: list[tuple[str, int]] = []

    def load_onnx(p: str, batch: int) -> Graph:
        calls.append((p, batch))
        return small_cnn(batch=batch, hw=32)

    module = types.ModuleType("tegel.workload.onnx_frontend")
    module.load_onnx = load_onnx  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tegel.workload.onnx_frontend", module)
    return str(path), calls


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_run_onnx_dispatches_to_the_graph_run(onnx_model: tuple[str, list], capsys:
                                              pytest.CaptureFixture[str]) -> None:
    path, calls = onnx_model
    d = _json(capsys, "run", path, "--on", "ref-dataflow", "--batch", "4", "--schedule", "layer")
    assert calls == [(path, 4), (path, 1)]  # the batch, and one image for fused micro-batches
    assert d["batch"] == 4 and d["schedule"] == "layer" and d["policy"] == "dataflow"
    direct = run_graph(small_cnn(batch=4, hw=32), "ref-dataflow",
                       options=GraphRunOptions(Schedule.LAYER))
    assert d["latency_s"] == pytest.approx(direct.latency_s)
    assert d["throughput_inferences_per_s"] == pytest.approx(4 / direct.latency_s)
    assert [r["key"] for r in d["layers"]] == ["layer 0", "layer 1", "layer 2"]
    total = sum(r["energy_total_j"] for r in d["layers"])
    assert total == pytest.approx(direct.phase.cost.energy_j)
    fused = _json(capsys, "run", path, "--on", "ref-dataflow", "--batch", "4", "--schedule",
                  "fused")
    assert fused["schedule"] == "fused" and fused["microbatches"] == 4
    auto = _json(capsys, "run", path, "--on", "ref-dataflow", "--batch", "4")  # the default
    faster = min((d, fused), key=lambda r: r["latency_s"])
    assert auto["schedule"] == faster["schedule"]
    assert auto["latency_s"] == pytest.approx(faster["latency_s"])
    assert "schedule auto" in auto["notes"][-1]


def test_run_onnx_tables(onnx_model: tuple[str, list], capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = onnx_model
    assert main(["run", path, "--on", "h100-sxm", "--layers", "--ops"]) == 0
    out = capsys.readouterr().out
    for text in ("latency", "throughput", "layer 0", "hbm3", "bound", "conv0"):
        assert text in out


def test_plan_onnx(onnx_model: tuple[str, list], capsys: pytest.CaptureFixture[str]) -> None:
    path, calls = onnx_model
    assert main(["plan", path, "--on", "ref-dataflow", "--batch", "2", "--brief"]) == 0
    out = capsys.readouterr().out
    assert calls == [(path, 2), (path, 1)] and "stage" in out
    assert main(["plan", path, "--on", "h100-sxm"]) == 0
    assert "plan gpu on h100-sxm" in capsys.readouterr().out


def test_onnx_errors_are_one_line(onnx_model: tuple[str, list], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = onnx_model
    for argv, flag in ((["run", str(tmp_path / "missing.onnx"), "--on", "h100-sxm"], "model"),
                       (["run", path, "--on", "h100-sxm", "--batch", "auto"], "--batch"),
                       (["run", path, "--on", "h100-sxm", "--batch", "0"], "--batch")):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.startswith(f"tegel: error: {flag}") and err.count("\n") == 1


def test_without_the_frontend_the_error_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tiny.onnx"
    path.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "tegel.workload.onnx_frontend", None)  # import fails
    assert main(["run", str(path), "--on", "h100-sxm"]) == 2
    assert "ONNX frontend" in capsys.readouterr().err


def test_run_graph_is_exposed_lazily() -> None:
    assert tegel.run_graph is run_graph
    with pytest.raises(TegelError, match="sim"):
        GraphRunOptions(sim="exact")
    with pytest.raises(TegelError, match="--schedule"):
        Schedule.parse("pipelined")


def test_host_overhead_is_an_option() -> None:
    graph = small_cnn(batch=1, hw=32)
    for system in ("h100-sxm", "ref-dataflow"):
        without = run_graph(graph, system)
        with_host = run_graph(graph, system, options=GraphRunOptions(host_overhead=True))
        assert with_host.latency_s > without.latency_s
