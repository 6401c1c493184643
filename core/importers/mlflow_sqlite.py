"""MLflow's SQLite tracking store: ``mlflow.db``, MLflow's default backend since 3.7.

Read with the standard library's ``sqlite3`` (DuckDB's SQLite extension would have to be
downloaded), always read-only so a running MLflow server or training job is never blocked by
mltop, and never creating a file beside the database (no ``-shm`` for a ``-wal`` left without
one): :mod:`mltop.core.importers.sqlite_readonly` chooses how to open it.

Incremental strategy (the database is one file, so file offsets do not help):

* the database and its ``-wal`` are recorded as file states (size, mtime, inode and a fingerprint
  of the header, which SQLite changes on every commit, all taken before reading); when neither
  changed, the scan costs two ``stat`` calls, two 256-byte reads and one store query;
* when either changed, one short read transaction takes the run table, params, tags and a
  per-(run, metric) ``count(*), max(timestamp)`` aggregate. MLflow metrics are append-only (there
  is no API to edit or delete a logged point), so a run whose counts and last timestamps equal
  the summaries already in the store has unchanged histories; only the other runs' histories are
  re-read, whole, from SQLite. Run metadata (status, end time, tags) is rewritten only for runs
  whose metadata differs from what this process last wrote, or for every run after a restart.
* writes go in batches of whole runs, one store transaction each; the database's file state is
  recorded last, so an interrupted import is completed by the next scan.

Metric histories are read column-wise: SQLite returns only the four numeric columns in
(run, key) order, ``numpy.fromiter`` packs each row tuple straight into typed arrays, and the run
id and key columns are expanded from the per-(run, key) counts of the same read transaction, so
no Python string is made per point (half of the cost of fetching all six columns).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mltop.core.common.regular_files import open_regular
from mltop.core.entities import FileState, ImportReport, RunRecord, SourceRef
from mltop.core.importers import mlflow_common as common
from mltop.core.importers import sqlite_readonly
from mltop.core.importers.base import Detection, head_fingerprint
from mltop.core.store import POINTS_SCHEMA, Store

KIND = "mlflow-sqlite"
SQLITE_HEADER = b"SQLite format 3\x00"
DB_SUFFIXES = (".db", ".sqlite", ".sqlite3")
REQUIRED_TABLES = frozenset({"experiments", "runs", "metrics", "params", "tags"})
# Alembic's table: every MLflow SQL store has it, a random app database with a `runs` table not.
MLFLOW_MARKER = "alembic_version"
BUSY_TIMEOUT = 2.0
BATCH_RUNS = 500  # also keeps IN lists under SQLite's old 999-variable limit
BATCH_POINTS = 250_000
# SQLite's message for a corrupt schema can carry the corrupt bytes, which Python then fails to
# decode: that surfaces as UnicodeDecodeError instead of sqlite3.DatabaseError.
DB_ERRORS = (sqlite3.Error, UnicodeDecodeError)

_RUN_COLUMNS = (
    "run_uuid", "name", "status", "start_time", "end_time", "lifecycle_stage", "artifact_uri",
    "experiment_id",
)  # fmt: skip
_POINT_DTYPE = np.dtype([("step", "i8"), ("ts", "f8"), ("value", "f8"), ("nan", "i8")])

_EXPERIMENTS = "\x00experiments"  # the key of the experiments' digest (never a run id)
# What this process last wrote per (store, database, run): a metadata digest, so an unchanged
# run's row is not rewritten on every change of a live database. Weak keys: it dies with the store.
_written: weakref.WeakKeyDictionary[Store, dict[str, dict[str, str]]] = weakref.WeakKeyDictionary()


class SourceError(Exception):
    """The database as a whole cannot be read; the message is one line for the report."""


def has_sqlite_header(path: Path) -> bool:
    try:
        with open_regular(path) as fh:
            return fh.read(16) == SQLITE_HEADER
    except OSError:
        return False


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def error_line(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):  # SQLite's message quoted bytes of a corrupt schema
        return "malformed database schema (bytes that are not UTF-8)"
    return " ".join(str(exc).split()) or type(exc).__name__


_CONNECT = {"isolation_level": None, "timeout": BUSY_TIMEOUT, "check_same_thread": False}


@contextlib.contextmanager
def open_database(db: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection that never takes a write lock nor creates a file beside ``db``.

    Autocommit (reads BEGIN explicitly); how it gets in is :mod:`.sqlite_readonly`'s choice.
    """
    with sqlite_readonly.open_readonly(db, **_CONNECT) as con:
        # SQLite stores whatever bytes it is given as TEXT: a bad byte must not cost the file.
        con.text_factory = _decode
        yield con


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def table_names(con: sqlite3.Connection) -> set[str]:
    rows = con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {_text(r[0]) for r in rows}


