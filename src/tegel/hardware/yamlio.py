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

from tegel.errors import TegelError, short


class LineDict(dict[str, Any]):
    """A mapping read from YAML: `line` is where it starts, `key_lines[key]` where each key is."""

    line: int = 0
    key_lines: dict[str, int]


class LineList(list[Any]):
    """A sequence read from YAML: `line` is where it starts, `item_lines[i]` where each item is."""

    line: int = 0
    item_lines: list[int]


MAX_DEPTH = 50  # levels of nesting a YAML document may have (hardware files use about 6)
MAX_NODES = 100_000  # values a document may hold once its aliases are expanded

_FLOAT_WITHOUT_DOT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records lines, refuses duplicate keys and reads `1e9` as a number."""

    source_name = "<yaml>"
    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Compose as usual, refusing nesting deeper than MAX_DEPTH (a TegelError, not a
        RecursionError)."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1
                raise TegelError(
                    f"{self.source_name}:{line}: nested more than {MAX_DEPTH} levels deep; "
                    "a hardware file needs a few")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LineDict:  # type: ignore[override]
        result = LineDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise TegelError(f"{self.source_name}:{line}: keys must be text, got {short(key)}")
            if key in result:
                first = result.key_lines[key]
                raise TegelError(
                    f"{self.source_name}:{line}: duplicate key {short(key)} (first at line {first})"
                )
            result[key] = self.construct_object(value_node, deep=True)
            result.key_lines[key] = line
        return result

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # past Python's 4,300-digit limit on reading an integer
            raise TegelError(
                f"{self.source_name}:{node.start_mark.line + 1}: expected a number, got an "
                f"integer of {len(node.value)} characters") from None

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> LineList:
        result = LineList(self.construct_object(child, deep=True) for child in node.value)
        result.line = node.start_mark.line + 1
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        return result


_LineLoader.add_constructor("tag:yaml.org,2002:map", _LineLoader.construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _LineLoader.construct_sequence)
_LineLoader.add_constructor("tag:yaml.org,2002:int", _LineLoader.construct_yaml_int)
_LineLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", _FLOAT_WITHOUT_DOT, list("-+0123456789")
)


def read_yaml(path: Path) -> LineDict:
    """The top-level mapping of a YAML file, with line numbers; TegelError names file and line."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise TegelError(f"{path}: cannot read: {err.strerror}") from None
    return parse_yaml(decode(data, str(path)), str(path))


