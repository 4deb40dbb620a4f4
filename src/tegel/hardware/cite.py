"""Citations: every figure from the outside world names its source or says it is an assumption.

`check_citations` validates the `cite` maps of a loaded document (known source ids or labelled
`assumption:`/`derived:` texts); `uncited_figures` lists the numbers in a raw YAML document that
no `cite` entry covers — presets must have none.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from tegel.errors import TegelError
from tegel.hardware.fields import Cited, Source, citation_problem
from tegel.hardware.yamlio import LineDict, LineList, locate

Loc = tuple[int | str, ...]


def _cited_sections(
    model: BaseModel, loc: Loc, skip: frozenset[str]
) -> Iterator[tuple[Loc, Cited]]:
    if isinstance(model, Cited):
        yield loc, model
    for name in type(model).model_fields:
        if name in skip:
            continue
        value = getattr(model, name)
        items: list[tuple[int | str, Any]]
        if isinstance(value, BaseModel):
            yield from _cited_sections(value, (*loc, name), skip)
            continue
        if isinstance(value, tuple):
            items = list(enumerate(value))
        elif isinstance(value, dict):
            items = list(value.items())
        else:
            continue
        for key, item in items:
            if isinstance(item, BaseModel):
                yield from _cited_sections(item, (*loc, name, key), skip)


def check_citations(
    model: BaseModel,
    raw: Any,
    source_name: str,
    sources: dict[str, Source],
    skip: frozenset[str] = frozenset(),
) -> None:
    """Raise TegelError (file:line) for the first cite value naming no known source or label."""
    for loc, section in _cited_sections(model, (), skip):
        for key, text in section.cite.items():
            problem = section.cite_key_problem(key) or citation_problem(text, sources)
            if problem:
                line = locate(raw, (*loc, "cite", key))
                where = ".".join(str(p) for p in (*loc, "cite", key))
                raise TegelError(f"{source_name}:{line}: {where}: {problem}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def uncited_figures(raw: Any, loc: Loc = ()) -> list[tuple[Loc, int]]:
    """(location, line) of every number in `raw` that no `cite` entry covers.

    A number is covered by its section's `cite[field]` or `cite["*"]`; an entry of a map of
    numbers (`peak_ops_per_cycle.bf16`) also by `cite["field.key"]`; `cite[field]` on a nested
    section covers all of it. Otherwise nested sections cite their own figures; `sources` and
    `cite` themselves hold no figures.
    """
    found: list[tuple[Loc, int]] = []
    if isinstance(raw, LineList):
        for i, item in enumerate(raw):
            found += uncited_figures(item, (*loc, i))
        return found
    if not isinstance(raw, LineDict):
        return found
    cite = raw.get("cite") or {}
    covered = isinstance(cite, dict) and "*" in cite
    for key, value in raw.items():
        if key in ("cite", "sources"):
            continue
        here = (*loc, key)
        if key in cite and not _is_number(value):
            continue  # cite[field] vouches for the whole subtree under field
        if _is_number(value):
            if not (covered or key in cite):
                found.append((here, raw.key_lines[key]))
        elif isinstance(value, LineDict) and value and all(_is_number(v) for v in value.values()):
            for sub in value:
                if not (covered or key in cite or f"{key}.{sub}" in cite):
                    found.append(((*here, sub), value.key_lines[sub]))
        else:
            found += uncited_figures(value, here)
    return found


def require_cited(raw: Any, source_name: str) -> None:
    """Raise TegelError for the first uncited figure of a preset file."""
    missing = uncited_figures(raw)
    if missing:
        loc, line = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise TegelError(
            f"{source_name}:{line}: {'.'.join(map(str, loc))}: figure has no source; add it to "
            f"the section's cite map (a source id, or 'assumption: why'){more}"
        )
