"""Request traces replayed as a `Workload`: CSV or JSON Lines, read as published.

The format is told by the file: JSON Lines when its first non-blank character is `{`, else CSV
with a header row. Four layouts (header names and keys are matched without regard to case):

    tegel CSV     arrival_s,input_tokens,output_tokens          (or timestamp instead of arrival_s)
    tegel JSONL   {"arrival_s": 0.5, "input_tokens": 812, "output_tokens": 120}   (or timestamp)
    Azure CSV     TIMESTAMP,ContextTokens,GeneratedTokens       the public Azure LLM inference
                  traces 2023/2024; TIMESTAMP is a date-time such as 2023-11-16 18:15:46.6805900
                  (any number of fraction digits up to 9; an optional Z or +HH:MM offset)
    Mooncake      {"timestamp": 27482, "input_length": 6955, "output_length": 52, "hash_ids": [...]}
                  JSONL with the timestamp in MILLISECONDS

The tegel layouts may add two columns (keys) together, `prefix_id,prefix_tokens`: requests of
one prefix_id (a whole number >= 0; -1 or an empty field: none) share their first prefix_tokens
prompt tokens (0 <= prefix_tokens <= input_tokens), which the serving simulator's prefix cache
keeps once per replica.

`arrival_s` is taken as written (seconds from the start of the run, >= 0). A `timestamp` is a
clock reading (seconds in tegel files, milliseconds in Mooncake's, a date-time in Azure's): the
trace is shifted so that its earliest request arrives at t = 0. Other columns and keys (such as
`hash_ids`) are ignored. Rows out of arrival order are sorted (stably: ties keep file order).
Blank lines are skipped; every other line is a request or an error that names the file, the line
and what was wrong (not a number, negative, missing column or key, zero tokens, ...). No row is
ever dropped silently: `start_s`/`end_s` keep the requests arriving in [start_s, end_s) and
measure arrivals from start_s; `limit` keeps the first `limit` of those; both are said in the
workload's description.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import re
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from tegel.errors import TegelError
from tegel.serving.requests import Workload

# (format, time field, time unit, input field, output field); fields are lower case
_LAYOUTS = {
    "tegel-arrival": ("arrival_s", "s", "input_tokens", "output_tokens"),
    "tegel-timestamp": ("timestamp", "s", "input_tokens", "output_tokens"),
    "azure": ("timestamp", "datetime", "contexttokens", "generatedtokens"),
    "mooncake": ("timestamp", "ms", "input_length", "output_length"),
}
_EXPECTED = ("arrival_s (or timestamp),input_tokens,output_tokens; or the Azure trace header "
             "TIMESTAMP,ContextTokens,GeneratedTokens")
_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
                       r"\s*(Z|[+-]\d{2}:?\d{2})?")


class _Rows:
    """Parsed columns of a trace, compact (a week of Azure requests is tens of millions): times
    as float seconds or milliseconds, or as int64 nanoseconds for date-times."""

    def __init__(self, layout: str) -> None:
        self.layout = layout
        self.times: array[Any] = array("q" if _LAYOUTS[layout][1] == "datetime" else "d")
        self.inputs = array("q")
        self.outputs = array("q")
        self.prefixed = False  # whether prefix_id and prefix_tokens were given
        self.prefix_id = array("q")
        self.prefix_tokens = array("q")


def read_trace(path: str | Path, *, limit: int | None = None, start_s: float | None = None,
               end_s: float | None = None) -> Workload:
    """The requests of a trace file (formats in the module docstring), in arrival order."""
    path = Path(path)
    name = path.name
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            head = ""
            while not head:  # the first non-blank text tells JSON Lines from CSV
                chunk = file.read(4096)
                if not chunk:
                    break
                head = chunk.lstrip()
            file.seek(0)
            rows = _read_jsonl(file, name) if head.startswith("{") else _read_csv(file, name)
    except OSError as err:
        raise TegelError(f"{path}: cannot read the trace: {err.strerror}") from None
    except UnicodeDecodeError:
        raise TegelError(f"{path}: not a text file (expected CSV or JSON Lines)") from None
    if not rows.inputs:
        raise TegelError(f"{name}: no requests (the file has a header but no data rows)")
    layout = rows.layout
    time_field, unit = _LAYOUTS[layout][:2]
    if unit == "datetime":
        ticks = np.frombuffer(rows.times, dtype=np.int64)
        arrival_s = (ticks - ticks.min()).astype(np.float64) / 1e9
    else:
        arrival_s = np.frombuffer(rows.times, dtype=np.float64) * (1e-3 if unit == "ms" else 1.0)
        if time_field == "timestamp":
            arrival_s -= arrival_s.min()
    order = np.argsort(arrival_s, kind="stable")
    unsorted = bool(np.any(np.diff(arrival_s) < 0))
    arrival_s = arrival_s[order]
    inputs = np.frombuffer(rows.inputs, dtype=np.int64)[order]
    outputs = np.frombuffer(rows.outputs, dtype=np.int64)[order]
    total = len(arrival_s)
    keep = np.ones(total, dtype=bool)
    if start_s is not None or end_s is not None:
        low = 0.0 if start_s is None else float(start_s)
        high = math.inf if end_s is None else float(end_s)
        if not (math.isfinite(low) and low >= 0 and high > low):
            raise TegelError(f"{name}: the window needs 0 <= start_s < end_s, got "
                             f"[{start_s}, {end_s})")
        keep = (arrival_s >= low) & (arrival_s < high)
        arrival_s = arrival_s - low
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise TegelError(f"{name}: limit must be a whole number >= 1, got {limit!r}")
        keep &= np.cumsum(keep) <= limit
    if not keep.any():
        raise TegelError(f"{name}: no request of the {total} in the trace arrives in "
                         f"[{start_s or 0}, {end_s if end_s is not None else '∞'}) s")
    arrival_s, inputs, outputs = arrival_s[keep], inputs[keep], outputs[keep]
    kept = len(arrival_s)
    what = f"trace {name} ({layout}): {kept} requests over {arrival_s[-1] - arrival_s[0]:.3g} s"
    if kept < total:
        what += f" (kept {kept} of {total}: window [{start_s}, {end_s}) s, limit {limit})"
    if unsorted:
        what += ", sorted by arrival"
    spec: dict[str, object] = {"trace": str(path), "format": layout, "requests": kept,
                               "requests_in_file": total}
    spec |= {k: v for k, v in (("limit", limit), ("start_s", start_s), ("end_s", end_s))
             if v is not None}
    if not rows.prefixed:
        return Workload(arrival_s, inputs, outputs, None, what, spec)
    prefix_id = np.frombuffer(rows.prefix_id, dtype=np.int64)[order][keep]
    prefix_tokens = np.frombuffer(rows.prefix_tokens, dtype=np.int64)[order][keep]
    return Workload(arrival_s, inputs, outputs, None, what, spec, prefix_id, prefix_tokens)


def _prefix_fields(present: list[str], layout: str, where: str) -> bool:
    """Whether the optional prefix columns (keys) are given: both or neither, tegel layouts."""
    given = [k for k in ("prefix_id", "prefix_tokens") if k in present]
    if not given or not layout.startswith("tegel"):
        return False
    if len(given) == 1:
        other = "prefix_tokens" if given[0] == "prefix_id" else "prefix_id"
        raise TegelError(f"{where}: {given[0]} without {other} (the two come together)")
    return True


def _append_prefix(rows: _Rows, id_text: str, tokens_text: str, where: str) -> None:
    if id_text in ("", "-1", "None", "null"):
        rows.prefix_id.append(-1)
        rows.prefix_tokens.append(0)
        return
    try:
        pid = int(id_text)
    except ValueError:
        raise TegelError(f"{where}: prefix_id: expected a whole number >= 0 (or -1), "
                         f"got {id_text!r}") from None
    if pid < 0:
        raise TegelError(f"{where}: prefix_id: expected a whole number >= 0 (or -1), got {pid}")
    tokens = _tokens(tokens_text, f"{where}: prefix_tokens") if tokens_text != "0" else 0
    if tokens > rows.inputs[-1]:
        raise TegelError(f"{where}: prefix_tokens: {tokens} exceeds the prompt's "
                         f"{rows.inputs[-1]} tokens")
    rows.prefix_id.append(pid)
    rows.prefix_tokens.append(tokens)


def _csv_layout(header: list[str], name: str, line: int) -> tuple[str, list[int]]:
    columns = [h.strip().lower() for h in header]
    if "contexttokens" in columns or "generatedtokens" in columns:
        layout = "azure"
    elif "arrival_s" in columns:
        if "timestamp" in columns:
            raise TegelError(f"{name}: line {line}: both arrival_s and timestamp columns; "
                             "give one")
        layout = "tegel-arrival"
    elif "timestamp" in columns or "input_tokens" in columns or "output_tokens" in columns:
        layout = "tegel-timestamp"
    else:
        raise TegelError(f"{name}: line {line}: unknown CSV header {','.join(header)!r}; "
                         f"expected {_EXPECTED}")
    wanted = (_LAYOUTS[layout][0], *_LAYOUTS[layout][2:])
    missing = [w for w in wanted if w not in columns]
    if missing:
        names = "arrival_s (or timestamp)" if layout == "tegel-timestamp" else ""
        shown = [names if m == "timestamp" and names else m for m in missing]
        raise TegelError(f"{name}: line {line}: missing column(s) {', '.join(shown)} in header "
                         f"{','.join(header)!r}; expected {_EXPECTED}")
    for w in wanted:
        if columns.count(w) > 1:
            raise TegelError(f"{name}: line {line}: column {w} appears twice")
    return layout, [columns.index(w) for w in wanted]


def _read_csv(file: TextIO, name: str) -> _Rows:
    reader = csv.reader(file)
    rows: _Rows | None = None
    index, header, prefix_index = [0, 0, 0], [], [0, 0]
    try:
        for fields in reader:
            line = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            if rows is None:
                layout, index = _csv_layout(fields, name, line)
                rows, header = _Rows(layout), fields
                columns = [h.strip().lower() for h in header]
                rows.prefixed = _prefix_fields(columns, layout, f"{name}: line {line}")
                if rows.prefixed:
                    prefix_index = [columns.index(k) for k in ("prefix_id", "prefix_tokens")]
                continue
            if len(fields) != len(header):
                raise TegelError(f"{name}: line {line}: expected {len(header)} fields "
                                 f"({','.join(header)}), got {len(fields)}")
            time_text, in_text, out_text = (fields[i].strip() for i in index)
            _append(rows, time_text, in_text, out_text, name, line)
            if rows.prefixed:
                _append_prefix(rows, fields[prefix_index[0]].strip(),
                               fields[prefix_index[1]].strip(), f"{name}: line {line}")
    except csv.Error as err:
        raise TegelError(f"{name}: line {reader.line_num}: not valid CSV ({err})") from None
    if rows is None:
        raise TegelError(f"{name}: empty file (expected a CSV header and requests, or JSON Lines)")
    return rows


def _read_jsonl(file: TextIO, name: str) -> _Rows:
    rows: _Rows | None = None
    for line, record in _json_records(file, name):
        keys = {k.lower(): v for k, v in record.items()}
        if rows is None:
            rows = _Rows("mooncake" if "input_length" in keys or "output_length" in keys
                         else "tegel-arrival" if "arrival_s" in keys else "tegel-timestamp")
            rows.prefixed = _prefix_fields(list(keys), rows.layout, f"{name}: line {line}")
        layout = rows.layout
        time_field, _, in_field, out_field = _LAYOUTS[layout]
        if layout.startswith("tegel") and "arrival_s" in keys and "timestamp" in keys:
            raise TegelError(f"{name}: line {line}: both arrival_s and timestamp; give one")
        missing = [k for k in (time_field, in_field, out_field) if k not in keys]
        if missing:
            time_key = "timestamp" if layout == "mooncake" else "arrival_s (or timestamp)"
            shown = [time_key if m == time_field else m for m in missing]
            raise TegelError(f"{name}: line {line}: missing key(s) {', '.join(shown)} "
                             f"({layout} format: {time_field}, {in_field}, {out_field})")
        time_text, in_text, out_text = (_json_number(keys[k], k, name, line)
                                        for k in (time_field, in_field, out_field))
        _append(rows, time_text, in_text, out_text, name, line)
        if rows.prefixed:
            where = f"{name}: line {line}"
            _prefix_fields(list(keys), layout, where)
            pid, tokens = keys.get("prefix_id"), keys.get("prefix_tokens", 0)
            _append_prefix(rows, "" if pid is None else _json_number(pid, "prefix_id", name, line),
                           _json_number(tokens, "prefix_tokens", name, line), where)
    if rows is None:
        raise TegelError(f"{name}: empty file (no JSON lines)")
    return rows


def _json_records(file: TextIO, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, raw in enumerate(file, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as err:
            raise TegelError(f"{name}: line {line}: not valid JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise TegelError(f"{name}: line {line}: expected a JSON object per line, "
                             f"got {type(record).__name__}")
        yield line, record


def _json_number(value: Any, key: str, name: str, line: int) -> str:
    """A JSON number as text for the common checks; strings, booleans and null are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TegelError(f"{name}: line {line}: {key}: expected a number, got {json.dumps(value)}")
    return repr(value)


