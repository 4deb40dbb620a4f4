"""The progress bar of long commands: silent off a terminal and with --json, drawn and
advancing on one."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console

from tegel.cli import main
from tegel.report.progress import Bar, wants_bar


def _terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=120), out


def test_a_bar_off_a_terminal_draws_nothing() -> None:
    out = io.StringIO()
    with Bar("working", total=10, console=Console(file=out, force_terminal=False)) as bar:
        assert not bar.enabled
        for i in range(10):
            bar.update(i + 1)
    assert out.getvalue() == ""


def test_json_keeps_the_bar_away_even_on_a_terminal() -> None:
    console, out = _terminal()
    with Bar("working", total=10, quiet=True, console=console) as bar:
        bar.update(5)
    assert not bar.enabled and out.getvalue() == ""


def test_the_bar_advances_on_a_terminal() -> None:
    console, out = _terminal()
    with Bar("working", total=10, console=console) as bar:
        assert bar.enabled
        bar.update(3, info="three done")
        bar._progress.refresh()
        first = out.getvalue()
        bar.advance(4)
        bar._progress.refresh()
    assert "working" in first and "3/10" in first and "three done" in first
    assert "7/10" in out.getvalue()[len(first):]
    assert "ETA" in first


def test_notes_go_above_the_bar_or_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    console, out = _terminal()
    with Bar("fitting", total=2, console=console) as bar:
        bar.note("a = 1  objective 3.00%")
    assert "a = 1  objective 3.00%" in out.getvalue()
    with Bar("fitting", total=2, console=Console(file=io.StringIO())) as bar:
        bar.note("b = 2")
    assert capsys.readouterr().err == "b = 2\n"


def test_commands_print_no_bar_when_not_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert not wants_bar()  # pytest captures stdout and stderr: neither is a terminal
    start = time.perf_counter()
    assert main(["serve", "qwen2.5-0.5b", "--on", "h100-sxm", "--rate", "5",
                 "--requests", "50"]) == 0
    assert time.perf_counter() - start < 60
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.startswith("qwen2.5-0.5b on h100-sxm")


def test_serve_on_a_terminal_draws_and_advances_the_bar(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    console, out = _terminal()
    seen: list[float] = []
    original = Bar.update

    def update(self: Bar, done: float, total: float | None = None, info: str = "") -> None:
        seen.append(done)
        original(self, done, total, info)

    real_init = Bar.__init__

    def init(self: Bar, label: str, total: float | None = None, *, quiet: bool = False,
             console: object = None) -> None:  # the command's bar draws on our terminal
        real_init(self, label, total, quiet=quiet, console=terminal)

    terminal = console
    monkeypatch.setattr(Bar, "update", update)
    monkeypatch.setattr(Bar, "__init__", init)
    assert main(["serve", "qwen2.5-0.5b", "--on", "h100-sxm", "--rate", "5",
                 "--requests", "40"]) == 0
    assert seen == sorted(seen) and seen[-1] == 40 and len(seen) == 40
    assert "serving" in out.getvalue()
    assert capsys.readouterr().out.startswith("qwen2.5-0.5b on h100-sxm")


def test_a_fit_advances_once_per_fitted_parameter() -> None:
    from tegel.cli.validate_cmd import PASSES, _fit_progress
    from tegel.fidelity.calibrate import BOUNDS

    console, out = _terminal()
    key = next(iter(BOUNDS))
    with Bar("calibrating", total=PASSES * len(BOUNDS), console=console) as bar:
        line = _fit_progress(bar)
        line("3 entries of other GPUs left out: calibration fits H100 only")
        line(f"{key} = 0.5  objective 4.20%")
        line(f"{key} = 0.6  objective 4.10%")
        bar._progress.refresh()
        done = bar._progress.tasks[0].completed
    assert done == 2
    assert "left out" in out.getvalue() and "objective 4.10%" in out.getvalue()
