"""The prediction log and the reference as DuckDB views, read in place from the user's files.

A log is one file, a folder (its Parquet, CSV and JSONL files, not recursing) or a glob; the
files are listed here, so a glob that matches nothing and a file of an unknown kind are named
in the error, and DuckDB then reads them where they lie (``read_parquet``/``read_csv``/
``read_json`` over the list, ``union_by_name``), streaming: nothing is loaded whole into Python.
The connection is a private in-memory DuckDB, not the store: it holds views only.

Every failure is a :class:`MonitorError` whose text is one line naming the file.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from mltop.core.common.regular_files import is_regular

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "json"}
FORMATS |= {".ndjson": "json", ".json": "json"}

# CSV type detection without BOOLEAN: "yes"/"no" are categories, not true/false.
_CSV_TYPES = "['BIGINT', 'DOUBLE', 'TIMESTAMP WITH TIME ZONE', 'TIMESTAMP', 'DATE', 'VARCHAR']"

MEMORY_LIMIT = "768MB"
"""DuckDB's own cap for the monitor's queries: beyond it aggregations spill to a temp folder."""


class MonitorError(Exception):
    """Why a monitor could not be computed: one line, naming the file or column at fault."""


@dataclass(frozen=True)
class FileSet:
    """The files one log (or reference) argument means, all of one format."""

    spec: str
    files: tuple[str, ...]
    format: str  # "parquet" | "csv" | "json"

    def reader(self) -> str:
        """The DuckDB table function reading every file in place."""
        paths = "[" + ", ".join(sql_string(f) for f in self.files) + "]"
        if self.format == "parquet":
            return f"read_parquet({paths}, union_by_name = true)"
        if self.format == "csv":
            return (
                f"read_csv({paths}, union_by_name = true, auto_type_candidates = {_CSV_TYPES},"
                " sample_size = 20480)"
            )
        return f"read_json({paths}, format = 'newline_delimited', union_by_name = true)"


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def quote(name: str) -> str:
    """``name`` as a SQL identifier, whatever it holds (spaces, capitals, parentheses, quotes)."""
    return '"' + name.replace('"', '""') + '"'


def find_files(spec: str | os.PathLike[str]) -> FileSet:
    """The files ``spec`` names: a file, a folder's log files, or a glob; all of one format."""
    text = os.fspath(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        found = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in FORMATS)
        if not found:
            raise MonitorError(f"{text}: no Parquet, CSV or JSONL files in this folder")
    elif path.exists():
        found = [str(path)]
    elif glob.has_magic(text):
        found = sorted(glob.glob(os.path.expanduser(text), recursive=True))
        found = [f for f in found if not os.path.isdir(f)]
        if not found:
            raise MonitorError(f"{text}: no file matches this pattern")
    else:
        raise MonitorError(f"{text}: no such file or folder")
    kinds = {FORMATS.get(Path(f).suffix.lower()) for f in found}
    if None in kinds:
        odd = next(f for f in found if Path(f).suffix.lower() not in FORMATS)
        raise MonitorError(f"{odd}: not a Parquet, CSV or JSONL file (by its name)")
    if len(kinds) > 1:
        raise MonitorError(f"{text}: mixes file formats ({', '.join(sorted(map(str, kinds)))})")
    for f in found:
        if not is_regular(f):
            raise MonitorError(f"{f}: not a regular file")
    return FileSet(text, tuple(found), str(kinds.pop()))


def connect() -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB for reading logs: UTC, bounded memory."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute("SET enable_progress_bar = false")  # it would draw over the command's output
    return con


def describe(con: duckdb.DuckDBPyConnection, files: FileSet) -> dict[str, str]:
    """Column name -> DuckDB type of ``files`` read together; a file DuckDB cannot read is named."""
    if files.format == "parquet":
        for f in files.files:
            _probe_parquet(con, f)
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {files.reader()}").fetchall()
    except duckdb.Error as exc:
        raise MonitorError(f"{files.spec}: {first_line(exc)}") from exc
    return {str(name): str(kind) for name, kind, *_ in rows}


def file_schemas(con: duckdb.DuckDBPyConnection, files: FileSet) -> dict[str, dict[str, str]]:
    """Each file's own columns and types, to see schema changes between the files of a log:
    a Parquet file's footer, or what DuckDB infers from a CSV or JSONL file's first rows."""
    if len(files.files) < 2:
        return {}
    out: dict[str, dict[str, str]] = {}
    for f in files.files:
        one = FileSet(f, (f,), files.format)
        try:
            rows = con.execute(f"DESCRIBE SELECT * FROM {one.reader()}").fetchall()
        except duckdb.Error as exc:
            raise MonitorError(f"{f}: {first_line(exc)}") from exc
        out[f] = {str(name): str(kind) for name, kind, *_ in rows}
    return out


def holds_values(con: duckdb.DuckDBPyConnection, files: FileSet, path: str, column: str) -> bool:
    """Whether ``column`` has a value in the file ``path``. A CSV column left empty in one file
    reads as text there, a JSONL key always null as NULL: that is no change of type."""
    if files.format == "parquet":
        return True
    one = FileSet(path, (path,), files.format)
    try:
        found = con.execute(f"SELECT count({quote(column)}) FROM {one.reader()}").fetchone()
    except duckdb.Error as exc:
        raise MonitorError(f"{path}: {first_line(exc)}") from exc
    return bool(found and found[0])


def _probe_parquet(con: duckdb.DuckDBPyConnection, path: str) -> None:
    try:
        con.execute(f"SELECT count(*) FROM parquet_metadata({sql_string(path)})").fetchall()
    except duckdb.Error as exc:
        raise MonitorError(f"{path}: not a readable Parquet file ({first_line(exc)})") from exc


def first_line(exc: BaseException) -> str:
    """DuckDB's message without its error-class prefix and hint lines."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for prefix in ("Invalid Input Error: ", "IO Error: ", "Conversion Error: ", "Binder Error: "):
        text = text.removeprefix(prefix)
    return text


NUMERIC_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "REAL",
)


def is_numeric(duck_type: str) -> bool:
    return duck_type in NUMERIC_TYPES or duck_type.startswith("DECIMAL")


def is_float(duck_type: str) -> bool:
    return duck_type in ("FLOAT", "DOUBLE", "REAL")
