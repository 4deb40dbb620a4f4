"""Charts as inline SVG: no script, no fonts, no network. Each series is a `<g data-series>`
(tests and the browser test count them); the chart and every mark carry a `<title>`."""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

from tegel.report.charts import OKABE_ITO, Chart, Series
from tegel.report.text import si

WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 20, 50
MARKERS = ("circle", "square", "diamond", "triangle")


def chart_svg(chart: Chart) -> str:
    """The chart as one `<svg>` element (a string of markup)."""
    if chart.kind in ("stack", "tornado", "timeline"):
        body, height = _bars(chart)
    else:
        body, height = _xy(chart), HEIGHT
    legend = _legend(chart.series, height)
    full = height + 24 * _legend_rows(chart)
    return (f'<svg viewBox="0 0 {WIDTH} {full}" role="img" class="chart" '
            f'data-chart="{escape(chart.chart_id)}" '
            f'data-series-count="{len(chart.series)}" aria-labelledby="t-{escape(chart.chart_id)}">'
            f'<title id="t-{escape(chart.chart_id)}">{escape(chart.title)}</title>'
            f'{body}{legend}</svg>')


def _legend_rows(chart: Chart) -> int:
    return (len(chart.series) + 2) // 3


def _legend(series: tuple[Series, ...], top: float) -> str:
    items = []
    for i, s in enumerate(series):
        x, y = LEFT + (i % 3) * 190, top + 6 + 24 * (i // 3)
        items.append(f'<g class="legend"><rect x="{x}" y="{y}" width="12" height="12" '
                     f'fill="{_colour(s, i)}"/><text x="{x + 18}" y="{y + 11}">'
                     f'{escape(s.name)}</text></g>')
    return "".join(items)


def _colour(s: Series, i: int) -> str:
    return "#000000" if s.name == "roof" else OKABE_ITO[i % (len(OKABE_ITO) - 1)]


def _scale(lo: float, hi: float, a: float, b: float, log: bool) -> Callable[[float], float]:
    """Map [lo, hi] to [a, b] pixels, linear or logarithmic."""
    if log:
        lo, hi = math.log10(lo), math.log10(hi)
    span = (hi - lo) or 1.0

    def f(v: float) -> float:
        v = math.log10(max(v, 1e-300)) if log else v
        return a + (v - lo) / span * (b - a)
    return f


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
        for steps in ((1.0,), (1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)):
            ticks = [m * 10.0 ** e for e in decades for m in steps if lo <= m * 10.0 ** e <= hi]
            if len(ticks) >= 3:
                return ticks
        return ticks or [lo, hi]
    step = 10 ** math.floor(math.log10((hi - lo) or 1.0))
    while (hi - lo) / step > 6:
        step *= 2
    while (hi - lo) / step < 3:
        step /= 2
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _bounds(values: list[float], log: bool) -> tuple[float, float]:
    values = [v for v in values if v > 0] if log else values
    if not values:
        return (1.0, 10.0) if log else (0.0, 1.0)
    lo, hi = min(values), max(values)
    if log:
        return (lo / 1.5, hi * 1.5) if lo != hi else (lo / 10, hi * 10)
    lo = min(lo, 0.0)
    return (lo, hi * 1.05 if hi > lo else lo + 1.0)


def _label(v: float) -> str:
    return si(v, "").strip() if abs(v) >= 1000 or 0 < abs(v) < 0.01 else f"{v:.3g}"


def _axes(chart: Chart, fx: Callable[[float], float], fy: Callable[[float], float] | None,
          xt: list[float], yt: list[float], bottom: float, left: float = LEFT) -> str:
    out = [f'<line class="axis" x1="{left}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}"/>']
    for t in xt:
        x = fx(t)
        out.append(f'<line class="grid" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}"/>'
                   f'<text class="tick" x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">'
                   f'{_label(t)}</text>')
    if fy is not None:
        out.append(f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}"/>')
        for t in yt:
            y = fy(t)
            out.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" '
                       f'y2="{y:.1f}"/><text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" '
                       f'text-anchor="end">{_label(t)}</text>')
        out.append(f'<text class="label" transform="translate(14 {(TOP + bottom) / 2}) '
                   f'rotate(-90)" text-anchor="middle">{escape(chart.y_label)}</text>')
    out.append(f'<text class="label" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{bottom + 36}" '
               f'text-anchor="middle">{escape(chart.x_label)}</text>')
    return "".join(out)


