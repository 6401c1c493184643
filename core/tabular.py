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
    step_expr = (
        f"TRY_CAST({_quote_ident(step_col)} AS BIGINT)"
        if step_col and not row_step
        else f"(row_number() OVER (PARTITION BY {FILE_COLUMN}) - 1)"
    )
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


def jsonl_relation(paths: Sequence[str], *, filename: bool = True) -> str:
    """``read_json`` of these files, each row with its file's name in FILE_COLUMN (unless
    ``filename`` is False: the lines carry that field themselves)."""
    files = "[" + ", ".join(_quote_literal(p) for p in paths) + "]"
    named = f"filename={_quote_literal(FILE_COLUMN)}, " if filename else ""
    return (
        f"read_json({files}, format='newline_delimited', union_by_name=true, {named}"
        "maximum_object_size=67108864, sample_size=-1)"
    )


def csv_relation(paths: Sequence[str], delimiter: str | None = None) -> str:
    files = "[" + ", ".join(_quote_literal(p) for p in paths) + "]"
    delim = f", delim={_quote_literal(delimiter)}" if delimiter else ""
    return (
        f"read_csv({files}, header=true, union_by_name=true, "
        f"filename={_quote_literal(FILE_COLUMN)}, "
        f"all_varchar=true, sample_size=-1{delim})"
    )


def jsonl_points(
    run_of_file: dict[str, str], *, tagged: dict[str, str] | None = None, **kwargs: object
) -> pa.Table:
    """Points from wide JSONL files ({path: run_id}), all parsed in one DuckDB scan.

    With ``tagged``, every line carries its run's key in the field FILE_COLUMN instead, and
    ``tagged`` maps those keys to run ids (the lines of many files written into one).
    """
    if not run_of_file:
        return empty_points()
    relation = jsonl_relation(list(run_of_file), filename=tagged is None)
    columns = _describe(relation)
    if [c for c in columns if c != FILE_COLUMN] == ["json"]:
        # DuckDB falls back to one raw "json" column when some records are not objects.
        raise ParseError("some lines are not JSON objects")
    if tagged is not None and FILE_COLUMN not in columns:
        raise ParseError("the lines carry no file tag")
    runs = tagged if tagged is not None else run_of_file
    return wide_to_points(relation, columns, run_of_file=runs, **kwargs)  # type: ignore[arg-type]


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
