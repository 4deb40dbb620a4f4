"""Out-of-sample discipline: the shipped k-fold fits hold out whole publications, each fold's
record says exactly which entries it did not see, and `validate` reports for those entries the
prediction of that fold's fit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import tegel
import tegel.fidelity.folds as folds_module
from tegel.cli import main
from tegel.errors import TegelError
from tegel.fidelity import Unmapped, load_entries, validate
from tegel.fidelity.calibrate import BOUNDS, h100_only
from tegel.fidelity.cases import read_entry
from tegel.fidelity.folds import assign_folds, group_of, inputs_digest, load_folds
from tegel.mapping.params import default_params


@pytest.fixture(scope="module")
def folds():
    shipped = load_folds()
    assert len(shipped) >= 2, "no shipped fold fits: run tegel validate --calibrate --folds"
    return shipped


def test_each_fold_holds_out_exactly_its_publications(folds) -> None:
    """Read from each fold's record: its held-out ids are exactly the H100 entries of its held-out
    groups; the folds partition the H100 set; it was trained on all the others."""
    entries, dropped = h100_only(load_entries())
    assert dropped == 0
    by_group: dict[str, set[str]] = {}
    for _, e in entries:
        by_group.setdefault(group_of(e), set()).add(e["id"])
    seen: set[str] = set()
    for f in folds:
        expected = set().union(*(by_group[g] for g in f.held_out_groups))
        assert set(f.held_out_ids) == expected, f"fold {f.index}"
        assert f.record["training_entries"] == len(entries) - len(expected)
        assert set(f.parameters) == set(BOUNDS)
        assert all(lo <= f.parameters[k] <= hi for k, (lo, hi) in BOUNDS.items())
        seen |= expected
    assert seen == {e["id"] for _, e in entries}
    groups = [g for f in folds for g in f.held_out_groups]
    assert len(groups) == len(set(groups)) == len(by_group)  # a publication is never split


def test_shipped_folds_were_fitted_on_the_shipped_data(folds) -> None:
    """A fold's record carries a digest of the measurements and GPU parameter files it was
    fitted with: changing them without refitting the folds fails here."""
    assert all(f.record["inputs_sha256"] == inputs_digest() for f in folds)


def test_the_digest_ignores_only_what_the_fit_never_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A serving-only field (the engine's tokens per iteration, read by the serving group, which
    `--calibrate` never runs) leaves the digest alone; a field the fit reads (the engine's batch)
    changes it."""
    import copy

    import tegel.fidelity.folds as folds_module

    shipped = load_entries()
    base = inputs_digest()

    def with_workload(key: str, value: int) -> str:
        changed = copy.deepcopy(shipped)
        changed[0][1]["workload"][key] = value
        monkeypatch.setattr(folds_module, "load_entries", lambda: changed)
        return inputs_digest()

    assert with_workload("max_tokens_per_iteration", 777) == base
    assert with_workload("max_batch_per_replica", 777) != base


def test_the_digest_covers_the_mlperf_data_set_lengths(monkeypatch: pytest.MonkeyPatch) -> None:
    """The MLPerf entries' scenarios run at their data set's mean lengths, so a fit depends on
    them: a changed input mean changes the digest (the shipped folds were refitted when the
    means were read from the whole per-sample files)."""
    import copy

    import tegel.fidelity.folds as folds_module
    from tegel.fidelity.cases import dataset_lengths

    base = inputs_digest()
    changed = copy.deepcopy(dataset_lengths())
    changed["llama3.1-8b"]["input_tokens_mean"] += 1
    monkeypatch.setattr(folds_module, "dataset_lengths", lambda: changed)
    assert inputs_digest() != base


