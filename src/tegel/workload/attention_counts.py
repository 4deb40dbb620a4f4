"""Closed-form counts of what attention reads and computes: the (query, key) pairs a causal,
windowed or chunked attention scores, the key rows it reads, and the share of a KV cache that
beams sharing a prompt read. `ops` prices attention and latent attention from these."""

from __future__ import annotations


def attended_pairs(lq: int, lk: int, causal: bool, window: int | None,
                   chunk: int | None = None) -> int:
    """Number of (query, key) pairs that attention scores, per batch row and head."""
    if chunk is not None:  # causal by construction (the IR refuses chunked non-causal attention)
        return _chunked_pairs(lk, window, chunk) - _chunked_pairs(lk - lq, window, chunk)
    if not causal:  # the window still hides keys more than `window` behind the query
        if window is None:
            return lq * lk
        lo, hi = max(lk - lq, window - 1), lk - 1
        hidden = (lo - window + 1 + hi - window + 1) * (hi - lo + 1) // 2 if lo <= hi else 0
        return lq * lk - hidden
    first, last = lk - lq + 1, lk  # visible keys of the first and last query, unwindowed
    if window is None or window >= last:
        return (first + last) * lq // 2
    # queries seeing fewer than `window` keys, then the rest seeing exactly `window`
    short_last = min(window - 1, last)
    short = max(0, short_last - first + 1)
    short_sum = (first + short_last) * short // 2 if short else 0
    return short_sum + (lq - short) * window


def _chunked_pairs(n: int, window: int | None, chunk: int) -> int:
    """Keys seen by the queries at positions 0..n-1 under causal chunked attention: position p
    sees min(p % chunk + 1, window) keys, so each whole chunk contributes the same sum."""

    def first(m: int) -> int:  # sum over j = 1..m of min(j, window)
        if window is None or m <= window:
            return m * (m + 1) // 2
        return window * (window + 1) // 2 + (m - window) * window

    return n // chunk * first(chunk) + first(n % chunk)


def attended_key_rows(lq: int, lk: int, window: int | None, chunk: int | None = None) -> int:
    """Distinct key (and value) rows the last `lq` queries over `lk` keys can see: keys before
    the first query's window or the first query's chunk are never read."""
    first_query = lk - lq
    start = 0
    if window is not None:
        start = max(start, first_query - window + 1)
    if chunk is not None:
        start = max(start, first_query // chunk * chunk)
    return lk - start


def shared_prefix_fraction(kv_group: int, kv_shared: int, lk: int) -> float:
    """Share of a KV cache of `lk` positions read when groups of `kv_group` batch rows (the
    beams of one request) hold their first `kv_shared` positions once: those are read once
    per group."""
    if kv_group <= 1 or not lk:
        return 1.0
    return 1.0 - min(kv_shared, lk) / lk * (1.0 - 1.0 / kv_group)
