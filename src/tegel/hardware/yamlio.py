"""YAML in, one-line errors out: a loader that remembers line numbers and rejects duplicate keys.

Every mapping the loader builds is a `LineDict` (a dict that knows the line of each key) and every
sequence a `LineList`; `locate` walks a pydantic error location back to the line it came from, and
`format_validation_error` turns a pydantic `ValidationError` into
``FILE:LINE: field: expected ...``. YAML's ``1e9`` (no dot) is read as a float, as a reader
expects, not as the string YAML 1.1 makes of it.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tegel.errors import TegelError


class LineDict(dict[str, Any]):
    """A mapping read from YAML: `line` is where it starts, `key_lines[key]` where each key is."""

    line: int = 0
    key_lines: dict[str, int]


class LineList(list[Any]):
    """A sequence read from YAML: `line` is where it starts, `item_lines[i]` where each item is."""

    line: int = 0
    item_lines: list[int]


_FLOAT_WITHOUT_DOT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records lines, refuses duplicate keys and reads `1e9` as a number."""

    source_name = "<yaml>"

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LineDict:  # type: ignore[override]
        result = LineDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise TegelError(f"{self.source_name}:{line}: keys must be text, got {key!r}")
            if key in result:
                first = result.key_lines[key]
                raise TegelError(
                    f"{self.source_name}:{line}: duplicate key {key!r} (first at line {first})"
                )
            result[key] = self.construct_object(value_node, deep=True)
            result.key_lines[key] = line
        return result

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> LineList:
        result = LineList(self.construct_object(child, deep=True) for child in node.value)
        result.line = node.start_mark.line + 1
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        return result


_LineLoader.add_constructor("tag:yaml.org,2002:map", _LineLoader.construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _LineLoader.construct_sequence)
_LineLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", _FLOAT_WITHOUT_DOT, list("-+0123456789")
)


def read_yaml(path: Path) -> LineDict:
    """The top-level mapping of a YAML file, with line numbers; TegelError names file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise TegelError(f"{path}: cannot read: {err.strerror}") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str) -> LineDict:
    """The top-level mapping of YAML `text` with line numbers; errors name `source` and line."""
    loader = _LineLoader(text)
    loader.source_name = source
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        problem = err.problem_mark.line + 1 if err.problem_mark is not None else 0
        if err.context_mark is not None and err.context:
            line = err.context_mark.line + 1
            what = f"{err.context}: {err.problem} (line {problem})"
        else:
            line, what = problem, str(err.problem)
        raise TegelError(f"{source}:{line}: not valid YAML: {what}") from None
    finally:
        loader.dispose()
    if not isinstance(data, LineDict):
        raise TegelError(f"{source}:1: expected a mapping of fields at the top level")
    return data


def is_tag(part: int | str) -> bool:
    """Whether a pydantic location element is a tag it adds (`Chip`, `function-after[...]`)."""
    return isinstance(part, str) and ("[" in part or part[:1].isupper() or part in _TYPE_TAGS)


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "tuple", "none"})


def locate(raw: Any, loc: Sequence[int | str]) -> int:
    """The line of the deepest element of `loc` that exists in the raw YAML data (0 if none)."""
    line = getattr(raw, "line", 0)
    node = raw
    for part in loc:
        if isinstance(node, LineDict) and isinstance(part, str) and part in node:
            line = node.key_lines[part]
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        elif isinstance(part, str) and (is_tag(part) or not isinstance(node, LineDict | LineList)):
            continue  # a tag pydantic adds (union member, validator name): not in the data
        else:
            break
    return line


# Unit implied by a field-name suffix; longest first so `_pj_per_bit_per_mm` wins over `_mm`.
_UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_bytes_per_s", "bytes/s"),
    ("_pj_per_bit_per_hop", "pJ/bit/hop"),
    ("_pj_per_bit_per_mm", "pJ/bit/mm"),
    ("_pj_per_bit", "pJ/bit"),
    ("_pj_per_op", "pJ/op"),
    ("pj_per_op", "pJ/op"),
    ("_per_cycle", "per cycle"),
    ("_bytes", "bytes"),
    ("_hz", "Hz"),
    ("_mm2", "mm^2"),
    ("_mm", "mm"),
    ("_w", "W"),
    ("_s", "s"),
    ("_usd", "USD"),
)


def unit_of(loc: Sequence[int | str]) -> str | None:
    """The unit a field's name promises (the field may be a map entry, e.g. `pj_per_op.bf16`)."""
    for part in reversed([p for p in loc if isinstance(p, str)][-2:]):
        for suffix, unit in _UNIT_SUFFIXES:
            if part.endswith(suffix):
                return unit
    return None


