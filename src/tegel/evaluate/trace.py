"""Timelines of simulated runs in the Chrome trace-event format (what Perfetto and
chrome://tracing open).

A `TraceRecorder` is the simulator's tracer: it collects every busy interval — an op on a tile
region, a transfer on a network link bundle, traffic on a memory channel, a chip-to-chip link —
as a span on a (process, track) row. `chrome_trace` turns recorders into `{"traceEvents": [...]}`
with one process per chip (and one for chip-to-chip links), one thread per track, complete
events (`ph: "X"`) in microseconds carrying op names and bytes. Several recorders (prefill, then
decode) share one file, each shifted by its `offset_s` and prefixed by its `label`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tegel.atomic import write_text


@dataclass(slots=True)
class TraceRecorder:
    """Spans of one simulated run: (process, track, name, start_s, end_s, args)."""

    label: str = ""
    offset_s: float = 0.0
    spans: list[tuple[str, str, str, float, float, dict[str, Any]]] = field(default_factory=list)

    def span(self, process: str, track: str, name: str, start_s: float, end_s: float,
             args: dict[str, Any]) -> None:
        self.spans.append((process, track, name, start_s, end_s, args))

    def stretch(self, factor: float) -> None:
        """Every span's start and end times `factor`: a phase its power limit slows (the clocks
        throttle, so every step takes that much longer)."""
        self.spans = [(p, t, n, a * factor, b * factor, x) for p, t, n, a, b, x in self.spans]

    @property
    def end_s(self) -> float:
        return max((s[4] for s in self.spans), default=0.0)


def chrome_trace(recorders: list[TraceRecorder]) -> dict[str, Any]:
    """The trace-event JSON object of `recorders` (processes and tracks numbered in order of
    first appearance, so equal runs give equal files)."""
    pids: dict[str, int] = {}
    tids: dict[tuple[str, str], int] = {}
    events: list[dict[str, Any]] = []
    for rec in recorders:
        prefix = f"{rec.label}: " if rec.label else ""
        for process, track, name, start, end, args in rec.spans:
            proc = prefix + process
            if proc not in pids:
                pids[proc] = len(pids) + 1
                events.append({"ph": "M", "name": "process_name", "pid": pids[proc], "tid": 0,
                               "args": {"name": proc}})
                events.append({"ph": "M", "name": "process_sort_index", "pid": pids[proc],
                               "tid": 0, "args": {"sort_index": pids[proc]}})
            key = (proc, track)
            if key not in tids:
                tids[key] = len(tids) + 1
                events.append({"ph": "M", "name": "thread_name", "pid": pids[proc],
                               "tid": tids[key], "args": {"name": track}})
                events.append({"ph": "M", "name": "thread_sort_index", "pid": pids[proc],
                               "tid": tids[key], "args": {"sort_index": tids[key]}})
            events.append({"ph": "X", "name": name, "cat": track.split(" ", 1)[0],
                           "pid": pids[proc], "tid": tids[key],
                           "ts": (start + rec.offset_s) * 1e6, "dur": (end - start) * 1e6,
                           "args": args})
    return {"traceEvents": events, "displayTimeUnit": "ns"}


def write_chrome_trace(path: str | Path, recorders: list[TraceRecorder]) -> int:
    """Write `recorders` as a Chrome trace JSON file; returns the number of spans written."""
    data = chrome_trace(recorders)
    write_text(path, json.dumps(data, separators=(",", ":")), "--trace")  # whole, or not at all
    return sum(1 for e in data["traceEvents"] if e["ph"] == "X")
