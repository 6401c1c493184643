"""Reading MLflow's SQLite tracking database: opening it read-only, telling it from other SQLite
files, its runs a chunk at a time with their params, tags and metric counts, and metric
histories read column-wise.

Apart from :mod:`.mlflow_sqlite`, which decides what of the database to import and writes it:
the registry reader (:mod:`mltop.core.registry.mlflow_sqlite`) and the artifacts reader open
the database the same way.

Metric histories are read column-wise: SQLite returns only the four numeric columns in
(run, key) order, ``numpy.fromiter`` packs each row tuple straight into typed arrays, and the run
id and key columns are expanded from the per-(run, key) counts of the same read transaction, so
no Python string is made per point (half of the cost of fetching all six columns).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mltop.core.common.collector import collector_held
from mltop.core.common.regular_files import open_regular
from mltop.core.entities import ImportReport
from mltop.core.importers import mlflow_common as common
from mltop.core.importers import sqlite_readonly
from mltop.core.store import (
    POINTS_SCHEMA,
    float_array,
    float_values,
    int_array,
    numbers_array,
    string_array,
)

SQLITE_HEADER = b"SQLite format 3\x00"
REQUIRED_TABLES = frozenset({"experiments", "runs", "metrics", "params", "tags"})
# Alembic's table: every MLflow SQL store has it, a random app database with a `runs` table not.
MLFLOW_MARKER = "alembic_version"
BUSY_TIMEOUT = 2.0
# SQLite's message for a corrupt schema can carry the corrupt bytes, which Python then fails to
# decode: that surfaces as UnicodeDecodeError instead of sqlite3.DatabaseError.
DB_ERRORS = (sqlite3.Error, UnicodeDecodeError)

_RUN_COLUMNS = (
    "run_uuid", "name", "status", "start_time", "end_time", "lifecycle_stage", "artifact_uri",
    "experiment_id",
)  # fmt: skip
_POINT_DTYPE = np.dtype([("step", "i8"), ("ts", "f8"), ("value", "f8"), ("nan", "i8")])


class SourceError(Exception):
    """The database as a whole cannot be read; the message is one line for the report."""


def has_sqlite_header(path: Path) -> bool:
    try:
        with open_regular(path) as fh:
            return fh.read(16) == SQLITE_HEADER
    except OSError:
        return False


def db_text(value: object) -> str:
    """A value SQLite gave back as text (bytes decoded, None as empty)."""
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
    return {db_text(r[0]) for r in rows}


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
        if named and "run_name" not in columns(con, "metrics"):
            return DbKind.MLFLOW, ""
    except DB_ERRORS as exc:
        if named:
            return DbKind.MLFLOW, ""  # the import reports what is wrong
        return DbKind.DAMAGED, f"damaged SQLite database ({error_line(exc)})"
    finally:
        con.close()
    return DbKind.OTHER, ""


def columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {db_text(r[1]) for r in con.execute(f"PRAGMA table_info({table})").fetchall()}


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
class Layout:
    """How to read this database's runs (its schema's version) and its experiments."""

    run_select: str
    has_is_nan: bool
    experiments: list[tuple[str, str, bool]] = field(default_factory=list)


#: The text columns of a chunk's params and tags tables.
KEYED = ("run_uuid", "key", "value")


@dataclass
class RunChunk:
    """Some runs with their params, tags and per-(run, key) metric counts, read together.

    Params and tags stay columns (:data:`KEYED`), never a Python object per row: a chunk holds
    tens of thousands of them, and the store takes them as Arrow tables.
    """

    runs: list[tuple[Any, ...]]  # the columns of _RUN_COLUMNS, run_uuid as text
    params: pa.Table
    tags: pa.Table
    # Per (run, key) with metrics: run_uuid, key, count and last_ms (the latest timestamp, in
    # epoch ms; null when none is a number)
    stats: pa.Table
    # run_uuid -> the tags a run's record is made of (common.RECORD_TAGS)
    record_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    # The chunk's metric points when they were read with it (see read_chunks): step, ts (ms),
    # value and nan per row, ordered by run and key, the groups of ``stats`` in that order.
    points: np.ndarray | None = None


def read_layout(con: sqlite3.Connection) -> Layout:
    """The schema checks and the experiments; raises SourceError for a database that is not
    MLflow's."""
    tables = table_names(con)
    missing = sorted(REQUIRED_TABLES - tables)
    if missing:
        raise SourceError(f"not an MLflow tracking database (no {', '.join(missing)} table)")
    with _read_transaction(con):
        run_cols = columns(con, "runs")
        if "run_uuid" not in run_cols:
            raise SourceError("not an MLflow tracking database (runs table has no run_uuid)")
        select = ", ".join(
            "CAST(run_uuid AS TEXT)" if c == "run_uuid" else c if c in run_cols else "NULL"
            for c in _RUN_COLUMNS
        )
        layout = Layout(select, "is_nan" in columns(con, "metrics"))
        stage = "lifecycle_stage" if "lifecycle_stage" in columns(con, "experiments") else "NULL"
        for exp_id, name, life in con.execute(
            f"SELECT experiment_id, name, {stage} FROM experiments"
        ).fetchall():
            layout.experiments.append(
                (db_text(exp_id), db_text(name), db_text(life).lower() == common.DELETED)
            )
    return layout


