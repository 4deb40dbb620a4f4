"""The store: resumable after SIGKILL, one row per point, engine versions kept apart, `show`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from explore.conftest import write_space
from tegel.cli import main
from tegel.errors import TegelError
from tegel.explore import explore, load_space
from tegel.explore import store as store_module

CLI = [sys.executable, "-c", "import sys; from tegel.cli import main; sys.exit(main())"]


def _run_until(args: list[str], marker: str, sig: int, timeout_s: float = 60.0
               ) -> tuple[int, str]:
    """Start `tegel explore`, wait until its progress shows `marker`, send `sig`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # a shell that starts the suite in the background hands its children SIGINT ignored, and
    # Python then installs no KeyboardInterrupt handler: give the command the default back
    proc = subprocess.Popen([*CLI, "explore", *args], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, env=env,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout_s
    for line in proc.stderr:
        if marker in line or time.monotonic() > deadline:
            break
    proc.send_signal(sig)
    if sig == signal.SIGKILL:  # its workers lose their parent: stop them too (our own group)
        rc = proc.wait(timeout=60)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.stderr.close()
        return rc, ""
    _, rest = proc.communicate(timeout=60)
    return proc.returncode, rest


def test_sigkill_then_resume_finds_every_point_once(tmp_path: Path) -> None:
    path = write_space(tmp_path, "nsga2", **{"trials: 24": "trials: 64"})
    store = tmp_path / "killed.duckdb"
    # the progress prints a line per tenth when stderr is not a terminal: kill at 30%
    rc, _ = _run_until([str(path), "--store", str(store), "--workers", "2", "--no-baseline"],
                       "[######", signal.SIGKILL)
    assert rc == -signal.SIGKILL
    with duckdb.connect(str(store), read_only=True) as con:
        before = con.execute("SELECT count(*) FROM points").fetchone()[0]
    assert before > 0
    resumed = explore(load_space(path), store_path=store, executor="inline", baseline=False)
    whole = explore(load_space(path), store_path=tmp_path / "whole.duckdb", executor="inline",
                    baseline=False)
    assert before < len(whole.points)  # killed part-way
    assert resumed.evaluated == len(whole.points) - before  # the stored were not redone
    with duckdb.connect(str(store), read_only=True) as con:
        keys = [k for (k,) in con.execute("SELECT key FROM points").fetchall()]
    assert len(keys) == len(set(keys)) == len(whole.points)
    assert set(keys) == {p.key for p in whole.points}
    assert [p.metrics for p in resumed.points] == [p.metrics for p in whole.points]


def test_ctrl_c_stops_cleanly_with_what_is_done(tmp_path: Path) -> None:
    # 400 distinct designs (a fine clock grid): with the tiny space's 32, the trials after the
    # first 32 are store hits and the run could end before the signal arrives
    path = write_space(tmp_path, "random", **{"trials: 24": "trials: 400",
                                              "step: 0.4e9": "step: 0.001e9"})
    store = tmp_path / "stopped.duckdb"
    rc, err = _run_until([str(path), "--store", str(store), "--workers", "2", "--no-baseline"],
                         "[##", signal.SIGINT)
    assert rc == 130, err
    with duckdb.connect(str(store), read_only=True) as con:
        n = con.execute("SELECT count(*) FROM points").fetchone()[0]
    assert 0 < n < 400


def test_another_engine_version_is_refused(tmp_path: Path, space_file: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    space = load_space(space_file)
    store = tmp_path / "s.duckdb"
    explore(space, trials=8, store_path=store, executor="inline", baseline=False)
    monkeypatch.setattr(store_module, "engine_version", lambda: "0.0.0+other")
    with pytest.raises(TegelError, match=r"written by engine version .*--allow-mixed"):
        explore(space, trials=8, store_path=store, executor="inline", baseline=False)
    r = explore(space, trials=16, store_path=store, executor="inline", baseline=False,
                allow_mixed=True)
    assert 0 < r.evaluated == len(r.points) - 8
    with duckdb.connect(str(store), read_only=True) as con:
        versions = dict(con.execute("SELECT engine_version, count(*) FROM points GROUP BY 1")
                        .fetchall())
    assert versions["0.0.0+other"] == r.evaluated and len(versions) == 2


def test_another_space_is_refused(tmp_path: Path, space_file: Path) -> None:
    store = tmp_path / "s.duckdb"
    explore(load_space(space_file), trials=4, store_path=store, executor="inline",
            baseline=False)
    (tmp_path / "b").mkdir()
    other = write_space(tmp_path / "b", **{"output_tokens: 32": "output_tokens: 64"})
    with pytest.raises(TegelError, match="another space"):
        explore(load_space(other), trials=4, store_path=store, executor="inline")


def test_show_pareto_sql_parquet_and_json(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    space_file = write_space(tmp_path, "grid")
    store = tmp_path / "s.duckdb"
    assert main(["explore", str(space_file), "--store", str(store), "--workers", "1",
                 "--no-baseline", "--trials", "12"]) == 0
    out = capsys.readouterr().out
    assert "Pareto front of tiny" in out and "12/12 trials" in out
    assert main(["explore", "show", str(store), "--pareto", "--json"]) == 0
    front = json.loads(capsys.readouterr().out)["pareto"]
    assert front and all(p["feasible"] for p in front)
    assert main(["explore", "show", str(store), "--sql",
                 "SELECT count(*) AS n FROM points", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 12}]
    parquet = tmp_path / "points.parquet"
    assert main(["explore", "show", str(store), "--parquet", str(parquet)]) == 0
    with duckdb.connect() as con:
        rel = con.execute(f"SELECT * FROM '{parquet}'")
        cols = [d[0] for d in rel.description]
        assert len(rel.fetchall()) == 12
    assert {"param_rows", "param_tile_macs_per_cycle", "metric_tokens_per_j",
            "metric_usd_per_mtoken"} <= set(cols)
    assert main(["explore", "show", str(tmp_path / "none.duckdb")]) == 2


def test_no_feasible_point_says_what_rules_them_out(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = write_space(tmp_path, "grid", **{"max_die_area_mm2: 858": "max_die_area_mm2: 1"})
    assert main(["explore", str(path), "--store", str(tmp_path / "n.duckdb"), "--workers", "1",
                 "--no-baseline", "--trials", "1000"]) == 0
    out = capsys.readouterr().out
    assert "0 of 32 points feasible" in out and "no feasible point" in out
    assert "max_die_area_mm2" in out and "rules out      32 (100.0%)" in out
