"""MLflow's metric files' ``timestamp value step`` lines, parsed in bulk by DuckDB.

Apart from the file-store importer because it is the one part that works on bytes rather than
folders: Python reads each file's new bytes (one ``read`` per file, not per line), prefixes
every line with the file's index in C-speed ``bytes.replace`` and writes one temporary file per
batch, which a single ``read_csv`` splits and casts. DuckDB's own multi-file ``read_csv`` costs
~0.2 ms per file and cannot start at a byte offset, which is what appended files need. A batch
DuckDB rejects is split in halves until the bad file is found, so one broken file costs a
problem line, not the batch.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from mltop.core.entities import ImportReport
from mltop.core.tabular import ParseError, connection, readable_bytes

_SEP = "\x1f"  # between the file index and the line in the combined temporary file
LINE_HELP = "not 'timestamp value step' lines"


def _parse_sql(path: str) -> str:
    literal = "'" + path.replace("'", "''") + "'"
    return f"""
        WITH raw AS (
            SELECT f, string_split(trim(line, ' \t\r'), ' ') AS p
            FROM read_csv({literal}, columns = {{'f': 'BIGINT', 'line': 'VARCHAR'}},
                          delim = '{_SEP}', quote = '', escape = '', header = false,
                          auto_detect = false)
            WHERE line IS NOT NULL AND trim(line, ' \t\r') <> ''
        ), parsed AS (
            SELECT f, len(p) AS n,
                   TRY_CAST(p[1] AS BIGINT) AS ts_ms,
                   TRY_CAST(p[2] AS DOUBLE) AS value,
                   CASE WHEN len(p) = 2 THEN 0 ELSE TRY_CAST(p[3] AS BIGINT) END AS step
            FROM raw
        )
        SELECT f, CAST(ts_ms AS DOUBLE) / 1000 AS ts, value, step,
               coalesce(n IN (2, 3, 5) AND ts_ms IS NOT NULL AND value IS NOT NULL
                        AND step IS NOT NULL, false) AS ok
        FROM parsed
    """


def parse_chunks(chunks: dict[int, bytes]) -> pa.Table:
    """Lines of several files at once: columns f (the file's index), ts, value, step, ok."""
    parts = []
    for index, data in chunks.items():
        if not data:
            continue
        prefix = b"%d" % index + _SEP.encode()
        parts.append(prefix + data[:-1].replace(b"\n", b"\n" + prefix) + b"\n")
    if not parts:
        return pa.table({"f": pa.array([], pa.int64())})
    # From memory where the system allows it: a first import of 100,000 runs wrote 120 MB of
    # these lines to scratch files only to read them back once (bench/scale_mlflow.py).
    with readable_bytes(b"".join(parts), ".lines") as path:
        try:
            return connection().sql(_parse_sql(path)).to_arrow_table()
        except duckdb.Error as exc:
            raise ParseError(" ".join(str(exc).split())) from exc


def parse_resilient(
    chunks: dict[int, bytes], names: dict[int, Path], report: ImportReport
) -> tuple[list[pa.Table], set[int]]:
    """Parse all chunks; when DuckDB rejects the batch, halve it until the bad file is alone."""
    try:
        table = parse_chunks(chunks)
        return ([table] if table.num_rows else []), set()
    except ParseError as exc:
        if len(chunks) == 1:
            (index,) = chunks
            report.problem(names[index], f"{LINE_HELP}: {exc}")
            return [], {index}
    keys = list(chunks)
    half = len(keys) // 2
    tables: list[pa.Table] = []
    failed: set[int] = set()
    for part in (keys[:half], keys[half:]):
        got, bad = parse_resilient({k: chunks[k] for k in part}, names, report)
        tables += got
        failed |= bad
    return tables, failed


def check_text(data: bytes) -> str | None:
    """Why these bytes cannot be metric lines, or None."""
    if b"\x00" in data or _SEP.encode() in data:
        return "binary data, not 'timestamp value step' lines"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte {exc.start})"
    return None
