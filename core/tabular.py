"""Bulk parsing of metric files with an in-memory DuckDB, into Arrow point tables.

Metric points are many; Python handles which file belongs to which run, DuckDB parses and
reshapes the rows (``read_json``/``read_csv`` + UNPIVOT). The result is an Arrow table in
:data:`mltop.core.store.POINTS_SCHEMA` that :meth:`Store.add_points` inserts. This module never
touches the store file: it only reads source files.

Files are "wide": one row per step with a column per metric (mltop's metrics.jsonl, dvclive and
Lightning CSVs, Keras CSVLogger, generic logs). Non-numeric cells become NULL and are dropped;
``NaN``/``Infinity`` (bare or quoted) survive as IEEE values.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mltop.core.common import scratch
from mltop.core.store import POINTS_SCHEMA

STEP_COLUMNS = ("step", "epoch", "iteration", "iter", "global_step", "_step")
TIME_COLUMNS = ("ts", "timestamp", "time", "_timestamp", "wall_time", "created_time")

# Names of the columns this module adds to a relation. A metric may be called anything, including
# "filename", "step" or "ts": the added columns must never collide with a column of the file.
FILE_COLUMN = "__mltop_file"
_STEP = "__mltop_step"
_TS = "__mltop_ts"

_local = threading.local()


#: The parsing database is reopened after this many uses. DuckDB 2.0 keeps ~1 KB of native
#: memory for good after each parse of a metrics file (schema detection, UNPIVOT, the join on
#: file names); a watcher parses twice a second for hours. Closing the database frees all of
#: it; reconnecting costs 25-55 ms, once per ~2 minutes of live following.
RECYCLE_AFTER = 500


def connection() -> duckdb.DuckDBPyConnection:
    """A per-thread in-memory DuckDB for parsing (connecting costs 25-55 ms: reuse it).

    Callers take it afresh for each parse and never hold it across another call of this
    function: it may be a new database each time.
    """
    con = getattr(_local, "con", None)
    if con is not None and _local.uses >= RECYCLE_AFTER:
        con.close()
        con = None
    if con is None:
        con = duckdb.connect(":memory:")
        con.execute("SET threads = 2")
        _local.con = con
        _local.uses = 0
    _local.uses += 1
    return con


def empty_points() -> pa.Table:
    return POINTS_SCHEMA.empty_table()


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class ParseError(Exception):
    """A file DuckDB could not parse; the message is DuckDB's, made one line."""


def _pick(columns: Sequence[str], candidates: Sequence[str]) -> str | None:
    lower = {c.lower(): c for c in columns}
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    return None


def wide_to_points(
    relation_sql: str,
    columns: Sequence[str],
    run_of_file: dict[str, str] | None = None,
    run_id: str | None = None,
    step_col: str | None = None,
    time_col: str | None = None,
    exclude: Sequence[str] = (),
    time_scale: float = 1.0,
    row_step: bool = False,
    no_step: dict[str, int] | None = None,
) -> pa.Table:
    """Reshape a wide relation (one row per step) to long points with UNPIVOT, in DuckDB.

    ``relation_sql`` is a FROM-able expression built by this module (never from user text).
    Either ``run_of_file`` maps the relation's FILE_COLUMN to run ids, or ``run_id``
    names the single run. Without a step column the row number is the step.

    Values on rows whose step is missing or no integer (text, beyond int64) cannot be placed:
    they are left out, and counted per run id in ``no_step`` so the caller can say so.
    """
    con = connection()
    step_col = step_col if step_col is not None else _pick(columns, STEP_COLUMNS)
    time_col = time_col if time_col is not None else _pick(columns, TIME_COLUMNS)
    skip = {FILE_COLUMN, *(c for c in (step_col, time_col) if c), *exclude}
    metric_cols = [c for c in columns if c not in skip]
    if not metric_cols:
        return empty_points()
    if step_col and not row_step:
        step_expr = f"TRY_CAST({_quote_ident(step_col)} AS BIGINT)"
    else:
        # The row's place in its file is the step. A window without ORDER BY numbers rows in
        # the order the threads hand them over; a table filled from the scan keeps the files'
        # order (DuckDB preserves insertion order), so its rowid orders each file's rows.
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _wide AS SELECT * FROM {relation_sql}")
        except duckdb.Error as exc:
            raise ParseError(" ".join(str(exc).split())) from exc
        relation_sql = "_wide"
        step_expr = f"(row_number() OVER (PARTITION BY {FILE_COLUMN} ORDER BY rowid) - 1)"
    # Times come as epoch numbers (seconds, or ms with time_scale=0.001) or as ISO strings.
    time_expr = (
        f"coalesce(TRY_CAST(CAST({_quote_ident(time_col)} AS VARCHAR) AS DOUBLE) "
        f"* {float(time_scale)!r}, "
        f"epoch(TRY_CAST(CAST({_quote_ident(time_col)} AS VARCHAR) AS TIMESTAMPTZ)))"
        if time_col
        else "NULL::DOUBLE"
    )
    file_expr = FILE_COLUMN if run_of_file is not None else "''"
    casts = ", ".join(
        f"TRY_CAST(trim(CAST({_quote_ident(c)} AS VARCHAR), '\"') AS DOUBLE) AS {_quote_ident(c)}"
        for c in metric_cols
    )
    base = (
        f"SELECT {file_expr} AS {FILE_COLUMN}, {step_expr} AS {_STEP}, {time_expr} AS {_TS}, "
        f"{casts} "
        f"FROM {relation_sql}"
    )
    if run_of_file is not None:
        mapping = pa.table(
            {"filename": list(run_of_file.keys()), "run_id": list(run_of_file.values())}
        )
    else:
        mapping = pa.table({"filename": [""], "run_id": [run_id or ""]})
    con.register("_file_runs", mapping)
    try:
        sql = f"""
            SELECT m.run_id, u.key, u.{_STEP} AS step, u.{_TS} AS ts, u.value
            FROM (UNPIVOT ({base}) ON COLUMNS(* EXCLUDE ({FILE_COLUMN}, {_STEP}, {_TS}))
                  INTO NAME key VALUE value) u
            JOIN _file_runs m ON m.filename = u.{FILE_COLUMN}
            WHERE u.value IS NOT NULL
        """
        table = con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        raise ParseError(" ".join(str(exc).split())) from exc
    finally:
        con.unregister("_file_runs")
        con.execute("DROP TABLE IF EXISTS _wide")
    return _placed(table, no_step)


