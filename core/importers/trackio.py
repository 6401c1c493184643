"""Importer for trackio projects: one SQLite database per project (``<project>.db``).

trackio stores each ``log()`` call as one row of ``metrics`` holding a JSON object of metric
values (a BLOB since trackio 0.40, TEXT before), a ``configs`` row per run, and ``alerts``. Runs
have no state: a run is FINISHED unless trackio says otherwise (it never does).

Opening the database without disturbing it
------------------------------------------
trackio runs SQLite in WAL mode, so committed rows may sit in ``<db>-wal`` until a checkpoint;
:mod:`mltop.core.importers.sqlite_readonly` reads them without creating ``-shm`` beside the
database (``immutable=1`` with no WAL, ``mode=ro`` through a live writer's index, else a copy).

Incremental reading: ``metrics.id`` only grows, so the recorded offset of the database file is
the highest id read; a scan after the file changed reads the newer rows only, and re-reads the
whole project when that id went backwards (the database was replaced).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from mltop.core import tabular
from mltop.core.common.regular_files import open_regular
from mltop.core.entities import FileState, ImportReport, RunRecord, SourceRef, Status, stable_id
from mltop.core.importers import sqlite_readonly
from mltop.core.importers.base import Detection, file_state
from mltop.core.importers.params import flatten_params
from mltop.core.store import RunQuery, Store

KIND = "trackio"
SQLITE_MAGIC = b"SQLite format 3\x00"
FETCH_ROWS = 50_000
# trackio's own keys in a run's config, kept as tags rather than params.
_CONFIG_TAGS = {"_Group": "trackio.group", "_Username": "trackio.username"}


class TrackioError(Exception):
    """The database cannot be read as a trackio project; the message is one line."""


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in con.execute(f"PRAGMA table_info({table})")}


def is_trackio_db(path: Path) -> bool:
    """A SQLite file with trackio's ``metrics`` table (run_name, step, metrics columns).

    Raises TrackioError when the file is SQLite but its schema cannot be read (a damaged
    database may be a trackio project: it is reported, not passed over). SQLite's message for a
    corrupt schema can carry the corrupt bytes, which Python fails to decode: UnicodeDecodeError.
    """
    try:
        with open_regular(path) as fh:
            if fh.read(16) != SQLITE_MAGIC:
                return False
        con = sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)
    except (OSError, ValueError):
        return False
    except sqlite3.Error as exc:
        raise TrackioError(f"damaged SQLite database ({_one_line(exc)})") from exc
    try:
        return {"run_name", "step", "metrics"} <= _columns(con, "metrics")
    except (sqlite3.Error, UnicodeDecodeError) as exc:
        raise TrackioError(f"damaged SQLite database ({_one_line(exc)})") from exc
    finally:
        con.close()


def _not_a_project(path: Path) -> str | None:
    """Why a database beside its trackio lock file is no project; None when it cannot be read
    (discovery reports unreadable files)."""
    try:
        with open_regular(path) as fh:
            head = fh.read(16)
    except OSError:
        return None
    if not head:
        return "empty file (a trackio project database was expected beside its .lock)"
    if head != SQLITE_MAGIC:
        return "not a SQLite database (bad header; a trackio project was expected)"
    return "not a trackio project database (no metrics table with run_name, step, metrics)"


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):  # SQLite's message quoted bytes of a corrupt schema
        return "malformed database schema (bytes that are not UTF-8)"
    return " ".join(str(exc).split()) or type(exc).__name__


def open_readonly(path: Path) -> contextlib.AbstractContextManager[sqlite3.Connection]:
    """Open a trackio database for reading without changing its folder (see module doc)."""
    return sqlite_readonly.open_readonly(path)


def _epoch(text: object) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _decode(raw: object) -> object:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not isinstance(raw, str):
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


@dataclass
class _RunMeta:
    native: str
    name: str
    config: dict[str, object]
    created: float | None
    first: float | None
    last: float | None
    alerts: list[str]


@dataclass
class _Project:
    runs: dict[str, _RunMeta]
    points: pa.Table
    max_id: int
    full: bool  # read from the first row (new, replaced or rewound database)


# Points keyed by trackio's own run key until _with_run_ids maps them to mltop run ids.
_POINTS_NATIVE = pa.schema(
    [
        ("run_id", pa.string()),
        ("key", pa.string()),
        ("step", pa.int64()),
        ("ts", pa.float64()),
        ("value", pa.float64()),
    ]
)

# Metric rows arrive as Arrow (native run key, step, time text, JSON text); DuckDB explodes the
# JSON objects into one point per key: with the batch's distinct keys as one constant list of
# JSON paths (json_extract with many paths is ~25x faster than json_each), or with json_each
# when a batch has too many distinct keys for that. Non-numeric values (text, bools, media
# dicts, null) are dropped; bare or quoted NaN/Infinity survive.
WIDE_KEYS = 512
_VALUE_FILTER = "v IS NOT NULL AND json_type(v) NOT IN ('BOOLEAN', 'OBJECT', 'ARRAY', 'NULL')"
_EXPLODE_PATHS = f"""
SELECT run_id, key, step, epoch_us(TRY_CAST(ts AS TIMESTAMPTZ)) / 1000000.0 AS ts,
       TRY_CAST(v AS DOUBLE) AS value
