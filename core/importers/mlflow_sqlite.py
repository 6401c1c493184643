"""MLflow's SQLite tracking store: ``mlflow.db``, MLflow's default backend since 3.7.

Read with the standard library's ``sqlite3`` (DuckDB's SQLite extension would have to be
downloaded), always read-only so a running MLflow server or training job is never blocked by
mltop, and never creating a file beside the database (no ``-shm`` for a ``-wal`` left without
one): :mod:`mltop.core.importers.sqlite_readonly` chooses how to open it.

Incremental strategy (the database is one file, so file offsets do not help):

* the database and its ``-wal`` are recorded as file states (size, mtime, inode and a fingerprint
  of the header, which SQLite changes on every commit, all taken before reading); when neither
  changed, the scan costs two ``stat`` calls, two 256-byte reads and one store query;
* when either changed, the runs are read :data:`WRITE_RUNS` at a time, each chunk in one short
  read transaction with its params, tags and a per-(run, metric) ``count(*), max(timestamp)``
  aggregate, so memory holds one chunk, not the database (a 100,000-run database read whole
  peaked at 824 MB). MLflow metrics are append-only (there is no API to edit or delete a logged
  point), so a run whose counts and last timestamps equal the summaries already in the store has
  unchanged histories; only the other runs' histories are re-read, whole, from SQLite. Run
  metadata (status, end time, params, tags) is rewritten only for runs whose digest of it
  differs from the one the store recorded when it last wrote the run, so a fresh process
  re-reading a changed database rewrites the runs that changed, not all of them.
* the next chunk is read on a second thread while the last is compared and written
  (:mod:`mltop.core.common.read_ahead`): SQLite and sqlite3's row objects on one side, DuckDB's
  compression and commits (without the GIL) on the other, no longer waiting for each other;
* writes go in batches of whole runs, one store transaction each; the database's file state is
  recorded last, so an interrupted import is completed by the next scan. Runs the store holds
  that the database no longer has are dropped only after every chunk was read.

Reading the database (opening, probing, the chunks of runs, histories) is :mod:`.mlflow_sqlite_db`,
a chunk's runs as the store's columns :mod:`.mlflow_sqlite_runs`; this module decides what to
read and writes it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mltop.core.common.collector import collector_held
from mltop.core.common.read_ahead import read_ahead
from mltop.core.entities import FileState, ImportReport, SourceRef
from mltop.core.importers import mlflow_common as common
from mltop.core.importers.base import Detection, head_fingerprint
from mltop.core.importers.mlflow_sqlite_db import (
    DB_ERRORS,
    DbKind,
    Layout,
    RunChunk,
    SourceError,
    chunk_points,
    error_line,
    has_sqlite_header,
    open_database,
    probe_db,
    read_chunks,
    read_layout,
    read_points,
)
from mltop.core.importers.mlflow_sqlite_db import REQUIRED_TABLES as REQUIRED_TABLES
from mltop.core.importers.mlflow_sqlite_db import is_mlflow_db as is_mlflow_db
from mltop.core.importers.mlflow_sqlite_db import table_names as table_names
from mltop.core.importers.mlflow_sqlite_runs import run_columns
from mltop.core.store import (
    Store,
    float_values,
    numbers_array,
    positions_in,
    string_array,
)

KIND = "mlflow-sqlite"
DB_SUFFIXES = (".db", ".sqlite", ".sqlite3")
BATCH_RUNS = 500  # also keeps IN lists under SQLite's old 999-variable limit
BATCH_POINTS = 250_000
#: Runs read per chunk and written per store transaction (several read batches), a few of
#: which commit together (Store.bulk): each commit writes every table's last rows again. At a
#: hundred thousand runs, 5,000 a transaction each committed wrote 2.2x the store; 2,500 in a
#: bulk, 1.1x at 30,000 runs with a lower peak (the chunk read is half the size). A
#: transaction of this many runs goes straight into the store file.
WRITE_RUNS = 2500
#: Runs read per chunk when the store already holds the database: such a scan mostly compares
#: (digests, summaries), and smaller chunks with DuckDB's cached blocks let go after each kept
#: a 100,000-run re-scan at 228 MB instead of 286 MB, for about the same CPU.
RESCAN_RUNS = 2000
LARGE_WRITE = 1000

# What this process last wrote of each (store, database)'s experiments, so a live database's
# few experiment rows are not rewritten on every change. Weak keys: it dies with the store.
_written: weakref.WeakKeyDictionary[Store, dict[str, int]] = weakref.WeakKeyDictionary()


@dataclass
class _Rows:
    """A chunk's runs (the store's ``runs`` columns, see :func:`run_columns`), params and tags
    with, per params or tags row, the position of its run in the chunk (-1 for a row of no run
    kept), and the run ids by position."""

    runs: pa.Table
    params: pa.Table
    tags: pa.Table
    params_owner: np.ndarray
    tags_owner: np.ndarray
    ids: list[str]
    # of() for every run, kept: a first import asks it twice (digests, then the write).
    _whole: tuple[pa.Table, pa.Table, pa.Table] | None = field(default=None, repr=False)

    def of(self, positions: Sequence[int]) -> tuple[pa.Table, pa.Table, pa.Table]:
        """The runs at these positions and their (run_id, key, value) params and tags."""
        positions = list(positions)
        whole = positions == list(range(len(self.ids)))
        if whole and self._whole is not None:
            return self._whole
        chosen = np.zeros(len(self.ids) + 1, np.bool_)  # the last slot stands for -1
        chosen[positions] = True
        ids = string_array(self.ids)
        out = []
        for table, owner in ((self.params, self.params_owner), (self.tags, self.tags_owner)):
            keep = np.flatnonzero(chosen[owner])
            picked = table.take(numbers_array(keep))
            run_ids = ids.take(numbers_array(owner[keep]))
            out.append(
                pa.table({"run_id": run_ids, "key": picked["key"], "value": picked["value"]})
            )
        runs = self.runs.take(numbers_array(np.asarray(positions, np.int64)))
        if whole:
            self._whole = (runs, out[0], out[1])
        return runs, out[0], out[1]


@dataclass
class _Work:
    uuid: str
    id: str
    name: str
    position: int  # in the chunk's records (see _Rows)
    rows: _Rows
    digest: int
    histories: bool  # re-read the metric histories
    points: int
    new: bool  # the store holds nothing of the run yet


@dataclass
class _Scan:
    """One import of one database: what the store held before, and the runs seen so far."""

    store: Store
    source: str
    fresh: bool
    existing: set[str]
    deleted_exps: set[str]
    # The runs of ``existing`` the database still has (a first import keeps nothing here).
    kept: set[str] = field(default_factory=set)
    # Held by whoever reads the database: the next chunk is read while this one is written.
    reading: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Metrics:
    """A chunk's metric counts folded per run (by position in the chunk's records)."""

    last_ms: list[float | None]  # the latest timestamp of any of the run's metrics
    points: list[int]
    summaries: pa.Table  # run_id, key, count, last_time (s): what the store's summaries say

    @classmethod
    def of(cls, stats: pa.Table, at: np.ndarray, ids: list[str]) -> _Metrics:
        n = len(ids)
        counts, last_ms = float_values(stats["count"]), float_values(stats["last_ms"])
        held = at >= 0
        timed = held & ~np.isnan(last_ms)
        latest = np.full(n, -np.inf)
        np.maximum.at(latest, at[timed], last_ms[timed])
        points = np.bincount(at[held], weights=counts[held], minlength=n)
        keep = numbers_array(np.flatnonzero(held))
        seconds = last_ms / 1000.0
        nulls = np.isnan(seconds)
        valid = pa.py_buffer(np.packbits(~nulls, bitorder="little")) if nulls.any() else None
        summaries = pa.table(
            {
                "run_id": string_array(ids).take(numbers_array(at[held])),
                "key": stats["key"].take(keep),
                "count": stats["count"].take(keep),
                "last_time": pa.Array.from_buffers(
                    pa.float64(), len(seconds), [valid, pa.py_buffer(seconds)]
                ).take(keep),
            }
        )
        return cls(
            [x if x > -np.inf else None for x in latest.tolist()],
            [int(x) for x in points.tolist()],
            summaries,
        )


def _plan(scan: _Scan, chunk: RunChunk) -> tuple[list[_Work], dict[str, str]]:
    """Which runs of this chunk to (re)write, whether to re-read their histories, and the
    chunk's native-id -> run-id map."""
    store, source = scan.store, scan.source
    id_source = store.id_path(source)
    seen: set[str] = set()
    rows_of_runs = [r for r in chunk.runs if r[0] and r[0] not in seen and not seen.add(r[0])]
    uuids = string_array([r[0] for r in rows_of_runs])
    ids = [common.run_id(KIND, id_source, r[0]) for r in rows_of_runs]
    metrics = _Metrics.of(chunk.stats, positions_in(chunk.stats["run_uuid"], uuids), ids)
    runs = run_columns(
        rows_of_runs, ids, chunk.record_tags, metrics.last_ms, kind=KIND, source=source,
        id_source=id_source, deleted_experiments=scan.deleted_exps,
    )  # fmt: skip
    run_of = dict(zip([r[0] for r in rows_of_runs], ids, strict=True))
    rows = _Rows(
        runs, chunk.params, chunk.tags, positions_in(chunk.params["run_uuid"], uuids),
        positions_in(chunk.tags["run_uuid"], uuids), ids,
    )  # fmt: skip
    digests = store.metadata_digests_of(*rows.of(range(len(ids))))
    known = [i for i in ids if i in scan.existing]
    scan.kept.update(known)
    reread: set[str] = set()
    recorded: dict[str, int] = {}
    if known and not scan.fresh:
        reread = store.runs_with_other_summaries(known, metrics.summaries)
        recorded = store.metadata_digests(known)
    work: list[_Work] = []
    names = runs["name"].to_pylist()
    for position, (uuid, run) in enumerate(zip(uuids.to_pylist(), ids, strict=True)):
        new = run not in scan.existing
        histories = scan.fresh or new or run in reread
        digest = int(digests[position])
        if histories or new or recorded.get(run) != digest:
            points = metrics.points[position] if histories else 0
            work.append(
                _Work(uuid, run, names[position], position, rows, digest, histories, points, new)
            )
    return work, run_of


