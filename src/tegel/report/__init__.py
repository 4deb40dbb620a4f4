"""Presentation: terminal tables and number formatting (HTML, plots and traces come later)."""
