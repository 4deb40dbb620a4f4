"""What a serving simulation is fed: requests with arrival times and lengths.

A `Workload` keeps its requests as parallel NumPy arrays (a million requests stay cheap), in
arrival order. Open loop: each request arrives at `arrival_s`. Closed loop (`concurrency` set),
as benchmark clients do: at most `concurrency` requests are outstanding; the next one is sent
when one completes (or at its `arrival_s`, whichever is later — zeros send it at once).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tegel.errors import TegelError


@dataclass(frozen=True, slots=True)
class Request:
    """One request: when it arrives (s), its prompt and how many tokens it generates."""

    id: int
    arrival_s: float
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, eq=False)
class Workload:
    """Requests as arrays (sorted by arrival), a closed-loop concurrency or None (open loop),
    and a one-line description for reports."""

    arrival_s: np.ndarray  # float64, non-decreasing
    input_tokens: np.ndarray  # int64, >= 1
    output_tokens: np.ndarray  # int64, >= 1
    concurrency: int | None = None
    description: str = ""
    # what made it (for JSON output): e.g. {"arrivals": "poisson", "rate_per_s": 20, "seed": 0}
    spec: dict[str, object] = field(default_factory=dict)
    # shared prompt prefixes (prefix caching): request i's first prefix_tokens[i] prompt tokens
    # are those of every request with the same prefix_id[i] (-1: none); None: no sharing
    prefix_id: np.ndarray | None = None  # int64
    prefix_tokens: np.ndarray | None = None  # int64, 0 where prefix_id is -1

    def __post_init__(self) -> None:
        n = len(self.arrival_s)
        if (self.prefix_id is None) != (self.prefix_tokens is None):
            raise TegelError("workload: prefix_id and prefix_tokens come together")
        if self.prefix_id is not None and self.prefix_tokens is not None:
            if len(self.prefix_id) != n or len(self.prefix_tokens) != n:
                raise TegelError("workload: prefix_id and prefix_tokens differ in length from "
                                 "the requests")
            if np.any(self.prefix_tokens < 0) or np.any(self.prefix_tokens > self.input_tokens):
                raise TegelError("workload: prefix_tokens must be >= 0 and <= input_tokens")
        if len(self.input_tokens) != n or len(self.output_tokens) != n:
            raise TegelError("workload: arrival, input and output arrays differ in length")
        if n == 0:
            raise TegelError("workload: no requests")
        if np.any(self.input_tokens < 1) or np.any(self.output_tokens < 1):
            raise TegelError("workload: every request needs >= 1 input and >= 1 output token")
        if np.any(np.diff(self.arrival_s) < 0) or not np.all(np.isfinite(self.arrival_s)):
            raise TegelError("workload: arrival times must be finite and non-decreasing")
        if self.concurrency is not None and self.concurrency < 1:
            raise TegelError(f"workload: concurrency must be >= 1, got {self.concurrency}")

    def __len__(self) -> int:
        return len(self.arrival_s)

    def with_shared_prefix(self, tokens: int, prefixes: int = 1) -> Workload:
        """This workload with request i's first `tokens` prompt tokens (at most its prompt)
        shared by every request of prefix i % `prefixes` (a system prompt, a few-shot preamble)."""
        for name, value in (("shared_prefix_tokens", tokens), ("shared_prefixes", prefixes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TegelError(f"{name}: expected a positive integer, got {value!r}")
        ids = np.arange(len(self), dtype=np.int64) % prefixes
        spec = {**self.spec, "shared_prefix_tokens": tokens, "shared_prefixes": prefixes}
        return Workload(self.arrival_s, self.input_tokens, self.output_tokens, self.concurrency,
                        f"{self.description}, {prefixes} shared prefix(es) of {tokens} tokens",
                        spec, ids, np.minimum(self.input_tokens, tokens).astype(np.int64))

    def request(self, i: int) -> Request:
        return Request(i, float(self.arrival_s[i]), int(self.input_tokens[i]),
                       int(self.output_tokens[i]))

    @classmethod
    def of(cls, requests: list[Request], concurrency: int | None = None,
           description: str = "") -> Workload:
        """A workload from Request objects (sorted by arrival, ties by id)."""
        rs = sorted(requests, key=lambda r: (r.arrival_s, r.id))
        return cls(np.array([r.arrival_s for r in rs], dtype=np.float64),
                   np.array([r.input_tokens for r in rs], dtype=np.int64),
                   np.array([r.output_tokens for r in rs], dtype=np.int64),
                   concurrency, description)
