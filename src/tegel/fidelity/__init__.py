"""Fidelity: published measurements as scenarios, predicted vs measured, and calibration."""

from tegel.fidelity.cases import Case, Unmapped, load_entries, to_case
from tegel.fidelity.validate import Report, Row, validate

__all__ = ["Case", "Report", "Row", "Unmapped", "load_entries", "to_case", "validate"]
