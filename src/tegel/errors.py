"""The one exception type users see: a message that names the file, field and what was expected."""

from __future__ import annotations

import reprlib


class TegelError(Exception):
    """Bad input or an impossible request. The CLI prints its message on one line, no traceback."""



class _Short(reprlib.Repr):
    """reprlib that also cuts dict/list subclasses (a YAML mapping) and huge integers."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple, self.maxset = 3, 4, 4, 4, 4
        self.maxstring, self.maxlong, self.maxother = 60, 40, 60

    def repr1(self, x: object, level: int) -> str:
        if isinstance(x, bool) or x is None:
            return repr(x)
        if isinstance(x, int):
            if x.bit_length() > 128:
                return f"{'-' if x < 0 else ''}<an integer of about {int(x.bit_length() * 0.30103)} digits>"
            return repr(int(x))
        if isinstance(x, dict) and type(x) is not dict:
            return self.repr_dict(x, level)
        if isinstance(x, list) and type(x) is not list:
            return self.repr_list(x, level)
        return super().repr1(x, level)


_REPR = _Short()


def short(value: object, limit: int = 80) -> str:
    """`repr(value)` cut to about `limit` characters (reprlib: a few items per level, long text and
    huge numbers elided), for echoing user input in an error message without building a huge
    string."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