def decode(data: bytes, source: str) -> str:
    """`data` as UTF-8 text; TegelError names the line of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise TegelError(
            f"{source}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})"
        ) from None


def _expanded_size(node: yaml.Node, source: str) -> None:
    """Raise TegelError if the document, its aliases expanded, holds more than MAX_NODES values
    (an alias bomb: a few hundred bytes that expand to 10^9 items)."""
    sizes: dict[int, int] = {}
    order: list[yaml.Node] = []
    stack = [node]
    while stack:  # post-order without recursion; shared (aliased) nodes are sized once
        current = stack.pop()
        if id(current) in sizes:
            continue
        sizes[id(current)] = -1
        order.append(current)
        if isinstance(current, yaml.MappingNode):
            stack.extend(n for pair in current.value for n in pair)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    for current in reversed(order):
        size = 1
        if isinstance(current, yaml.MappingNode):
            size += sum(sizes[id(n)] for pair in current.value for n in pair)
        elif isinstance(current, yaml.SequenceNode):
            size += sum(sizes[id(n)] for n in current.value)
        sizes[id(current)] = min(size, MAX_NODES + 1)
    if sizes[id(node)] <= MAX_NODES:
        return
    path: list[str] = []  # descend to the field whose value explodes, to name it
    line = node.start_mark.line + 1
    while True:
        children: list[tuple[str, yaml.Node, int]] = []
        if isinstance(node, yaml.MappingNode):
            children = [(str(k.value) if isinstance(k, yaml.ScalarNode) else "?", v,
                         k.start_mark.line + 1) for k, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            children = [(str(i), v, v.start_mark.line + 1) for i, v in enumerate(node.value)]
        big = next((c for c in children if sizes[id(c[1])] > MAX_NODES), None)
        if big is None:
            break
        path.append(big[0])
        node, line = big[1], big[2]
    field = _cut(".".join(path), 120) or "(top level)"
    raise TegelError(
        f"{source}:{line}: {field}: expands (through YAML aliases) to more than {MAX_NODES:,} "
        "values; a hardware file needs a few hundred")


def parse_yaml(text: str, source: str) -> LineDict:
    """The top-level mapping of YAML `text` with line numbers; errors name `source` and line."""
    try:
        loader = _LineLoader(text)
    except yaml.reader.ReaderError as err:  # a character YAML does not allow (checked at once)
        line = text.count("\n", 0, err.position) + 1
        code = err.character if isinstance(err.character, int) else ord(err.character or "?")
        raise TegelError(
            f"{source}:{line}: not valid YAML: character U+{code:04X} is not allowed") from None
    loader.source_name = source
    try:
        node = loader.get_single_node()
        if node is None:
            raise TegelError(f"{source}:1: expected a mapping of fields at the top level")
        _expanded_size(node, source)
        data = loader.construct_document(node)
    except RecursionError:
        raise TegelError(f"{source}: nested too deeply") from None
    except yaml.MarkedYAMLError as err:
        problem = err.problem_mark.line + 1 if err.problem_mark is not None else 0
        if err.context_mark is not None and err.context:
            line = err.context_mark.line + 1
            what = f"{err.context}: {err.problem} (line {problem})"
        else:
            line, what = problem, str(err.problem)
        raise TegelError(f"{source}:{line}: not valid YAML: {_cut(what, 200)}") from None
    except yaml.YAMLError as err:  # a reader error: a character YAML does not allow
        what = " ".join(str(err).split())
        raise TegelError(f"{source}: not valid YAML: {_cut(what, 200)}") from None
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
    full = list(err["loc"])
    if err["type"] == "extra_forbidden" and full:  # the last element is the user's key, whatever
        loc = [p for p in full[:-1] if not is_tag(p)] + [full[-1]]  # its case
    else:
        loc = [p for p in full if not is_tag(p)]
    field = _cut(".".join(str(p) for p in loc), 120) or "(top level)"
    kind = err["type"]
    got = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        owner = _model_at(model, loc[:-1])
        allowed = sorted(owner.model_fields) if owner else []
        key = str(loc[-1])
        close = difflib.get_close_matches(key[:100], [a for a in allowed if a != key], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return (f"{field}: unknown field {short(key)}; {hint}expected one of: "
                f"{', '.join(allowed) or 'see the schema'}")
    if kind == "missing":
        return f"{field}: missing required field"
    if kind in ("float_type", "float_parsing", "int_type", "int_parsing", "int_from_float",
                "finite_number"):
        unit = unit_of(loc)
        what = "an integer" if kind.startswith("int") else "a number"
        if kind == "finite_number" or (kind.startswith("float") and isinstance(got, int | float)
                                       and not isinstance(got, bool)):
            what = "a finite number"  # inf, nan, or an integer too large for a float
        expected = f"{what} in {unit}" if unit else what
        hint = " (SI units; the unit is in the field name)" if isinstance(got, str) else ""
        return f"{field}: expected {expected}{hint}, got {short(got)}"
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
        return f"{field}: expected a value {sign} {bound}{' ' + unit if unit else ''}, got {short(got)}"
    if kind == "literal_error":
        return f"{field}: expected one of {ctx.get('expected')}, got {short(got)}"
    if kind in ("model_type", "dict_type"):
        return f"{field}: expected a mapping of fields, got {short(got)}"
    message = str(err.get("msg", kind)).removeprefix("Value error, ")
    if kind != "value_error" and "input" in err and "got" not in message:
        message += f", got {short(got)}"
    return f"{field}: {_cut(message, 300)}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