DEFAULT_NAME = "mlflow.db"  # what `mlflow server`/`mlflow ui` create: a source by its name alone


class DbKind(Enum):
    MLFLOW = "mlflow"
    OTHER = "other"
    DAMAGED = "damaged"


def probe_db(path: Path) -> tuple[DbKind, str]:
    """Whether a ``*.db`` is an MLflow database, some other file, or a damaged SQLite database.

    A SQLite file whose schema cannot be read is DAMAGED (with SQLite's one-line reason): it may
    well be a tracker's database, so it must be reported, not passed over. A file named
    ``mlflow.db`` is taken as MLFLOW whatever it holds, so the import says what is wrong with it.
    A file that cannot be opened is OTHER here; discovery reports unreadable source files.
    """
    named = path.name == DEFAULT_NAME
    try:
        with open_regular(path) as fh:
            header = fh.read(16)
    except OSError:
        return DbKind.OTHER, ""
    if header != SQLITE_HEADER:
        return (DbKind.MLFLOW if named else DbKind.OTHER), ""
    # The schema is all detection needs: a WAL without its index is not worth a copy here.
    try:
        how = sqlite_readonly.how_to_open(path)
        con = sqlite_readonly.connect_uri(path, "immutable" if how == "copy" else how, **_CONNECT)
    except OSError:
        return DbKind.OTHER, ""
    except DB_ERRORS as exc:
        return DbKind.DAMAGED, f"damaged SQLite database ({error_line(exc)})"
    try:
        tables = table_names(con)
        if tables >= REQUIRED_TABLES and MLFLOW_MARKER in tables:
            return DbKind.MLFLOW, ""
        # Named like one but without MLflow's tables: the import says what is missing, unless
        # the file is trackio's (its `metrics` table has a run_name column).
        if named and "run_name" not in _columns(con, "metrics"):
            return DbKind.MLFLOW, ""
    except DB_ERRORS as exc:
        if named:
            return DbKind.MLFLOW, ""  # the import reports what is wrong
        return DbKind.DAMAGED, f"damaged SQLite database ({error_line(exc)})"
    finally:
        con.close()
    return DbKind.OTHER, ""


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {_text(r[1]) for r in con.execute(f"PRAGMA table_info({table})").fetchall()}


def is_mlflow_db(path: Path) -> bool:
    """MLflow's tables, or the name mlflow.db: a check for the discovery walk."""
    return probe_db(path)[0] is DbKind.MLFLOW


@contextlib.contextmanager
def _read_transaction(con: sqlite3.Connection) -> Iterator[None]:
    """One consistent snapshot for several SELECTs; released as soon as they are done."""
    con.execute("BEGIN")
    try:
        yield
    finally:
        with contextlib.suppress(*DB_ERRORS):
            con.execute("COMMIT")


@dataclass
class Snapshot:
    """The small tables of an MLflow database plus per-(run, key) metric counts."""

    experiments: list[tuple[str, str, bool]] = field(default_factory=list)
    runs: list[tuple[Any, ...]] = field(default_factory=list)
    params: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    # run_uuid -> {key: (count, max timestamp ms)}
    stats: dict[str, dict[str, tuple[int, float | None]]] = field(default_factory=dict)
    has_is_nan: bool = True


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {_text(r[1]) for r in con.execute(f"PRAGMA table_info({table})").fetchall()}


