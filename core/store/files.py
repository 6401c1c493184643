"""Files and sources: what incremental scanning remembers of each file and source it read."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence

import pyarrow as pa

from mltop.core.entities import (
    FileState,
)
from mltop.core.store.columns import float_array, int_array, text_array
from mltop.core.store.connection import LARGE_WRITE, StoreConnection, string_array

#: What :meth:`FileTables.run_digests` folds a run's files into: the same expression over the
#: recorded states and over a fresh listing (the same column types), so equal files give equal
#: digests.
_DIGEST = "bit_xor(hash(path, size, mtime, inode))"
#: A run's key in those digests: the 64-bit hash of its id (or folder), not the text, so that a
#: hundred thousand runs' digests are 2.4 MB of numbers, grouped and joined as numbers. Two runs
#: sharing a key (a chance of one in 2^64 a pair) would at worst be read again.
_KEY = "hash({})"


class FileTables(StoreConnection):
    """The ``files`` and ``sources`` tables."""

    # -- files (incremental scanning) -------------------------------------------------------------

    def file_states(
        self, source: str | None = None, *, sources: Iterable[str] | None = None
    ) -> dict[str, FileState]:
        """Remembered state of every source file, or of one ``source``'s or some ``sources``'
        files, by path. (A live batch touches a few sources of a store that may know
        thousands: asking for those only keeps each batch small.)"""
        sql = 'SELECT path, size, mtime, inode, "offset", head, run_id FROM files'
        wanted = [source] if source is not None else sources
        with self._lock:
            if wanted is None:
                rows = self._con.execute(sql).fetchall()
            else:
                with self._matching("source", wanted, "_fs_src") as (where, args):
                    rows = self._con.execute(f"{sql} WHERE {where}", args).fetchall()
        return {
            row[0]: FileState(row[0], row[1], row[2], row[3], row[4], row[5] or "", row[6])
            for row in rows
        }

    def holds_files(self) -> bool:
        """Whether any file state is recorded; a store that holds none (a first import) has
        nothing to compare a scan's stats with."""
        with self._lock:
            return bool(self._con.execute("SELECT 1 FROM files LIMIT 1").fetchall())

    def put_files(self, source: str | None, states: Sequence[FileState]) -> None:
        """Record file states; each state's own ``source`` wins over the ``source`` argument."""
        if not states:
            return
        table = pa.table(
            {
                "path": text_array([s.path for s in states]),
                "source": text_array([s.source or source for s in states]),
                "size": int_array([s.size for s in states]),
                "mtime": float_array([s.mtime for s in states]),
                "inode": int_array([s.inode for s in states]),
                "offset": int_array([s.offset for s in states]),
                "head": text_array([s.head for s in states]),
                "run_id": text_array([s.run_id for s in states]),
            }
        )
        # A new run's files were never recorded (see mark_new_runs): nothing to replace.
        new = self._new_runs
        paths = [st.path for st in states if st.run_id is None or st.run_id not in new]
        with self._lock, self._matching("path", paths, "_put_paths") as (where, args):
            self._con.register("_new_files", table)
            try:
                if paths:
                    self._con.execute(f"DELETE FROM files WHERE {where}", args)
                self._con.execute(
                    'INSERT INTO files (path, source, size, mtime, inode, "offset", head, run_id) '
                    'SELECT path, source, size, mtime, inode, "offset", head, run_id '
                    "FROM _new_files"
                )
            finally:
                self._con.unregister("_new_files")

    def forget_files_of_others(self, run_ids: Iterable[str], source: str) -> None:
        """Forget the files of these runs that a source other than ``source`` read into them.

        A reader that drops all of a run's points before reading its histories anew (MLflow)
        calls this, so that the other readers feeding the run (the TensorBoard logs in its
        artifacts) see their files as new and read them again.
        """
        ids = self._old_only(run_ids)  # a run new in this transaction has no files
        if not ids:
            return
        with self._lock, self._matching("run_id", ids, "_other_runs") as (where, args):
            self._con.execute(f"DELETE FROM files WHERE {where} AND source <> ?", [*args, source])

    def delete_files(self, paths: Iterable[str]) -> None:
        paths = list(paths)
        if not paths:
            return
        with self._lock, self._matching("path", paths, "_gone_files") as (where, args):
            self._con.execute(f"DELETE FROM files WHERE {where}", args)

    # -- the runs of a tree of run folders (MLflow's file store) ------------------------------

    def run_digests(self, source: str) -> pa.Table:
        """Per run of ``source``: how many files are recorded for it and a 64-bit digest of
        their paths, sizes, mtimes and inodes (columns ``run_id``, ``key``, its hash, ``files``,
        ``digest``; the ids tell the runs whose folder is gone).

        One scan of the files table per re-scan, so that comparing a hundred thousand runs'
        files with :meth:`changed_runs` costs one small join per chunk, not a scan of every
        recorded file per chunk, and no Python object per file.
        """
        with self._lock:
            table = self._con.sql(
                f"SELECT run_id, {_KEY.format('run_id')} AS key, count(*) AS files, "
                f"{_DIGEST} AS digest FROM files WHERE source = ? AND run_id IS NOT NULL "
                "GROUP BY run_id",
                params=[source],
            ).to_arrow_table()
        # The blocks read (70 MB of paths at a hundred thousand runs) are not read again
        # before the next re-scan.
        self.release_buffers()
        return table

    def folder_digests(self, names: Sequence[str]) -> pa.Table:
        """Per source that is a run folder: how many of its files named ``names`` (each a
        separator and a file name) are recorded and their digest, as :meth:`run_digests` gives
        per run (columns ``key``, the folder's hash, ``files``, ``digest``).

        A re-scan of a hundred thousand run folders compares each chunk of its stats with
        this table in :meth:`changed_runs`, not with the whole files table: one scan of the
        recorded files, whose blocks are then let go, not one per chunk with every block kept
        in memory until the scan ends. A file recorded for the folder under another name is no
        file of the run folder's and is left out on both sides.
        """
        in_folder = "starts_with(path, source) AND substr(path, length(source) + 1) IN ({})"
        with self._lock:
            table = self._con.sql(
                f"SELECT {_KEY.format('source')} AS key, count(*) AS files, {_DIGEST} AS digest "
                f"FROM files WHERE {in_folder.format(', '.join('?' * len(names)))} GROUP BY key",
                params=list(names),
            ).to_arrow_table()
        self.release_buffers()
        return table

    def changed_runs(self, now: pa.Table, recorded: pa.Table) -> list[tuple[str, bool]]:
        """The runs of ``now`` whose files differ from ``recorded`` (:meth:`run_digests`).

        ``now`` lists every file of some runs as a stat just read them: ``run_id``, ``path``,
        ``size``, ``mtime``, ``inode``, the last three null for a file looked for and not there.
        A run is changed when a file is new, gone, or differs in size, mtime or inode from its
        record: its digest or its count of files differs (two different sets of files share a
        digest with a chance of one in 2^64). Each changed run comes with whether ``recorded``
        holds it: a run it does not hold has no recorded state to fetch (and a run with no file
        there and none recorded is changed too: the caller knows whether that is a new run).
        """
        with self._lock:
            self._con.register("_now_tree", now)
            self._con.register("_recorded_runs", recorded)
            try:
                rows = self._con.execute(
                    f"WITH n AS (SELECT run_id, {_KEY.format('run_id')} AS key, "
                    f"count(size) AS files, {_DIGEST} FILTER (WHERE size IS NOT NULL) AS digest "
                    "FROM _now_tree GROUP BY run_id) "
                    "SELECT n.run_id, r.key IS NOT NULL "
                    "FROM n LEFT JOIN _recorded_runs r ON r.key = n.key "
                    "WHERE r.key IS NULL OR r.files <> n.files OR r.digest <> n.digest"
                ).fetchall()
            finally:
                self._con.unregister("_now_tree")
                self._con.unregister("_recorded_runs")
        return [(row[0], row[1]) for row in rows]

    def run_file_states(self, source: str, run_ids: Iterable[str | None]) -> dict[str, FileState]:
        """Recorded states of ``source``'s files read into these runs, by path (``None`` among
        ``run_ids`` asks for the source's files of no run too: an experiment's meta.yaml)."""
        ids = list(run_ids)
        sql = (
            'SELECT path, size, mtime, inode, "offset", head, run_id FROM files '
            "WHERE source = ? AND ({where} OR (? AND run_id IS NULL))"
        )
        with self._lock, self._matching("run_id", ids, "_state_runs") as (where, args):
            rows = self._con.execute(
                sql.format(where=where), [source, *args, None in ids]
            ).fetchall()
        return {
            row[0]: FileState(row[0], row[1], row[2], row[3], row[4], row[5] or "", row[6])
            for row in rows
        }

    # -- sources ----------------------------------------------------------------------------------

    def touch_sources(self, kinds: Sequence[str], locations: Sequence[str]) -> None:
        """Record the discovered sources (``kinds[i]``, ``locations[i]``) not recorded yet.

        ``last_scan`` is the time of the scan that first found the source: nothing reads a time
        per source per scan (the ``scans`` table keeps when each folder was scanned), and
        updating every row on every scan rewrote the whole table for nothing, the biggest
        write of a re-scan of a hundred thousand unchanged runs. The columns go to DuckDB as
        Arrow string arrays (no Python object per source) and it drops the duplicates.
        """
        if not locations:
            return
        table = pa.table(
            {"kind": string_array(list(kinds)), "location": string_array(list(locations))}
        )
        # A first scan records every source: thousands of rows, committed into the file.
        with self._lock, self._own_transaction(large=len(locations) >= LARGE_WRITE):
            self._con.register("_seen", table)
            try:
                self._con.execute(
                    "INSERT INTO sources (kind, location, last_scan) "
                    "SELECT DISTINCT kind, location, ?::DOUBLE FROM _seen s WHERE NOT EXISTS "
                    "(SELECT 1 FROM sources x WHERE x.kind = s.kind AND x.location = s.location)",
                    [time.time()],
                )
            finally:
                self._con.unregister("_seen")
        # The anti-join freed ~10 MB DuckDB's allocator would keep through the rest of the scan.
        self.return_freed_memory()

    # -- scans ------------------------------------------------------------------------------------

    def record_scan(self, root: str, started: float) -> None:
        """Note that everything under ``root`` was brought up to date by a scan that began at
        ``started`` (a time.time())."""
        with self._lock:
            self._con.execute("DELETE FROM scans WHERE root = ?", [root])
            self._con.execute("INSERT INTO scans VALUES (?, ?)", [root, started])

    def last_scan(self, path: str) -> float | None:
        """When the newest recorded scan of ``path`` or of a folder holding it began."""
        with self._lock:
            rows = self._con.execute(
                "SELECT max(started) FROM scans WHERE root = ? "
                "OR starts_with(?, CASE WHEN suffix(root, ?) THEN root ELSE root || ? END)",
                [path, path, os.sep, os.sep],
            ).fetchall()
        return rows[0][0] if rows else None

    def sources(self, kind: str | None = None) -> list[tuple[str, str]]:
        """Every recorded source (or those of one ``kind``) as (kind, location): the watcher
        maps changed paths to them."""
        sql = "SELECT kind, location FROM sources"
        with self._lock:
            if kind is None:
                rows = self._con.execute(sql).fetchall()
            else:
                rows = self._con.execute(f"{sql} WHERE kind = ?", [kind]).fetchall()
        return [(r[0], r[1]) for r in rows]

    def source_kinds(self) -> list[str]:
        with self._lock:
            rows = self._con.execute(
                "SELECT DISTINCT source_kind FROM runs ORDER BY source_kind"
            ).fetchall()
        return [r[0] for r in rows]

    def forget_sources_under(self, root: str, keep: Iterable[str]) -> int:
        """Drop runs, files and sources under ``root`` whose source was not seen in this scan.

        The store mirrors the folder: a run folder deleted on disk disappears from the table.
        Returns the number of runs removed.
        """
        prefix = root.rstrip(os.sep) + os.sep
        with self._lock:
            self._with_ids("_keep", keep)
            try:
                gone = [
                    r[0]
                    for r in self._con.execute(
                        "SELECT id FROM runs WHERE (source = ? OR starts_with(source, ?)) "
                        "AND source NOT IN (SELECT id FROM _keep)",
                        [root, prefix],
                    ).fetchall()
                ]
                self._con.execute(
                    "DELETE FROM files WHERE (source = ? OR starts_with(source, ?)) "
                    "AND source NOT IN (SELECT id FROM _keep)",
                    [root, prefix],
                )
                self._con.execute(
                    "DELETE FROM sources WHERE (location = ? OR starts_with(location, ?)) "
                    "AND location NOT IN (SELECT id FROM _keep)",
                    [root, prefix],
                )
                self._con.execute(
                    "DELETE FROM experiments WHERE (source = ? OR starts_with(source, ?)) "
                    "AND source NOT IN (SELECT id FROM _keep)",
                    [root, prefix],
                )
            finally:
                self._con.unregister("_keep")
            if gone:
                self.delete_runs(gone)
        # Four anti-joins with every source seen (a hundred thousand at a re-scan of as many
        # run folders) freed ~20 MB DuckDB's allocator would keep for a while.
        self.return_freed_memory()
        return len(gone)