_ROWID_MIN, _ROWID_MAX = -(2**63), 2**63 - 1
# Columns as text the way db_text makes them (bytes decoded by the connection, NULL as empty).
_PAIR = "coalesce(CAST(run_uuid AS TEXT), ''), coalesce(CAST(\"key\" AS TEXT), '')"
_VALUE = "coalesce(CAST(value AS TEXT), '')"
# A timestamp as SQLite gives a number (NULL for text or bytes a damaged row may hold).
_NUMBER = "CASE WHEN typeof(timestamp) IN ('integer', 'real') THEN timestamp END"
_IN = "WHERE run_uuid IN (SELECT run_uuid FROM runs WHERE rowid BETWEEN ? AND ?)"


def read_chunks(
    con: sqlite3.Connection, layout: Layout, size: int, points_up_to: int = 0
) -> Iterator[RunChunk]:
    """Every run, ``size`` at a time in rowid order, each chunk with its params, tags and metric
    counts from one read transaction of its own; with its metric points too when it has at most
    ``points_up_to`` of them (a first import reads every history: in the same transaction the
    counts need no second grouping to place each point, and the latest timestamps come from the
    points, not from a pass over the table's rows).

    A chunk, not the whole database, is what is held in memory (a 100,000-run database's rows
    as Python objects took most of a gigabyte), and each read transaction is short: in a
    rollback-mode database a reader blocks MLflow's commits for as long as it reads. Runs
    committed after the file's state was taken may be missed or half-seen across chunks; the
    changed state makes the next scan read them (see :mod:`.mlflow_sqlite`).
    """
    low = _ROWID_MIN
    while True:
        try:
            chunk, last = _read_chunk(con, layout, low, size, str, points_up_to)
        except sqlite3.OperationalError:
            # Text that is not UTF-8 ("Could not decode"): read again, decoding value by value
            # (a Python call per value, so only for a chunk that needs it).
            chunk, last = _read_chunk(con, layout, low, size, _decode, points_up_to)
        if chunk is None:
            return
        yield chunk
        if len(chunk.runs) < size or last == _ROWID_MAX:
            return
        low = last + 1


def _read_chunk(
    con: sqlite3.Connection, layout: Layout, low: int, size: int, text: Any, points_up_to: int
) -> tuple[RunChunk | None, int]:
    """The chunk of runs from rowid ``low`` on, and its last rowid; ``text`` decodes TEXT."""
    runs_sql = (
        f"SELECT rowid, {layout.run_select} FROM runs WHERE rowid >= ? ORDER BY rowid LIMIT ?"
    )
    con.text_factory = text
    try:
        # The collector held off while the rows' tuples are made: none is part of a cycle, and
        # its passes over them made reading a 10,000-run database a third slower.
        with collector_held(), _read_transaction(con):
            rows = con.execute(runs_sql, [low, size]).fetchall()
            if not rows:
                return None, low
            span = [low, rows[-1][0]]  # the same runs again, for the other tables
            params = con.execute(f"SELECT {_PAIR}, {_VALUE} FROM params {_IN}", span).fetchall()
            tags = con.execute(f"SELECT {_PAIR}, {_VALUE} FROM tags {_IN}", span).fetchall()
            read = _stats_with_points(con, layout, span, points_up_to) if points_up_to else None
            stats, points = read if read is not None else (None, None)
            if stats is None:
                stats = con.execute(
                    f"SELECT {_PAIR}, count(*), max({_NUMBER}) FROM metrics {_IN} "
                    'GROUP BY run_uuid, "key"',
                    span,
                ).fetchall()
    finally:
        con.text_factory = _decode
    with collector_held():
        chunk = _as_chunk(rows, params, tags, stats)
    chunk.points = points
    return chunk, span[1]


def _stats_with_points(
    con: sqlite3.Connection, layout: Layout, span: list[int], up_to: int
) -> tuple[list[tuple[Any, ...]], np.ndarray] | None:
    """The chunk's per-(run, key) counts and latest timestamps with its points, in the open read
    transaction; None when it has more than ``up_to`` points or they cannot be read so (then
    the counts with the latest times are read as before, and the points batch by batch)."""
    nan_col = "is_nan" if layout.has_is_nan else "0"
    try:
        read = _grouped_rows(con, _IN, span, nan_col, up_to)
    except DB_ERRORS:
        return None
    if read is None:
        return None
    groups, counts, rows = read
    last = np.maximum.reduceat(rows["ts"], np.cumsum(counts) - counts) if len(rows) else []
    stats = [(g[0], g[1], g[2], float(t)) for g, t in zip(groups, last, strict=True)]
    return stats, rows