def read_snapshot(con: sqlite3.Connection) -> Snapshot:
    tables = table_names(con)
    missing = sorted(REQUIRED_TABLES - tables)
    if missing:
        raise SourceError(f"not an MLflow tracking database (no {', '.join(missing)} table)")
    snap = Snapshot()
    with _read_transaction(con):
        run_cols = _columns(con, "runs")
        if "run_uuid" not in run_cols:
            raise SourceError("not an MLflow tracking database (runs table has no run_uuid)")
        exp_cols = _columns(con, "experiments")
        snap.has_is_nan = "is_nan" in _columns(con, "metrics")
        select = ", ".join(c if c in run_cols else "NULL" for c in _RUN_COLUMNS)
        snap.runs = con.execute(f"SELECT {select} FROM runs").fetchall()
        stage = "lifecycle_stage" if "lifecycle_stage" in exp_cols else "NULL"
        for exp_id, name, life in con.execute(
            f"SELECT experiment_id, name, {stage} FROM experiments"
        ).fetchall():
            snap.experiments.append(
                (_text(exp_id), _text(name), _text(life).lower() == common.DELETED)
            )
        for run, key, value in con.execute('SELECT run_uuid, "key", value FROM params'):
            snap.params.setdefault(_text(run), []).append((_text(key), _text(value)))
        for run, key, value in con.execute('SELECT run_uuid, "key", value FROM tags'):
            snap.tags.setdefault(_text(run), {})[_text(key)] = _text(value)
        for run, key, count, last in con.execute(
            'SELECT run_uuid, "key", count(*), max(timestamp) FROM metrics GROUP BY run_uuid, "key"'
        ):
            last_ms = float(last) if isinstance(last, int | float) else None
            snap.stats.setdefault(_text(run), {})[_text(key)] = (int(count), last_ms)
    return snap


def _points_fast(
    con: sqlite3.Connection, uuids: Sequence[str], run_of: dict[str, str], nan_col: str
) -> pa.Table | None:
    """Histories of these runs, column-wise; None when a row does not fit (then the slow path)."""
    marks = ", ".join("?" * len(uuids))
    with _read_transaction(con):
        groups = con.execute(
            f'SELECT run_uuid, "key", count(*) FROM metrics WHERE run_uuid IN ({marks}) '
            'GROUP BY run_uuid, "key" ORDER BY run_uuid, "key"',
            list(uuids),
        ).fetchall()
        cursor = con.execute(
            f"SELECT step, timestamp, value, {nan_col} FROM metrics "
            f'WHERE run_uuid IN ({marks}) ORDER BY run_uuid, "key"',
            list(uuids),
        )
        try:
            rows = np.fromiter(cursor, dtype=_POINT_DTYPE)
        except (TypeError, ValueError, OverflowError):
            return None
    counts = np.fromiter((g[2] for g in groups), dtype=np.int64, count=len(groups))
    if int(counts.sum()) != len(rows) or any(_text(g[0]) not in run_of for g in groups):
        return None  # an index that disagrees with its table: a damaged file
    group_of_row = pa.array(np.repeat(np.arange(len(groups), dtype=np.int32), counts))
    run_ids = pa.array([run_of[_text(g[0])] for g in groups], pa.string()).take(group_of_row)
    keys = pa.array([_text(g[1]) for g in groups], pa.string()).take(group_of_row)
    values = rows["value"].copy()
    sentinel = np.abs(values) == common.MLFLOW_INFINITY
    values[sentinel] = np.copysign(np.inf, values[sentinel])
    values[rows["nan"] != 0] = np.nan
    return pa.table(
        {
            "run_id": run_ids,
            "key": keys,
            "step": pa.array(rows["step"]),
            "ts": pa.array(rows["ts"] / 1000.0),
            "value": pa.array(values),
        },
        schema=POINTS_SCHEMA,
    )