FROM (SELECT run_id, step, ts, unnest(?::VARCHAR[]) AS key,
             unnest(json_extract(metrics, ?::VARCHAR[])) AS v
      FROM _trackio_rows WHERE ok AND step IS NOT NULL)
WHERE {_VALUE_FILTER} AND TRY_CAST(v AS DOUBLE) IS NOT NULL
"""
_EXPLODE_EACH = f"""
SELECT run_id, key, step, epoch_us(TRY_CAST(ts AS TIMESTAMPTZ)) / 1000000.0 AS ts,
       TRY_CAST(v AS DOUBLE) AS value
FROM (SELECT r.run_id, r.step, r.ts, j.key AS key, j.value AS v
      FROM (SELECT * FROM _trackio_rows WHERE ok AND step IS NOT NULL) r,
           json_each(r.metrics) j)
WHERE {_VALUE_FILTER} AND TRY_CAST(v AS DOUBLE) IS NOT NULL
"""


def _json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _column(values: Sequence[object], kind: pa.DataType, python: type) -> pa.Array:
    """An Arrow column from SQLite values; cells of the wrong type (SQLite is loosely typed)
    become null, checked in Python only when the fast conversion refuses them."""
    try:
        return pa.array(values, kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return pa.array([v if type(v) is python else None for v in values], kind)


def _explode(rows: pa.Table) -> tuple[pa.Table, int]:
    """Points of these metric rows, and how many rows held no JSON object."""
    con = tabular.connection()
    con.register("_trackio_raw", rows)
    try:
        # CASE, not AND: DuckDB may evaluate json_type() on text that is not JSON, and fail.
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _trackio_rows AS SELECT run_id, step, ts, metrics, "
            "CASE WHEN json_valid(metrics) THEN json_type(metrics) END = 'OBJECT' AS ok "
            "FROM _trackio_raw"
        )
        keys = [
            row[0]
            for row in con.execute(
                "SELECT DISTINCT unnest(json_keys(metrics)) FROM _trackio_rows WHERE ok"
            ).fetchall()
        ]
        if len(keys) <= WIDE_KEYS:
            paths = [_json_path(k) for k in keys]
            table = con.sql(_EXPLODE_PATHS, params=[keys, paths]).to_arrow_table()
        else:
            table = con.sql(_EXPLODE_EACH).to_arrow_table()
        rows_bad = con.execute("SELECT count(*) FROM _trackio_rows WHERE ok IS NOT TRUE").fetchall()
    except duckdb.Error as exc:
        raise TrackioError(f"cannot parse metric rows ({' '.join(str(exc).split())})") from exc
    finally:
        con.unregister("_trackio_raw")
        with contextlib.suppress(duckdb.Error):
            con.execute("DROP TABLE IF EXISTS _trackio_rows")
    return table.cast(_POINTS_NATIVE), int(rows_bad[0][0]) if rows_bad else 0


def read_project(path: Path, after_id: int, report: ImportReport) -> _Project:
    """Runs (all of them) and metric points of rows with ``id > after_id``."""
    try:
        with open_readonly(path) as con:
            try:
                problems: list[str] = []
                project = _read(con, after_id, problems)
            except sqlite3.OperationalError as exc:
                if "decode" not in str(exc):
                    raise
                # Text that is not UTF-8: read again, slower, replacing the bad bytes.
                con.text_factory = lambda b: b.decode("utf-8", errors="replace")
                problems = []
                project = _read(con, after_id, problems)
    except sqlite3.Error as exc:
        raise TrackioError(f"not a readable trackio database ({exc})") from exc
    except OSError as exc:
        raise TrackioError(f"cannot read ({exc.strerror or exc})") from exc
    for message in problems:
        report.problem(path, message)
    return project


def _read(con: sqlite3.Connection, after_id: int, problems: list[str]) -> _Project:
    metric_cols = _columns(con, "metrics")
    if not {"run_name", "step", "metrics"} <= metric_cols:
        raise TrackioError("no trackio metrics table (run_name, step, metrics)")
    has_id = "run_id" in metric_cols
    key_expr = "coalesce(run_id, run_name)" if has_id else "run_name"
    ts_expr = "timestamp" if "timestamp" in metric_cols else "NULL"

    runs: dict[str, _RunMeta] = {}
    for native, name, first, last in con.execute(
        f"SELECT {key_expr}, max(run_name), min({ts_expr}), max({ts_expr}) "
        f"FROM metrics GROUP BY {key_expr}"
    ):
        runs[str(native)] = _RunMeta(
            str(native), str(name), {}, None, _epoch(first), _epoch(last), []
        )

    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "configs" in tables:
        cfg_cols = _columns(con, "configs")
        cfg_key = "coalesce(run_id, run_name)" if "run_id" in cfg_cols else "run_name"
        created = "created_at" if "created_at" in cfg_cols else "NULL"
        for native, name, config, when in con.execute(
            f"SELECT {cfg_key}, run_name, config, {created} FROM configs ORDER BY rowid"
        ):
            meta = runs.setdefault(
                str(native), _RunMeta(str(native), str(name), {}, None, None, None, [])
            )
            parsed = _decode(config)
            if isinstance(parsed, dict):
                meta.config = parsed
            elif config is not None:
                problems.append(f"run {name!r}: config is not a JSON object; ignored")
            meta.created = _epoch(parsed.get("_Created")) if isinstance(parsed, dict) else None
            meta.created = meta.created or _epoch(when)
    if "alerts" in tables:
        alert_cols = _columns(con, "alerts")
        alert_key = "coalesce(run_id, run_name)" if "run_id" in alert_cols else "run_name"
        for native, level, title, text, step in con.execute(
            f"SELECT {alert_key}, level, title, text, step FROM alerts ORDER BY id"
        ):
            meta = runs.get(str(native))
            if meta is not None:
                where = f"@{step}" if step is not None else ""
                detail = f": {text}" if text else ""
                meta.alerts.append(f"{level}{where} {title}{detail}")

    id_col = "id" if "id" in metric_cols else "rowid"
    row = con.execute(f"SELECT max({id_col}) FROM metrics").fetchone()
    db_max = int(row[0]) if row and row[0] is not None else 0
    if db_max < after_id:
        after_id = 0  # rows went away: the database was replaced or rewound
    full = after_id == 0
    max_id = after_id
    batches: list[pa.Table] = []
    bad_rows = 0
    cursor = con.execute(
        f"SELECT {id_col}, {key_expr}, step, {ts_expr}, CAST(metrics AS TEXT) "
        f"FROM metrics WHERE {id_col} > ? ORDER BY {id_col}",
        [after_id],
    )
    while True:
        rows = cursor.fetchmany(FETCH_ROWS)
        if not rows:
            break
        ids, natives, steps, times, blobs = zip(*rows, strict=True)
        max_id = max(max_id, max(int(i) for i in ids))
        raw = pa.table(
            {
                "run_id": _column(natives, pa.string(), str),
                "step": _column(steps, pa.int64(), int),
                "ts": _column(times, pa.string(), str),
                "metrics": _column(blobs, pa.string(), str),
            }
        )
        table, bad = _explode(raw)
        batches.append(table)
        bad_rows += bad
    if bad_rows:
        problems.append(f"{bad_rows} metric row(s) without a JSON object skipped")
    points = pa.concat_tables(batches) if batches else _POINTS_NATIVE.empty_table()
    return _Project(runs, points, max_id, full)


class TrackioImporter:
    kind = KIND

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        refs: list[SourceRef] = []
        claimed: set[str] = set()
        problems: list[tuple[Path, str]] = []
        for name in filenames:
            if not name.endswith(".db"):
                continue
            stem = name[:-3]
            try:
                if not is_trackio_db(dirpath / name):
                    # trackio keeps an empty <project>.lock beside each project database: with
                    # it, a .db that is not a readable project is a damaged one, not another app's.
                    why = _not_a_project(dirpath / name) if f"{stem}.lock" in filenames else None
                    if why is not None:
                        problems.append((dirpath / name, why))
                    continue
            except TrackioError as exc:
                problems.append((dirpath / name, str(exc)))
                continue
            refs.append(SourceRef(KIND, dirpath / name))
            claimed |= {f for f in filenames if f == name or f.startswith(name + "-")}
            claimed |= {
                f
                for f in filenames
                if f == f"{stem}.lock" or (f.startswith(stem) and f.endswith(".parquet"))
            }
        if not refs and not problems:
            return None
        return Detection(refs, claimed=claimed, problems=problems)

    def import_sources(self, store: Store, refs: Sequence[SourceRef], report: ImportReport) -> None:
        known = store.file_states()
        for ref in refs:
            try:
                self._import_db(store, ref, known, report)
            except TrackioError as exc:
                report.problem(ref.location, str(exc))
            except (sqlite3.Error, OSError) as exc:
                report.problem(ref.location, f"not a readable trackio database ({exc})")
            except Exception as exc:  # one odd project must not stop the others
                report.problem(
                    ref.location, f"trackio project not imported ({type(exc).__name__}: {exc})"
                )

    def _import_db(
        self, store: Store, ref: SourceRef, known: dict[str, FileState], report: ImportReport
    ) -> None:
        path = ref.location
        source = str(path)
        wal = Path(f"{path}-wal")
        try:
            st = path.stat()
        except OSError:
            return
        wal_st = wal.stat() if wal.exists() else None
        old = known.get(source)
        old_wal = known.get(str(wal))
        if old is not None and _same(old, st) and _same_or_absent(old_wal, wal_st):
            return
        # Same file: read the rows after the last id seen (configs and alerts are re-read in
        # full: they are a few rows per run).
        after = old.offset if old is not None and old.inode == st.st_ino else 0
        project = read_project(path, after, report)

        exp_name = path.stem
        id_source = store.id_path(source)
        exp_id = stable_id(KIND, id_source)
        ids = {native: stable_id(KIND, id_source, native) for native in project.runs}
        records, params, tags = [], [], []
        for native, meta in project.runs.items():
            run_id = ids[native]
            config = dict(meta.config)
            for key, tag in _CONFIG_TAGS.items():
                value = config.pop(key, None)
                if value is not None:
                    tags.append((run_id, tag, value))
            config.pop("_Created", None)
            flat: dict[str, object] = {}
            flatten_params(config, out=flat)
            params.extend((run_id, k, v) for k, v in flat.items())
            if meta.alerts:
                tags.append((run_id, "trackio.alerts", "; ".join(meta.alerts)))
            start = meta.created or meta.first
            records.append(
                RunRecord(
                    id=run_id,
                    source_kind=KIND,
                    location=source,
                    name=meta.name,
                    status=Status.FINISHED,
                    experiment_id=exp_id,
                    native_id=native,
                    start_time=start,
                    end_time=meta.last,
                    updated=st.st_mtime if wal_st is None else max(st.st_mtime, wal_st.st_mtime),
                    source=source,
                )
            )
        points = _with_run_ids(project.points, ids)
        before = {
            r.id for r in store.runs(RunQuery("r.source = ? AND r.source_kind = ?", (source, KIND)))
        }
        gone = sorted(before - set(ids.values()))
        states = [file_state(path, st, project.max_id, None, source)]
        if wal_st is not None:
            states.append(file_state(wal, wal_st, wal_st.st_size, None, source))
        with store.transaction():
            store.put_experiments([(exp_id, KIND, source, exp_name, exp_name)])
            if gone:
                store.delete_runs(gone)
            store.put_runs(source, records, params, tags)
            if project.full:
                store.delete_points(ids.values())
            added = store.add_points(points)
            store.refresh_summaries(ids.values())
            if wal_st is None:
                store.delete_files([str(wal)])
            store.put_files(source, states)
        report.add(KIND, runs=len(set(ids.values()) - before), points=added)


def _same(old: FileState, st: os.stat_result) -> bool:
    return old.size == st.st_size and old.mtime == st.st_mtime and old.inode == st.st_ino


def _same_or_absent(old: FileState | None, st: os.stat_result | None) -> bool:
    if old is None or st is None:
        return old is None and st is None
    return _same(old, st)


def _with_run_ids(points: pa.Table, ids: dict[str, str]) -> pa.Table:
    """Replace trackio's run keys by mltop run ids (a join in DuckDB, no Python loop)."""
    if points.num_rows == 0:
        return tabular.empty_points()
    mapping = pa.table({"native": list(ids.keys()), "id": list(ids.values())})
    con = tabular.connection()
    con.register("_trackio_points", points)
    con.register("_trackio_ids", mapping)
    try:
        return (
            con.sql(
                "SELECT m.id AS run_id, p.key, p.step, p.ts, p.value FROM _trackio_points p "
                "JOIN _trackio_ids m ON m.native = p.run_id"
            )
            .to_arrow_table()
            .cast(_POINTS_NATIVE)
        )
    finally:
        con.unregister("_trackio_points")
        con.unregister("_trackio_ids")


IMPORTER = TrackioImporter()
