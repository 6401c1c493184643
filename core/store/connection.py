"""The store's connection: opening the DuckDB file, migrations, transactions, id matching.

:class:`StoreConnection` is the base every family of tables extends: it owns the DuckDB
connection, the lock that serialises its use across threads, and the transaction that makes a
unit of import all-or-nothing (also across SIGKILL).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Self

import duckdb
import numpy as np
import pyarrow as pa

from mltop.core.store.schema import (
    DERIVED_TABLES,
    MIGRATIONS,
    PATH_COLUMNS,
    SCHEMA_VERSION,
    SMALL_ID_SET,
    SUMMARY_SELECT,
    StoreError,
)

#: Block size of a store file mltop creates (one it opens keeps the size it was made with).
#: DuckDB gives every table at least one block of its own, kept in memory once written: a store
#: is one big table (metric points) and nine small ones, which with DuckDB's 256 KB blocks held
#: 2.4 MB of mostly empty blocks after its first checkpoint. 64 KB blocks keep compression on
#: the points table (16 KB ones lose bit-packing) and ~2 MB less resident while following
#: (bench/watch_memory.py --block-size).
BLOCK_SIZE = 64 * 1024

#: Rows from which a write outside a transaction commits straight into the file (see
#: :meth:`StoreConnection.transaction`).
LARGE_WRITE = 1000

#: Bytes of rows a bulk (:meth:`StoreConnection.bulk`) may hold in DuckDB's memory, uncommitted,
#: before it commits the whole units written so far. DuckDB compresses an insert of a row group
#: or more (122,880 rows) into the file as it runs and keeps smaller ones in memory (its
#: ``IN_MEMORY_TABLE`` buffers) until the commit; each commit writes every table's last, partly
#: filled row group again, and the checkpoint at a commit takes about three times the memory of
#: the rows it compresses. First imports of 100,000 runs (bench/scale.py, bench/scale_mlflow.py),
#: 16 MB -> 48 MB: native 16.2 -> 14.0 s CPU, written 1.54x -> 1.31x the store, peak 363 -> 391
#: MB; MLflow SQLite 14.2-15.3 -> 13.7 s, 1.67x -> 1.27x, peak 280 -> 320 MB; MLflow file store
#: 48.3 -> 43.2 s, 2.41x -> 1.35x (its commits wrote 5 to 25 MB each at 16 MB), peak ~340 MB.
BULK_MEMORY = 48 * 1024 * 1024

# DuckDB 2 refuses further work on a connection while a result is half-read (fetchone leaves it
# so), which would also block the appender: every read here drains its result with fetchall.


def string_array(texts: list[str]) -> pa.Array:
    """An Arrow string array of ``texts``, built from its buffers.

    ``pa.array`` would do, but it first asks whether its input is a pandas object, and asking
    imports pandas: 36 MB resident for good, in an app that otherwise never needs it (opening
    the runs screen on an unchanged folder only matches ids).
    """
    offsets = np.zeros(len(texts) + 1, dtype=np.int32)
    joined = "".join(texts)
    if joined.isascii():  # a character is a byte: no bytes object per text
        data = joined.encode("ascii")
        np.cumsum(np.fromiter(map(len, texts), np.int32, len(texts)), out=offsets[1:])
    else:
        encoded = [t.encode("utf-8") for t in texts]
        data = b"".join(encoded)
        np.cumsum([len(d) for d in encoded], out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.string(), len(texts), buffers)


def _as_posix(relative: str) -> str:
    """``Path(relative).as_posix()``: the text itself when it is in that form already (a first
    import asks for every run folder's id, and a ``Path`` costs ten times this test)."""
    if (
        os.sep == "/"
        and relative
        and relative[0] != "."
        and relative[-1] not in "./"
        and "//" not in relative
        and "/./" not in relative
    ):
        return relative
    return Path(relative).as_posix()


_LIMIT_QUERY = "SELECT current_setting('memory_limit')"


@dataclasses.dataclass
class _Bulk:
    """A :meth:`StoreConnection.bulk` in progress."""

    owner: int  # the thread whose transactions are its units
    open: bool = False  # a DuckDB transaction holds units not committed yet
    large: bool = False  # one of those units was large: the commit goes into the file


class StoreConnection:
    """The DuckDB connection of a store and what every family of tables shares."""

    def __init__(
        self,
        path: Path | None,
        *,
        note: str | None = None,
        temp_dir: Path | None = None,
        anchor: Path | None = None,
    ):
        self.path = path
        self.note = note
        self.anchor = anchor
        """The folder this store indexes (the one holding its ``.mltop/``), or None for a store
        kept elsewhere (``--store``, in memory), which indexes whatever it is given."""
        self._temp_dir = temp_dir
        self._lock = threading.RLock()
        # Stored points deleted in the open transaction, by run: the keys, or None for all of
        # them (the attribute is None outside a transaction). See update_summaries.
        self._cut_histories: dict[str, set[str] | None] | None = None
        # Runs the open transaction writes for the first time (see mark_new_runs).
        self._new_runs: frozenset[str] = frozenset()
        # Imports running with one worker thread, and DuckDB's setting before the first.
        self._one_thread_holds = 0
        self._threads_before = ""
        self._bulk: _Bulk | None = None
        self._con = duckdb.connect(
            str(path) if path is not None else ":memory:",
            config={"default_block_size": str(BLOCK_SIZE)},
        )
        self._purge_freed_memory_in_background()
        try:
            self._migrate()
            self._settle_anchor()
        except duckdb.Error as exc:
            self._con.close()
            raise StoreError(f"{path}: not a usable mltop store ({exc})") from exc

    # -- lifecycle -------------------------------------------------------------------------------

    def _purge_freed_memory_in_background(self) -> None:
        """Let DuckDB's allocator return freed pages to the system on its own threads.

        DuckDB's Linux build allocates through its own jemalloc, which purges a thread's freed
        pages only when that thread allocates again. A big import and the checkpoint after it
        (millions of points) free ~200 MB on worker threads that then sit idle: without this the
        process kept them resident for good (bench/store_memory.py). The setting is process-wide.
        """
        with contextlib.suppress(duckdb.Error):
            self._con.execute("SET allocator_background_threads = true")

    @property
    def is_temporary(self) -> bool:
        return self._temp_dir is not None or self.path is None

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self._con.close()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for another thread (one cursor per thread is DuckDB's safe pattern)."""
        return self._con.cursor()

    def schema_version(self) -> int:
        rows = self._con.execute("SELECT max(version) FROM schema_version").fetchall()
        row = rows[0] if rows else None
        return int(row[0]) if row and row[0] is not None else 0

    def _migrate(self) -> None:
        con = self._con
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied DOUBLE)")
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: store schema {current} is newer than this mltop ({SCHEMA_VERSION});"
                " upgrade mltop or delete the store (it is rebuilt from the sources)"
            )
        for number, statements in MIGRATIONS:
            if number <= current:
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                for statement in statements:
                    con.execute(
                        statement.format(
                            summary_select=SUMMARY_SELECT.format(table="metrics", where="")
                        )
                    )
                con.execute("INSERT INTO schema_version VALUES (?, ?)", [number, time.time()])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def _settle_anchor(self) -> None:
        """Make a store that was copied or moved with its folder an index of where it is now.

        ``cp -r proj A`` copies ``proj/.mltop/`` too, and ``mv A B`` moves it: the store then
        holds paths under a folder it no longer belongs to. Every path column is rebased from the
        recorded folder onto the current one in one transaction, so files whose size, mtime and
        inode did not change (a move) are not read again, and a copy's files (new inodes) are
        re-read into the same run ids. Run ids hash paths relative to this folder (see
        :meth:`id_path`), so a run keeps its id, and its marks and diffs, wherever the folder goes.

        A store made before the folder was recorded hashed absolute paths into its ids, which
        cannot be recomputed in SQL (each importer hashes its own parts): its derived rows are
        dropped once and rebuilt from the sources by the next scan.
        """
        if self.anchor is None:
            return
        con = self._con
        rows = con.execute("SELECT value FROM store_meta WHERE key = 'anchor'").fetchall()
        recorded = rows[0][0] if rows else None
        here = str(self.anchor)
        if recorded == here:
            return
        con.execute("BEGIN TRANSACTION")
        try:
            if recorded is None:
                for table in DERIVED_TABLES:
                    con.execute(f"DELETE FROM {table}")
            else:
                old_prefix = recorded.rstrip(os.sep) + os.sep
                new_prefix = here.rstrip(os.sep) + os.sep
                for table, column in PATH_COLUMNS:
                    con.execute(
                        f"UPDATE {table} SET {column} = CASE WHEN {column} = ? THEN ? "
                        f"ELSE ? || {column}[length(?) + 1:] END "
                        f"WHERE {column} = ? OR starts_with({column}, ?)",
                        [recorded, here, new_prefix, old_prefix, recorded, old_prefix],
                    )
            con.execute("DELETE FROM store_meta WHERE key = 'anchor'")
            con.execute("INSERT INTO store_meta VALUES ('anchor', ?)", [here])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def id_path(self, path: Path | str) -> str:
        """The text a run or experiment id hashes for a source path.

        Under the store's folder it is the path relative to that folder (``.`` for the folder
        itself), so the ids of a project's runs survive copying and moving the project; other
        paths (and URLs) stay as they are.
        """
        text = str(path)
        if self.anchor is None or not os.path.isabs(text):
            return text
        here = str(self.anchor)
        if text == here:
            return "."
        prefix = here.rstrip(os.sep) + os.sep
        if not text.startswith(prefix):
            return text
        return _as_posix(text[len(prefix) :])

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file.

        DuckDB does this itself once the log reaches 16 MB; a long live session writing small
        batches calls it sooner, so the rows the log holds in memory do not pile up for hours.
        """
        with self._lock, contextlib.suppress(duckdb.Error):
            self._con.execute("CHECKPOINT")

    def bytes_in_use(self) -> int:
        """Bytes of the store file's blocks that hold data; the file's other blocks are free
        (left by rewritten row groups) and a later write fills them first."""
        with self._lock:
            rows = self._con.execute(
                "SELECT used_blocks * block_size FROM pragma_database_size()"
            ).fetchall()
        return int(rows[0][0] or 0) if rows else 0

    def memory_usage(self) -> str:
        """DuckDB's own account of the memory its buffers hold, as it prints it ("3.2 MiB")."""
        with self._lock:
            rows = self._con.execute("SELECT memory_usage FROM pragma_database_size()").fetchall()
        return str(rows[0][0]) if rows else "?"

    def memory_by_tag(self) -> str:
        """Where DuckDB's buffers are, by its own tags ("BASE_TABLE 2.3 MB, ...")."""
        with self._lock:
            rows = self._con.execute(
                "SELECT tag, memory_usage_bytes FROM duckdb_memory() "
                "WHERE memory_usage_bytes > 0 ORDER BY tag"
            ).fetchall()
        return ", ".join(f"{tag} {size / 1e6:.1f} MB" for tag, size in rows) or "none"

    def table_cache_bytes(self) -> int:
        """Bytes of table blocks DuckDB holds in memory (its ``BASE_TABLE`` buffers)."""
        with self._lock:
            rows = self._con.execute(
                "SELECT sum(memory_usage_bytes) FROM duckdb_memory() WHERE tag = 'BASE_TABLE'"
            ).fetchall()
        return int(rows[0][0] or 0) if rows else 0

    def release_buffers(self) -> None:
        """Let go of the table blocks DuckDB keeps in memory after reading or writing them.

        DuckDB holds them in its buffer pool until its memory limit (80% of the machine's
        memory) presses: a first import of a 100,000-run MLflow database ended holding 73 MB of
        the store it had just written, and a re-scan that reads every file's record 70 MB that
        nothing reads again before the next one. A moment's lower limit evicts the unpinned
        blocks at once (DuckDB refuses a limit below what is pinned, after evicting the rest),
        and the limit goes back as it was: DuckDB's default exactly (RESET); a limit set on the
        connection as DuckDB prints it, which may lose its last printed digit once ('300MB'
        prints as 286.1 MiB and comes back as 286.0 MiB) and then stays. The lock is held, so
        no query of this store runs under the low limit. A block read later comes from the
        file; an in-memory store has none, and would spill its tables to a ``.tmp`` folder: it
        keeps them.
        """
        if self.path is None or (self._bulk is not None and self._bulk.open):
            return  # an open bulk's rows would be evicted to temporary files, not dropped
        with self._lock:
            limit = self._con.execute(_LIMIT_QUERY).fetchall()[0][0]
            try:
                with contextlib.suppress(duckdb.Error):
                    self._con.execute("SET memory_limit = '256KB'")
            finally:
                self._limit_again(limit)

    def return_freed_memory(self) -> None:
        """Hand the memory a finished query freed back to the system, keeping the cached blocks.

        DuckDB's allocator keeps what a query's joins and sorts freed for reuse and returns it
        only after a delay: a 100,000-run table for the runs screen (15 MB of answer) left the
        process 95 MB larger for about a second, longer than it takes to draw it or to start a
        re-scan that then grew from there. Setting the memory limit flushes the allocator at
        once, whatever the limit, so the limit is set to what it is (a few milliseconds; the
        table blocks stay cached, unlike :meth:`release_buffers`). The setting is process-wide.
        """
        with self._lock:
            self._limit_again(self._con.execute(_LIMIT_QUERY).fetchall()[0][0])

    def _limit_again(self, limit: str) -> None:
        """Set the memory limit to ``limit`` (as ``current_setting`` printed it): DuckDB's
        default exactly when it was that (RESET), else as printed (see release_buffers)."""
        self._con.execute("RESET memory_limit")
        if self._con.execute(_LIMIT_QUERY).fetchall()[0][0] != limit:
            self._con.execute(f"SET memory_limit = '{limit}'")

    @contextlib.contextmanager
    def one_worker_thread(self) -> Iterator[None]:
        """DuckDB works on one thread for the block (an import of many small batches), and on
        as many as before after it; overlapping blocks (the app's scan and a watcher) restore
        the setting when the last ends.

        A batch's queries are small: a second thread took 6% more CPU for a 10,000-run first
        import and no less wall time on two cores (bench/scale.py).
        """
        with self._lock:
            if self._one_thread_holds == 0:
                rows = self._con.execute("SELECT current_setting('threads')").fetchall()
                self._threads_before = str(rows[0][0])
                self._con.execute("SET threads = 1")
            self._one_thread_holds += 1
        try:
            yield
        finally:
            with self._lock:
                self._one_thread_holds -= 1
                if self._one_thread_holds == 0:
                    self._con.execute(f"SET threads = {int(self._threads_before)}")

    @contextlib.contextmanager
    def transaction(self, *, large: bool = False) -> Iterator[None]:
        """All writes inside commit together or not at all (also across SIGKILL).

        ``large``: the transaction writes thousands of rows (a batch of a first import). DuckDB
        commits through its write-ahead log, and folds the log into the file at a checkpoint:
        every row written twice, uncompressed first. A commit that would take the log past the
        checkpoint threshold is checkpointed at once instead, with no log, so a large one drops
        the threshold for its commit (a first import of 10,000 runs wrote 3x the store's size,
        then 1x; bench/scale.py).

        Inside :meth:`bulk`, on the thread that opened it, the transaction is one unit of the
        bulk's: it joins the DuckDB transaction the bulk holds open, and that commits once it
        holds :data:`BULK_MEMORY` of rows. A write from any other thread first commits the
        bulk's units (whole, since the lock is held between them), then runs on its own.
        """
        with self._lock:
            bulk = self._bulk
            if bulk is not None and bulk.owner != threading.get_ident():
                if bulk.open:
                    self._commit_bulk(bulk)
                bulk = None
            if bulk is None or not bulk.open:
                self._con.execute("BEGIN TRANSACTION")
                if bulk is not None:
                    bulk.open = True
            self._cut_histories = {}
            try:
                yield
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    self._con.execute("ROLLBACK")
                if bulk is not None:
                    bulk.open = bulk.large = False
                raise
            else:
                if bulk is None:
                    self._commit(large=large)
                else:
                    bulk.large = bulk.large or large
                    if self._uncommitted_bytes() >= BULK_MEMORY:
                        self._commit_bulk(bulk)
            finally:
                self._cut_histories = None
                self._new_runs = frozenset()

    def _commit(self, *, large: bool) -> None:
        """Commit the open transaction; a large one straight into the file (see transaction)."""
        if large:
            self._con.execute("SET checkpoint_threshold = '1 KiB'")
        try:
            self._con.execute("COMMIT")
        finally:
            if large:
                self._con.execute("RESET checkpoint_threshold")

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Units of import (each a :meth:`transaction`) committed a few together.

        Every commit writes each table's last, partly filled row group again, so an import
        committing a batch of a few thousand runs at a time wrote twice the size of the store it
        made at a hundred thousand native runs, and four times for an MLflow file store. Here
        the units share one DuckDB transaction, committed when the rows it holds in memory reach
        :data:`BULK_MEMORY` and at the end: larger tables' rows go compressed into the file as
        they come, the rest is bounded, and the lock is released between units, so readers on
        other threads go on (reading the units written so far). Still all or nothing per unit:
        an error inside a unit rolls back the bulk's uncommitted units with it (each whole, and
        their files' states with them, so the next scan reads them again); an error between
        units (a cancelled scan) commits the whole units before it is raised.

        A store in memory commits each unit as before: its rows are all in memory anyway.
        """
        if self.path is None or self._bulk is not None:
            yield
            return
        bulk = _Bulk(threading.get_ident())
        with self._lock:
            self._bulk = bulk
        try:
            yield
        except BaseException:
            with self._lock, contextlib.suppress(duckdb.Error):
                if bulk.open:
                    self._commit_bulk(bulk)
            raise
        else:
            with self._lock:
                if bulk.open:
                    self._commit_bulk(bulk)
        finally:
            with self._lock:
                self._bulk = None

    def _commit_bulk(self, bulk: _Bulk) -> None:
        """Commit a bulk's units; after a large commit, drop the blocks it left in memory."""
        large, bulk.open, bulk.large = bulk.large, False, False
        self._commit(large=large)
        if large:
            self.release_buffers()

    def _uncommitted_bytes(self) -> int:
        """Bytes of table rows DuckDB holds in memory and not in the file (``IN_MEMORY_TABLE``):
        an open transaction's rows short of a row group, and any the write-ahead log holds."""
        rows = self._con.execute(
            "SELECT sum(memory_usage_bytes) FROM duckdb_memory() WHERE tag = 'IN_MEMORY_TABLE'"
        ).fetchall()
        return int(rows[0][0] or 0) if rows else 0

    def _own_transaction(self, *, large: bool) -> contextlib.AbstractContextManager[None]:
        """A transaction for a write made outside one (joined, when one is open)."""
        if self._cut_histories is not None:
            return contextlib.nullcontext()
        return self.transaction(large=large)

    def mark_new_runs(self, run_ids: Iterable[str]) -> None:
        """Say that these runs have no row anywhere in the store, for the open transaction.

        Writing a run replaces what the store holds of it: a DELETE per table, each a scan of
        the whole table. On a first import of a hundred thousand runs those scans grew with
        every batch (the cost per run rose by 61% from the first batch to the last). Runs
        marked here are inserted without them. The caller knows a run is new (none of its
        files was ever recorded); the ids the runs table does hold anyway are left unmarked,
        one scan of one column per batch.
        """
        wanted = list(dict.fromkeys(run_ids))
        if not wanted or self._cut_histories is None:
            return
        with self._lock, self._matching("id", wanted, "_new_run_ids") as (where, args):
            held = {r[0] for r in self._con.execute(f"SELECT id FROM runs WHERE {where}", args)
                    .fetchall()}  # fmt: skip
        self._new_runs = self._new_runs | (set(wanted) - held)

    def _old_only(self, ids: Iterable[str]) -> list[str]:
        """The ids not marked new in this transaction: the ones a write must delete first."""
        new = self._new_runs
        return [i for i in ids if i not in new]

    def _with_ids(self, name: str, ids: Iterable[str]) -> None:
        table = pa.table({"id": string_array(list(dict.fromkeys(ids)))})
        self._con.register(name, table)

    @contextlib.contextmanager
    def _matching(self, column: str, ids: Iterable[str], name: str) -> Iterator[tuple[str, list]]:
        """A WHERE predicate "``column`` is one of ``ids``" and its parameters.

        Up to :data:`SMALL_ID_SET` ids are one list parameter (``list_contains``, a plain
        filter); more are registered as an Arrow table and semi-joined. The live watcher writes
        a handful of runs every half second, and DuckDB keeps about half a kilobyte of native
        memory per hash-join query (up to ~25 MB), so joins there showed up as steady growth.
        """
        wanted = [i for i in dict.fromkeys(ids) if i is not None]
        if len(wanted) <= SMALL_ID_SET:
            yield f"list_contains(?::VARCHAR[], {column})", [wanted]
            return
        self._with_ids(name, wanted)
        try:
            yield f"{column} IN (SELECT id FROM {name})", []
        finally:
            self._con.unregister(name)

    def table_counts(self) -> dict[str, int]:
        """Row counts of every table: for tests and `mltop ingest --verbose`."""
        out = {}
        with self._lock:
            for table in (
                "sources", "files", "experiments", "runs", "params", "tags", "metrics",
                "metric_summary", "logs",
            ):  # fmt: skip
                row = self._con.execute(f"SELECT count(*) FROM {table}").fetchall()
                out[table] = int(row[0][0]) if row else 0
        return out