def _unwrap(annotation: Any) -> list[Any]:
    """The member types of an Optional/Union/Annotated annotation."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for arg in typing.get_args(annotation) for m in _unwrap(arg)]
    return [annotation]


def _model_at(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The pydantic model class that the location `loc` (inside `model`) points into."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            if not isinstance(part, str) or part not in current.model_fields:
                continue
            current = current.model_fields[part].annotation
        candidates = _unwrap(current)
        nxt = None
        for cand in candidates:
            origin = typing.get_origin(cand)
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                nxt = cand
            elif origin in (tuple, list) and isinstance(part, int):
                nxt = typing.get_args(cand)[0]
            elif origin is dict and isinstance(part, str):
                nxt = typing.get_args(cand)[1]
            if nxt is not None:
                break
        current = nxt if nxt is not None else current
    found = [c for c in _unwrap(current) if isinstance(c, type) and issubclass(c, BaseModel)]
    return found[0] if found else None


def describe_error(err: dict[str, Any], model: type[BaseModel]) -> str:
    """One pydantic error as `field: what was expected, got what`."""
    loc = [p for p in err["loc"] if not is_tag(p)]
    field = ".".join(str(p) for p in loc) or "(top level)"
    kind = err["type"]
    got = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        owner = _model_at(model, loc[:-1])
        allowed = sorted(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return (f"{field}: unknown field {loc[-1]!r}; {hint}expected one of: "
                f"{', '.join(allowed) or 'see the schema'}")
    if kind == "missing":
        return f"{field}: missing required field"
    if kind in ("float_type", "float_parsing", "int_type", "int_parsing", "int_from_float"):
        unit = unit_of(loc)
        what = "an integer" if kind.startswith("int") else "a number"
        expected = f"{what} in {unit}" if unit else what
        hint = " (SI units; the unit is in the field name)" if isinstance(got, str) else ""
        return f"{field}: expected {expected}{hint}, got {got!r}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        sign = {
            "greater_than": ">",
            "greater_than_equal": ">=",
            "less_than": "<",
            "less_than_equal": "<=",
        }[kind]
        bound = next(iter(ctx.values()), "?")
        bound = f"{bound:g}" if isinstance(bound, int | float) else bound
        unit = unit_of(loc)
        return f"{field}: expected a value {sign} {bound}{' ' + unit if unit else ''}, got {got!r}"
    if kind == "literal_error":
        return f"{field}: expected one of {ctx.get('expected')}, got {got!r}"
    if kind in ("model_type", "dict_type"):
        return f"{field}: expected a mapping of fields, got {got!r}"
    message = str(err.get("msg", kind)).removeprefix("Value error, ")
    return f"{field}: {message}"


def format_validation_error(
    error: ValidationError,
    raw: Any,
    source: str,
    model: type[BaseModel],
    prefix: Sequence[int | str] = (),
) -> str:
    """A pydantic error as one line: `FILE:LINE: field: expected ...` (+ how many more)."""
    errors = error.errors()
    first = errors[0]
    line = locate(raw, [*prefix, *first["loc"]])
    more = (
        f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
        if len(errors) > 1
        else ""
    )
    return f"{source}:{line}: {describe_error(dict(first), model)}{more}"
