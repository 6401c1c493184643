"""Logs: which log files belong to which run, and the liveness their mtimes give runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pyarrow as pa

from mltop.core.entities import (
    LogFile,
)
from mltop.core.store.connection import StoreConnection


class LogTables(StoreConnection):
    """The ``logs`` table."""

    # -- writes: logs ------------------------------------------------------------------------------

    def put_logs(self, logs: Mapping[str, Sequence[str]] | str, paths: Sequence[str] = ()) -> None:
        """Replace the log files of runs: ``put_logs({run_id: [path, ...]})`` for a batch, or
        ``put_logs(run_id, [path, ...])`` for one run."""
        if isinstance(logs, str):
            logs = {logs: list(paths)}
        if not logs:
            return
        pairs = [(run_id, path) for run_id, paths in logs.items() for path in paths]
        table = pa.table(
            {
                "run_id": pa.array([p[0] for p in pairs], pa.string()),
                "path": pa.array([p[1] for p in pairs], pa.string()),
            }
        )
        old = self._old_only(logs.keys())
        with self._lock, self._matching("run_id", old, "_log_runs") as (where, args):
            self._con.register("_new_logs", table)
            try:
                if old:
                    self._con.execute(f"DELETE FROM logs WHERE {where}", args)
                self._con.execute("INSERT INTO logs SELECT run_id, path FROM _new_logs")
            finally:
                self._con.unregister("_new_logs")

    def touch_log_runs(self, mtimes: Mapping[str, float]) -> list[str]:
        """Raise ``updated`` of the runs owning these log files to the files' mtimes.

        A job that only prints (no new metrics) is still alive; without this its run would turn
        stale while its log grows. Returns the ids of the runs touched.
        """
        if not mtimes:
            return []
        table = pa.table(
            {
                "path": pa.array(list(mtimes), pa.string()),
                "mtime": pa.array(list(mtimes.values()), pa.float64()),
            }
        )
        with self._lock:
            self._con.register("_log_mtimes", table)
            try:
                rows = self._con.execute(
                    "UPDATE runs SET updated = t.mtime FROM (SELECT l.run_id, "
                    "max(m.mtime) AS mtime FROM logs l JOIN _log_mtimes m ON l.path = m.path "
                    "GROUP BY l.run_id) t "
                    "WHERE runs.id = t.run_id AND coalesce(runs.updated, 0) < t.mtime "
                    "RETURNING runs.id"
                ).fetchall()
            finally:
                self._con.unregister("_log_mtimes")
        return [r[0] for r in rows]

    def log_paths(self, run_ids: Iterable[str]) -> dict[str, list[str]]:
        """The log files recorded for several runs: {run_id: [path, ...]} (sorted)."""
        out: dict[str, list[str]] = {}
        with self._lock, self._matching("run_id", run_ids, "_lp_runs") as (where, args):
            rows = self._con.execute(
                f"SELECT run_id, path FROM logs WHERE {where} ORDER BY path", args
            ).fetchall()
        for run_id, path in rows:
            out.setdefault(run_id, []).append(path)
        return out

    def logs(self, run_id: str) -> list[LogFile]:
        with self._lock:
            rows = self._con.execute(
                "SELECT run_id, path FROM logs WHERE run_id = ? ORDER BY path", [run_id]
            ).fetchall()
        return [LogFile(*r) for r in rows]