def _batches(work: list[_Work]) -> Iterator[list[_Work]]:
    batch: list[_Work] = []
    points = 0
    for item in work:
        if batch and (len(batch) >= BATCH_RUNS or points + item.points > BATCH_POINTS):
            yield batch
            batch, points = [], 0
        batch.append(item)
        points += item.points
    if batch:
        yield batch


def _groups(batches: Iterator[list[_Work]]) -> Iterator[list[list[_Work]]]:
    """Read batches gathered into the units one store transaction writes (see WRITE_RUNS)."""
    group: list[list[_Work]] = []
    runs = points = 0
    for batch in batches:
        group.append(batch)
        runs += len(batch)
        points += sum(w.points for w in batch)
        if runs >= WRITE_RUNS or points >= BATCH_POINTS:
            yield group
            group, runs, points = [], 0, 0
    if group:
        yield group


Probe = tuple[os.stat_result, str]


def probe(path: Path) -> Probe | None:
    """The file's stat and head fingerprint, taken *before* reading the database.

    A database is not an append-only file: a commit can rewrite pages without changing the size,
    and within one tick of the file system clock without changing the mtime. SQLite bumps the
    change counter in its header on every commit (and a WAL's header changes when it restarts),
    so the head fingerprint is compared too. It is taken before the read, so everything it
    reflects is in what is read; a commit after it shows up as a new head or size next scan.
    """
    try:
        st = path.stat()
    except OSError:
        return None
    return st, head_fingerprint(path, st.st_size)