def _append(rows: _Rows, time_text: str, in_text: str, out_text: str, name: str,
            line: int) -> None:
    time_field, unit, in_field, out_field = _LAYOUTS[rows.layout]
    where = f"{name}: line {line}"
    if unit == "datetime":
        rows.times.append(_datetime_ns(time_text, f"{where}: {time_field}"))
    else:
        try:
            value = float(time_text)
        except ValueError:
            raise TegelError(f"{where}: {time_field}: expected a number of "
                             f"{'milliseconds' if unit == 'ms' else 'seconds'}, "
                             f"got {time_text!r}") from None
        if not math.isfinite(value) or (time_field == "arrival_s" and value < 0):
            raise TegelError(f"{where}: {time_field}: expected a finite number"
                             f"{' >= 0' if time_field == 'arrival_s' else ''}, got {time_text!r}")
        rows.times.append(value)
    rows.inputs.append(_tokens(in_text, f"{where}: {in_field}"))
    rows.outputs.append(_tokens(out_text, f"{where}: {out_field}"))


def _tokens(text: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            raise TegelError(f"{where}: expected a whole number of tokens, got {text!r}") from None
        if not number.is_integer():
            raise TegelError(f"{where}: expected a whole number of tokens, got {text!r}") from None
        value = int(number)
    if value < 1:
        raise TegelError(f"{where}: expected >= 1 tokens, got {value}"
                         + (" (every request needs a prompt and an output token)" if value == 0
                            else ""))
    return value


_DAYS: dict[str, int] = {}  # days since 1970-01-01 per date text (dates repeat in a trace)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def _datetime_ns(text: str, where: str) -> int:
    """Nanoseconds since 1970-01-01 UTC of `YYYY-MM-DD HH:MM:SS[.fraction][offset]` (integers:
    a float of seconds since an epoch cannot hold 100 ns ticks)."""
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise TegelError(f"{where}: expected a date-time such as 2023-11-16 18:15:46.6805900, "
                         f"got {text!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    date = text[:10]
    days = _DAYS.get(date)
    try:
        if days is None:
            days = _DAYS.setdefault(date, dt.date(int(year), int(month), int(day)).toordinal()
                                  - _EPOCH_ORDINAL)
        dt.time(int(hour), int(minute), int(second))
    except ValueError as err:
        raise TegelError(f"{where}: not a valid date-time {text!r} ({err})") from None
    seconds = days * 86400 + int(hour) * 3600 + int(minute) * 60 + int(second)
    if offset and offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))
