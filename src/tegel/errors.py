"""The one exception type users see: a message that names the file, field and what was expected."""

from __future__ import annotations


class TegelError(Exception):
    """Bad input or an impossible request. The CLI prints its message on one line, no traceback."""