def test_a_folds_predictions_are_what_validate_reports(folds, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    fold = folds[0]
    held = [(n, e) for n, e in load_entries() if e["id"] in set(fold.held_out_ids)][:3]
    fit = default_params().with_gpu(fold.parameters, "fold")
    direct = {r.case.id: r.predicted for r in validate(held, params=fit, with_serving=False).rows}
    report = validate(held, with_serving=False, folds=folds)
    assert {r.case.id: r.predicted for r in report.out_of_sample} == direct
    assert dict(report.fold_of) == dict.fromkeys(direct, fold.index)
    assert direct != {r.case.id: r.predicted for r in report.rows}  # another fit than in sample
    path = tmp_path / "held.yaml"
    path.write_text(yaml.safe_dump([e for _, e in held]))
    assert main(["validate", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {r["id"]: r["out_of_sample"]["predicted"] for r in rows} == pytest.approx(direct)
    assert {r["out_of_sample"]["fold"] for r in rows} == {fold.index}


def test_folds_are_balanced_deterministic_and_keep_publications_whole() -> None:
    def entry(i: int, title: str, year: int) -> tuple[str, dict[str, Any]]:
        return "f", {"id": f"e{i}", "year": year, "source": {"title": title}}

    entries = ([entry(i, "A", 2024) for i in range(6)] + [entry(10 + i, "A", 2025) for i in range(3)]
               + [entry(20 + i, "B", 2024) for i in range(3)] + [entry(30, "C", 2023)])
    assigned = assign_folds(entries, 3)
    assert assigned == assign_folds(list(reversed(entries)), 3)
    assert sorted(g for f in assigned for g in f) == ["A [2024]", "A [2025]", "B [2024]",
                                                      "C [2023]"]
    assert assigned[0] == ["A [2024]"]  # the largest alone; the others fill the smallest
    with pytest.raises(TegelError, match="--folds 5: expected 2 to 4"):
        assign_folds(entries, 5)


def test_calibrate_folds_cli_writes_one_record_per_fold(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The command that makes the shipped folds (with the minutes of fitting replaced by an
    instant stand-in): one file per fold with its record; never inside the package."""
    seen: list[set[str]] = []

    def fit(params, passes=2, steps=10, progress=None, entries=None):  # type: ignore[no-untyped-def]
        seen.append({e["id"] for _, e in entries})
        report = validate(entries[:1], params=params, with_serving=False)
        return {k: getattr(params.gpu, k) for k in BOUNDS}, report, report

    monkeypatch.setattr(folds_module, "calibrate", fit)
    out = tmp_path / "folds"
    assert main(["validate", "--calibrate", "--folds", "3", "--write-folds", str(out)]) == 0
    written = load_folds(out)
    assert [f.index for f in written] == [1, 2, 3] and len(seen) == 3
    for f, trained in zip(written, seen, strict=True):
        assert not trained & set(f.held_out_ids)  # the fit never saw its held-out entries
        assert f.record["objective"] and f.record["date"] and f.record["how"]
    assert "wrote" in capsys.readouterr().out
    inside = Path(tegel.__file__).parent / "fidelity" / "data" / "folds"
    assert main(["validate", "--calibrate", "--folds", "3", "--write-folds", str(inside)]) == 2
    assert "inside the installed tegel package" in capsys.readouterr().err
    assert main(["validate", "--write-folds", str(out)]) == 2


def test_calibration_fits_h100_entries_only() -> None:
    """Entries of other GPUs handed to the calibration are left out (and counted)."""
    other = {"id": "b", "system": "8x B200", "kind": "measured", "metric": "output_throughput",
             "value": 1.0, "unit": "tokens/s", "year": 2025,
             "workload": {"model": "Llama-3.1-8B", "precision": "fp8", "input_len": 128,
                          "output_len": 128}}
    h100 = {**other, "id": "h", "system": "1x H100"}
    kept, dropped = h100_only([("f", other), ("f", h100)])
    assert [e["id"] for _, e in kept] == ["h"] and dropped == 1
    stated = read_entry(other)
    assert not isinstance(stated, Unmapped) and stated.gpu == "b200"
