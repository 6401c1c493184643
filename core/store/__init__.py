"""The DuckDB metadata store: the one package that holds SQL against the store file.

Everything in the store is derived from the sources (tracker files, logs, servers), so it can be
deleted and rebuilt at any time. Writes are batch-first (Arrow tables, never ``executemany``,
which manages ~400 rows/s) and happen inside :meth:`Store.transaction`, so a unit of import (one
or more whole runs) is either fully in the store or not at all, even after SIGKILL. An importer
writing many units wraps them in :meth:`Store.bulk`, which commits a few at a time (every
commit writes each table's last row group again).

What it holds, one module per concern:

* :mod:`.schema` - migrations, table constants, :class:`StoreError`;
* :mod:`.connection` - the connection, transactions, migrating and re-anchoring a store file;
* :mod:`.runs` - runs, experiments, params and tags;
* :mod:`.points` - metric points and summaries, including live folding;
* :mod:`.summaries` - summaries computed outside SQL (a first import's, a live batch's);
* :mod:`.files` - files and sources (incremental scanning);
* :mod:`.logs` - the log files of runs;
* :mod:`.registry` - registered models, versions, aliases and tags;
* :mod:`.queries` - the filters, orders and runs-table reads of the runs browser;
* :mod:`.opening` - the composed :class:`Store` and :func:`open_store`.

:class:`Store` stays one class composed from one mixin per family, rather than delegating to
per-family objects: every caller keeps ``store.put_runs(...)``, ``store.history(...)`` and one
transaction across families, so no importer, screen or command changes beyond its import line.
Import it from this package (``from mltop.core.store import Store``), never from its modules.

May import: duckdb, pyarrow, numpy, :mod:`mltop.core.entities`, :mod:`mltop.core.common.scratch`.
Never Textual nor :mod:`mltop.tui`, nor any other part of core (they ask the store, not the
reverse).
"""

from mltop.core.store.columns import (
    float_array,
    float_values,
    int_array,
    numbers_array,
    positions_in,
    text_array,
)
from mltop.core.store.connection import BLOCK_SIZE, string_array
from mltop.core.store.opening import (
    Store,
    open_memory_store,
    open_store,
    scratch_base,
)
from mltop.core.store.queries import (
    RUNS_TABLE_AGGREGATES,
    RUNS_TABLE_ATTRIBUTES,
    RunQuery,
    RunsSelection,
    order_clause,
    parse_order,
)
from mltop.core.store.runs import RUN_TEXTS, RUN_TIMES, mapping_rows, run_table
from mltop.core.store.schema import (
    DERIVED_TABLES,
    MIGRATIONS,
    PATH_COLUMNS,
    POINTS_SCHEMA,
    SCHEMA_VERSION,
    SMALL_ID_SET,
    STORE_DIR,
    STORE_ENV,
    STORE_FILE,
    UPDATED_RESOLUTION,
    StoreError,
    default_store_path,
)

__all__ = [
    "BLOCK_SIZE",
    "DERIVED_TABLES",
    "MIGRATIONS",
    "PATH_COLUMNS",
    "POINTS_SCHEMA",
    "RUNS_TABLE_AGGREGATES",
    "RUNS_TABLE_ATTRIBUTES",
    "RUN_TEXTS",
    "RUN_TIMES",
    "SCHEMA_VERSION",
    "SMALL_ID_SET",
    "STORE_DIR",
    "STORE_ENV",
    "STORE_FILE",
    "UPDATED_RESOLUTION",
    "RunQuery",
    "RunsSelection",
    "Store",
    "StoreError",
    "default_store_path",
    "float_array",
    "float_values",
    "int_array",
    "mapping_rows",
    "numbers_array",
    "open_memory_store",
    "open_store",
    "order_clause",
    "parse_order",
    "positions_in",
    "run_table",
    "scratch_base",
    "string_array",
    "text_array",
]