def _placed(table: pa.Table, no_step: dict[str, int] | None) -> pa.Table:
    """The points that have a step, the others counted per run in ``no_step``."""
    steps = table.column("step")
    if steps.null_count:
        placed = pc.is_valid(steps)
        if no_step is not None:
            lost = table.filter(pc.invert(placed)).group_by("run_id").aggregate([("key", "count")])
            for run, count in zip(
                lost.column("run_id").to_pylist(), lost.column("key_count").to_pylist(), strict=True
            ):
                no_step[run] = no_step.get(run, 0) + count
        table = table.filter(placed)
    return table.cast(POINTS_SCHEMA)


def _describe(relation_sql: str) -> list[str]:
    con = connection()
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {relation_sql}").fetchall()
    except duckdb.Error as exc:
        raise ParseError(" ".join(str(exc).split())) from exc
    return [r[0] for r in rows]


def csv_relation(paths: Sequence[str], delimiter: str | None = None) -> str:
    files = "[" + ", ".join(_quote_literal(p) for p in paths) + "]"
    delim = f", delim={_quote_literal(delimiter)}" if delimiter else ""
    return (
        f"read_csv({files}, header=true, union_by_name=true, "
        f"filename={_quote_literal(FILE_COLUMN)}, "
        f"all_varchar=true, sample_size=-1{delim})"
    )


