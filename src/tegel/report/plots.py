"""`--plot FILE.png|svg`: the charts of a result (report/charts.py) drawn with matplotlib,
headless (Agg), one panel per chart, in one file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tegel.atomic import atomic_path
from tegel.errors import TegelError
from tegel.report.charts import OKABE_ITO, Chart, ResultKind, charts_for, result_kind

PLOT_FORMATS = ("png", "svg")
MARKERS = ("o", "s", "D", "^")


def plot_format(path: str) -> str:
    """The file format of a --plot path, from its extension (TegelError naming --plot)."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in PLOT_FORMATS:
        raise TegelError(f"--plot {path}: expected a .png or .svg file, got "
                         f"{'.' + suffix if suffix else 'no extension'}")
    return suffix


def write_plot(path: str | None, kind: ResultKind | None, d: Any) -> None:
    """Draw the charts of result `d` into `path` (.png or .svg); nothing when path is None."""
    if path is None:
        return
    fmt = plot_format(path)
    charts = charts_for(kind or result_kind(d), d)
    if not charts:
        raise TegelError(f"--plot {path}: this result has nothing to plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(charts), 1, figsize=(8, 4.2 * len(charts)), squeeze=False)
    try:
        for chart, ax in zip(charts, axes[:, 0], strict=True):
            _draw(chart, ax)
        fig.tight_layout()
        try:
            with atomic_path(path, "--plot") as tmp:  # no partial image on a write error
                fig.savefig(tmp, format=fmt, dpi=110)
        except OSError as err:
            raise TegelError(f"--plot {path}: cannot write: {err.strerror or err}") from None
    finally:
        plt.close(fig)


def _colour(name: str, i: int) -> str:
    return "#000000" if name == "roof" else OKABE_ITO[i % (len(OKABE_ITO) - 1)]


def _draw(chart: Chart, ax: Any) -> None:
    """One chart on one matplotlib Axes, the same marks as the SVG renderer."""
    ax.set_title(chart.title, fontsize=10)
    ax.set_xlabel(chart.x_label)
    if chart.y_label:
        ax.set_ylabel(chart.y_label)
    if chart.log_x:
        ax.set_xscale("log")
    if chart.log_y:
        ax.set_yscale("log")
    rows = list(range(len(chart.categories)))
    if chart.kind == "stack":
        left = [0.0] * len(rows)
        for i, s in enumerate(chart.series):
            ax.barh(rows, s.ys, left=left, color=_colour(s.name, i), label=s.name)
            left = [a + b for a, b in zip(left, s.ys, strict=True)]
    elif chart.kind in ("tornado", "timeline"):
        for i, s in enumerate(chart.series):
            lows = [min(a, b) for a, b in zip(s.xs, s.ys, strict=True)]
            widths = [abs(b - a) for a, b in zip(s.xs, s.ys, strict=True)]
            ax.barh(list(s.rows) or rows, widths, left=lows, height=0.6,
                    color=_colour(s.name, i), label=s.name)
    else:
        for i, s in enumerate(chart.series):
            if s.style == "line":
                marker = None if s.name == "roof" else MARKERS[i % len(MARKERS)]
                ax.plot(s.xs, s.ys, color=_colour(s.name, i), marker=marker, label=s.name,
                        linestyle="--" if i % 2 else "-")
            else:
                ax.scatter(s.xs, s.ys, color=_colour(s.name, i), marker=MARKERS[i % len(MARKERS)],
                           label=s.name, s=18)
    if chart.categories:
        ax.set_yticks(rows, [c if len(c) <= 40 else c[:39] + "…" for c in chart.categories],
                      fontsize=8)
        ax.invert_yaxis()
    if chart.reference_x is not None:
        ax.axvline(chart.reference_x, color="#000000", linestyle=":", linewidth=1)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
