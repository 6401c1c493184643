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
_RUN = "__mltop_run"

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
    held: dict[str, str] = {}
    if step_col and not row_step:
        step_expr = f"TRY_CAST({_quote_ident(step_col)} AS BIGINT)"
    else:
        # The row's place in its file is the step. A window without ORDER BY numbers rows in
        # the order the threads hand them over; a table filled from the scan keeps the files'
        # order (DuckDB preserves insertion order), so its rowid orders each file's rows.
        # A column of the file named rowid would hide the table's own: it is kept under a
        # private name in the table and its points keep the file's name.
        renamed = {c: f"{FILE_COLUMN}_{i}" for i, c in enumerate(columns) if c.lower() == "rowid"}
        rename = ", ".join(f"{_quote_ident(c)} AS {_quote_ident(n)}" for c, n in renamed.items())
        star = f"* RENAME ({rename})" if renamed else "*"
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _wide AS SELECT {star} FROM {relation_sql}")
        except duckdb.Error as exc:
            raise ParseError(" ".join(str(exc).split())) from exc
        relation_sql = "_wide"
        held = renamed
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
        f"TRY_CAST(trim(CAST({_quote_ident(held.get(c, c))} AS VARCHAR), '\"') AS DOUBLE) "
        f"AS {_quote_ident(c)}"
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