def _marker(shape: str, x: float, y: float, colour: str, title: str) -> str:
    t = f"<title>{escape(title)}</title>"
    if shape == "square":
        return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{colour}">{t}</rect>'
    if shape == "diamond":
        return (f'<path d="M{x:.1f} {y - 5:.1f}L{x + 5:.1f} {y:.1f}L{x:.1f} {y + 5:.1f}'
                f'L{x - 5:.1f} {y:.1f}Z" fill="{colour}">{t}</path>')
    if shape == "triangle":
        return (f'<path d="M{x:.1f} {y - 5:.1f}L{x + 5:.1f} {y + 4:.1f}L{x - 5:.1f} {y + 4:.1f}Z" '
                f'fill="{colour}">{t}</path>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}">{t}</circle>'


def _xy(chart: Chart) -> str:
    """Lines and points on x/y axes (curves, rooflines, Pareto fronts)."""
    bottom = HEIGHT - BOTTOM
    xlo, xhi = _bounds([x for s in chart.series for x in s.xs], chart.log_x)
    ylo, yhi = _bounds([y for s in chart.series for y in s.ys], chart.log_y)
    fx = _scale(xlo, xhi, LEFT, WIDTH - RIGHT, chart.log_x)
    fy = _scale(ylo, yhi, bottom, TOP, chart.log_y)
    out = [_axes(chart, fx, fy, _ticks(xlo, xhi, chart.log_x), _ticks(ylo, yhi, chart.log_y),
                 bottom)]
    for i, s in enumerate(chart.series):
        colour = _colour(s, i)
        marks = []
        if s.style == "line":
            path = " ".join(f"{fx(x):.1f},{fy(y):.1f}" for x, y in zip(s.xs, s.ys, strict=True))
            dash = ' stroke-dasharray="6 3"' if i % 2 else ""
            marks.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                         f'stroke-width="2"{dash}><title>{escape(s.name)}</title></polyline>')
        if s.name != "roof":
            shape = MARKERS[i % len(MARKERS)]
            for j, (x, y) in enumerate(zip(s.xs, s.ys, strict=True)):
                what = s.labels[j] if j < len(s.labels) else ""
                marks.append(_marker(shape, fx(x), fy(y), colour,
                                     f"{s.name} {what}: x {x:.4g}, y {y:.4g}"))
        out.append(f'<g data-series="{escape(s.name)}">{"".join(marks)}</g>')
    return "".join(out)


def _bars(chart: Chart) -> tuple[str, int]:
    """Horizontal bars, one row per category: stacked (energy), from a reference (tornado) or
    from a start (timeline)."""
    row_h = 36 if chart.kind == "stack" else 26
    left = 150 if chart.kind == "stack" else 250
    bottom = TOP + row_h * len(chart.categories)
    height = bottom + BOTTOM
    stacked = chart.kind == "stack"
    if stacked:
        totals = [sum(s.ys[i] for s in chart.series) for i in range(len(chart.categories))]
        xlo, xhi = 0.0, max(totals, default=1.0) * 1.2 or 1.0
    else:
        ends = [v for s in chart.series for v in (*s.xs, *s.ys)]
        xlo, xhi = _bounds(ends, chart.log_x)
    fx = _scale(xlo, xhi, left, WIDTH - RIGHT, chart.log_x)
    out = [_axes(chart, fx, None, _ticks(xlo, xhi, chart.log_x), [], bottom, left)]
    for r, name in enumerate(chart.categories):
        y = TOP + r * row_h + row_h / 2
        short = name if len(name) <= 38 else name[:37] + "…"
        out.append(f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{escape(short)}<title>{escape(name)}</title></text>')
    if chart.reference_x is not None:
        x = fx(chart.reference_x)
        out.append(f'<line class="reference" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}">'
                   f'<title>central {chart.reference_x:.3g}</title></line>')
    offsets = [0.0] * len(chart.categories)
    for i, s in enumerate(chart.series):
        colour, bars = _colour(s, i), []
        for j, value in enumerate(s.ys):
            r = s.rows[j] if s.rows else j
            if stacked:
                a, b, offsets[r] = offsets[r], offsets[r] + value, offsets[r] + value
            else:
                a, b = sorted((s.xs[j], value))
            x0, x1 = fx(a), fx(b)
            y = TOP + r * row_h + (4 if stacked else 6)
            what = s.labels[j] if j < len(s.labels) else ""
            bars.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 0.5):.1f}" '
                        f'height="{row_h - (8 if stacked else 12)}" fill="{colour}">'
                        f'<title>{escape(chart.categories[r])}: {escape(s.name)} {escape(what)} '
                        f'{value:.4g}</title></rect>')
        out.append(f'<g data-series="{escape(s.name)}">{"".join(bars)}</g>')
    if stacked:  # each bar's total at its end
        out += [f'<text class="tick" x="{fx(total) + 4:.1f}" y="{TOP + r * row_h + row_h / 2 + 4:.1f}">'
                f'{_label(total)}</text>' for r, total in enumerate(totals)]
    return "".join(out), height
