"""Reading a SQLite source never creates a file beside it, whatever state its WAL is in.

The database is the real MLflow fixture (``small-sqlite.tar.gz``, made by MLflow); a real
sqlite3 writer puts it in WAL mode and commits rows that stay in the ``-wal`` (automatic
checkpoints off), as a live MLflow server's do until a checkpoint.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from test_import_mlflow import SQLITE, run_import, sqlite_copy

from mltop.core.discovery import discover, ingest
from mltop.core.importers import sqlite_readonly
from mltop.core.store import open_memory_store


def _wal_writer(db: Path) -> sqlite3.Connection:
    writer = sqlite3.connect(db)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("UPDATE runs SET name = 'renamed-in-wal' WHERE name = 'rf-diabetes'")
    writer.commit()
    return writer


def _import_names(db: Path) -> set[str]:
    store = open_memory_store()
    report = run_import(store, SQLITE, db)
    assert report.problems == []
    return {run.name for run in store.runs()}


def test_a_wal_left_without_its_index_is_read_from_a_copy_and_no_shm_appears(
    tmp_path: Path,
) -> None:
    live = sqlite_copy(tmp_path / "live")
    writer = _wal_writer(live)
    try:
        # The folder as a copy (rsync, a backup, a killed writer's leftovers) holds it: no -shm.
        source = tmp_path / "copied" / "mlflow.db"
        source.parent.mkdir()
        shutil.copyfile(live, source)
        shutil.copyfile(f"{live}-wal", f"{source}-wal")
    finally:
        writer.close()
    before = sorted(os.listdir(source.parent))
    assert before == ["mlflow.db", "mlflow.db-wal"]
    assert sqlite_readonly.how_to_open(source) == "copy"
    assert [ref.location for ref in discover(source.parent).refs] == [source]
    assert "renamed-in-wal" in _import_names(source)
    assert sorted(os.listdir(source.parent)) == before


def test_a_live_writers_wal_is_read_through_its_own_index_creating_nothing(
    tmp_path: Path,
) -> None:
    db = sqlite_copy(tmp_path)
    writer = _wal_writer(db)
    try:
        before = sorted(os.listdir(db.parent))
        assert {"mlflow.db-wal", "mlflow.db-shm"} <= set(before)
        assert sqlite_readonly.how_to_open(db) == "ro"
        assert "renamed-in-wal" in _import_names(db)
        assert sorted(os.listdir(db.parent)) == before
    finally:
        writer.close()


def test_a_just_checkpointed_wal_database_gains_no_wal_or_shm(tmp_path: Path) -> None:
    db = sqlite_copy(tmp_path)
    writer = _wal_writer(db)
    writer.close()  # the last connection checkpoints and deletes -wal and -shm
    before = sorted(os.listdir(db.parent))
    assert "mlflow.db-wal" not in before and "mlflow.db-shm" not in before
    assert sqlite_readonly.how_to_open(db) == "immutable"  # written a moment ago, yet
    with open_memory_store() as store:
        ingest(db.parent, store)
        assert "renamed-in-wal" in {run.name for run in store.runs()}
    assert sorted(os.listdir(db.parent)) == before
