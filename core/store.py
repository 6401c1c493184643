"""The DuckDB metadata store: the one module that holds SQL against the store file.

Everything in the store is derived from the sources (tracker files, logs, servers), so it can be
deleted and rebuilt at any time. Writes are batch-first (Arrow tables, never ``executemany``,
which manages ~400 rows/s) and happen inside :meth:`Store.transaction`, so a unit of import (one
or more whole runs) is either fully in the store or not at all, even after SIGKILL.

DuckDB lets one process hold a file read-write and refuses every other process, even read-only.
:func:`open_store` therefore falls back to a private temporary store when the file is locked (a
second mltop, or ``mltop runs`` while the TUI is open) and says so in :attr:`Store.note`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mltop.core.entities import (
    Experiment,
    FileState,
    LogFile,
    MetricSummary,
    Run,
    RunRecord,
)

STORE_ENV = "MLTOP_STORE"
STORE_DIR = ".mltop"
STORE_FILE = "store.duckdb"

POINTS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("key", pa.string()),
        ("step", pa.int64()),
        ("ts", pa.float64()),
        ("value", pa.float64()),
    ]
)

# Numbered migrations. A store records the highest number applied; opening it applies the rest in
# order, each in its own transaction. Never edit a released migration: add the next one.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            "CREATE SEQUENCE IF NOT EXISTS source_ids START 1",
            """CREATE TABLE sources (
                id INTEGER DEFAULT nextval('source_ids'),
                kind VARCHAR NOT NULL,
                location VARCHAR NOT NULL,
                last_scan DOUBLE
            )""",
            """CREATE TABLE files (
                path VARCHAR NOT NULL,
                source VARCHAR,
                size BIGINT,
                mtime DOUBLE,
                inode BIGINT,
                "offset" BIGINT,
                head VARCHAR,
                run_id VARCHAR
            )""",
            """CREATE TABLE experiments (
                id VARCHAR NOT NULL,
                source_kind VARCHAR,
                source VARCHAR,
                native_id VARCHAR,
                name VARCHAR
            )""",
            """CREATE TABLE runs (
                id VARCHAR NOT NULL,
                source_kind VARCHAR NOT NULL,
                source VARCHAR NOT NULL,
                location VARCHAR,
                native_id VARCHAR,
                experiment_id VARCHAR,
                name VARCHAR,
                status VARCHAR,
                lifecycle VARCHAR,
                start_time DOUBLE,
                end_time DOUBLE,
                parent_id VARCHAR,
                git_commit VARCHAR,
                host VARCHAR,
                artifact_uri VARCHAR,
                error VARCHAR,
                updated DOUBLE
            )""",
            "CREATE TABLE params (run_id VARCHAR, key VARCHAR, value VARCHAR, num DOUBLE)",
            "CREATE TABLE tags (run_id VARCHAR, key VARCHAR, value VARCHAR)",
            """CREATE TABLE metrics (
                run_id VARCHAR, key VARCHAR, step BIGINT, ts DOUBLE, value DOUBLE
            )""",
        ],
    ),
    (
        # The runs table must never aggregate full histories: keep one summary row per metric.
        # Backfilled from the histories already in the store.
        2,
        [
            """CREATE TABLE metric_summary (
                run_id VARCHAR, key VARCHAR,
                last DOUBLE, min DOUBLE, max DOUBLE, count BIGINT,
                first_step BIGINT, last_step BIGINT, min_step BIGINT, max_step BIGINT,
                last_time DOUBLE
            )""",
            "INSERT INTO metric_summary {summary_select}",
        ],
    ),
    (
        3,
        ["CREATE TABLE logs (run_id VARCHAR, path VARCHAR)"],
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

# One aggregate per (run, key). "last" is the value at the highest step, ties broken by time;
# min/max ignore NaN so one diverged step does not hide the best value. A min or max reached at
# several steps is shown at the first of them, whatever order the points were read in: the same
# step _fold keeps when points are appended.
_SUMMARY_SELECT = """
SELECT run_id, key,
       arg_max(value, (step, coalesce(ts, 0))) AS last,
       min(value) FILTER (WHERE NOT isnan(value)) AS min,
       max(value) FILTER (WHERE NOT isnan(value)) AS max,
       count(*) AS count,
       min(step) AS first_step,
       max(step) AS last_step,
       arg_min(step, (value, step)) FILTER (WHERE NOT isnan(value)) AS min_step,
       arg_max(step, (value, -step)) FILTER (WHERE NOT isnan(value)) AS max_step,
       max(ts) AS last_time
FROM {table} {where}
GROUP BY run_id, key
"""

_RUN_COLUMNS = (
    "r.id, r.name, r.status, e.name, r.source_kind, r.location, r.start_time, r.end_time, "
    "r.parent_id, r.git_commit, r.host, r.lifecycle, r.artifact_uri, r.error, r.updated, "
    "r.native_id, r.experiment_id"
)
_RUN_FROM = "runs r LEFT JOIN experiments e ON e.id = r.experiment_id"

_Row = TypeVar("_Row")

#: ``runs.updated`` (the newest sign of life of a run) is kept to within this many seconds.
UPDATED_RESOLUTION = 10.0

#: Block size of a store file mltop creates (one it opens keeps the size it was made with).
#: DuckDB gives every table at least one block of its own, kept in memory once written: a store
#: is one big table (metric points) and nine small ones, which with DuckDB's 256 KB blocks held
#: 2.4 MB of mostly empty blocks after its first checkpoint. 64 KB blocks keep compression on
#: the points table (16 KB ones lose bit-packing) and ~2 MB less resident while following
#: (bench/watch_memory.py --block-size).
BLOCK_SIZE = 64 * 1024

#: Id sets up to this size are matched without a join (see :meth:`Store._matching`).
SMALL_ID_SET = 256


# DuckDB 2 refuses further work on a connection while a result is half-read (fetchone leaves it
# so), which would also block the appender: every read here drains its result with fetchall.


#: Metric aggregates the runs table can show (metric_summary columns).
RUNS_TABLE_AGGREGATES = ("last", "min", "max", "count")
#: Run attributes :meth:`Store.runs_table` can return, by name, with their SQL.
RUNS_TABLE_ATTRIBUTES = {
    "experiment": "e.name",
    "source_kind": "r.source_kind",
    "location": "r.location",
    "lifecycle": "r.lifecycle",
    "deleted": "coalesce(r.lifecycle = 'deleted', FALSE)",
    "status": "r.status",
    "start_time": "r.start_time",
    "end_time": "r.end_time",
    "updated": "r.updated",
    "duration": "coalesce(r.end_time, r.updated) - r.start_time",
    "host": "r.host",
    "git_commit": "r.git_commit",
}

# Attributes the runs screen can sort by beyond those of :meth:`Store.runs`.
_BROWSER_ORDER = {
    "host": "lower(r.host)",
    "commit": "r.git_commit",
    "updated": "r.updated",
    "location": "r.location",
}


def _fold(old: MetricSummary, new: MetricSummary) -> MetricSummary | None:
    """The summary of a history and of points appended to it, from the two summaries alone;
    None when that cannot be decided (both end at the same step)."""
    if old.last_step is None or new.last_step is None or old.last_step == new.last_step:
        return None
    low, low_step = old.min, old.min_step
    if new.min is not None and (low is None or new.min < low):
        low, low_step = new.min, new.min_step
    high, high_step = old.max, old.max_step
    if new.max is not None and (high is None or new.max > high):
        high, high_step = new.max, new.max_step
    firsts = [s for s in (old.first_step, new.first_step) if s is not None]
    times = [t for t in (old.last_time, new.last_time) if t is not None]
    return MetricSummary(
        run_id=old.run_id,
        key=old.key,
        last=new.last if new.last_step > old.last_step else old.last,
        min=low,
        max=high,
        count=old.count + new.count,
        first_step=min(firsts) if firsts else None,
        last_step=max(old.last_step, new.last_step),
        min_step=low_step,
        max_step=high_step,
        last_time=max(times) if times else None,
    )


def _first_per(rows: Iterable[_Row], key: Callable[[_Row], Hashable]) -> list[_Row]:
    """The first row of each key, in order. Done here rather than with SQL ``DISTINCT ON``:
    DuckDB 2.0 keeps native memory after every grouping of a registered Arrow table (see
    :func:`_batch_summaries`), and these writes run on every live import batch."""
    first: dict[Hashable, _Row] = {}
    for row in rows:
        first.setdefault(key(row), row)
    return list(first.values())


def _batch_summaries(points: pa.Table) -> list[MetricSummary]:
    """What metric_summary would say of these points alone, computed with Arrow.

    Not with DuckDB: version 2.0 keeps ~0.5 KB of native memory for good after every grouping
    of a registered Arrow table (measured linear over 16,000 batches), and the live watcher
    summarises a batch twice a second. Same rules as ``_SUMMARY_SELECT``: ``last`` is the value
    at the highest (step, time), nulls skipped as ``arg_max`` does; min and max skip NaN;
    ``count`` counts every point.
    """
    keys = ["run_id", "key"]
    table = points.append_column("_ts", pc.fill_null(points.column("ts"), 0.0))
    ordered = table.sort_by([("run_id", "ascending"), ("key", "ascending"),
                             ("step", "ascending"), ("_ts", "ascending")])  # fmt: skip
    every = ordered.group_by(keys, use_threads=False).aggregate(
        [
            ("value", "last"),
            ("value", "count", pc.CountOptions(mode="all")),
            ("step", "min"),
            ("step", "max"),
            ("ts", "max"),
        ]
    )
    numbers = table.filter(pc.invert(pc.is_nan(table.column("value"))))
    extremes: dict[str, dict[tuple[str, str], tuple[float, int]]] = {}
    for name, order in (("min", "ascending"), ("max", "descending")):
        ranked = numbers.sort_by([("run_id", "ascending"), ("key", "ascending"), ("value", order)])
        first = ranked.group_by(keys, use_threads=False).aggregate(
            [("value", "first"), ("step", "first")]
        )
        extremes[name] = {
            (r["run_id"], r["key"]): (r["value_first"], r["step_first"]) for r in first.to_pylist()
        }
    out = []
    for r in every.to_pylist():
        group = (r["run_id"], r["key"])
        low, low_step = extremes["min"].get(group, (None, None))
        high, high_step = extremes["max"].get(group, (None, None))
        out.append(
            MetricSummary(
                run_id=r["run_id"],
                key=r["key"],
                last=r["value_last"],
                min=low,
                max=high,
                count=r["value_count"],
                first_step=r["step_min"],
                last_step=r["step_max"],
                min_step=low_step,
                max_step=high_step,
                last_time=r["ts_max"],
            )
        )
    return out


def _summary_table(rows: Sequence[MetricSummary]) -> pa.Table:
    """metric_summary rows as Arrow, in the table's column order."""
    ints = ("count", "first_step", "last_step", "min_step", "max_step")
    floats = ("last", "min", "max", "last_time")
    columns: dict[str, pa.Array] = {}
    for name in MetricSummary.__dataclass_fields__:
        values = [getattr(r, name) for r in rows]
        kind = pa.int64() if name in ints else pa.float64() if name in floats else pa.string()
        columns[name] = pa.array(values, kind)
    return pa.table(columns)