def _grouped_rows(
    con: sqlite3.Connection, where: str, args: list[Any], nan_col: str, up_to: int | None = None
) -> tuple[list[tuple[Any, ...]], np.ndarray, np.ndarray] | None:
    """The metric rows ``where`` selects, ordered by (run, key), with each group's run and key
    as text and its count of rows. None when there are more than ``up_to``, a row does not fit
    the numbers (a damaged or hand-written database) or the counts disagree with the rows."""
    groups = con.execute(
        f'SELECT {_PAIR}, count(*) FROM metrics {where} GROUP BY run_uuid, "key" '
        'ORDER BY run_uuid, "key"',
        args,
    ).fetchall()
    counts = np.fromiter((g[2] for g in groups), dtype=np.int64, count=len(groups))
    if up_to is not None and int(counts.sum()) > up_to:
        return None
    cursor = con.execute(
        f'SELECT step, timestamp, value, {nan_col} FROM metrics {where} ORDER BY run_uuid, "key"',
        args,
    )
    try:
        rows = np.fromiter(cursor, dtype=_POINT_DTYPE)
    except (TypeError, ValueError, OverflowError):
        return None
    if int(counts.sum()) != len(rows):
        return None  # an index that disagrees with its table: a damaged file
    return groups, counts, rows


def _as_chunk(
    rows: list[tuple[Any, ...]],
    params: list[tuple[str, str, str]],
    tags: list[tuple[str, str, str]],
    stats: list[tuple[str, str, int, float | None]],
) -> RunChunk:
    columns = list(zip(*stats, strict=True)) or [(), (), (), ()]
    table = pa.table(
        {
            "run_uuid": string_array(columns[0]),
            "key": string_array(columns[1]),
            "count": int_array(columns[2]),
            "last_ms": float_array(columns[3]),
        }
    )
    out = RunChunk([row[1:] for row in rows], _keyed(params), _keyed(tags), table)
    wanted = pc.is_in(out.tags["key"], value_set=string_array(list(common.RECORD_TAGS)))
    picked = out.tags.filter(wanted)
    for run, key, value in zip(*(picked[c].to_pylist() for c in KEYED), strict=True):
        out.record_tags.setdefault(run, {})[key] = value
    return out


def _keyed(rows: list[tuple[str, str, str]]) -> pa.Table:
    """(run_uuid, key, value) rows, all text (the SELECT coalesces), as Arrow columns."""
    columns = list(zip(*rows, strict=True)) or [(), (), ()]
    return pa.table({name: string_array(col) for name, col in zip(KEYED, columns, strict=True)})


def _points_fast(
    con: sqlite3.Connection, uuids: Sequence[str], run_of: dict[str, str], nan_col: str
) -> pa.Table | None:
    """Histories of these runs, column-wise; None when a row does not fit (then the slow path)."""
    marks = ", ".join("?" * len(uuids))
    with _read_transaction(con):
        read = _grouped_rows(con, f"WHERE run_uuid IN ({marks})", list(uuids), nan_col)
    if read is None:
        return None
    groups, counts, rows = read
    if any(g[0] not in run_of for g in groups):
        return None  # an index that disagrees with its table: a damaged file
    return points_table([(run_of[g[0]], g[1]) for g in groups], counts, rows)


def chunk_points(chunk: RunChunk, run_of: dict[str, str]) -> pa.Table | None:
    """The points read with ``chunk`` (None when they were not), of the runs in ``run_of``."""
    if chunk.points is None:
        return None
    stats = chunk.stats
    # Not ChunkedArray.to_numpy: it imports pandas (0.4 s of CPU and 40 MB, for good).
    counts = float_values(stats["count"]).astype(np.int64)
    owners = [
        (run_of.get(u, ""), k)
        for u, k in zip(stats["run_uuid"].to_pylist(), stats["key"].to_pylist(), strict=True)
    ]
    table = points_table(owners, counts, chunk.points)
    kept = np.array([bool(run_id) for run_id, _ in owners], np.bool_)
    if not kept.all():  # rows of a run the chunk does not keep (an empty run_uuid)
        table = table.take(numbers_array(np.flatnonzero(np.repeat(kept, counts))))
    return table


def points_table(owners: list[tuple[str, str]], counts: np.ndarray, rows: np.ndarray) -> pa.Table:
    """Points of rows ordered by group, each group's (run id, key) and its count of rows."""
    group_of_row = numbers_array(np.repeat(np.arange(len(owners), dtype=np.int64), counts))
    run_ids = string_array([o[0] for o in owners]).take(group_of_row)
    keys = string_array([o[1] for o in owners]).take(group_of_row)
    values = rows["value"].copy()
    sentinel = np.abs(values) == common.MLFLOW_INFINITY
    values[sentinel] = np.copysign(np.inf, values[sentinel])
    values[rows["nan"] != 0] = np.nan
    return pa.table(
        {
            "run_id": run_ids,
            "key": keys,
            "step": numbers_array(rows["step"]),
            "ts": numbers_array(rows["ts"] / 1000.0),
            "value": numbers_array(values),
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
        run_id = run_of.get(db_text(run))
        if number is None or run_id is None:
            bad += 1
            continue
        step_int = _number(step, int)
        ts_ms = _number(ts, float)
        out["run_id"].append(run_id)
        out["key"].append(db_text(key))
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