#: Line shapes above which a batch is read as maps rather than wide (see :func:`_fits_wide`).
WIDE_COLUMNS = 512
WIDE_SPARSENESS = 4


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

    A first, cheap scan lists the batch's key sets (``json_keys``, no values; each file's own
    only when the files' step or time fields may differ). When the batch's lines share few keys
    they are read into one wide table of those keys, every value as text
    (:func:`_wide_points`); a batch whose files each log different keys is read line by line as
    maps instead (:func:`_map_points`): a wide table would cost a cell per key of the whole
    batch on every line. Each file's step and time fields are picked from its own keys
    (``step`` in one file, ``epoch`` in the next), with the rules of :func:`wide_to_points`:
    text that is a number is a number, nested and boolean values are no metric.

    With ``tagged``, the lines of many files were written into one: each line carries its
    file's key in the field FILE_COLUMN, and ``tagged`` maps those keys to run ids.
    """
    if not run_of_file:
        return empty_points()
    con = connection()
    files = "[" + ", ".join(_quote_literal(p) for p in run_of_file) + "]"
    source = "filename"
    if tagged is not None:
        source = f"json->>{_quote_literal(FILE_COLUMN)}"
        exclude = (*exclude, FILE_COLUMN)
        run_of_file = tagged
    reader = f"read_ndjson_objects({files}, filename=true, maximum_object_size={MAX_LINE})"
    try:
        shapes: list[tuple[list[str], int]] = con.execute(
            f"SELECT json_keys(json) AS keys, count(*) AS lines FROM {reader} GROUP BY ALL"
        ).fetchall()
        columns = list(dict.fromkeys(k for keys, _ in shapes for k in keys))
        if "" in columns:
            # A field named "" cannot be a column of the other readers: the line-by-line
            # fallback leaves it out and says so.
            raise ParseError('a field is named ""')
        if tagged is not None and any(FILE_COLUMN not in keys for keys, _ in shapes):
            raise ParseError("the lines carry no file tag")
        shared = _shared_roles([keys for keys, _ in shapes], columns, step_col, time_col, exclude)
        if shared is not None:
            picked = dict.fromkeys(run_of_file, shared)
        else:
            picked = _roles_by_file(con, reader, source, run_of_file, step_col, time_col, exclude)
        if _fits_wide(shapes, columns, tagged is not None):
            table = _wide_points(con, files, tagged is not None, columns, run_of_file, picked,
                                 row_step)  # fmt: skip
        else:
            table = _map_points(con, files, tagged is not None, run_of_file, picked, row_step)
    except duckdb.Error as exc:
        raise ParseError(" ".join(str(exc).split())) from exc
    return _placed(table, no_step)


#: The longest line read from a JSONL file (DuckDB's default is 16 MB).
MAX_LINE = 64 * 1024 * 1024


def _fits_wide(shapes: Sequence[tuple[list[str], int]], columns: list[str], tagged: bool) -> bool:
    """Whether one wide table of every key of the batch is the cheaper read.

    It costs a cell per key on every line, so it is taken while the batch has few keys and its
    lines fill at least 1/:data:`WIDE_SPARSENESS` of the cells; never for keys that cannot all
    be columns (the same name in another case, or a name this module uses).
    """
    if len(columns) > WIDE_COLUMNS:
        return False
    lines = sum(n for _, n in shapes)
    fields = sum(n * len(keys) for keys, n in shapes)
    if len(columns) * lines > WIDE_SPARSENESS * max(fields, 1):
        return False
    # "rowid" would hide the table's own row numbers, which number lines without a step.
    ours = {_STEP, _TS, _RUN, "rowid"} | (set() if tagged else {FILE_COLUMN})
    lowered = {c.lower() for c in columns}
    return len(lowered) == len(columns) and not lowered & ours


def _shared_roles(
    key_sets: Sequence[list[str]],
    columns: list[str],
    step_col: str | None,
    time_col: str | None,
    exclude: Sequence[str],
) -> tuple[str | None, str | None, list[str]] | None:
    """The roles every file of the batch has, known from its key sets alone; None when the
    files may differ (each file's keys are then listed, see :func:`_roles_by_file`).

    A file's step field is the first of STEP_COLUMNS among its keys. When the first of them
    among all the batch's keys is on every line, it is every file's; when none is there, no
    file has one. The same holds for the time field.
    """
    if len({c.lower() for c in columns}) != len(columns):
        return None  # which of two spellings a file picks depends on its own keys
    for given, candidates in ((step_col, STEP_COLUMNS), (time_col, TIME_COLUMNS)):
        chosen = _pick(columns, candidates) if given is None else None
        if chosen is not None and not all(chosen in keys for keys in key_sets):
            return None
    return _roles(columns, step_col, time_col, exclude)


def _roles_by_file(
    con: duckdb.DuckDBPyConnection,
    reader: str,
    source: str,
    run_of_file: dict[str, str],
    step_col: str | None,
    time_col: str | None,
    exclude: Sequence[str],
) -> dict[str, tuple[str | None, str | None, list[str]]]:
    """Each file's roles, from its own keys (``source`` names the file of a line)."""
    keys_of: dict[str, dict[str, None]] = {}
    for filename, keys in con.execute(
        f"SELECT {source} AS filename, json_keys(json) AS keys FROM {reader} GROUP BY ALL"
    ).fetchall():
        keys_of.setdefault(filename, {}).update(dict.fromkeys(keys))
    # Roles are picked once per set of keys: a batch of one writer's runs has one or two.
    by_keys: dict[tuple[str, ...], tuple[str | None, str | None, list[str]]] = {}
    picked = {}
    for path in run_of_file:
        keys = tuple(keys_of.get(path, ()))
        if keys not in by_keys:
            by_keys[keys] = _roles(keys, step_col, time_col, exclude)
        picked[path] = by_keys[keys]
    return picked


def _wide_points(
    con: duckdb.DuckDBPyConnection,
    files: str,
    tagged: bool,
    columns: list[str],
    run_of_file: dict[str, str],
    picked: dict[str, tuple[str | None, str | None, list[str]]],
    row_step: bool,
) -> pa.Table:
    """Points of a batch read as one table with a text column per key, UNPIVOTed in DuckDB.

    Every value is read as the text a map read gives it, so both reads make the same points.
    ``records=true`` makes a line that is no object, or an object with a key twice, an error
    (as the map read's cast does), which sends the batch to the callers' fallbacks.

    When every file has the same step and time fields (a batch of one writer's runs) they are
    plain columns and each row's file becomes its run id afterwards, in Arrow; otherwise each
    row is joined to its file's fields (a third more time).
    """
    declared = ", ".join(f"{_quote_literal(c)}: 'VARCHAR'" for c in columns)
    name = "" if tagged else f", filename={_quote_literal(FILE_COLUMN)}"
    reader = (
        f"read_ndjson({files}, columns={{{declared}}}, records=true, "
        f"format='newline_delimited', maximum_object_size={MAX_LINE}{name})"
    )
    if row_step:
        picked = {path: (None, t, skip) for path, (_, t, skip) in picked.items()}
    by_line = any(s is None for s, _, _ in picked.values())
    if by_line:
        # The line's place in its file (see wide_to_points: the table keeps the scan's order).
        con.execute(f"CREATE OR REPLACE TEMP TABLE _wide AS SELECT * FROM {reader}")
        reader = "_wide"
    line = f"(row_number() OVER (PARTITION BY w.{FILE_COLUMN} ORDER BY w.rowid) - 1)"
    step_text = "coalesce(TRY_CAST({0} AS BIGINT), TRY_CAST(TRY_CAST({0} AS DOUBLE) AS BIGINT))"
    time_text = "coalesce(TRY_CAST({0} AS DOUBLE), epoch(TRY_CAST({0} AS TIMESTAMPTZ)))"
    uniform = len({(s, t, tuple(skip)) for s, t, skip in picked.values()}) == 1
    if uniform:
        step_key, time_key, skip = next(iter(picked.values()))
        step = _role(step_key, columns, step_text, line, "NULL::BIGINT")
        time_ = _role(time_key, columns, time_text, "NULL::DOUBLE", "NULL::DOUBLE")
        skipped = set(skip)
    else:
        step = _per_file_role("step_key", picked, 0, columns, step_text, line, "NULL::BIGINT")
        time_ = _per_file_role("time_key", picked, 1, columns, time_text, "NULL::DOUBLE",
                               "NULL::DOUBLE")  # fmt: skip
        skipped = set()
    values = []
    for key in columns:
        if key == FILE_COLUMN or key in skipped:
            continue
        value = f"TRY_CAST({_column(key)} AS DOUBLE)"
        if not uniform and any(key in skip for _, _, skip in picked.values()):
            value = (
                f"CASE WHEN list_contains(f.skip, {_quote_literal(key)}) THEN NULL ELSE {value} END"
            )
        values.append(f"{value} AS {_quote_ident(key)}")
    if not values:
        con.execute("DROP TABLE IF EXISTS _wide")
        return empty_points()
    run = f"w.{FILE_COLUMN}" if uniform else "f.run_id"
    join = "" if uniform else f"JOIN _file_roles f ON f.filename = w.{FILE_COLUMN}"
    if not uniform:
        con.register("_file_roles", _roles_table(run_of_file, picked, row_step))
    try:
        table = con.sql(
            f"""SELECT {_RUN} AS run_id, key, {_STEP} AS step, {_TS} AS ts, value
            FROM (UNPIVOT (SELECT {run} AS {_RUN}, {step} AS {_STEP}, {time_} AS {_TS},
                                  {", ".join(values)}
                           FROM {reader} w {join})
                  ON COLUMNS(* EXCLUDE ({_RUN}, {_STEP}, {_TS}))
                  INTO NAME key VALUE value)"""
        ).to_arrow_table()
    finally:
        if not uniform:
            con.unregister("_file_roles")
        con.execute("DROP TABLE IF EXISTS _wide")
    return _runs_of_files(table, run_of_file) if uniform else table


def _role(key: str | None, columns: list[str], convert: str, missing: str, absent: str) -> str:
    """The expression of one role (step or time) filled by the field ``key`` in every file:
    ``missing`` when no field has the role, ``absent`` when the named field is in no line."""
    if key is None:
        return missing
    return convert.format(_column(key)) if key in columns else absent


def _per_file_role(
    role: str,
    picked: dict[str, tuple[str | None, str | None, list[str]]],
    at: int,
    columns: list[str],
    convert: str,
    missing: str,
    absent: str,
) -> str:
    """The expression of a role whose field differs between files (joined as ``f``)."""
    keys = sorted({p[at] for p in picked.values() if p[at] is not None and p[at] in columns})
    whens = " ".join(
        f"WHEN f.{role} = {_quote_literal(k)} THEN {convert.format(_column(k))}" for k in keys
    )
    return f"CASE WHEN f.{role} IS NULL THEN {missing} {whens} ELSE {absent} END"


def _runs_of_files(table: pa.Table, run_of_file: dict[str, str]) -> pa.Table:
    """``table`` with the file each row came from (in its run_id column) made that file's run
    id; rows of a file not in ``run_of_file`` are dropped, as a join would."""
    at = pc.index_in(table.column("run_id"), value_set=pa.array(list(run_of_file), pa.string()))
    if at.null_count:
        table = table.filter(pc.is_valid(at))
        at = at.drop_null()
    runs = pa.array(list(run_of_file.values()), pa.string()).take(at)
    return table.set_column(0, "run_id", runs)


def _column(key: str) -> str:
    return "w." + _quote_ident(key)


def _roles_table(
    run_of_file: dict[str, str],
    picked: dict[str, tuple[str | None, str | None, list[str]]],
    row_step: bool,
) -> pa.Table:
    return pa.table(
        {
            "filename": list(run_of_file),
            "run_id": list(run_of_file.values()),
            "step_key": pa.array(
                [None if row_step else picked[p][0] for p in run_of_file], pa.string()
            ),
            "time_key": pa.array([picked[p][1] for p in run_of_file], pa.string()),
            "skip": pa.array([picked[p][2] for p in run_of_file], pa.list_(pa.string())),
        }
    )


def _roles(
    keys: Sequence[str], step_col: str | None, time_col: str | None, exclude: Sequence[str]
) -> tuple[str | None, str | None, list[str]]:
    """(step field, time field, fields that are no metric) of one file with these keys."""
    step = step_col if step_col is not None else _pick(keys, STEP_COLUMNS)
    time_ = time_col if time_col is not None else _pick(keys, TIME_COLUMNS)
    return step or None, time_ or None, [c for c in (step, time_, *exclude) if c]


def _map_points(
    con: duckdb.DuckDBPyConnection,
    files: str,
    tagged: bool,
    run_of_file: dict[str, str],
    picked: dict[str, tuple[str | None, str | None, list[str]]],
    row_step: bool,
) -> pa.Table:
    """Points of a batch read line by line as maps of their fields, then unnested."""
    source = f"fields[{_quote_literal(FILE_COLUMN)}]" if tagged else "filename"
    # A table filled from the scan keeps the files' order (DuckDB preserves insertion order),
    # so its rowid numbers each file's lines.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _lines AS
        SELECT {source} AS filename, fields
        FROM (SELECT filename, CAST(json AS MAP(VARCHAR, VARCHAR)) AS fields
              FROM read_ndjson_objects({files}, filename=true, maximum_object_size={MAX_LINE}))"""
    )
    step = "l.fields[f.step_key]"
    time_ = "l.fields[f.time_key]"
    con.register("_file_roles", _roles_table(run_of_file, picked, row_step))
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
        con.execute("DROP TABLE IF EXISTS _lines")


def csv_points(
    run_of_file: dict[str, str], delimiter: str | None = None, **kwargs: object
) -> pa.Table:
    """Points from wide CSV/TSV files ({path: run_id}), all parsed in one DuckDB scan."""
    if not run_of_file:
        return empty_points()
    relation = csv_relation(list(run_of_file), delimiter)
    return wide_to_points(relation, _describe(relation), run_of_file=run_of_file, **kwargs)  # type: ignore[arg-type]


def tagged_csv_points(
    path: str,
    names: Sequence[str],
    tagged: dict[str, str],
    delimiter: str,
    step_col: str | None = None,
    time_col: str | None = None,
    exclude: Sequence[str] = (),
    row_step: bool = False,
    no_step: dict[str, int] | None = None,
) -> pa.Table:
    """Points from the rows of many plain CSV files of one header, written into one file.

    Each row starts with its file's key (the field FILE_COLUMN, mapped to run ids by
    ``tagged``), then the fields ``names`` (the header, given here and not in the file). These
    are a writer's numbers, so the columns are declared with their types (the step an integer,
    time and values floats; an empty cell is no value): nothing is sniffed, inferred or cast
    from text, and every line is one row (no quoting). Anything else (a line with another
    number of fields, a cell that is no number, no step column) is a ParseError, and the caller
    reads each file alone, where text becomes NULL as in :func:`csv_points`.
    """
    lowered = [n.lower() for n in names]
    ours = {FILE_COLUMN.lower(), _STEP, _TS, _RUN, "rowid"}
    if len(set(lowered)) != len(lowered) or "" in lowered or set(lowered) & ours:
        raise ParseError("the header's names cannot all be columns")
    step = step_col if step_col is not None else _pick(names, STEP_COLUMNS)
    time_ = (time_col if time_col is not None else _pick(names, TIME_COLUMNS)) or None
    if row_step or not step or step not in names or (time_ and time_ not in names):
        raise ParseError("no step column")
    skipped = {step, time_, *exclude}
    types = {
        n: "BIGINT" if n == step else "DOUBLE" if n == time_ or n not in skipped else "VARCHAR"
        for n in names
    }
    declared = ", ".join(
        f"{_quote_literal(c)}: {_quote_literal(t)}"
        for c, t in {FILE_COLUMN: "VARCHAR", **types}.items()
    )
    values = [n for n in names if n not in skipped]
    if not values:
        return empty_points()
    time_expr = _quote_ident(time_) if time_ else "NULL::DOUBLE"
    con = connection()
    try:
        table = con.sql(
            f"""SELECT {_RUN} AS run_id, key, {_STEP} AS step, {_TS} AS ts, value
            FROM (UNPIVOT (SELECT {FILE_COLUMN} AS {_RUN}, {_quote_ident(step)} AS {_STEP},
                                  {time_expr} AS {_TS}, {", ".join(map(_quote_ident, values))}
                           FROM read_csv([{_quote_literal(path)}], header=false,
                                         auto_detect=false, columns={{{declared}}},
                                         delim={_quote_literal(delimiter)}, quote='',
                                         escape='', comment='', new_line='\\n'))
                  ON COLUMNS(* EXCLUDE ({_RUN}, {_STEP}, {_TS}))
                  INTO NAME key VALUE value)"""
        ).to_arrow_table()
    except duckdb.Error as exc:
        raise ParseError(" ".join(str(exc).split())) from exc
    return _placed(_runs_of_files(table, tagged), no_step)


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