class StoreError(Exception):
    """The store file cannot be used (corrupt, not a DuckDB file, newer schema)."""


def default_store_path(root: Path) -> Path:
    return root / STORE_DIR / STORE_FILE


def _as_float(value: object) -> float | None:
    """The numeric reading of a param, so `params.lr < 0.01` compares numbers, not strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _param_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "None"
    return str(value)


@dataclass(frozen=True)
class RunQuery:
    """A WHERE fragment over ``runs r`` with its parameters, as produced by the filter language.

    The fragment is built from the parsed structure only; user text travels in ``params``.
    """

    where: str = "TRUE"
    params: tuple[Any, ...] = ()

    def and_(self, other: RunQuery) -> RunQuery:
        """Both filters at once (the runs screen adds an experiment to the typed filter)."""
        if other.where == "TRUE":
            return self
        if self.where == "TRUE":
            return other
        return RunQuery(f"({self.where}) AND ({other.where})", (*self.params, *other.params))

    @staticmethod
    def experiment(experiment_id: str) -> RunQuery:
        """Runs of one experiment, by its store id."""
        return RunQuery("r.experiment_id = ?", (experiment_id,))


class Store:
    """A DuckDB metadata store. Use :func:`open_store` to get one."""

    def __init__(self, path: Path | None, *, note: str | None = None, temp_dir: Path | None = None):
        self.path = path
        self.note = note
        self._temp_dir = temp_dir
        self._lock = threading.RLock()
        # Stored points deleted in the open transaction, by run: the keys, or None for all of
        # them (the attribute is None outside a transaction). See update_summaries.
        self._cut_histories: dict[str, set[str] | None] | None = None
        self._con = duckdb.connect(
            str(path) if path is not None else ":memory:",
            config={"default_block_size": str(BLOCK_SIZE)},
        )
        self._purge_freed_memory_in_background()
        try:
            self._migrate()
        except duckdb.Error as exc:
            self._con.close()
            raise StoreError(f"{path}: not a usable mltop store ({exc})") from exc

    # -- lifecycle -------------------------------------------------------------------------------

    def _purge_freed_memory_in_background(self) -> None:
        """Let DuckDB's allocator return freed pages to the system on its own threads.

        DuckDB's Linux build allocates through its own jemalloc, which purges a thread's freed
        pages only when that thread allocates again. A big import and the checkpoint after it
        (millions of points) free ~200 MB on worker threads that then sit idle: without this the
        process kept them resident for good (bench/store_memory.py). The setting is process-wide.
        """
        with contextlib.suppress(duckdb.Error):
            self._con.execute("SET allocator_background_threads = true")

    @property
    def is_temporary(self) -> bool:
        return self._temp_dir is not None or self.path is None

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self._con.close()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for another thread (one cursor per thread is DuckDB's safe pattern)."""
        return self._con.cursor()

    def schema_version(self) -> int:
        rows = self._con.execute("SELECT max(version) FROM schema_version").fetchall()
        row = rows[0] if rows else None
        return int(row[0]) if row and row[0] is not None else 0

    def _migrate(self) -> None:
        con = self._con
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied DOUBLE)")
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: store schema {current} is newer than this mltop ({SCHEMA_VERSION});"
                " upgrade mltop or delete the store (it is rebuilt from the sources)"
            )
        for number, statements in MIGRATIONS:
            if number <= current:
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                for statement in statements:
                    con.execute(
                        statement.format(
                            summary_select=_SUMMARY_SELECT.format(table="metrics", where="")
                        )
                    )
                con.execute("INSERT INTO schema_version VALUES (?, ?)", [number, time.time()])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file.

        DuckDB does this itself once the log reaches 16 MB; a long live session writing small
        batches calls it sooner, so the rows the log holds in memory do not pile up for hours.
        """
        with self._lock, contextlib.suppress(duckdb.Error):
            self._con.execute("CHECKPOINT")

    def memory_usage(self) -> str:
        """DuckDB's own account of the memory its buffers hold, as it prints it ("3.2 MiB")."""
        with self._lock:
            rows = self._con.execute("SELECT memory_usage FROM pragma_database_size()").fetchall()
        return str(rows[0][0]) if rows else "?"

    def memory_by_tag(self) -> str:
        """Where DuckDB's buffers are, by its own tags ("BASE_TABLE 2.3 MB, ...")."""
        with self._lock:
            rows = self._con.execute(
                "SELECT tag, memory_usage_bytes FROM duckdb_memory() "
                "WHERE memory_usage_bytes > 0 ORDER BY tag"
            ).fetchall()
        return ", ".join(f"{tag} {size / 1e6:.1f} MB" for tag, size in rows) or "none"

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all (also across SIGKILL)."""
        with self._lock:
            self._con.execute("BEGIN TRANSACTION")
            self._cut_histories = {}
            try:
                yield
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    self._con.execute("ROLLBACK")
                raise
            else:
                self._con.execute("COMMIT")
            finally:
                self._cut_histories = None

    def _with_ids(self, name: str, ids: Iterable[str]) -> None:
        table = pa.table({"id": pa.array(list(dict.fromkeys(ids)), pa.string())})
        self._con.register(name, table)

    @contextlib.contextmanager
    def _matching(self, column: str, ids: Iterable[str], name: str) -> Iterator[tuple[str, list]]:
        """A WHERE predicate "``column`` is one of ``ids``" and its parameters.

        Up to :data:`SMALL_ID_SET` ids are one list parameter (``list_contains``, a plain
        filter); more are registered as an Arrow table and semi-joined. The live watcher writes
        a handful of runs every half second, and DuckDB keeps about half a kilobyte of native
        memory per hash-join query (up to ~25 MB), so joins there showed up as steady growth.
        """
        wanted = [i for i in dict.fromkeys(ids) if i is not None]
        if len(wanted) <= SMALL_ID_SET:
            yield f"list_contains(?::VARCHAR[], {column})", [wanted]
            return
        self._with_ids(name, wanted)
        try:
            yield f"{column} IN (SELECT id FROM {name})", []
        finally:
            self._con.unregister(name)

    # -- files (incremental scanning) -------------------------------------------------------------

    def file_states(
        self, source: str | None = None, *, sources: Iterable[str] | None = None
    ) -> dict[str, FileState]:
        """Remembered state of every source file, or of one ``source``'s or some ``sources``'
        files, by path. (A live batch touches a few sources of a store that may know
        thousands: asking for those only keeps each batch small.)"""
        sql = 'SELECT path, size, mtime, inode, "offset", head, run_id FROM files'
        wanted = [source] if source is not None else sources
        with self._lock:
            if wanted is None:
                rows = self._con.execute(sql).fetchall()
            else:
                with self._matching("source", wanted, "_fs_src") as (where, args):
                    rows = self._con.execute(f"{sql} WHERE {where}", args).fetchall()
        return {
            row[0]: FileState(row[0], row[1], row[2], row[3], row[4], row[5] or "", row[6])
            for row in rows
        }

    def put_files(self, source: str | None, states: Sequence[FileState]) -> None:
        """Record file states; each state's own ``source`` wins over the ``source`` argument."""
        if not states:
            return
        table = pa.table(
            {
                "path": [s.path for s in states],
                "source": pa.array([s.source or source for s in states], pa.string()),
                "size": pa.array([s.size for s in states], pa.int64()),
                "mtime": pa.array([s.mtime for s in states], pa.float64()),
                "inode": pa.array([s.inode for s in states], pa.int64()),
                "offset": pa.array([s.offset for s in states], pa.int64()),
                "head": [s.head for s in states],
                "run_id": pa.array([s.run_id for s in states], pa.string()),
            }
        )
        paths = [st.path for st in states]
        with self._lock, self._matching("path", paths, "_put_paths") as (where, args):
            self._con.register("_new_files", table)
            try:
                self._con.execute(f"DELETE FROM files WHERE {where}", args)
                self._con.execute(
                    'INSERT INTO files (path, source, size, mtime, inode, "offset", head, run_id) '
                    'SELECT path, source, size, mtime, inode, "offset", head, run_id '
                    "FROM _new_files"
                )
            finally:
                self._con.unregister("_new_files")

    def delete_files(self, paths: Iterable[str]) -> None:
        paths = list(paths)
        if not paths:
            return
        with self._lock, self._matching("path", paths, "_gone_files") as (where, args):
            self._con.execute(f"DELETE FROM files WHERE {where}", args)

    # -- sources ----------------------------------------------------------------------------------

    def touch_sources(self, sources: Iterable[tuple[str, str]]) -> None:
        """Record (kind, location) of discovered sources with the time of this scan."""
        rows = list(dict.fromkeys(sources))
        if not rows:
            return
        now = time.time()
        table = pa.table(
            {
                "kind": [k for k, _ in rows],
                "location": [loc for _, loc in rows],
                "last_scan": [now] * len(rows),
            }
        )
        with self._lock:
            self._con.register("_seen", table)
            try:
                self._con.execute(
                    "UPDATE sources SET last_scan = s.last_scan FROM _seen s "
                    "WHERE sources.kind = s.kind AND sources.location = s.location"
                )
                self._con.execute(
                    "INSERT INTO sources (kind, location, last_scan) "
                    "SELECT kind, location, last_scan FROM _seen s WHERE NOT EXISTS "
                    "(SELECT 1 FROM sources x WHERE x.kind = s.kind AND x.location = s.location)"
                )
            finally:
                self._con.unregister("_seen")

    def sources(self) -> list[tuple[str, str]]:
        """Every recorded source as (kind, location): the watcher maps changed paths to them."""
        with self._lock:
            rows = self._con.execute("SELECT kind, location FROM sources").fetchall()
        return [(r[0], r[1]) for r in rows]

    def source_kinds(self) -> list[str]:
        with self._lock:
            rows = self._con.execute(
                "SELECT DISTINCT source_kind FROM runs ORDER BY source_kind"
            ).fetchall()
        return [r[0] for r in rows]

    def forget_sources_under(self, root: str, keep: Iterable[str]) -> int:
        """Drop runs, files and sources under ``root`` whose source was not seen in this scan.

        The store mirrors the folder: a run folder deleted on disk disappears from the table.
        Returns the number of runs removed.
        """
        prefix = root.rstrip(os.sep) + os.sep
        with self._lock:
            self._with_ids("_keep", keep)
            try:
                gone = [
                    r[0]
                    for r in self._con.execute(
                        "SELECT id FROM runs WHERE (source = ? OR starts_with(source, ?)) "
                        "AND source NOT IN (SELECT id FROM _keep)",
                        [root, prefix],
                    ).fetchall()
                ]
                self._con.execute(
                    "DELETE FROM files WHERE (source = ? OR starts_with(source, ?)) "
                    "AND source NOT IN (SELECT id FROM _keep)",
                    [root, prefix],
                )
                self._con.execute(
                    "DELETE FROM sources WHERE (location = ? OR starts_with(location, ?)) "
                    "AND location NOT IN (SELECT id FROM _keep)",
                    [root, prefix],
                )
                self._con.execute(
                    "DELETE FROM experiments WHERE (source = ? OR starts_with(source, ?)) "
                    "AND source NOT IN (SELECT id FROM _keep)",
                    [root, prefix],
                )
            finally:
                self._con.unregister("_keep")
            if gone:
                self.delete_runs(gone)
        return len(gone)

    # -- writes: experiments, runs, params, tags ---------------------------------------------------

    def put_experiments(self, experiments: Sequence[tuple[str, str, str, str | None, str]]) -> None:
        """Replace experiments given as (id, source_kind, source, native_id, name)."""
        if not experiments:
            return
        experiments = _first_per(experiments, lambda e: e[0])
        cols = list(zip(*experiments, strict=True))
        table = pa.table(
            {
                "id": pa.array(cols[0], pa.string()),
                "source_kind": pa.array(cols[1], pa.string()),
                "source": pa.array(cols[2], pa.string()),
                "native_id": pa.array(cols[3], pa.string()),
                "name": pa.array(cols[4], pa.string()),
            }
        )
        with self._lock, self._matching("id", cols[0], "_exp_ids") as (where, args):
            self._con.register("_new_exps", table)
            try:
                self._con.execute(f"DELETE FROM experiments WHERE {where}", args)
                self._con.execute(
                    "INSERT INTO experiments SELECT id, source_kind, source, native_id, name "
                    "FROM _new_exps"
                )
            finally:
                self._con.unregister("_new_exps")

    def put_runs(
        self,
        source: str | None,
        runs: Sequence[RunRecord],
        params: Iterable[tuple[str, str, object]] = (),
        tags: Iterable[tuple[str, str, object]] = (),
    ) -> None:
        """Replace these runs with their params and tags (idempotent: same ids, same rows).

        ``params`` and ``tags`` are (run_id, key, value) triples; params keep their text and, when
        it parses, their number. ``source`` is the discovered source of all these runs; when None,
        each run's own ``source`` (or else its location) is used.
        """
        if not runs:
            return
        runs = _first_per(runs, lambda r: r.id)
        fields = [
            "id", "source_kind", "location", "native_id", "experiment_id", "name", "status",
            "lifecycle", "start_time", "end_time", "parent_id", "git_commit", "host",
            "artifact_uri", "error", "updated",
        ]  # fmt: skip
        data: dict[str, list[Any]] = {f: [] for f in fields}
        for run in runs:
            for f in fields:
                value = getattr(run, f)
                data[f].append(str(value) if f == "status" else value)
        floats = {"start_time", "end_time", "updated"}
        table = pa.table(
            {f: pa.array(v, pa.float64() if f in floats else pa.string()) for f, v in data.items()}
            | {"source": pa.array([source or r.source or r.location for r in runs], pa.string())}
        )
        param_rows = _first_per(params, lambda p: (p[0], p[1]))
        param_table = pa.table(
            {
                "run_id": pa.array([p[0] for p in param_rows], pa.string()),
                "key": pa.array([p[1] for p in param_rows], pa.string()),
                "value": pa.array([_param_text(p[2]) for p in param_rows], pa.string()),
                "num": pa.array([_as_float(p[2]) for p in param_rows], pa.float64()),
            }
        )
        tag_rows = _first_per(tags, lambda t: (t[0], t[1]))
        tag_table = pa.table(
            {
                "run_id": pa.array([t[0] for t in tag_rows], pa.string()),
                "key": pa.array([t[1] for t in tag_rows], pa.string()),
                "value": pa.array([_param_text(t[2]) for t in tag_rows], pa.string()),
            }
        )
        cols = ", ".join(["source", *fields])
        ids = [r.id for r in runs]
        with (
            self._lock,
            self._matching("run_id", ids, "_run_ids") as (by_run, args),
            self._matching("id", ids, "_run_ids2") as (by_id, id_args),
        ):
            con = self._con
            con.register("_new_runs", table)
            con.register("_new_params", param_table)
            con.register("_new_tags", tag_table)
            try:
                for name in ("params", "tags"):
                    con.execute(f"DELETE FROM {name} WHERE {by_run}", args)
                con.execute(f"DELETE FROM runs WHERE {by_id}", id_args)
                con.execute(f"INSERT INTO runs ({cols}) SELECT {cols} FROM _new_runs")
                con.execute("INSERT INTO params SELECT run_id, key, value, num FROM _new_params")
                con.execute("INSERT INTO tags SELECT run_id, key, value FROM _new_tags")
            finally:
                for name in ("_new_runs", "_new_params", "_new_tags"):
                    con.unregister(name)

    def set_run_status(
        self, run_id: str, status: str, end_time: float | None, updated: float | None
    ) -> None:
        with self._lock:
            self._con.execute(
                "UPDATE runs SET status = ?, end_time = ?, updated = ? WHERE id = ?",
                [status, end_time, updated, run_id],
            )

    def delete_runs(self, run_ids: Iterable[str]) -> None:
        ids = list(run_ids)
        with (
            self._lock,
            self._matching("run_id", ids, "_gone_runs") as (by_run, args),
            self._matching("id", ids, "_gone_ids") as (by_id, id_args),
        ):
            self._note_cut(ids, None)
            for table in ("params", "tags", "metrics", "metric_summary", "logs", "files"):
                self._con.execute(f"DELETE FROM {table} WHERE {by_run}", args)
            self._con.execute(f"DELETE FROM runs WHERE {by_id}", id_args)

    # -- writes: metric points ---------------------------------------------------------------------

    def add_points(self, points: pa.Table) -> int:
        """Append metric points (columns of :data:`POINTS_SCHEMA`). Returns rows added."""
        if points.num_rows == 0:
            return 0
        points = points.select([f.name for f in POINTS_SCHEMA]).cast(POINTS_SCHEMA)
        with self._lock:
            self._con.register("_new_points", points)
            try:
                self._con.execute(
                    "INSERT INTO metrics SELECT run_id, key, step, ts, value FROM _new_points"
                )
            finally:
                self._con.unregister("_new_points")
        return points.num_rows

    def add_new_points(self, points: pa.Table) -> int:
        """Append only the points the store does not hold yet; returns rows added.

        For sources that can only re-send a whole history (a tracking server's API): a point
        counts as held when a stored one of the same run and key has the same step, time and
        value (NaN equals NaN, a missing time equals a missing time). Repeats are matched one to
        one, so a history that really logs the same point twice keeps both copies.
        """
        if points.num_rows == 0:
            return 0
        points = points.select([f.name for f in POINTS_SCHEMA]).cast(POINTS_SCHEMA)
        same = (
            "o.run_id = n.run_id AND o.key = n.key AND o.step = n.step "
            "AND o.ts IS NOT DISTINCT FROM n.ts AND o.value IS NOT DISTINCT FROM n.value "
            "AND o.k = n.k"
        )
        with self._lock:
            self._con.register("_cand_points", points)
            try:
                rows = self._con.execute(
                    f"""
                    INSERT INTO metrics
                    WITH n AS (
                        SELECT run_id, key, step, ts, value, row_number() OVER
                            (PARTITION BY run_id, key, step, ts, value) AS k
                        FROM _cand_points
                    ),
                    o AS (
                        SELECT run_id, key, step, ts, value, row_number() OVER
                            (PARTITION BY run_id, key, step, ts, value) AS k
                        FROM metrics
                        WHERE run_id IN (SELECT DISTINCT run_id FROM _cand_points)
                          AND key IN (SELECT DISTINCT key FROM _cand_points)
                    )
                    SELECT n.run_id, n.key, n.step, n.ts, n.value FROM n
                    WHERE NOT EXISTS (SELECT 1 FROM o WHERE {same})
                    """
                ).fetchall()
            finally:
                self._con.unregister("_cand_points")
        return int(rows[0][0]) if rows else 0

    def delete_points(self, run_ids: Iterable[str], keys: Iterable[str] | None = None) -> None:
        """Forget histories of these runs (all keys, or only ``keys``) before a re-read."""
        run_ids = list(run_ids)
        keys = None if keys is None else list(keys)
        if keys == []:
            return
        with self._lock, self._matching("run_id", run_ids, "_pt_runs") as (by_run, args):
            self._note_cut(run_ids, keys)
            if keys is None:
                self._con.execute(f"DELETE FROM metrics WHERE {by_run}", args)
            else:
                with self._matching("key", keys, "_pt_keys") as (by_key, key_args):
                    self._con.execute(
                        f"DELETE FROM metrics WHERE {by_run} AND {by_key}", args + key_args
                    )

    def _note_cut(self, run_ids: Iterable[str], keys: Iterable[str] | None) -> None:
        """Remember, for update_summaries, that these runs' points (or these keys') were deleted
        in the open transaction. Called with the lock held."""
        cut = self._cut_histories
        if cut is None:
            return
        for run_id in run_ids:
            noted = cut.get(run_id, set())
            cut[run_id] = None if keys is None or noted is None else noted | set(keys)

    def update_summaries(self, run_ids: Iterable[str], appended: Sequence[pa.Table]) -> None:
        """Bring the summaries of ``run_ids`` up to date after their points were written.

        ``appended`` are the tables given to :meth:`add_points` in this transaction. Following a
        live run, summarising its whole history again every batch costs ~70 ms a batch at a
        million points; appended points fold into the stored summaries instead
        (:meth:`fold_into_summaries`). Folding is only right while every stored point is still
        there, so a run any of whose points were deleted in this transaction (a history read
        anew, a metric re-read, a run replaced) is summarised from its history, and so is every
        run when this is called outside :meth:`transaction` (no one can tell what was deleted).
        A run with neither deleted nor appended points keeps its summaries: they still match.
        """
        wanted = set(run_ids)
        cut = self._cut_histories
        if cut is None:
            self.refresh_summaries(sorted(wanted))
            return
        whole = {r for r in wanted if r in cut and cut[r] is None}
        keyed = {r: keys for r in wanted - whole if (keys := cut.get(r))}
        self.refresh_summaries(sorted(whole))
        for run_id, keys in sorted(keyed.items()):
            self.refresh_summaries([run_id], sorted(keys))
        tables = [t for t in appended if t.num_rows]
        if not tables or not wanted - whole:
            return  # a first import reads every history anew: nothing to fold, nothing to cast
        foldable = pa.array(sorted(wanted - whole), pa.string())
        points = pa.concat_tables(
            [t.select([f.name for f in POINTS_SCHEMA]).cast(POINTS_SCHEMA) for t in tables]
        )
        keep = pc.is_in(points.column("run_id"), value_set=foldable)
        for run_id, keys in keyed.items():  # those keys were summarised from their histories
            redone = pc.and_(
                pc.equal(points.column("run_id"), run_id),
                pc.is_in(points.column("key"), value_set=pa.array(sorted(keys), pa.string())),
            )
            keep = pc.and_(keep, pc.invert(redone))
        self.fold_into_summaries(points.filter(keep))

    def refresh_summaries(self, run_ids: Iterable[str], keys: Iterable[str] | None = None) -> None:
        """Recompute metric_summary for these runs (all their keys, or only ``keys``) from their
        full histories, in SQL."""
        run_ids = list(run_ids)
        if not run_ids:
            return
        with contextlib.ExitStack() as stack:
            stack.enter_context(self._lock)
            where, args = stack.enter_context(self._matching("run_id", run_ids, "_sum_runs"))
            if keys is not None:
                by_key, key_args = stack.enter_context(self._matching("key", keys, "_sum_keys"))
                where, args = f"{where} AND {by_key}", args + key_args
            self._con.execute(f"DELETE FROM metric_summary WHERE {where}", args)
            self._con.execute(
                "INSERT INTO metric_summary "
                + _SUMMARY_SELECT.format(table="metrics", where=f"WHERE {where}"),
                args,
            )

    def fold_into_summaries(self, points: pa.Table) -> None:
        """Bring metric_summary up to date with points just appended to runs' histories.

        :meth:`refresh_summaries` reads whole histories: a live run with a million points
        would cost ~50 ms every batch. Appended points are summarised alone and folded into
        the stored rows in Python (a few rows per run); a run whose new points share the
        highest step with its stored ones (which one is "last" then depends on times the
        summary does not keep) is recomputed from its history instead.
        """
        if points.num_rows == 0:
            return
        points = points.select([f.name for f in POINTS_SCHEMA]).cast(POINTS_SCHEMA)
        fresh = _batch_summaries(points)
        run_ids = list(dict.fromkeys(r.run_id for r in fresh))
        with self._lock:
            rows = {
                (run_id, key): summary
                for run_id, by_key in self.summaries(run_ids).items()
                for key, summary in by_key.items()
            }
            recompute: set[str] = set()
            for new in fresh:
                old = rows.get((new.run_id, new.key))
                merged = new if old is None else _fold(old, new)
                if merged is None:
                    recompute.add(new.run_id)
                else:
                    rows[(new.run_id, new.key)] = merged
            folded = [r for r in rows.values() if r.run_id not in recompute]
            with self._matching("run_id", set(run_ids) - recompute, "_fold_done") as (w, a):
                self._con.execute(f"DELETE FROM metric_summary WHERE {w}", a)
            if folded:
                self._con.register("_folded", _summary_table(folded))
                try:
                    self._con.execute("INSERT INTO metric_summary SELECT * FROM _folded")
                finally:
                    self._con.unregister("_folded")
            if recompute:
                self.refresh_summaries(recompute)

    # -- writes: logs ------------------------------------------------------------------------------

    def put_logs(self, logs: Mapping[str, Sequence[str]] | str, paths: Sequence[str] = ()) -> None:
        """Replace the log files of runs: ``put_logs({run_id: [path, ...]})`` for a batch, or
        ``put_logs(run_id, [path, ...])`` for one run."""
        if isinstance(logs, str):
            logs = {logs: list(paths)}
        if not logs:
            return
        pairs = [(run_id, path) for run_id, paths in logs.items() for path in paths]
        table = pa.table(
            {
                "run_id": pa.array([p[0] for p in pairs], pa.string()),
                "path": pa.array([p[1] for p in pairs], pa.string()),
            }
        )
        with self._lock, self._matching("run_id", logs.keys(), "_log_runs") as (where, args):
            self._con.register("_new_logs", table)
            try:
                self._con.execute(f"DELETE FROM logs WHERE {where}", args)
                self._con.execute("INSERT INTO logs SELECT run_id, path FROM _new_logs")
            finally:
                self._con.unregister("_new_logs")

    def touch_log_runs(self, mtimes: Mapping[str, float]) -> list[str]:
        """Raise ``updated`` of the runs owning these log files to the files' mtimes.

        A job that only prints (no new metrics) is still alive; without this its run would turn
        stale while its log grows. Returns the ids of the runs touched.
        """
        if not mtimes:
            return []
        table = pa.table(
            {
                "path": pa.array(list(mtimes), pa.string()),
                "mtime": pa.array(list(mtimes.values()), pa.float64()),
            }
        )
        with self._lock:
            self._con.register("_log_mtimes", table)
            try:
                rows = self._con.execute(
                    "UPDATE runs SET updated = t.mtime FROM (SELECT l.run_id, "
                    "max(m.mtime) AS mtime FROM logs l JOIN _log_mtimes m ON l.path = m.path "
                    "GROUP BY l.run_id) t "
                    "WHERE runs.id = t.run_id AND coalesce(runs.updated, 0) < t.mtime "
                    "RETURNING runs.id"
                ).fetchall()
            finally:
                self._con.unregister("_log_mtimes")
        return [r[0] for r in rows]

    def touch_runs(
        self, mtimes: Mapping[str, float], *, older_than: float = UPDATED_RESOLUTION
    ) -> list[str]:
        """Raise ``updated`` of these runs to the given times, when it is more than
        ``older_than`` seconds behind (never lower it).

        The cheap write for a run whose metrics grew while its metadata stayed as it was: one
        UPDATE per :data:`SMALL_ID_SET` runs instead of rewriting the runs. A job logging every
        second would otherwise update its row every batch, and each DuckDB UPDATE keeps version
        memory; staleness is judged in minutes, so seconds of lag cost nothing. Returns ids
        touched.
        """
        items = [(run_id, float(t)) for run_id, t in mtimes.items() if t is not None]
        touched: list[str] = []
        with self._lock:
            for start in range(0, len(items), SMALL_ID_SET):
                chunk = items[start : start + SMALL_ID_SET]
                ids = [c[0] for c in chunk]
                times = [c[1] for c in chunk]
                new_time = "list_extract(?::DOUBLE[], list_position(?::VARCHAR[], id))"
                rows = self._con.execute(
                    f"UPDATE runs SET updated = {new_time} "
                    f"WHERE list_contains(?::VARCHAR[], id) "
                    f"AND coalesce(updated, 0) < {new_time} - ? RETURNING id",
                    [times, ids, ids, times, ids, older_than],
                ).fetchall()
                touched.extend(r[0] for r in rows)
        return touched

    def log_paths(self, run_ids: Iterable[str]) -> dict[str, list[str]]:
        """The log files recorded for several runs: {run_id: [path, ...]} (sorted)."""
        out: dict[str, list[str]] = {}
        with self._lock, self._matching("run_id", run_ids, "_lp_runs") as (where, args):
            rows = self._con.execute(
                f"SELECT run_id, path FROM logs WHERE {where} ORDER BY path", args
            ).fetchall()
        for run_id, path in rows:
            out.setdefault(run_id, []).append(path)
        return out

    def logs(self, run_id: str) -> list[LogFile]:
        with self._lock:
            rows = self._con.execute(
                "SELECT run_id, path FROM logs WHERE run_id = ? ORDER BY path", [run_id]
            ).fetchall()
        return [LogFile(*r) for r in rows]

    # -- reads -------------------------------------------------------------------------------------

    def _runs_from(self, rows: Sequence[tuple[Any, ...]]) -> list[Run]:
        return [Run(*row) for row in rows]

    def runs(
        self,
        query: RunQuery | None = None,
        *,
        order: str = "start",
        descending: bool = True,
        limit: int | None = None,
    ) -> list[Run]:
        """Runs matching a filter, newest first by default.

        ``order`` is an attribute (name, start, end, status, experiment, source, duration) or
        ``metrics.KEY`` (last value), ``metrics.KEY.min``/``.max``, or ``params.KEY`` (numbers
        before text).
        """
        query = query or RunQuery()
        order_exprs, order_args = order_clause(order)
        direction = "DESC" if descending else "ASC"
        order_sql = ", ".join(f"{expr} {direction} NULLS LAST" for expr in order_exprs)
        sql = (
            f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM} WHERE {query.where} "
            f"ORDER BY {order_sql}, r.name, r.id"
        )
        args = [*query.params, *order_args]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            rows = self._con.execute(sql, args).fetchall()
        return self._runs_from(rows)

    def run(self, run_id: str) -> Run | None:
        with self._lock:
            row = self._con.execute(
                f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM} WHERE r.id = ?", [run_id]
            ).fetchall()
        return Run(*row[0]) if row else None

    def find_runs(self, ref: str) -> list[Run]:
        """Runs whose name is ``ref`` exactly, else whose id starts with ``ref``."""
        with self._lock:
            rows = self._con.execute(
                f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM} WHERE r.name = ? ORDER BY r.start_time",
                [ref],
            ).fetchall()
            if not rows:
                rows = self._con.execute(
                    f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM} WHERE starts_with(r.id, ?) "
                    "OR r.native_id = ? ORDER BY r.start_time",
                    [ref.lower(), ref],
                ).fetchall()
        return self._runs_from(rows)

    def children(self, run_id: str) -> list[Run]:
        with self._lock:
            rows = self._con.execute(
                f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM} WHERE r.parent_id = ? ORDER BY r.name",
                [run_id],
            ).fetchall()
        return self._runs_from(rows)

    def run_ids_of_source(self, source: str) -> set[str]:
        """Ids of the runs a source produced, to find the ones that vanished from it."""
        with self._lock:
            rows = self._con.execute("SELECT id FROM runs WHERE source = ?", [source]).fetchall()
        return {r[0] for r in rows}

    def count_runs(self, query: RunQuery | None = None) -> int:
        query = query or RunQuery()
        with self._lock:
            row = self._con.execute(
                f"SELECT count(*) FROM {_RUN_FROM} WHERE {query.where}", list(query.params)
            ).fetchall()
        return int(row[0][0]) if row else 0

    def params(self, run_id: str) -> dict[str, str]:
        with self._lock:
            rows = self._con.execute(
                "SELECT key, value FROM params WHERE run_id = ? ORDER BY key", [run_id]
            ).fetchall()
        return dict(rows)

    def tags(self, run_id: str) -> dict[str, str]:
        with self._lock:
            rows = self._con.execute(
                "SELECT key, value FROM tags WHERE run_id = ? ORDER BY key", [run_id]
            ).fetchall()
        return dict(rows)

    def params_for(self, run_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Params of several runs at once: {run_id: {key: value}}."""
        out: dict[str, dict[str, str]] = {r: {} for r in run_ids}
        with self._lock, self._matching("run_id", run_ids, "_pf_runs") as (where, args):
            rows = self._con.execute(
                f"SELECT run_id, key, value FROM params WHERE {where} ORDER BY key",
                args,
            ).fetchall()
        for run_id, key, value in rows:
            out[run_id][key] = value
        return out

    def summaries(self, run_ids: Sequence[str]) -> dict[str, dict[str, MetricSummary]]:
        """Metric summaries of several runs: {run_id: {key: summary}}."""
        out: dict[str, dict[str, MetricSummary]] = {r: {} for r in run_ids}
        with self._lock, self._matching("run_id", run_ids, "_ms_runs") as (where, args):
            rows = self._con.execute(
                "SELECT run_id, key, last, min, max, count, first_step, last_step, "
                "min_step, max_step, last_time FROM metric_summary "
                f"WHERE {where} ORDER BY key",
                args,
            ).fetchall()
        for row in rows:
            out[row[0]][row[1]] = MetricSummary(*row)
        return out

    def param_keys(self) -> list[str]:
        with self._lock:
            return [
                r[0]
                for r in self._con.execute(
                    "SELECT key FROM params GROUP BY key ORDER BY count(*) DESC, key"
                ).fetchall()
            ]

    def metric_keys(self) -> list[str]:
        with self._lock:
            return [
                r[0]
                for r in self._con.execute(
                    "SELECT key FROM metric_summary GROUP BY key ORDER BY count(*) DESC, key"
                ).fetchall()
            ]

    def experiments(self) -> list[Experiment]:
        with self._lock:
            rows = self._con.execute(
                "SELECT e.id, e.name, e.source_kind, count(r.id) FROM experiments e "
                "LEFT JOIN runs r ON r.experiment_id = e.id "
                "GROUP BY e.id, e.name, e.source_kind ORDER BY e.name"
            ).fetchall()
        return [Experiment(*r) for r in rows]

    def history(self, run_id: str, key: str) -> pa.Table:
        """The full history of one metric, ordered by step (step, ts, value)."""
        with self._lock:
            return self._con.sql(
                "SELECT step, ts, value FROM metrics WHERE run_id = ? AND key = ? "
                "ORDER BY step, ts",
                params=[run_id, key],
            ).to_arrow_table()

    def point_count(self, run_id: str | None = None) -> int:
        with self._lock:
            if run_id is None:
                row = self._con.execute("SELECT count(*) FROM metrics").fetchall()
            else:
                row = self._con.execute(
                    "SELECT count(*) FROM metrics WHERE run_id = ?", [run_id]
                ).fetchall()
        return int(row[0][0]) if row else 0

    # -- reads for the runs browser ----------------------------------------------------------------

    def runs_table(
        self,
        query: RunQuery | None = None,
        *,
        attributes: Sequence[str] | None = None,
        params: Sequence[str] = (),
        metrics: Sequence[tuple[str, str]] = (),
        order: tuple[str, ...] = ("attr", "start"),
        descending: bool = True,
        limit: int | None = None,
        stale_before: float | None = None,
    ) -> pa.Table:
        """The runs matching ``query`` as one Arrow table, sorted in SQL, for the runs screen.

        Every row carries ``id``, ``parent_id``, ``name`` and ``state`` (the status in lower
        case, ``stale`` for a RUNNING run silent since before ``stale_before``), then the
        requested ``attributes`` (default: all of :data:`RUNS_TABLE_ATTRIBUTES`), one column per
        param (text, named ``params.KEY``) and one per metric aggregate (``metrics`` holds
        ``(key, aggregate)`` pairs, aggregate one of :data:`RUNS_TABLE_AGGREGATES`; named
        ``metrics.KEY.AGG``, the aggregate always spelled out so no key can be mistaken for one).

        ``order`` is ``("attr", NAME)`` (name, start, duration, status, ...), ``("param", KEY)``
        (numbers before text) or ``("metric", KEY, AGG)``; NaN sorts with the missing values.
        Ties fall back to name and id, so the order is stable between reloads.

        Only the columns asked for cross into Arrow: for 100,000 runs each string column costs
        milliseconds, and the filter is applied before any param or metric is joined.
        """
        query = query or RunQuery()
        attrs = list(RUNS_TABLE_ATTRIBUTES if attributes is None else attributes)
        for name in attrs:
            if name not in RUNS_TABLE_ATTRIBUTES:
                raise ValueError(f"unknown run attribute {name!r}")
        metric_cols = list(metrics)
        for _, agg in metric_cols:
            if agg not in RUNS_TABLE_AGGREGATES:
                raise ValueError(f"unknown metric aggregate {agg!r}")
        stale = "FALSE" if stale_before is None else "coalesce(r.updated, r.start_time) < ?"
        base = [
            "r.id", "r.parent_id", "r.name",
            "CASE WHEN upper(r.status) = 'RUNNING' AND coalesce(" + stale + ", FALSE) "
            "THEN 'stale' ELSE lower(coalesce(r.status, 'FINISHED')) END AS state",
        ]  # fmt: skip
        base_args: list[Any] = [] if stale_before is None else [stale_before]
        base += [f"{RUNS_TABLE_ATTRIBUTES[name]} AS {name}" for name in attrs]
        names = ["id", "parent_id", "name", "state", *attrs]
        select = [f"b.{n}" for n in names]
        joins: list[str] = []
        join_args: list[Any] = []
        # Keys travel as parameters; aliases are positional, never built from user text.
        for i, key in enumerate(params):
            joins.append(
                f"LEFT JOIN (SELECT run_id, value FROM params WHERE key = ?) p{i} "
                f"ON p{i}.run_id = b.id"
            )
            join_args.append(key)
            select.append(f"p{i}.value")
            names.append(f"params.{key}")
        for i, (key, agg) in enumerate(metric_cols):
            joins.append(
                f"LEFT JOIN (SELECT run_id, {agg} AS v FROM metric_summary WHERE key = ?) m{i} "
                f"ON m{i}.run_id = b.id"
            )
            join_args.append(key)
            select.append(f"m{i}.v")
            names.append(f"metrics.{key}.{agg}")
        kind = order[0] if order else "attr"
        if kind == "attr":
            name = order[1] if len(order) > 1 else "start"
            attribute_order = {**_ATTRIBUTE_ORDER, **_BROWSER_ORDER}
            if name not in attribute_order:
                raise ValueError(f"cannot sort by {name!r}")
            base.append(f"{attribute_order[name]} AS _o0")
            order_exprs = ["b._o0"]
        elif kind == "param" and len(order) == 2:
            joins.append(
                "LEFT JOIN (SELECT run_id, num, value FROM params WHERE key = ?) po "
                "ON po.run_id = b.id"
            )
            join_args.append(order[1])
            order_exprs = ["po.num", "po.value"]
        elif kind == "metric" and len(order) == 3 and order[2] in RUNS_TABLE_AGGREGATES:
            joins.append(
                f"LEFT JOIN (SELECT run_id, CASE WHEN isnan({order[2]}) THEN NULL "
                f"ELSE {order[2]} END AS v FROM metric_summary WHERE key = ?) mo "
                "ON mo.run_id = b.id"
            )
            join_args.append(order[1])
            order_exprs = ["mo.v"]
        else:
            raise ValueError(f"cannot sort by {order!r}")
        direction = "DESC" if descending else "ASC"
        order_sql = ", ".join(f"{expr} {direction} NULLS LAST" for expr in order_exprs)
        sql = (
            f"WITH b AS (SELECT {', '.join(base)} FROM {_RUN_FROM} WHERE {query.where}) "
            f"SELECT {', '.join(select)} FROM b {' '.join(joins)} "
            f"ORDER BY {order_sql}, b.name, b.id"
        )
        args = [*base_args, *query.params, *join_args]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            table = self._con.sql(sql, params=args).to_arrow_table()
        return table.rename_columns(names)

    def param_key_stats(self) -> list[tuple[str, int, int]]:
        """(key, runs having it, distinct values) per param key, most common first.

        The runs screen shows params that tell runs apart: a key with one value everywhere
        says nothing in a column.
        """
        with self._lock:
            rows = self._con.execute(
                "SELECT key, count(*) AS n, count(DISTINCT value) AS d FROM params "
                "GROUP BY key ORDER BY n DESC, key"
            ).fetchall()
        return [(r[0], int(r[1]), int(r[2])) for r in rows]

    def run_stats(self, stale_before: float) -> dict[str, Any]:
        """Counts for the runs screen's header: total, running, stale and runs per source kind.

        A RUNNING run whose last sign of life (``updated``, else its start) is older than
        ``stale_before`` (epoch seconds) counts as stale, not running: its job most likely died
        without writing a final status.
        """
        with self._lock:
            rows = self._con.execute(
                "SELECT source_kind, count(*), "
                "count(*) FILTER (WHERE upper(status) = 'RUNNING' "
                "  AND NOT coalesce(coalesce(updated, start_time) < ?, FALSE)), "
                "count(*) FILTER (WHERE upper(status) = 'RUNNING' "
                "  AND coalesce(coalesce(updated, start_time) < ?, FALSE)) "
                "FROM runs GROUP BY source_kind ORDER BY source_kind",
                [stale_before, stale_before],
            ).fetchall()
        return {
            "total": sum(int(r[1]) for r in rows),
            "running": sum(int(r[2]) for r in rows),
            "stale": sum(int(r[3]) for r in rows),
            "by_kind": {r[0]: int(r[1]) for r in rows},
        }

    def history_buckets(self, run_id: str, key: str, buckets: int, x: str = "step") -> pa.Table:
        """One metric's history cut into at most ``buckets`` equal slices of x, in SQL.

        A chart ``buckets`` dots wide draws one slice per dot column; keeping each slice's min
        and max (not a sample) means a single spike among a million points stays visible.
        ``x`` is ``"step"`` or ``"time"`` (epoch seconds; points without a time are left out).

        Columns: bucket (0..buckets-1, proportional to x), x_min, x_max, y_min, y_max, y_mean
        (of finite values only; NaN when the slice has none, never null, so the columns convert
        to numpy without copies), y_last (value at the slice's highest x, NaN kept), n (points),
        nonfinite (NaN/inf points).
        """
        columns = {"step": "CAST(step AS DOUBLE)", "time": "ts"}
        if x not in columns:
            raise ValueError(f"x must be 'step' or 'time', not {x!r}")
        buckets = max(1, int(buckets))
        # Non-finite values become NULL in fy, so the plain aggregates skip them (cheaper than
        # FILTER clauses: this query reads every point of the history).
        sql = f"""
            WITH pts AS (
                SELECT {columns[x]} AS x, value AS y,
                       CASE WHEN isfinite(value) THEN value END AS fy
                FROM metrics
                WHERE run_id = ? AND key = ? AND {columns[x]} IS NOT NULL
            ),
            span AS (SELECT min(x) AS lo, max(x) AS hi FROM pts)
            SELECT CASE WHEN span.hi > span.lo
                        THEN least(CAST(floor((x - span.lo) / (span.hi - span.lo) * ?) AS BIGINT),
                                   ? - 1)
                        ELSE 0 END AS bucket,
                   min(x) AS x_min, max(x) AS x_max,
                   coalesce(min(fy), 'NaN'::DOUBLE) AS y_min,
                   coalesce(max(fy), 'NaN'::DOUBLE) AS y_max,
                   coalesce(avg(fy), 'NaN'::DOUBLE) AS y_mean,
                   arg_max(y, x) AS y_last,
                   count(*) AS n,
                   count(*) - count(fy) AS nonfinite
            FROM pts, span
            GROUP BY bucket ORDER BY bucket
        """
        with self._lock:
            return self._con.sql(sql, params=[run_id, key, buckets, buckets]).to_arrow_table()

    def table_counts(self) -> dict[str, int]:
        """Row counts of every table: for tests and `mltop ingest --verbose`."""
        out = {}
        with self._lock:
            for table in (
                "sources", "files", "experiments", "runs", "params", "tags", "metrics",
                "metric_summary", "logs",
            ):  # fmt: skip
                row = self._con.execute(f"SELECT count(*) FROM {table}").fetchall()
                out[table] = int(row[0][0]) if row else 0
        return out

    # -- reads for comparing runs (diff, overlay) --------------------------------------------------

    def runs_by_id(self, run_ids: Sequence[str]) -> dict[str, Run]:
        """Several runs by id in one query: {run_id: Run}; unknown ids are absent."""
        with self._lock, self._matching("r.id", run_ids, "_rb_runs") as (where, args):
            rows = self._con.execute(
                f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM} WHERE {where}", args
            ).fetchall()
        return {row[0]: Run(*row) for row in rows}

    # -- reads for linking pipelines to runs -------------------------------------------------------

    def runs_at_commits(self, shas: Sequence[str]) -> dict[str, list[Run]]:
        """Runs logged at each commit, newest first: {sha: [Run]} (every sha is a key).

        Either side may be abbreviated: a short ``sha`` matches the full commits it starts
        (``a1b2c3d``), and a full ``sha`` matches a run that recorded a short one (at least 7
        characters). Case is ignored, as git's hex is.
        """
        wanted = [s.strip().lower() for s in shas if s and s.strip()]
        out: dict[str, list[Run]] = {s: [] for s in shas}
        if not wanted:
            return out
        with self._lock:
            self._with_ids("_commits", wanted)
            try:
                rows = self._con.execute(
                    f"SELECT c.id, {_RUN_COLUMNS} FROM {_RUN_FROM} "
                    "JOIN _commits c ON starts_with(lower(r.git_commit), c.id) "
                    "OR (length(r.git_commit) >= 7 AND starts_with(c.id, lower(r.git_commit))) "
                    "ORDER BY r.start_time DESC NULLS LAST, r.name, r.id"
                ).fetchall()
            finally:
                self._con.unregister("_commits")
        by_lower: dict[str, list[Run]] = defaultdict(list)
        for row in rows:
            by_lower[row[0]].append(Run(*row[1:]))
        for sha in shas:
            out[sha] = list(by_lower.get(sha.strip().lower(), [])) if sha else []
        return out

    def runs_under(self, folders: Sequence[str]) -> dict[str, list[Run]]:
        """Runs whose location is each folder or inside it, newest first: {folder: [Run]}."""
        out: dict[str, list[Run]] = {f: [] for f in folders}
        wanted = [f.rstrip("/") or "/" for f in folders if f]
        if not wanted:
            return out
        with self._lock:
            self._with_ids("_folders", wanted)
            try:
                rows = self._con.execute(
                    f"SELECT f.id, {_RUN_COLUMNS} FROM {_RUN_FROM} "
                    "JOIN _folders f ON r.location = f.id OR starts_with(r.location, "
                    "CASE WHEN f.id = '/' THEN '/' ELSE f.id || '/' END) "
                    "ORDER BY r.start_time DESC NULLS LAST, r.name, r.id"
                ).fetchall()
            finally:
                self._con.unregister("_folders")
        by_folder: dict[str, list[Run]] = defaultdict(list)
        for row in rows:
            by_folder[row[0]].append(Run(*row[1:]))
        for folder in folders:
            out[folder] = list(by_folder.get(folder.rstrip("/") or "/", [])) if folder else []
        return out

    def param_values(
        self, run_ids: Sequence[str]
    ) -> dict[str, dict[str, tuple[str, float | None]]]:
        """Params of several runs with their numeric reading: {run_id: {key: (text, number)}}.

        A diff needs both: equality is decided on the text, a delta only when both are numbers.
        """
        out: dict[str, dict[str, tuple[str, float | None]]] = {r: {} for r in run_ids}
        with self._lock, self._matching("run_id", run_ids, "_pv_runs") as (where, args):
            rows = self._con.execute(
                f"SELECT run_id, key, value, num FROM params WHERE {where} ORDER BY key",
                args,
            ).fetchall()
        for run_id, key, value, num in rows:
            out[run_id][key] = (value, num)
        return out

    def overlay_points(
        self,
        run_ids: Sequence[str],
        key: str,
        *,
        x: str = "step",
        buckets: int = 200,
        x_range: tuple[float | None, float | None] = (None, None),
    ) -> pa.Table:
        """One metric of several runs on a common x axis, at most ``buckets`` points per run.

        ``x`` is ``"step"``, ``"time"`` (the point's epoch seconds) or ``"relative"`` (seconds
        since the run's start, else since its first point). Buckets split the x range shared by
        all runs (``x_range`` narrows it, for zooming) into equal widths, so every run is sampled
        at the same horizontal resolution; a run with no more points than ``buckets`` keeps each
        point. A bucket's ``y`` is the mean of its finite values (NaN or ±inf when it has none),
        ``y_min``/``y_max`` its extremes, ``step`` its last step.

        Columns: ord (position in ``run_ids``), run_id, x, y, y_min, y_max, step, n (points in
        the bucket), nonfinite, total (points of the run for ``key``), placed (those with an x in
        range). A run with points but none placed has one row with null x; a run without the
        metric has no row. Rows are ordered by ord, then x.
        """
        x_exprs = {
            "step": "CAST(p.step AS DOUBLE)",
            "time": "p.ts",
            "relative": "p.ts - o.t0",
        }
        if x not in x_exprs:
            raise ValueError(f"x must be one of {', '.join(x_exprs)}, not {x!r}")
        buckets = max(1, int(buckets))
        lo, hi = x_range
        ids = list(dict.fromkeys(run_ids))
        selected = pa.table(
            {
                "id": pa.array(ids, pa.string()),
                "ord": pa.array(range(len(ids)), pa.int64()),
            }
        )
        # Relative time needs each run's origin: its recorded start, else its first point.
        origin = (
            """, origin AS (
                SELECT r.id AS run_id, coalesce(any_value(r.start_time), min(p.ts)) AS t0
                FROM runs r JOIN raw p ON p.run_id = r.id GROUP BY r.id
            )"""
            if x == "relative"
            else ""
        )
        origin_join = "JOIN origin o ON o.run_id = p.run_id" if x == "relative" else ""
        # A run with few points keeps them all: its bucket is the point's own (negated) rowid,
        # which is unique without the cost of a window function.
        sql = f"""
            WITH raw AS (
                SELECT m.rowid AS rid, m.run_id, m.step, m.ts, m.value FROM metrics m
                WHERE m.key = ? AND m.run_id IN (SELECT id FROM _ov_runs)
            ){origin},
            pts AS (
                SELECT p.rid, p.run_id, p.step, p.value, {x_exprs[x]} AS x
                FROM raw p {origin_join}
            ),
            flagged AS MATERIALIZED (
                SELECT *, coalesce(isfinite(x)
                          AND (CAST(? AS DOUBLE) IS NULL OR x >= ?)
                          AND (CAST(? AS DOUBLE) IS NULL OR x <= ?), FALSE) AS placed
                FROM pts
            ),
            stats AS (
                SELECT run_id, count(*) AS total, count(*) FILTER (WHERE placed) AS placed
                FROM flagged GROUP BY run_id
            ),
            bounds AS (
                SELECT coalesce(CAST(? AS DOUBLE), min(x)) AS lo,
                       coalesce(CAST(? AS DOUBLE), max(x)) AS hi
                FROM flagged WHERE placed
            ),
            bucketed AS (
                SELECT f.run_id, f.step, f.value, f.x,
                       CASE WHEN s.placed <= ? THEN -1 - f.rid
                            WHEN b.hi <= b.lo THEN 0
                            ELSE least(CAST(floor((f.x - b.lo) / (b.hi - b.lo) * ?) AS BIGINT),
                                       ? - 1)
                       END AS bucket
                FROM flagged f JOIN stats s ON s.run_id = f.run_id CROSS JOIN bounds b
                WHERE f.placed
            ),
            agg AS (
                SELECT run_id,
                       avg(x) AS x,
                       coalesce(avg(value) FILTER (WHERE isfinite(value)),
                                max(value) FILTER (WHERE NOT isfinite(value))) AS y,
                       min(value) FILTER (WHERE NOT isnan(value)) AS y_min,
                       max(value) FILTER (WHERE NOT isnan(value)) AS y_max,
                       max(step) AS step,
                       count(*) AS n,
                       count(*) FILTER (WHERE NOT isfinite(value)) AS nonfinite
                FROM bucketed GROUP BY run_id, bucket
            )
            SELECT o.ord, st.run_id, a.x, a.y, a.y_min, a.y_max, a.step, a.n, a.nonfinite,
                   st.total, st.placed
            FROM stats st JOIN _ov_runs o ON o.id = st.run_id
            LEFT JOIN agg a ON a.run_id = st.run_id
            ORDER BY o.ord, a.x NULLS LAST, a.step
        """
        args = [key, lo, lo, hi, hi, lo, hi, buckets, buckets, buckets]
        with self._lock:
            self._con.register("_ov_runs", selected)
            try:
                return self._con.sql(sql, params=args).to_arrow_table()
            finally:
                self._con.unregister("_ov_runs")


_ATTRIBUTE_ORDER = {
    "start": "r.start_time",
    "end": "r.end_time",
    "name": "lower(r.name)",
    "status": "r.status",
    "experiment": "lower(e.name)",
    "source": "r.source_kind",
    "duration": "coalesce(r.end_time, r.updated) - r.start_time",
    "id": "r.id",
}


def order_clause(order: str) -> tuple[list[str], list[Any]]:
    """SQL for ORDER BY over ``runs r``; keys travel as parameters, never as SQL text."""
    if order in _ATTRIBUTE_ORDER:
        return [_ATTRIBUTE_ORDER[order]], []
    for prefix in ("metrics.", "metric."):
        if order.startswith(prefix):
            key = order[len(prefix) :]
            column = "last"
            for agg in ("min", "max", "last", "count"):
                if key.endswith("." + agg):
                    key, column = key[: -len(agg) - 1], agg
                    break
            return (
                [
                    f"(SELECT ms.{column} FROM metric_summary ms "
                    "WHERE ms.run_id = r.id AND ms.key = ?)"
                ],
                [key],
            )
    for prefix in ("params.", "param."):
        if order.startswith(prefix):
            key = order[len(prefix) :]
            return (
                [
                    "(SELECT p.num FROM params p WHERE p.run_id = r.id AND p.key = ?)",
                    "(SELECT p.value FROM params p WHERE p.run_id = r.id AND p.key = ?)",
                ],
                [key, key],
            )
    raise ValueError(
        f"cannot sort by {order!r}: use one of {', '.join(sorted(_ATTRIBUTE_ORDER))}, "
        "metrics.KEY or params.KEY"
    )


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflict" in text or "could not set lock" in text)


def open_store(root: Path, store_path: Path | None = None) -> Store:
    """Open the store for ``root``: ``--store``, then ``$MLTOP_STORE``, then ``root/.mltop/``.

    When another process holds the file (DuckDB allows one writer and then refuses even readers),
    or the folder is not writable, return a private temporary store instead, with
    :attr:`Store.note` saying why; the caller re-imports the sources into it.
    """
    if store_path is None and os.environ.get(STORE_ENV):
        store_path = Path(os.environ[STORE_ENV]).expanduser()
    path = store_path or default_store_path(root)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent.name == STORE_DIR:
            ignore = path.parent / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# created by mltop: the store is rebuilt from the sources\n*\n")
        return Store(path)
    except duckdb.Error as exc:
        if _is_lock_error(exc):
            why = f"{path} is in use by another mltop"
        else:
            raise StoreError(f"{path}: cannot open store ({' '.join(str(exc).split())})") from exc
    except OSError as exc:
        why = f"cannot write {path.parent} ({exc.strerror or exc})"
    temp_dir = Path(tempfile.mkdtemp(prefix="mltop-store-"))
    return Store(
        temp_dir / STORE_FILE,
        note=f"{why}; using a private temporary store built from the sources",
        temp_dir=temp_dir,
    )


def open_memory_store() -> Store:
    """An in-memory store, for tests and one-shot reads."""
    return Store(None)


def mapping_rows(run_id: str, mapping: Mapping[str, object]) -> list[tuple[str, str, object]]:
    """(run_id, key, value) triples for :meth:`Store.put_runs` from a params or tags dict."""
    return [(run_id, str(k), v) for k, v in mapping.items()]