def same_state(now: Probe | None, old: FileState | None) -> bool:
    if now is None or old is None:
        return now is None and old is None
    st, head = now
    return (st.st_size, st.st_mtime, st.st_ino, head) == (old.size, old.mtime, old.inode, old.head)


def recorded(path: Path, now: Probe) -> FileState:
    st, head = now
    return FileState(str(path), st.st_size, st.st_mtime, st.st_ino, st.st_size, head)


def import_database(store: Store, db: Path, report: ImportReport) -> None:
    """Bring one MLflow SQLite database up to date in the store (see the module docstring)."""
    # Imported here: it asks the MLflow readers whose artifacts it reads.
    from mltop.core.importers.mlflow_tensorboard import forget_gone_logs

    forget_gone_logs(store, db.parent)
    source = str(db)
    states = store.file_states(source)
    db_old = states.get(source)
    wal = Path(source + "-wal")
    wal_old = states.get(str(wal))
    db_now = probe(db)
    wal_now = probe(wal)
    if db_now is None:
        return  # the database is gone; discovery forgets vanished sources
    if db_old is not None and same_state(db_now, db_old) and same_state(wal_now, wal_old):
        return
    st = db_now[0]
    if not has_sqlite_header(db):
        report.problem(
            db, "empty file" if st.st_size == 0 else "not a SQLite database (bad header)"
        )
        return
    fresh = db_old is None
    opened = contextlib.ExitStack()
    if fresh:
        # A first read commits its groups a few together (see Store.bulk): each commit writes
        # every table's last rows again. A re-scan writes few runs and commits each group: an
        # open bulk keeps DuckDB's cached blocks (release_buffers waits for its commit), and a
        # 100,000-run re-scan after one tag changed peaked at 270 MB in one, 247 MB without.
        opened.enter_context(store.bulk())
    try:
        con = opened.enter_context(open_database(db))
    except (OSError, *DB_ERRORS) as exc:
        opened.close()
        report.problem(db, f"cannot open read-only: {error_line(exc)}")
        return
    written = _written.setdefault(store, {})
    try:
        try:
            layout = read_layout(con)
        except SourceError as exc:
            report.problem(db, str(exc))
            return
        except DB_ERRORS as exc:
            report.problem(db, f"cannot read: {error_line(exc)}")
            return
        experiments: list[common.ExperimentRow] = [
            (common.experiment_id(KIND, store.id_path(source), native), KIND, source, native, name)
            for native, name, _ in layout.experiments
        ]
        exp_digest = hash(tuple(experiments))
        if not fresh and written.get(source) == exp_digest:
            experiments = []  # unchanged since this process last wrote them
        scan = _Scan(
            store, source, fresh, store.run_ids_of_source(source),
            {e[0] for e in layout.experiments if e[2]},
        )  # fmt: skip
        complete, wrote = _import_chunks(scan, con, db, layout, experiments, report)
    finally:
        opened.close()
    states_now = [recorded(db, db_now)]
    if wal_now is not None:
        states_now.append(recorded(wal, wal_now))
    # A database read only in part says nothing of the runs it did not give: none is gone.
    gone = sorted(scan.existing - scan.kept) if complete else []
    with store.transaction():
        if not wrote:
            store.put_experiments(experiments)
        if gone:
            store.delete_runs(gone)
            report.removed_runs += len(gone)
        if complete:
            store.put_files(source, states_now)
            if wal_now is None and wal_old is not None:
                store.delete_files([str(wal)])
    written[source] = exp_digest


