"""Prefix caching: the KV blocks of a shared prompt prefix, kept once per replica.

As vLLM's automatic prefix caching and SGLang's RadixAttention do, full blocks of a prompt's
prefix are kept once and reference-counted: a request whose prefix is cached takes a reference
to its blocks and prefills only the rest of its prompt (its attention still reads the cached
prefix). Only full blocks are shared, and at least one prompt token is always prefilled (the
last one yields the first output token), so a request shares at most (prompt - 1) // block
tokens worth of whole blocks. An entry is written by the first request of its prefix that is
admitted (it prefills the prefix itself) and serves others once that prefill is done; requests
admitted before then prefill their whole prompt in private blocks. Entries no request references
stay cached and are evicted least recently used when blocks are needed.

The cache is keyed by prefix id: the workload says which requests share how many leading tokens.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class Entry:
    """A cached prefix: its blocks, the requests referencing it, and whether it is written."""

    blocks: int
    refs: int
    ready: bool
    writer: int  # the request prefilling it


class PrefixCache:
    """Cached prefixes of one replica (module doc). Holds block counts, not the free pool: the
    replica takes blocks for a new entry and gets back those of an evicted or dropped one."""

    def __init__(self) -> None:
        self.entries: dict[int, Entry] = {}
        self.idle: OrderedDict[int, None] = OrderedDict()  # unreferenced entries, LRU first
        self.idle_blocks = 0  # blocks of unreferenced entries (evictable)
        self.held: dict[int, int] = {}  # request -> prefix id it references

    def lookup(self, prefix: int) -> Entry | None:
        return self.entries.get(prefix)

    def acquire(self, r: int, prefix: int) -> int:
        """Reference an existing, written entry; its blocks."""
        e = self.entries[prefix]
        if e.refs == 0:
            del self.idle[prefix]
            self.idle_blocks -= e.blocks
        e.refs += 1
        self.held[r] = prefix
        return e.blocks

    def create(self, r: int, prefix: int, blocks: int) -> None:
        """A new entry of `blocks` blocks (already taken by the replica), written by `r`."""
        self.entries[prefix] = Entry(blocks, 1, False, r)
        self.held[r] = prefix

    def written(self, r: int) -> None:
        """`r`'s prefill finished: the entry it was writing now serves other requests."""
        prefix = self.held.get(r)
        if prefix is not None and self.entries[prefix].writer == r:
            self.entries[prefix].ready = True

    def release(self, r: int) -> int:
        """Drop `r`'s reference; blocks freed (an entry its writer leaves unwritten is dropped)."""
        prefix = self.held.pop(r, None)
        if prefix is None:
            return 0
        e = self.entries[prefix]
        e.refs -= 1
        if not e.ready and e.writer == r:
            del self.entries[prefix]  # nobody else references an unwritten entry
            return e.blocks
        if e.refs == 0:
            self.idle[prefix] = None
            self.idle_blocks += e.blocks
        return 0

    def evict(self) -> int:
        """Evict the least recently used unreferenced entry; blocks freed (0 if none)."""
        if not self.idle:
            return 0
        prefix, _ = self.idle.popitem(last=False)
        blocks = self.entries.pop(prefix).blocks
        self.idle_blocks -= blocks
        return blocks
