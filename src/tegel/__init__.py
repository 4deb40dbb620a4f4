"""tegel: an open, executable model of AI-native inference hardware and the toolkit to design it."""

from __future__ import annotations

__version__ = "0.1.0"