def _import_chunks(
    scan: _Scan,
    con: sqlite3.Connection,
    db: Path,
    layout: Layout,
    experiments: list[common.ExperimentRow],
    report: ImportReport,
) -> tuple[bool, bool]:
    """Read the runs a chunk at a time and write what changed: (all read, any written)."""
    complete = True
    wrote = False
    size = WRITE_RUNS if scan.fresh else RESCAN_RUNS
    # A first import reads every history: a chunk's points come with it when they are few.
    read = read_chunks(con, layout, size, BATCH_POINTS if scan.fresh else 0)
    with read_ahead(read, scan.reading, "mltop-read-mlflow-db") as chunks:
        while True:
            try:
                chunk = next(chunks, None)
            except DB_ERRORS as exc:
                report.problem(db, f"cannot read: {error_line(exc)}")
                return False, wrote
            if chunk is None:
                return complete, wrote
            with collector_held():  # a record and its work item per run, none in a cycle
                work, run_of = _plan(scan, chunk)
            points = chunk_points(chunk, run_of)
            full = len(chunk.runs) >= size
            chunk = None  # its rows are in the work items now; let them go as those are written
            released = False
            for group in _groups(_batches(work)):
                read_all, wrote_now = _write_group(
                    scan, con, db, layout, group, run_of, [] if wrote else experiments, report,
                    points,
                )  # fmt: skip
                complete = complete and read_all
                wrote = wrote or wrote_now
                if sum(len(part) for part in group) >= LARGE_WRITE:
                    # What DuckDB keeps cached of a bulk import's blocks grows with the store;
                    # the few runs a live database changes leave the cache to the queries that
                    # use it.
                    scan.store.release_buffers()
                    released = True
            if not released and not scan.fresh and full:
                # A database of many chunks: the blocks this chunk's comparisons read are not
                # the next chunk's (a database of one chunk, a live one, keeps its cache).
                scan.store.release_buffers()


