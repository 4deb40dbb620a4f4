"""Every source in the package's data files says what kind of page it is and where it is.

A source is a mapping under a `sources` key (a map of ids or a list) or under a `source` key, in
any YAML file under `src/tegel/*/data/`. It must have a `kind` from SOURCE_KINDS (the vocabulary
in hardware/fields.py) and, unless it is an `assumption`, an http(s) URL; an `assumption` states
its rule in `note`. No URL may point at a host this project found to be a junk or mirror page.

Files whose sources do not have kinds yet are listed in PENDING, by path, with why; a pending
file that has them all must leave the list (the test fails until it does), so nothing passes
silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from tegel.hardware.fields import SOURCE_KINDS

PACKAGE = Path(__file__).parents[2] / "src" / "tegel"
DATA_FILES = sorted(p for p in PACKAGE.glob("*/data/**/*.yaml"))

# Files whose sources do not all have kinds yet, path relative to src/tegel -> why. Empty since
# issue 13 gave every source its kind; a file that loses one must be listed here with the reason.
PENDING: dict[str, str] = {}

# Hosts of pages that did not state the figure they were cited for (spam mirrors, search-engine
# summaries, copies of a vendor's table), replaced in issue 13; none may come back.
JUNK_HOSTS = ("thelolafoundation.org", "terrabellainc.com", "datasetsearch.research.google.com",
              "eightforums.com", "cheapdeveloper.com", "partofstyle.com",
              "archive-lib.hpctech.co.jp", "vineethac.blogspot.com", "kylolab.com",
              # replaced in issue 13's source review (AMD, Intel, dataflow presets)
              "sgpjbg.com", "yobitel.com", "awesomeagents.ai", "newsy-today.com",
              "unanswered.io", "wiaix.com", "world-today-news.com",
              "boston-uk-l.azurewebsites.net", "y-ic.de",
              # ... and in the economics, technology and GPU-power data
              "legitlads.com", "profitableventure.com", "cortexconstruct.com", "szyunze.com",
              "cloudnews.tech", "siliconanalysts.com", "lyceum.technology", "technewsspace.com",
              "diomgis.com", "prophetstor.com",
              # ... and in the NVIDIA presets
              "aiwiki.ai", "grokipedia.com", "aiminingco.com", "cputronic.com", "manuals.plus",
              "reach.dog", "mullet.se", "itcreations.com", "setloop.io", "zdszero.github.io",
              "kshirol-dev.github.io")


def _sources(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(location, mapping) of every source in a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            if key == "sources" and isinstance(value, dict):
                for sid, entry in value.items():
                    if isinstance(entry, dict):
                        yield f"{here}.{sid}", entry
            elif key == "sources" and isinstance(value, list):
                for i, entry in enumerate(value):
                    if isinstance(entry, dict):
                        yield f"{here}[{i}]", entry
            elif key == "source" and isinstance(value, dict):
                yield here, value
            else:
                yield from _sources(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _sources(item, f"{where}[{i}]")


def _problems(entry: dict[str, Any]) -> list[str]:
    kind = entry.get("kind")
    if kind not in SOURCE_KINDS:
        return [f"kind {kind!r} is not one of {', '.join(SOURCE_KINDS)}"]
    url = str(entry.get("url") or "")
    if kind == "assumption":
        return [] if str(entry.get("note") or "").strip() else ["an assumption needs its rule in "
                                                                 "`note`"]
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return [f"url {url!r} is not an http(s) address"]
    host = parsed.netloc.lower()
    if any(host == junk or host.endswith("." + junk) for junk in JUNK_HOSTS):
        return [f"url {url} is a known junk or mirror page"]
    return []


def _relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


@pytest.mark.parametrize("path", DATA_FILES, ids=_relative)
def test_every_source_has_a_known_kind_and_an_address(path: Path) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = list(_sources(doc))
    if _relative(path) in PENDING:
        missing = [where for where, e in entries if "kind" not in e]
        assert missing, (f"{_relative(path)}: every source has a kind now; remove it from "
                         f"PENDING in {Path(__file__).name}")
        entries = [(where, e) for where, e in entries if "kind" in e]
    bad = [f"{where}: {p}" for where, e in entries for p in _problems(e)]
    assert not bad, f"{_relative(path)}:\n" + "\n".join(bad)


def test_the_scan_finds_the_sources() -> None:
    """The walker sees the three shapes sources take (maps of ids, lists, inline `source`)."""
    doc = {"sources": {"a": {"title": "t"}}, "entries": [{"source": {"title": "u"}},
                                                         {"x": {"sources": [{"title": "v"}]}}]}
    assert [w for w, _ in _sources(doc)] == ["sources.a", "entries[0].source",
                                             "entries[1].x.sources[0]"]
    assert _problems({"kind": "assumption", "note": "rule"}) == []
    assert _problems({"kind": "press", "url": "http://thelolafoundation.org/x"})
    assert _problems({"kind": "rumour", "url": "https://a.b"})
    assert len(DATA_FILES) >= 10


def test_pending_files_exist() -> None:
    for rel in PENDING:
        assert (PACKAGE / rel).is_file(), f"PENDING names {rel}, which is not a data file"