def _number(value: object, kind: type) -> Any:
    if value is None or isinstance(value, bytes | bool):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        try:
            return kind(float(value))  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            return None


def _points_slow(
    con: sqlite3.Connection,
    uuids: Sequence[str],
    run_of: dict[str, str],
    nan_col: str,
    db: Path,
    report: ImportReport,
) -> pa.Table:
    """Row by row, for a database whose metric rows break MLflow's own column constraints."""
    marks = ", ".join("?" * len(uuids))
    out: dict[str, list[Any]] = {name: [] for name in POINTS_SCHEMA.names}
    bad = 0
    rows = con.execute(
        f'SELECT run_uuid, "key", step, timestamp, value, {nan_col} FROM metrics '
        f"WHERE run_uuid IN ({marks})",
        list(uuids),
    ).fetchall()
    for run, key, step, ts, value, is_nan in rows:
        number = float("nan") if is_nan not in (0, None, "0") else _number(value, float)
        number = common.metric_value(number) if number is not None else None
        run_id = run_of.get(_text(run))
        if number is None or run_id is None:
            bad += 1
            continue
        step_int = _number(step, int)
        ts_ms = _number(ts, float)
        out["run_id"].append(run_id)
        out["key"].append(_text(key))
        out["step"].append(step_int if step_int is not None and abs(step_int) < 2**63 else 0)
        out["ts"].append(ts_ms / 1000.0 if ts_ms is not None else None)
        out["value"].append(number)
    if bad:
        report.problem(db, f"{bad} metric rows without a numeric value were skipped")
    return pa.table(
        {name: pa.array(out[name], POINTS_SCHEMA.field(name).type) for name in out},
        schema=POINTS_SCHEMA,
    )


def read_points(
    con: sqlite3.Connection,
    uuids: Sequence[str],
    run_of: dict[str, str],
    has_is_nan: bool,
    db: Path,
    report: ImportReport,
) -> pa.Table:
    """The full metric histories of these runs as a points table."""
    if not uuids:
        return POINTS_SCHEMA.empty_table()
    nan_col = "is_nan" if has_is_nan else "0"
    table = _points_fast(con, uuids, run_of, nan_col)
    if table is None:
        table = _points_slow(con, uuids, run_of, nan_col, db, report)
    return table


def _digest(record: RunRecord, params: list[tuple[str, str]], tags: dict[str, str]) -> str:
    text = repr((record, sorted(params), sorted(tags.items())))
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class _Work:
    uuid: str
    record: RunRecord
    params: list[tuple[str, str]]
    tags: dict[str, str]
    digest: str
    histories: bool  # re-read the metric histories
    points: int