def _write_group(
    scan: _Scan,
    con: sqlite3.Connection,
    db: Path,
    layout: Layout,
    group: list[list[_Work]],
    run_of: dict[str, str],
    experiments: list[common.ExperimentRow],
    report: ImportReport,
    pre_read: pa.Table | None = None,
) -> tuple[bool, bool]:
    """Read the histories of one group of batches and write it in one store transaction:
    (every batch read, anything written). The experiments go in with the first write, so runs
    never point at a missing experiment. ``pre_read``: the points of every run of the
    chunk, read with it (the group's are taken from there)."""
    store = scan.store
    complete = True
    batch: list[_Work] = []
    read: list[pa.Table] = []
    if pre_read is not None:
        batch = [w for part in group for w in part]
        wanted = {run_of[w.uuid] for w in batch if w.histories}
        if len(wanted) == len(run_of):  # every run of the chunk: a first import's whole chunk
            read.append(pre_read)
        else:
            chosen = pc.is_in(pre_read["run_id"], value_set=string_array(sorted(wanted)))
            read.append(pre_read.filter(chosen))
    else:
        for part in group:
            reread = [w.uuid for w in part if w.histories]
            try:
                with scan.reading:  # the chunks' reader takes turns on the connection
                    read.append(read_points(con, reread, run_of, layout.has_is_nan, db, report))
            except DB_ERRORS as exc:
                complete = False
                names = ", ".join(w.name for w in part[:3])
                more = f" and {len(part) - 3} more" if len(part) > 3 else ""
                report.problem(db, f"cannot read metrics of runs {names}{more}: {error_line(exc)}")
                continue
            batch += part
    if not batch:
        return complete, False
    points = pa.concat_tables(read)
    reread_ids = [run_of[w.uuid] for w in batch if w.histories]
    runs, params, tags = batch[0].rows.of([w.position for w in batch])
    with store.transaction(large=len(batch) >= LARGE_WRITE):
        store.mark_new_runs(w.id for w in batch if w.new)
        store.put_experiments(experiments)
        store.put_runs(
            scan.source, runs, params=params, tags=tags, digests={w.id: w.digest for w in batch}
        )
        if reread_ids:
            store.delete_points(reread_ids)
            store.forget_files_of_others(reread_ids, scan.source)
            store.add_points(points)
            store.update_summaries(reread_ids, [points])
    report.add(KIND, runs=len(batch), points=points.num_rows)
    return complete, True


class MlflowSqliteImporter:
    """Finds MLflow SQLite databases by header and tables; imports them read-only."""

    kind = KIND

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        refs: list[SourceRef] = []
        claimed: set[str] = set()
        problems: list[tuple[Path, str]] = []
        for name in filenames:
            if not name.endswith(DB_SUFFIXES):
                continue
            path = dirpath / name
            kind, why = probe_db(path)
            if kind is DbKind.DAMAGED:
                problems.append((path, why))
                continue
            if kind is not DbKind.MLFLOW:
                continue
            refs.append(SourceRef(KIND, path))
            claimed.update(name + suffix for suffix in ("", "-wal", "-shm", "-journal"))
        if not refs and not problems:
            return None
        return Detection(refs=refs, claimed=claimed, problems=problems)

    def import_sources(self, store: Store, refs: Sequence[SourceRef], report: ImportReport) -> None:
        for ref in refs:
            try:
                # One DuckDB thread: a group's queries are small (see Store.one_worker_thread).
                with store.one_worker_thread():
                    import_database(store, Path(ref.location), report)
            except Exception as exc:  # bad input must never stop the other sources
                report.problem(ref.location, f"import failed: {type(exc).__name__}: {exc}")


IMPORTER = MlflowSqliteImporter()
