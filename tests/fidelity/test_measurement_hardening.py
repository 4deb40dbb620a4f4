"""Issue 18, measurement files: validated like hardware files. A value that is not a finite
number > 0, a unit that is not one of its metric's, a chip count below one, a non-UTF-8 byte or a
nesting too deep is a one-line TegelError naming the file, the entry and the field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tegel.cli import main
from tegel.errors import TegelError
from tegel.fidelity.cases import load_entries

GOOD = {"id": "e1", "system": "8x H100-SXM-80GB", "metric": "throughput_offline",
        "value": 24524.9, "unit": "tokens/s", "accelerators": 8,
        "workload": {"model": "Llama-2-70B-chat", "precision": "fp8"}, "kind": "measured"}


def _file(tmp_path: Path, **changes: object) -> Path:
    entry = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if value is _DROP:
            entry.pop(key)
        elif key in ("tensor_parallel", "max_batch_per_replica", "max_tokens_per_iteration"):
            entry["workload"][key] = value  # type: ignore[index]
        else:
            entry[key] = value
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump([entry]))
    return p


_DROP = object()


def test_a_good_entry_loads(tmp_path):
    [(name, entry)] = load_entries([_file(tmp_path)])
    assert name.endswith("m.yaml") and entry["value"] == 24524.9


@pytest.mark.parametrize(("changes", "field"), [
    ({"value": 0}, "value"),
    ({"value": -1}, "value"),
    ({"value": "fast"}, "value"),
    ({"value": True}, "value"),
    ({"value": float("inf")}, "value"),
    ({"value": float("nan")}, "value"),
    ({"value": 10**400}, "value"),
    ({"unit": "ms"}, "unit"),
    ({"metric": "ttft_latency", "unit": "tokens/s"}, "unit"),
    ({"system": "0x H100-SXM-80GB"}, "system"),
    ({"accelerators": 0}, "accelerators"),
    ({"tensor_parallel": 0}, "workload.tensor_parallel"),
    ({"tensor_parallel": None}, "workload.tensor_parallel"),  # found by benchmarks/fuzz.py
    ({"max_batch_per_replica": "all"}, "workload.max_batch_per_replica"),
    ({"max_batch_per_replica": 0}, "workload.max_batch_per_replica"),
    ({"max_tokens_per_iteration": 0}, "workload.max_tokens_per_iteration"),
    ({"max_tokens_per_iteration": 4096.5}, "workload.max_tokens_per_iteration"),
    ({"workload": "llama"}, "workload"),
    ({"id": 7}, "id"),
])
def test_bad_fields_are_errors_naming_file_entry_and_field(tmp_path, changes, field):
    p = _file(tmp_path, **changes)
    with pytest.raises(TegelError) as err:
        load_entries([p])
    text = str(err.value)
    assert str(p) in text and "entry 1" in text and f"field {field}" in text, text
    assert "\n" not in text and len(text) < 400


def test_non_utf8_and_deep_nesting_are_errors(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_bytes(b"- id: \xff\xfe\n")
    with pytest.raises(TegelError, match="not UTF-8"):
        load_entries([p])
    p.write_text("[" * 2000 + "]" * 2000)
    with pytest.raises(TegelError, match=str(p)):
        load_entries([p])


def test_a_long_value_is_truncated_in_the_message(tmp_path):
    p = _file(tmp_path, value="x" * 10_000)
    with pytest.raises(TegelError) as err:
        load_entries([p])
    assert len(str(err.value)) < 400


def test_tegel_validate_on_a_bad_file_is_one_line(tmp_path, capsys):
    p = _file(tmp_path, value=-1)
    assert main(["validate", str(p)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("tegel: error: ") and err.count("\n") == 1
    assert "field value" in err and "e1" in err