def _plan(
    store: Store, source: str, snap: Snapshot, fresh: bool
) -> tuple[list[_Work], list[str], dict[str, str]]:
    """Which runs to (re)write, which to drop, and the native-id -> run-id map."""
    existing = store.run_ids_of_source(source)
    summaries = store.summaries(sorted(existing)) if existing and not fresh else {}
    written = _written.setdefault(store, {}).setdefault(source, {})
    if fresh:
        written.clear()
    deleted_exps = {e[0] for e in snap.experiments if e[2]}
    work: list[_Work] = []
    run_of: dict[str, str] = {}
    for row in snap.runs:
        uuid, name, status, start, end, stage, artifact_uri, exp = row
        uuid = _text(uuid)
        if not uuid or uuid in run_of:
            continue
        exp_native = _text(exp) if exp is not None else None
        stats = snap.stats.get(uuid, {})
        last_ms = max((s[1] for s in stats.values() if s[1] is not None), default=None)
        tags = snap.tags.get(uuid, {})
        params = snap.params.get(uuid, [])
        record = common.make_record(
            kind=KIND,
            source=source,
            native_id=uuid,
            experiment_native_id=exp_native,
            name=name,
            status=status,
            lifecycle=common.lifecycle_of(stage, exp_native in deleted_exps),
            start_ms=start,
            end_ms=end,
            artifact_uri=artifact_uri,
            tags=tags,
            updated=common.ms_to_s(last_ms),
            id_source=store.id_path(source),
        )
        run_of[uuid] = record.id
        stored = summaries.get(record.id, {})
        histories = (
            fresh
            or record.id not in existing
            or {k: (c, t / 1000.0 if t is not None else None) for k, (c, t) in stats.items()}
            != {k: (s.count, s.last_time) for k, s in stored.items()}
        )
        digest = _digest(record, params, tags)
        if histories or record.id not in existing or written.get(record.id) != digest:
            points = sum(c for c, _ in stats.values()) if histories else 0
            work.append(_Work(uuid, record, params, tags, digest, histories, points))
    gone = sorted(existing - set(run_of.values()))
    return work, gone, run_of


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
    try:
        con = opened.enter_context(open_database(db))
    except (OSError, *DB_ERRORS) as exc:
        report.problem(db, f"cannot open read-only: {error_line(exc)}")
        return
    try:
        try:
            snap = read_snapshot(con)
        except SourceError as exc:
            report.problem(db, str(exc))
            return
        except DB_ERRORS as exc:
            report.problem(db, f"cannot read: {error_line(exc)}")
            return
        experiments: list[common.ExperimentRow] = [
            (common.experiment_id(KIND, store.id_path(source), native), KIND, source, native, name)
            for native, name, _ in snap.experiments
        ]
        work, gone, run_of = _plan(store, source, snap, fresh)
        written = _written.setdefault(store, {}).setdefault(source, {})
        exp_digest = hashlib.sha1(repr(experiments).encode("utf-8", "surrogatepass")).hexdigest()
        if written.get(_EXPERIMENTS) == exp_digest:
            experiments = []  # unchanged since this process last wrote them
        complete, wrote = _write_batches(
            store, con, db, source, snap, work, experiments, run_of, report
        )
    finally:
        opened.close()
    states_now = [recorded(db, db_now)]
    if wal_now is not None:
        states_now.append(recorded(wal, wal_now))
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
    written[_EXPERIMENTS] = exp_digest


def _write_batches(
    store: Store,
    con: sqlite3.Connection,
    db: Path,
    source: str,
    snap: Snapshot,
    work: list[_Work],
    experiments: list[common.ExperimentRow],
    run_of: dict[str, str],
    report: ImportReport,
) -> tuple[bool, bool]:
    """Write the planned runs batch by batch: (every batch read, any batch written).

    The experiments go in with the first batch, so runs never point at a missing experiment.
    """
    complete = True
    wrote = False
    written = _written.setdefault(store, {}).setdefault(source, {})
    for batch in _batches(work):
        reread = [w.uuid for w in batch if w.histories]
        try:
            points = read_points(con, reread, run_of, snap.has_is_nan, db, report)
        except DB_ERRORS as exc:
            complete = False
            names = ", ".join(w.record.name for w in batch[:3])
            more = f" and {len(batch) - 3} more" if len(batch) > 3 else ""
            report.problem(db, f"cannot read metrics of runs {names}{more}: {error_line(exc)}")
            continue
        reread_ids = [run_of[u] for u in reread]
        with store.transaction():
            if not wrote:
                store.put_experiments(experiments)
            store.put_runs(
                source,
                [w.record for w in batch],
                params=[(w.record.id, k, v) for w in batch for k, v in w.params],
                tags=[(w.record.id, k, v) for w in batch for k, v in w.tags.items()],
            )
            if reread_ids:
                store.delete_points(reread_ids)
                store.forget_files_of_others(reread_ids, source)
                store.add_points(points)
                store.refresh_summaries(reread_ids)
        wrote = True
        for w in batch:
            written[w.record.id] = w.digest
        report.add(KIND, runs=len(batch), points=points.num_rows)
    return complete, wrote


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
                import_database(store, Path(ref.location), report)
            except Exception as exc:  # bad input must never stop the other sources
                report.problem(ref.location, f"import failed: {type(exc).__name__}: {exc}")


IMPORTER = MlflowSqliteImporter()
