"""Units of a first import written a few to a DuckDB transaction (Store.bulk): committed by the
rows they hold in memory, whole or not at all, and readable as they are written."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import summary_rows, write_run
from test_store_bulk import _write

from mltop.core.discovery import ingest
from mltop.core.importers import mltop_runs
from mltop.core.store import Store, connection, open_store


def _committed_runs(store: Store) -> int:
    """Runs another connection to the store sees: only committed ones."""
    cursor = store.cursor()
    try:
        return int(cursor.execute("SELECT count(*) FROM runs").fetchall()[0][0])
    finally:
        cursor.close()


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def test_units_commit_together_once_the_rows_they_hold_reach_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "BULK_MEMORY", 1 << 20)
    with open_store(tmp_path, tmp_path / "store.duckdb") as store:
        with store.bulk():
            with store.transaction(large=True):
                _write(store, _ids("a", 10), "small")
            # Not committed yet, but whole and readable on the store's own connection.
            assert _committed_runs(store) == 0
            assert store.table_counts()["runs"] == 10
            with store.transaction(large=True):
                _write(store, _ids("b", 20_000), "past the budget")
            assert _committed_runs(store) == 20_010
            with store.transaction(large=True):
                _write(store, _ids("c", 10), "small again")
            assert _committed_runs(store) == 20_010
        assert _committed_runs(store) == 20_020
        wal = tmp_path / "store.duckdb.wal"
        assert not wal.exists() or wal.stat().st_size < 64 * 1024  # checkpointed at commit


def test_an_error_inside_a_unit_takes_the_uncommitted_units_with_it(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    with open_store(tmp_path, path) as store:
        with pytest.raises(RuntimeError, match="disk gone"), store.bulk():
            with store.transaction(large=True):
                _write(store, _ids("a", 10), "whole")
            with store.transaction(large=True):
                _write(store, _ids("b", 10), "half")
                raise RuntimeError("disk gone")
        assert store.table_counts()["runs"] == 0
        with store.transaction():  # the store is usable after
            _write(store, _ids("c", 3), "after")
    with open_store(tmp_path, path) as store:
        counts = store.table_counts()
        assert counts["runs"] == 3 and counts["metrics"] == 9 and counts["files"] == 3


def test_an_error_between_units_commits_the_whole_units_before_it(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    with open_store(tmp_path, path) as store, pytest.raises(KeyboardInterrupt), store.bulk():
        with store.transaction(large=True):
            _write(store, _ids("a", 10), "whole")
        raise KeyboardInterrupt  # a cancelled scan stops between units
    with open_store(tmp_path, path) as store:
        counts = store.table_counts()
        assert counts["runs"] == 10 and counts["metrics"] == 30
        assert counts["metric_summary"] == 10 and counts["logs"] == 10


def test_a_write_from_another_thread_first_commits_the_bulks_units(tmp_path: Path) -> None:
    with open_store(tmp_path, tmp_path / "store.duckdb") as store:
        with store.bulk():
            with store.transaction(large=True):
                _write(store, _ids("a", 10), "bulk")
            assert _committed_runs(store) == 0

            def other() -> None:
                with store.transaction():
                    _write(store, ["other"], "other thread")

            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
            assert _committed_runs(store) == 11
            with store.transaction(large=True):
                _write(store, _ids("b", 10), "bulk again")
            assert _committed_runs(store) == 11
        assert _committed_runs(store) == 21
        assert {r.name for r in store.runs()} == {"bulk", "other thread", "bulk again"}


def test_cached_blocks_are_kept_while_a_bulk_holds_uncommitted_rows(tmp_path: Path) -> None:
    # Dropping DuckDB's buffers with uncommitted rows in them would spill those rows to a
    # temporary folder (written, then read back) instead of dropping anything.
    path = tmp_path / "store.duckdb"
    with open_store(tmp_path, path) as store, store.bulk():
        with store.transaction(large=True):
            _write(store, _ids("a", 5_000), "bulk")
        held = store._uncommitted_bytes()
        store.release_buffers()
        assert store._uncommitted_bytes() == held > 0
    assert not path.with_name(path.name + ".tmp").exists()
    with open_store(tmp_path, path) as store:
        assert store.table_counts()["runs"] == 5_000


def test_a_first_import_commits_by_rows_held_and_stores_what_one_commit_per_batch_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    for i in range(12):
        write_run(root / "runs", f"run-{i}", steps=30 + i, params={"lr": 0.1 * i})
    monkeypatch.setattr(mltop_runs, "BATCH_RUNS", 2)
    monkeypatch.setattr(mltop_runs, "LARGE_BATCH", 2)
    commits: list[bool] = []
    real = connection.StoreConnection._commit

    def counted(self: connection.StoreConnection, *, large: bool) -> None:
        commits.append(large)
        real(self, large=large)

    monkeypatch.setattr(connection.StoreConnection, "_commit", counted)

    def imported(name: str, budget: int) -> Store:
        monkeypatch.setattr(connection, "BULK_MEMORY", budget)
        commits.clear()
        store = open_store(root, tmp_path / name)
        report = ingest(root, store)
        assert report.runs_added == 12 and not report.problems
        return store

    with imported("each.duckdb", 0) as each:  # every batch commits at once
        assert commits.count(True) == 6
        with imported("bulk.duckdb", 1 << 30) as bulk:  # all of them in one commit
            assert commits.count(True) == 1
            assert bulk.table_counts() == each.table_counts()
            assert summary_rows(bulk) == summary_rows(each)
            again = ingest(root, bulk)
            assert again.runs_added == 0 and again.points_added == 0
