"""How every fidelity group scores a prediction: its relative error, and the mean of their
magnitudes (MAPE, percent)."""

from __future__ import annotations

from collections.abc import Iterable


def relative_error(predicted: float, measured: float) -> float:
    """(predicted - measured) / measured."""
    return (predicted - measured) / measured


def mape_percent(errors: Iterable[float]) -> float | None:
    """Mean |error| in percent of relative errors; None when there are none."""
    magnitudes = [abs(e) for e in errors]
    return 100.0 * sum(magnitudes) / len(magnitudes) if magnitudes else None