def jsonl_points(
    run_of_file: dict[str, str],
    step_col: str | None = None,
    time_col: str | None = None,
    exclude: Sequence[str] = (),
    row_step: bool = False,
    no_step: dict[str, int] | None = None,
    *,
    tagged: dict[str, str] | None = None,
) -> pa.Table:
    """Points from JSONL files ({path: run_id}), all parsed in one DuckDB scan.

    Each line is read as a map of its own fields, not into one wide table of every key any
    line has: a file whose lines carry different keys (mltop's writer puts system samples on
    lines of their own) would otherwise cost a cell per key of the whole batch on every line,
    and inferring that table's columns reads every file twice more. Each file's step and time
    fields are picked from its own keys (``step`` in one file, ``epoch`` in the next), with the
    rules of :func:`wide_to_points`: text that is a number is a number, nested and boolean
    values are no metric.

    With ``tagged``, the lines of many files were written into one: each line carries its
    file's key in the field FILE_COLUMN, and ``tagged`` maps those keys to run ids.
    """
    if not run_of_file:
        return empty_points()
    con = connection()
    files = "[" + ", ".join(_quote_literal(p) for p in run_of_file) + "]"
    source = "filename"
    if tagged is not None:
        source = f"fields[{_quote_literal(FILE_COLUMN)}]"
        exclude = (*exclude, FILE_COLUMN)
        run_of_file = tagged
    try:
        # A table filled from the scan keeps the files' order (DuckDB preserves insertion
        # order), so its rowid numbers each file's lines (see _long_points).
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _lines AS
            SELECT {source} AS filename, fields
            FROM (SELECT filename, CAST(json AS MAP(VARCHAR, VARCHAR)) AS fields
                  FROM read_ndjson_objects({files}, filename=true,
                                           maximum_object_size=67108864))"""
        )
        if tagged is not None and con.execute(
            "SELECT count(*) FROM _lines WHERE filename IS NULL"
        ).fetchone() != (0,):
            raise ParseError("the lines carry no file tag")
        keys_of = dict(
            con.execute(
                """SELECT filename, list(DISTINCT key) FROM
                   (SELECT filename, unnest(map_keys(fields)) AS key FROM _lines)
                   GROUP BY filename"""
            ).fetchall()
        )
        if any("" in keys for keys in keys_of.values()):
            # A field named "" cannot be a column of the other readers: the line-by-line
            # fallback leaves it out and says so.
            raise ParseError('a field is named ""')
        picked = {
            path: _roles(keys_of.get(path, []), step_col, time_col, exclude) for path in run_of_file
        }
        table = _long_points(con, run_of_file, picked, row_step)
    except duckdb.Error as exc:
        raise ParseError(" ".join(str(exc).split())) from exc
    finally:
        con.execute("DROP TABLE IF EXISTS _lines")
    return _placed(table, no_step)


def _roles(
    keys: Sequence[str], step_col: str | None, time_col: str | None, exclude: Sequence[str]
) -> tuple[str | None, str | None, list[str]]:
    """(step field, time field, fields that are no metric) of one file with these keys."""
    step = step_col if step_col is not None else _pick(keys, STEP_COLUMNS)
    time_ = time_col if time_col is not None else _pick(keys, TIME_COLUMNS)
    return step or None, time_ or None, [c for c in (step, time_, *exclude) if c]


def _long_points(
    con: duckdb.DuckDBPyConnection,
    run_of_file: dict[str, str],
    picked: dict[str, tuple[str | None, str | None, list[str]]],
    row_step: bool,
) -> pa.Table:
    """The points of the ``_lines`` table of :func:`jsonl_points`."""
    roles = pa.table(
        {
            "filename": list(run_of_file),
            "run_id": list(run_of_file.values()),
            "step_key": [None if row_step else picked[p][0] for p in run_of_file],
            "time_key": [picked[p][1] for p in run_of_file],
            "skip": pa.array([picked[p][2] for p in run_of_file], pa.list_(pa.string())),
        }
    )
    step = "l.fields[f.step_key]"
    time_ = "l.fields[f.time_key]"
    con.register("_file_roles", roles)
    try:
        return con.sql(
            f"""SELECT run_id, key, step, ts, TRY_CAST(text AS DOUBLE) AS value
            FROM (SELECT f.run_id, f.skip,
                         CASE WHEN f.step_key IS NULL THEN l.line
                              ELSE coalesce(TRY_CAST({step} AS BIGINT),
                                            TRY_CAST(TRY_CAST({step} AS DOUBLE) AS BIGINT))
                         END AS step,
                         coalesce(TRY_CAST({time_} AS DOUBLE),
                                  epoch(TRY_CAST({time_} AS TIMESTAMPTZ))) AS ts,
                         unnest(map_keys(l.fields)) AS key,
                         unnest(map_values(l.fields)) AS text
                  FROM (SELECT filename, fields,
                               row_number() OVER (PARTITION BY filename ORDER BY rowid) - 1
                                   AS line
                        FROM _lines) l
                  JOIN _file_roles f ON f.filename = l.filename)
            WHERE NOT list_contains(skip, key) AND TRY_CAST(text AS DOUBLE) IS NOT NULL"""
        ).to_arrow_table()
    finally:
        con.unregister("_file_roles")


def csv_points(
    run_of_file: dict[str, str], delimiter: str | None = None, **kwargs: object
) -> pa.Table:
    """Points from wide CSV/TSV files ({path: run_id}), all parsed in one DuckDB scan."""
    if not run_of_file:
        return empty_points()
    relation = csv_relation(list(run_of_file), delimiter)
    return wide_to_points(relation, _describe(relation), run_of_file=run_of_file, **kwargs)  # type: ignore[arg-type]


@contextlib.contextmanager
def readable_bytes(data: bytes, suffix: str) -> Iterator[str]:
    """A path DuckDB reads ``data`` from while the block lasts.

    An anonymous file in memory where Linux has them (``memfd_create``, read through
    ``/proc/self/fd``): the lines of a first import's batch are megabytes that would otherwise
    be written to disk only to be read back once. Elsewhere a scratch file (see
    :func:`bytes_to_tempfile`).
    """
    fd = None
    if hasattr(os, "memfd_create"):
        with contextlib.suppress(OSError):
            fd = os.memfd_create("mltop-lines", os.MFD_CLOEXEC)
    if fd is not None:
        try:
            path = f"/proc/self/fd/{fd}"
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if os.path.exists(path):
                yield path
                return
        finally:
            os.close(fd)
    name = bytes_to_tempfile(data, suffix)
    try:
        yield name
    finally:
        remove_quietly(name)


def bytes_to_tempfile(data: bytes, suffix: str) -> str:
    """DuckDB cannot read from a byte offset: new bytes go through a temporary file.

    It lives in this process's scratch folder (see :mod:`mltop.core.common.scratch`), so a process
    killed before removing it leaves it where the next start sweeps it away.
    """
    fd, name = scratch.mkstemp(suffix)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return name


def remove_quietly(path: str | Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
