"""`--plot FILE.png|svg`: the charts of a result drawn by matplotlib (Agg) into a valid file;
a wrong extension or an unwritable path is a one-line error naming --plot."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from report.cases import MODEL
from tegel.cli import main
from tegel.errors import TegelError
from tegel.report.plots import write_plot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _valid(path: Path) -> None:
    if path.suffix == ".png":
        assert path.read_bytes()[:8] == PNG_MAGIC
    else:
        assert ET.parse(path).getroot().tag.endswith("svg")


@pytest.mark.parametrize("kind", ["run", "compare", "curve", "claim", "explore"])
def test_each_kind_plots_to_png_and_svg(results: dict[str, Any], tmp_path: Path,
                                        kind: str) -> None:
    for ext in ("png", "svg"):
        out = tmp_path / f"{kind}.{ext}"
        write_plot(str(out), None, results[kind])
        _valid(out)


def test_no_plot_writes_nothing(results: dict[str, Any], tmp_path: Path) -> None:
    write_plot(None, "run", results["run"])
    assert not list(tmp_path.iterdir())


COMMANDS = {
    "run": ["run", MODEL, "--on", "h100-sxm"],
    "compare": ["compare", MODEL, "--on", "h100-sxm,a100-80gb"],
    "curve": ["curve", MODEL, "--on", "h100-sxm", "--concurrency", "1,4", "--requests", "16"],
    "claim": ["claim", MODEL, "--on", "craftwerk", "--vs", "h100-sxm", "--batch-on", "8",
              "--batch-vs", "8", "--no-tornado", "--no-equal-load"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_plot_flag_on_each_command(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   name: str) -> None:
    out = tmp_path / f"{name}.png"
    assert main([*COMMANDS[name], "--plot", str(out)]) == 0
    capsys.readouterr()
    _valid(out)


def test_plot_flag_on_explore_show(explore_store: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pareto.svg"
    assert main(["explore", "show", str(explore_store), "--plot", str(out)]) == 0
    capsys.readouterr()
    _valid(out)


@pytest.mark.parametrize("target, said", [
    ("r.pdf", "expected a .png or .svg file, got .pdf"),
    ("r", "expected a .png or .svg file, got no extension"),
    ("missing/r.png", "cannot write"),
])
def test_bad_plot_path_is_one_line_naming_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               target: str, said: str) -> None:
    path = tmp_path / target
    assert main([*COMMANDS["run"], "--plot", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"tegel: error: --plot {path}: {err.split(': ', 3)[-1]}"
    assert err.count("\n") == 1 and said in err
    assert not path.exists()


def test_plot_refused_for_onnx_models(tmp_path: Path) -> None:
    from tegel.cli.graph_cmd import refuse_llm_flags

    class Args:
        plot = "x.png"

    with pytest.raises(TegelError, match="--plot"):
        refuse_llm_flags(Args())  # type: ignore[arg-type]
