"""The store: an embedded DuckDB file, one row per design point.

Table `points`: key (a hash of the parameters, primary key), trial (the first that asked for
it), feasible, violated and binding constraints, error, engine version, seed, elapsed seconds,
then `param_<name>` and `metric_<name>` columns. Table `refined`: the same for the points
evaluated again at the operating point. Table `meta`: the space it was written for (its
evaluation hash, objectives, parameters), the engine version, the baseline's metrics.

Rows of a batch are written in one transaction, so a run killed at any moment leaves whole
points only; the primary key keeps each point once.
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import cached_property
from pathlib import Path
from typing import Any

from tegel.errors import TegelError
from tegel.explore.metrics import METRICS
from tegel.explore.point import PointResult
from tegel.explore.space import Space, Value, column

_ENGINE_PACKAGES = ("evaluate", "mapping", "serving", "hardware", "economics", "workload")
_ROWS_PER_INSERT = 256  # rows per INSERT statement
_FIXED = ("key", "trial", "feasible", "violated", "binding", "error", "engine_version", "seed",
          "elapsed_s")


def engine_version() -> str:
    """tegel's version and a hash of the engine's code and data (what a point's result reads)."""
    import tegel

    root = Path(tegel.__file__).parent
    h = hashlib.sha256()
    for pkg in _ENGINE_PACKAGES:
        for f in sorted((root / pkg).rglob("*")):
            if f.suffix in (".py", ".yaml", ".json") and "__pycache__" not in f.parts:
                h.update(str(f.relative_to(root)).encode())
                h.update(f.read_bytes())
    return f"{tegel.__version__}+{h.hexdigest()[:12]}"


def _sql_type(values: list[Value]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "BOOLEAN"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "BIGINT"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "DOUBLE"
    return "VARCHAR"


def _param_types(space: Space) -> dict[str, str]:
    out = {}
    for name, p in space.spec.parameters.items():
        if p.values is not None:
            out[name] = _sql_type(list(p.values))
        else:
            out[name] = "BIGINT" if p.is_int else "DOUBLE"
    return out


class Store:
    """A DuckDB store opened for one space (or for reading, `space=None`)."""

    def __init__(self, path: Path, space: Space | None = None, *, allow_mixed: bool = False,
                 seed: int = 0) -> None:
        import duckdb

        self.path = path
        if space is None and not path.is_file():
            raise TegelError(f"{path}: no such store")
        try:
            self.con = duckdb.connect(str(path), read_only=space is None)
        except duckdb.Error as err:
            raise TegelError(f"{path}: cannot open as a DuckDB store: {err}") from None
        self.version = engine_version()
        self.seed = seed
        if space is not None:
            self._prepare(space, allow_mixed)

    def close(self) -> None:
        self.con.close()

    # --- meta ---------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        try:
            rows = self.con.execute("SELECT name, value FROM meta").fetchall()
        except RuntimeError as err:
            if _interrupted(err):
                raise KeyboardInterrupt from None
            raise TegelError(f"{self.path}: not a tegel explore store (no meta table)") from None
        except Exception:
            raise TegelError(f"{self.path}: not a tegel explore store (no meta table)") from None
        return {k: json.loads(v) for k, v in rows}

    @cached_property
    def parameter_names(self) -> list[str]:
        """The space's parameters as the store records them: read once, not per batch."""
        return list(self.meta()["parameters"])

    def set_meta(self, name: str, value: Any) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [name, json.dumps(value)])

    def _prepare(self, space: Space, allow_mixed: bool) -> None:
        self.con.execute("CREATE TABLE IF NOT EXISTS meta (name VARCHAR PRIMARY KEY, value VARCHAR)")
        meta = self.meta()
        eval_hash = space.evaluation_hash
        if meta:
            if meta.get("evaluation_hash") != eval_hash:
                raise TegelError(
                    f"{self.path}: holds points of another space or evaluation "
                    f"({meta.get('space')!r}, hash {meta.get('evaluation_hash')}; this space: "
                    f"{space.spec.name!r}, hash {eval_hash}): use another --store")
            versions = {v for (v,) in self.con.execute(
                "SELECT DISTINCT engine_version FROM points").fetchall()}
            other = sorted(versions - {self.version})
            if other and not allow_mixed:
                raise TegelError(
                    f"{self.path}: written by engine version {', '.join(other)}; this is "
                    f"{self.version}. Its points would not compare with new ones: use another "
                    f"--store, or --allow-mixed to resume it anyway (rows keep their version)")
        params = ", ".join(f'"param_{column(n)}" {t}' for n, t in _param_types(space).items())
        metrics = ", ".join(f'"metric_{m}" DOUBLE' for m in METRICS)
        for table in ("points", "refined"):
            self.con.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (key VARCHAR PRIMARY KEY, trial BIGINT, "
                f"feasible BOOLEAN, violated VARCHAR[], binding VARCHAR[], error VARCHAR, "
                f"engine_version VARCHAR, seed BIGINT, elapsed_s DOUBLE, {params}, {metrics})")
            have = {r[0] for r in self.con.execute(f"DESCRIBE {table}").fetchall()}
            for m in METRICS:  # a newer engine may measure more
                if f"metric_{m}" not in have:
                    self.con.execute(f'ALTER TABLE {table} ADD COLUMN "metric_{m}" DOUBLE')
        if not meta:
            self.set_meta("space", space.spec.name)
            self.set_meta("evaluation_hash", eval_hash)
            self.set_meta("space_file", str(space.path))
        self.set_meta("parameters", list(space.names))
        self.set_meta("objectives", [list(o) for o in space.objectives])
        self.set_meta("constraints", space.spec.constraints)

    # --- points -------------------------------------------------------------------------------
    def known(self, keys: list[str], table: str = "points") -> dict[str, PointResult]:
        """The stored results among `keys`."""
        if not keys:
            return {}
        names = self.parameter_names
        try:
            rel = self.con.execute(f"SELECT * FROM {table} WHERE key IN (SELECT UNNEST(?))",
                                   [keys])
            cols = [d[0] for d in rel.description]
            rows = rel.fetchall()
        except RuntimeError as err:
            if _interrupted(err):
                raise KeyboardInterrupt from None
            raise
        return {r.key: r for r in (_row(dict(zip(cols, row, strict=True)), names) for row in rows)}

    def add(self, results: list[PointResult], table: str = "points") -> None:
        """Write whole points in one transaction (already stored keys are left as they are)."""
        if not results:
            return
        names = self.parameter_names
        cols = [*_FIXED, *(f"param_{column(n)}" for n in names), *(f"metric_{m}" for m in METRICS)]
        rows = []
        for r in results:
            rows.append([r.key, r.trial, r.feasible, list(r.violated), list(r.binding), r.error,
                         self.version, self.seed, r.elapsed_s,
                         *(r.params.get(n) for n in names),
                         *(_finite(r.metrics.get(m)) for m in METRICS)])
        row_marks = "(" + ", ".join("?" for _ in cols) + ")"
        quoted = ", ".join(f'"{c}"' for c in cols)
        self.con.execute("BEGIN TRANSACTION")
        try:
            # one statement of many rows: executemany runs a statement per row, which cost the
            # driver ~9 ms a point and held back the executors' scaling
            for i in range(0, len(rows), _ROWS_PER_INSERT):
                part = rows[i:i + _ROWS_PER_INSERT]
                self.con.execute(
                    f"INSERT INTO {table} ({quoted}) VALUES "
                    f"{', '.join(row_marks for _ in part)} ON CONFLICT DO NOTHING",
                    [v for row in part for v in row])
            self.con.execute("COMMIT")
        except BaseException as err:
            self.con.execute("ROLLBACK")
            if isinstance(err, RuntimeError) and _interrupted(err):
                raise KeyboardInterrupt from None
            raise

    def all(self, table: str = "points") -> list[PointResult]:
        names = self.parameter_names
        rel = self.con.execute(f"SELECT * FROM {table} ORDER BY trial")
        cols = [d[0] for d in rel.description]
        return [_row(dict(zip(cols, row, strict=True)), names) for row in rel.fetchall()]

    def count(self, table: str = "points") -> int:
        return int(self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]

    def sql(self, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        import duckdb

        try:
            rel = self.con.execute(query)
        except duckdb.Error as err:
            raise TegelError(f"--sql: {err}") from None
        return [d[0] for d in rel.description], rel.fetchall()

    def parquet(self, out: Path, table: str = "points") -> int:
        """Export one row per point, `param_<name>` and `metric_<name>` columns."""
        self.con.execute(f"COPY (SELECT * FROM {table} ORDER BY trial) TO '{out}' (FORMAT PARQUET)")
        return self.count(table)


def _interrupted(err: Exception) -> bool:
    """DuckDB turns Ctrl-C during a query into an error; the driver wants KeyboardInterrupt."""
    return "interrupt" in str(err).lower()


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _row(d: dict[str, Any], names: list[str]) -> PointResult:
    metrics = {m: d[f"metric_{m}"] for m in METRICS
               if d.get(f"metric_{m}") is not None}
    params = {n: d[f"param_{column(n)}"] for n in names}
    return PointResult(d["key"], int(d["trial"]), params, metrics, tuple(d["violated"] or ()),
                       tuple(d["binding"] or ()), d["error"], float(d["elapsed_s"]))
