"""MLflow importers (SQLite ``mlflow.db`` and the ``mlruns/`` file store) against MLflow's oracle.

The fixtures are real MLflow 3.17.2 stores (tests/fixtures/mlflow/PROVENANCE.md); the oracle
``small-expected.json`` was extracted from them with MLflow's own client.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import random
import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import summary_rows
from helpers.files import not_tracker_databases
from helpers.fixtures import untar
from helpers.mlflow_oracle import assert_run_matches_oracle

from mltop.core.discovery import ingest
from mltop.core.entities import ImportReport, SourceRef
from mltop.core.importers import (
    mlflow_files,
    mlflow_files_tree,
    mlflow_metric_lines,
    mlflow_sqlite,
)
from mltop.core.importers.mlflow_common import run_id
from mltop.core.store import Store, open_memory_store, open_store

FIXTURES = Path(__file__).parent / "fixtures" / "mlflow"
ORACLE = json.loads((FIXTURES / "small-expected.json").read_text())
SQLITE = mlflow_sqlite.KIND
FILES = mlflow_files.KIND


def extract(archive: str, dest: Path) -> Path:
    """Unpack a fixture archive into ``dest`` and return the top folder it holds."""
    return untar(FIXTURES / archive, dest)


def sqlite_copy(dest: Path) -> Path:
    return extract("small-sqlite.tar.gz", dest) / "mlflow.db"


def filestore_copy(dest: Path) -> Path:
    return extract("small-filestore.tar.gz", dest) / "mlruns"


def run_import(store: Store, kind: str, location: Path) -> ImportReport:
    report = ImportReport()
    importer = mlflow_sqlite.IMPORTER if kind == SQLITE else mlflow_files.IMPORTER
    importer.import_sources(store, [SourceRef(kind, location)], report)
    return report


def as_float(value: Any) -> float:
    if isinstance(value, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[value]
    return float(value)


def same_float(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


def points_consistent(store: Store) -> None:
    """Every run's summaries agree with its history: points and summaries went in together."""
    runs = store.runs()
    sums = store.summaries([r.id for r in runs])
    for run in runs:
        assert sum(s.count for s in sums[run.id].values()) == store.point_count(run.id), run.name


# -- exactness against the oracle -----------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "filestore"])
def imported(request, tmp_path_factory) -> tuple[Store, dict[str, Any], str, str]:
    """(store, oracle section, source location, kind) for each store, imported once."""
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        location, kind = sqlite_copy(tmp), SQLITE
    else:
        location, kind = filestore_copy(tmp), FILES
    store = open_memory_store()
    report = run_import(store, kind, location)
    assert report.problems == []
    assert report.counts[kind].runs == 16
    return store, ORACLE["stores"][request.param], str(location), kind


def by_native(store: Store) -> dict[str, Any]:
    return {r.native_id: r for r in store.runs()}


def oracle_run(oracle: dict[str, Any], name: str) -> dict[str, Any]:
    (run,) = [r for r in oracle["runs"] if r["run_name"] == name]
    return run


def test_every_run_matches_the_oracle(imported) -> None:
    store, oracle, _, kind = imported
    runs = by_native(store)
    assert set(runs) == {r["run_id"] for r in oracle["runs"]}
    for expected in oracle["runs"]:
        run = runs[expected["run_id"]]
        assert_run_matches_oracle(run, expected)
        end = expected["end_time"]
        assert run.end_time == (end / 1000 if end is not None else None)
        assert run.artifact_uri == expected["artifact_uri"]
        assert run.source_kind == kind


def test_experiments_match_the_oracle(imported) -> None:
    store, oracle, _, _ = imported
    assert {e.name for e in store.experiments()} == {e["name"] for e in oracle["experiments"]}


def test_params_and_tags_match_the_oracle(imported) -> None:
    store, oracle, _, _ = imported
    runs = by_native(store)
    for expected in oracle["runs"]:
        run = runs[expected["run_id"]]
        assert store.params(run.id) == expected["params"]
        assert store.tags(run.id) == {**expected["tags"], **expected["mlflow_tags"]}


def test_full_metric_histories_match_the_oracle(imported) -> None:
    store, oracle, _, _ = imported
    runs = by_native(store)
    summaries = store.summaries([r.id for r in runs.values()])
    for expected in oracle["runs"]:
        run = runs[expected["run_id"]]
        assert set(summaries[run.id]) == set(expected["metric_history"])
        for key, history in expected["metric_history"].items():
            summary = summaries[run.id][key]
            assert summary.count == expected["metric_history_len"][key] == len(history)
            assert same_float(summary.last, as_float(expected["metrics_final"][key]))
            got = store.history(run.id, key).to_pylist()
            for point, (step, ts_ms, value) in zip(got, history, strict=True):
                assert point["step"] == step
                assert point["ts"] == ts_ms / 1000
                assert same_float(point["value"], as_float(value))


def test_nan_last_metric_is_kept(imported) -> None:
    store, oracle, _, _ = imported
    run = by_native(store)[oracle_run(oracle, "sgdreg-diabetes-diverged")["run_id"]]
    mse = store.summaries([run.id])[run.id]["train_mse"]
    assert math.isnan(mse.last)
    assert mse.count == 13
    assert math.isfinite(mse.max) and mse.max > 1e12  # min/max skip the NaN, keep the blow-up


def test_slash_metric_key_is_one_key(imported) -> None:
    store, oracle, _, _ = imported
    run = by_native(store)[oracle_run(oracle, "sgd-breast-cancer")["run_id"]]
    summary = store.summaries([run.id])[run.id]
    assert summary["val/roc_auc"].count == 30
    assert "roc_auc" not in summary and "val" not in summary


def test_non_contiguous_steps_are_kept(imported) -> None:
    store, oracle, _, _ = imported
    run = by_native(store)[oracle_run(oracle, "rf-digits-warmstart")["run_id"]]
    steps = store.history(run.id, "oob_score")["step"].to_pylist()
    assert steps == list(range(10, 201, 10))


def test_nested_children_point_at_their_parent(imported) -> None:
    store, oracle, source, kind = imported
    parent = oracle_run(oracle, "sgd-alpha-sweep")
    parent_id = run_id(kind, source, parent["run_id"])
    assert store.run(parent_id) is not None
    children = store.children(parent_id)
    assert sorted(c.name for c in children) == ["alpha=0.0001", "alpha=0.001", "alpha=0.01"]
    assert all(store.run(c.id).parent_id == parent_id for c in children)


def test_deleted_run_is_imported_marked_deleted(imported) -> None:
    store, oracle, _, _ = imported
    run = by_native(store)[oracle_run(oracle, "rf-breast-cancer-bad-split")["run_id"]]
    assert run.lifecycle == "deleted"
    assert store.summaries([run.id])[run.id]["val_accuracy"].count == 1
    others = [r for r in store.runs() if r.id != run.id]
    assert all(r.lifecycle == "active" for r in others)


def test_running_and_killed_runs_keep_their_status(imported) -> None:
    store, oracle, _, _ = imported
    runs = by_native(store)
    running = runs[oracle_run(oracle, "sgd-wine-interrupted")["run_id"]]
    killed = runs[oracle_run(oracle, "logreg-breast-cancer-killed")["run_id"]]
    assert (running.status, running.end_time) == ("RUNNING", None)
    assert running.updated is not None and running.updated >= running.start_time
    assert killed.status == "KILLED"


@pytest.mark.parametrize("kind", [SQLITE, FILES])
def test_importing_twice_changes_nothing(tmp_path: Path, kind: str) -> None:
    location = sqlite_copy(tmp_path) if kind == SQLITE else filestore_copy(tmp_path)
    store = open_memory_store()
    run_import(store, kind, location)
    first = store.table_counts()
    again = run_import(store, kind, location)
    assert again.counts == {} and again.problems == []
    assert store.table_counts() == first
    fresh = open_memory_store()  # and a second store built from scratch is the same
    run_import(fresh, kind, location)
    assert fresh.table_counts() == first


# -- detection ------------------------------------------------------------------------------------


def detect(importer: Any, folder: Path) -> Any:
    entries = list(os.scandir(folder))
    dirs = sorted(e.name for e in entries if e.is_dir())
    files = sorted(e.name for e in entries if e.is_file())
    return importer.detect(folder, dirs, files)


def test_sqlite_store_is_detected_by_header_and_tables(tmp_path: Path) -> None:
    db = sqlite_copy(tmp_path)
    found = detect(mlflow_sqlite.IMPORTER, db.parent)
    assert [r.location for r in found.refs] == [db]
    assert "mlflow.db" in found.claimed and not found.prune
    # the artifact-only mlruns/ beside it is not a file store, and the walk stops there
    beside = detect(mlflow_files.IMPORTER, db.parent / "mlruns")
    assert beside.refs == [] and beside.prune


def test_other_sqlite_and_db_files_are_not_claimed(tmp_path: Path) -> None:
    not_tracker_databases(tmp_path)
    assert detect(mlflow_sqlite.IMPORTER, tmp_path) is None


def test_file_store_is_detected_and_pruned(tmp_path: Path) -> None:
    root = filestore_copy(tmp_path)
    found = detect(mlflow_files.IMPORTER, root)
    assert [r.location for r in found.refs] == [root] and found.prune
    renamed = root.rename(tmp_path / "tracking")  # a custom --backend-store-uri folder name
    assert [r.location for r in detect(mlflow_files.IMPORTER, renamed).refs] == [renamed]
    assert detect(mlflow_files.IMPORTER, tmp_path) is None


# -- incremental: SQLite --------------------------------------------------------------------------


def native_of(db: Path, name: str) -> str:
    con = sqlite3.connect(db)
    try:
        (row,) = con.execute("SELECT run_uuid FROM runs WHERE name = ?", [name]).fetchall()
    finally:
        con.close()
    return row[0]


def test_sqlite_import_leaves_the_database_untouched(tmp_path: Path) -> None:
    db = sqlite_copy(tmp_path)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    run_import(open_memory_store(), SQLITE, db)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["mlflow.db", "mlruns"]


def test_sqlite_rescan_rereads_only_changed_runs(tmp_path: Path) -> None:
    db = sqlite_copy(tmp_path)
    store = open_memory_store()
    run_import(store, SQLITE, db)
    live, other, gone = (
        native_of(db, n) for n in ("sgd-wine-interrupted", "rf-diabetes", "logreg-wine")
    )
    con = sqlite3.connect(db)
    with con:
        con.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES ('train_loss', ?, ?, ?, ?, 0)",
            [(0.5, 1795723200000, live, 15), (0.4, 1795723201000, live, 16)],
        )
        con.execute(
            "UPDATE runs SET status = 'FAILED', end_time = 1795723202000 WHERE run_uuid = ?",
            [live],
        )
        con.execute(
            "UPDATE tags SET value = 'platform-2' WHERE key = 'team' AND run_uuid = ?", [other]
        )
        for table in ("metrics", "latest_metrics", "params", "tags", "runs"):
            con.execute(f"DELETE FROM {table} WHERE run_uuid = ?", [gone])
    con.close()

    report = run_import(store, SQLITE, db)
    assert report.problems == []
    assert report.counts[SQLITE].runs == 2  # the live run and the retagged one, not all 15
    assert report.counts[SQLITE].points == 3 * 15 + 2  # only the live run's histories re-read
    runs = by_native(store)
    assert gone not in runs and len(runs) == 15
    assert (runs[live].status, runs[live].end_time) == ("FAILED", 1795723202.0)
    assert store.history(runs[live].id, "train_loss")["step"].to_pylist() == list(range(17))
    assert store.tags(runs[other].id)["team"] == "platform-2"
    points_consistent(store)
    assert run_import(store, SQLITE, db).counts == {}


def test_sqlite_commit_keeping_size_and_mtime_is_still_seen(tmp_path: Path) -> None:
    """A commit within one file-clock tick that reuses pages: only SQLite's header tells."""
    db = sqlite_copy(tmp_path)
    store = open_memory_store()
    run_import(store, SQLITE, db)
    before = db.stat()
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE runs SET status = 'KILLED' WHERE name = 'sgd-wine-interrupted'")
    con.close()
    assert db.stat().st_size == before.st_size
    os.utime(db, ns=(before.st_atime_ns, before.st_mtime_ns))
    report = run_import(store, SQLITE, db)
    assert report.counts[SQLITE].runs == 1
    assert {r.name: r.status for r in store.runs()}["sgd-wine-interrupted"] == "KILLED"


def test_sqlite_reads_rows_still_in_the_wal(tmp_path: Path) -> None:
    db = sqlite_copy(tmp_path)
    writer = sqlite3.connect(db)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("UPDATE runs SET name = 'renamed-in-wal' WHERE name = 'rf-diabetes'")
        writer.commit()
        assert Path(str(db) + "-wal").exists()
        store = open_memory_store()
        report = run_import(store, SQLITE, db)
        assert report.problems == []
        assert "renamed-in-wal" in {r.name for r in store.runs()}
        writer.execute("UPDATE runs SET name = 'renamed-again' WHERE name = 'renamed-in-wal'")
        writer.commit()  # only the -wal changes
        assert run_import(store, SQLITE, db).counts[SQLITE].runs == 1
        assert "renamed-again" in {r.name for r in store.runs()}
    finally:
        writer.close()


def test_sqlite_rows_breaking_mlflow_constraints_are_skipped_alone(tmp_path: Path) -> None:
    db = sqlite_copy(tmp_path)
    con = sqlite3.connect(db)
    with con:
        con.execute(
            "UPDATE metrics SET value = 'garbage' WHERE rowid = "
            "(SELECT min(rowid) FROM metrics WHERE key = 'val_r2')"
        )
    con.close()
    store = open_memory_store()
    report = run_import(store, SQLITE, db)
    assert [p.path for p in report.problems] == [str(db)]
    assert "1 metric rows" in report.problems[0].message
    assert report.counts[SQLITE].runs == 16
    assert store.point_count() == 859 - 1
    points_consistent(store)


def test_sqlite_text_that_is_not_utf8_and_repeated_keys_keep_every_run(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 in a tag and a param, and a params table without MLflow's
    primary key holding one key twice: the values read with U+FFFD, the first row kept."""
    db = sqlite_copy(tmp_path)
    uuid = native_of(db, "rf-diabetes")
    con = sqlite3.connect(db)
    with con:
        con.execute(
            "UPDATE tags SET value = CAST(X'7465616dff' AS TEXT) WHERE key = 'team' "
            "AND run_uuid = ?",
            [uuid],
        )
        con.execute("ALTER TABLE params RENAME TO params_old")
        con.execute(
            'CREATE TABLE params ("key" VARCHAR(250), value VARCHAR(8000), run_uuid VARCHAR(32))'
        )
        con.execute("INSERT INTO params SELECT key, value, run_uuid FROM params_old ORDER BY rowid")
        con.execute("DROP TABLE params_old")
        con.execute(
            "INSERT INTO params VALUES ('n_estimators', CAST(X'3130ff' AS TEXT), ?), "
            "('late', '2', ?)",
            [uuid, uuid],
        )
    con.close()
    store = open_memory_store()
    report = run_import(store, SQLITE, db)
    assert report.problems == [] and report.counts[SQLITE].runs == 16
    run = by_native(store)[uuid]
    assert store.tags(run.id)["team"] == "team\ufffd"
    params = store.param_values([run.id])[run.id]
    expected = oracle_run(ORACLE["stores"]["sqlite"], "rf-diabetes")["params"]["n_estimators"]
    assert params["n_estimators"] == (expected, float(expected))  # the first of the two rows
    assert params["late"] == ("2", 2.0)
    assert run_import(store, SQLITE, db).counts == {}


def test_sqlite_runs_past_a_damaged_page_are_kept_and_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs are read a chunk at a time: a damaged page in a later chunk leaves the chunks before
    it written and drops no run the store holds, since the database did not say it lost them."""
    monkeypatch.setattr(mlflow_sqlite, "WRITE_RUNS", 5)  # 16 runs: four chunks
    monkeypatch.setattr(mlflow_sqlite, "RESCAN_RUNS", 5)  # and four when read again
    db = sqlite_copy(tmp_path)
    marker = b"overflow-page-marker"
    con = sqlite3.connect(db)
    with con:  # the last run's row spills over several overflow pages of its own
        last, first = con.execute("SELECT max(rowid), min(rowid) FROM runs").fetchone()
        long_uri = "A" * 6000 + marker.decode() + "B" * 14000
        con.execute("UPDATE runs SET artifact_uri = ? WHERE rowid = ?", [long_uri, last])
        page_size = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    store = open_memory_store()
    assert run_import(store, SQLITE, db).counts[SQLITE].runs == 16
    damaged = store.runs_by_id([r.id for r in store.runs()])
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE runs SET name = 'renamed-early' WHERE rowid = ?", [first])
    con.close()
    data = bytearray(db.read_bytes())
    page = data.index(marker) // page_size * page_size  # a middle page of the overflow chain
    data[page : page + page_size] = bytes(page_size)
    db.write_bytes(bytes(data))

    report = run_import(store, SQLITE, db)
    assert [(p.path, p.message) for p in report.problems] == [
        (str(db), "cannot read: database disk image is malformed")
    ]
    assert {r.id for r in store.runs()} == set(damaged)  # none dropped
    assert "renamed-early" in {r.name for r in store.runs()}  # the chunk before was written
    points_consistent(store)
    again = run_import(store, SQLITE, db)  # the state was not recorded: read again, same answer
    assert [p.message for p in again.problems] == [report.problems[0].message]


def test_sqlite_without_mlflow_tables_is_one_problem(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE runs (run_uuid TEXT)")
    con.commit()
    con.close()
    report = run_import(open_memory_store(), SQLITE, db)
    assert len(report.problems) == 1 and report.problems[0].path == str(db)
    assert "not an MLflow tracking database" in report.problems[0].message


# -- incremental: file store ----------------------------------------------------------------------


def run_dir(root: Path, name: str) -> Path:
    for meta in root.glob("*/*/meta.yaml"):
        if f"run_name: {name}\n" in meta.read_text():
            return meta.parent
    raise LookupError(name)


def history_len(store: Store, kind: str, root: Path, native: str, key: str) -> int:
    return store.history(run_id(kind, str(root), native), key).num_rows


def test_files_appended_lines_add_only_new_points(tmp_path: Path, monkeypatch) -> None:
    root = filestore_copy(tmp_path)
    store = open_memory_store()
    run_import(store, FILES, root)
    live = run_dir(root, "sgd-wine-interrupted")
    metric = live / "metrics" / "train_loss"
    assert history_len(store, FILES, root, live.name, "train_loss") == 15
    with open(metric, "a") as fh:
        fh.write("1795723130000 0.31 15\n1795723131000 0.30 16\n1795723132000 0.2")
    report = run_import(store, FILES, root)
    assert report.counts[FILES].runs == 1 and report.counts[FILES].points == 2
    assert history_len(store, FILES, root, live.name, "train_loss") == 17
    with open(metric, "a") as fh:  # the half-written line completes
        fh.write("9 17\n")
    report = run_import(store, FILES, root)
    assert report.counts[FILES].points == 1
    last = store.history(run_id(FILES, str(root), live.name), "train_loss").to_pylist()[-1]
    assert (last["step"], last["value"]) == (17, 0.29)
    points_consistent(store)
    fresh = open_memory_store()
    run_import(fresh, FILES, root)
    assert summary_rows(store) == summary_rows(fresh)

    def untouchable(*args: object, **kwargs: object) -> None:
        raise AssertionError("an unchanged file was read")

    for name in ("read_complete", "read_yaml", "read_meta", "read_value"):
        monkeypatch.setattr(mlflow_files, name, untouchable)
    monkeypatch.setattr(mlflow_metric_lines, "parse_chunks", untouchable)
    before = store.table_counts()
    again = run_import(store, FILES, root)
    assert again.counts == {} and again.problems == []
    assert store.table_counts() == before


def test_files_rewritten_metric_replaces_its_history(tmp_path: Path) -> None:
    root = filestore_copy(tmp_path)
    store = open_memory_store()
    run_import(store, FILES, root)
    run = run_dir(root, "gbr-diabetes")
    (run / "metrics" / "val_r2").write_text("1795723125000 0.5 0\n1795723125001 0.6 1\n")
    report = run_import(store, FILES, root)
    assert report.counts[FILES].points == 2
    assert history_len(store, FILES, root, run.name, "val_r2") == 2
    assert history_len(store, FILES, root, run.name, "val_mse") == 40
    points_consistent(store)


def test_files_status_change_and_removed_run(tmp_path: Path) -> None:
    root = filestore_copy(tmp_path)
    store = open_memory_store()
    run_import(store, FILES, root)
    live = run_dir(root, "sgd-wine-interrupted")
    meta = live / "meta.yaml"
    meta.write_text(meta.read_text().replace("status: 1\n", "status: 5\n"))
    shutil.rmtree(run_dir(root, "rf-diabetes"))
    report = run_import(store, FILES, root)
    assert report.counts[FILES].runs == 1 and report.counts[FILES].points == 0
    runs = {r.name: r for r in store.runs()}
    assert runs["sgd-wine-interrupted"].status == "KILLED"
    assert "rf-diabetes" not in runs and len(runs) == 15
    assert store.file_states(str(root)) and all(
        "rf-diabetes" not in p for p in store.file_states(str(root))
    )


def test_a_scan_of_the_folder_counts_the_runs_mlflow_deleted(tmp_path: Path) -> None:
    """`mltop ingest` and the watcher say how many runs went: the runs an importer dropped from
    a store it still reads count beside the run folders gone from disk."""
    root = filestore_copy(tmp_path)
    store = open_memory_store()
    ingest(tmp_path, store)
    shutil.rmtree(run_dir(root, "rf-diabetes"))
    report = ingest(tmp_path, store)
    assert report.removed_runs == 1
    assert "rf-diabetes" not in {r.name for r in store.runs()}


def test_files_rescan_in_many_chunks_rereads_only_the_changed_runs(
    tmp_path: Path, monkeypatch
) -> None:
    """Listing compared a few files at a time and written a few runs at a time: a first import
    gives what one batch gives, and a re-scan reads only runs whose files changed, including a
    metric file renamed with its size, mtime and inode kept."""
    root = filestore_copy(tmp_path)
    whole = open_memory_store()
    run_import(whole, FILES, root)
    monkeypatch.setattr(mlflow_files_tree, "COMPARE_FILES", 30)
    monkeypatch.setattr(mlflow_files, "BATCH_RUNS", 3)
    monkeypatch.setattr(mlflow_files, "LARGE_BATCH", 2)
    store = open_memory_store()
    report = run_import(store, FILES, root)
    assert report.counts[FILES].runs == 16 and report.problems == []
    assert summary_rows(store) == summary_rows(whole)
    assert {r.name: r.experiment for r in store.runs()} == {
        r.name: r.experiment for r in whole.runs()
    }

    tagged, renamed = run_dir(root, "gbr-diabetes"), run_dir(root, "sgd-wine-interrupted")
    (tagged / "tags" / "reviewed").write_text("yes")
    before = (renamed / "metrics" / "train_loss").stat()
    (renamed / "metrics" / "train_loss").rename(renamed / "metrics" / "loss_renamed")
    assert (renamed / "metrics" / "loss_renamed").stat().st_mtime == before.st_mtime
    shutil.rmtree(run_dir(root, "rf-diabetes"))
    read: list[str] = []
    real = mlflow_files.read_meta

    def counted(path: str | Path) -> dict[str, Any]:
        if Path(path).parent.parent != root:  # a run's meta.yaml, not an experiment's
            read.append(Path(path).parent.name)
        return real(path)

    monkeypatch.setattr(mlflow_files, "read_meta", counted)
    report = run_import(store, FILES, root)
    assert sorted(read) == sorted([tagged.name, renamed.name])
    assert report.counts[FILES].runs == 2 and report.removed_runs == 1
    runs = {r.name: r for r in store.runs()}
    assert "rf-diabetes" not in runs
    assert store.tags(runs["gbr-diabetes"].id)["reviewed"] == "yes"
    rid = runs["sgd-wine-interrupted"].id
    assert store.history(rid, "train_loss").num_rows == 0
    assert store.history(rid, "loss_renamed").num_rows == 15
    points_consistent(store)


def test_release_buffers_keeps_the_memory_limit(tmp_path: Path) -> None:
    store = open_store(tmp_path)

    def limit() -> str:
        return store._con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]

    default = limit()
    for _ in range(3):
        store.release_buffers()
    assert limit() == default
    store._con.execute("SET memory_limit = '300MB'")
    printed = limit()
    store.release_buffers()
    once = limit()
    for _ in range(3):
        store.release_buffers()
    assert limit() == once and once in (printed, "286.0 MiB")


def test_files_meta_rewritten_within_one_clock_tick_is_still_seen(tmp_path: Path) -> None:
    root = filestore_copy(tmp_path)
    meta = run_dir(root, "sgd-wine-interrupted") / "meta.yaml"
    store = open_memory_store()
    run_import(store, FILES, root)
    meta.write_text(meta.read_text().replace("status: 1\n", "status: 4\n"))
    run_import(store, FILES, root)  # read just after MLflow wrote it
    written = meta.stat()
    meta.write_text(meta.read_text().replace("status: 4\n", "status: 5\n"))  # same size
    os.utime(meta, ns=(written.st_atime_ns, written.st_mtime_ns))  # and the same tick
    run_import(store, FILES, root)
    assert {r.name: r.status for r in store.runs()}["sgd-wine-interrupted"] == "KILLED"


def test_files_experiment_moved_to_trash_marks_runs_deleted(tmp_path: Path) -> None:
    root = filestore_copy(tmp_path)
    store = open_memory_store()
    run_import(store, FILES, root)
    points = store.point_count()
    exp = run_dir(root, "gbr-diabetes").parent
    meta = exp / "meta.yaml"
    meta.write_text(meta.read_text().replace("lifecycle_stage: active", "lifecycle_stage: deleted"))
    exp.rename(root / ".trash" / exp.name)
    report = run_import(store, FILES, root)
    assert report.counts[FILES].runs == 3
    lifecycle = {r.name: r.lifecycle for r in store.runs()}
    assert {n for n, life in lifecycle.items() if life == "deleted"} == {
        "gbr-diabetes", "sgdreg-diabetes-diverged", "rf-diabetes", "rf-breast-cancer-bad-split",
    }  # fmt: skip
    assert store.point_count() == points  # moved, not doubled
    points_consistent(store)


def test_files_experiment_deleted_or_renamed_in_place(tmp_path: Path) -> None:
    root = filestore_copy(tmp_path)
    store = open_memory_store()
    run_import(store, FILES, root)
    meta = run_dir(root, "gbr-diabetes").parent / "meta.yaml"
    text = meta.read_text().replace("lifecycle_stage: active", "lifecycle_stage: deleted")
    meta.write_text(text.replace("name: diabetes-regression", "name: diabetes (old)"))
    report = run_import(store, FILES, root)
    assert report.counts[FILES].runs == 3 and report.counts[FILES].points == 0
    runs = {r.name: r for r in store.runs()}
    assert runs["gbr-diabetes"].lifecycle == "deleted"
    assert runs["gbr-diabetes"].experiment == "diabetes (old)"
    assert runs["gbc-breast-cancer"].lifecycle == "active"


def test_files_legacy_two_field_lines_are_step_zero(tmp_path: Path) -> None:
    root = filestore_copy(tmp_path)
    run = run_dir(root, "rf-diabetes")
    (run / "metrics" / "legacy").write_text("1600000000000 1.5\n1600000001000 nan\n")
    store = open_memory_store()
    assert run_import(store, FILES, root).problems == []
    got = store.history(run_id(FILES, str(root), run.name), "legacy").to_pylist()
    assert [p["step"] for p in got] == [0, 0]
    assert sorted(p["ts"] for p in got) == [1600000000.0, 1600000001.0]
    assert sum(math.isnan(p["value"]) for p in got) == 1


def test_files_bad_metric_lines_are_skipped_and_named(tmp_path: Path) -> None:
    root = filestore_copy(tmp_path)
    run = run_dir(root, "gbr-diabetes")
    metric = run / "metrics" / "val_mse"
    with open(metric, "a") as fh:
        fh.write("not a metric line\n1795723126000 abc 41\n1795723126001 1.0 42 x\n")
    (run / "metrics" / "binary").write_bytes(b"\x00\x01\xff garbage\n")
    store = open_memory_store()
    report = run_import(store, FILES, root)
    problems = {p.path: p.message for p in report.problems}
    assert set(problems) == {str(metric), str(run / "metrics" / "binary")}
    assert problems[str(metric)].startswith("3 lines skipped")
    assert report.counts[FILES].runs == 16
    assert history_len(store, FILES, root, run.name, "val_mse") == 40
    points_consistent(store)


# -- bad input: seeded mutations ------------------------------------------------------------------


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One seeded corruption of a file's bytes."""
    how = rng.choice(["truncate", "flip", "flip", "empty", "garbage", "non-utf8", "junk-line"])
    if how == "truncate" and data:
        return how, data[: rng.randrange(len(data))]
    if how == "flip" and data:
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] = rng.randrange(256)
        return how, bytes(out)
    if how == "garbage":
        return how, rng.randbytes(rng.randint(1, 600))
    if how == "non-utf8":
        cut = rng.randrange(len(data) + 1)
        return how, data[:cut] + b"\xff\xfe\xc3" + data[cut:]
    if how == "junk-line":
        return how, data + b"1 2 3 4 5 6 7\n\x1f\nnan nan\n"
    return "empty", b""


def one_line_problems_about(report: ImportReport, paths: set[str]) -> None:
    for problem in report.problems:
        assert "\n" not in problem.message and problem.message
        assert "import failed" not in problem.message, problem  # no unexpected exception
        assert problem.path in paths, problem


def test_sqlite_corrupt_copies_never_raise(tmp_path: Path) -> None:
    original = sqlite_copy(tmp_path / "original").read_bytes()
    rng = random.Random(20260101)
    store = open_memory_store()
    cases = [("empty", b""), ("header-only", original[:100]), ("garbage", rng.randbytes(5000))]
    for _ in range(30):
        cases.append(("truncate", original[: rng.randrange(len(original))]))
    for _ in range(50):
        out = bytearray(original)
        for _ in range(rng.randint(1, 40)):
            out[rng.randrange(len(out))] = rng.randrange(256)
        cases.append(("flip", bytes(out)))
    for _ in range(10):  # a whole page of zeros somewhere
        out = bytearray(original)
        page = rng.randrange(len(out) // 4096) * 4096
        out[page : page + 4096] = bytes(4096)
        cases.append(("zero-page", bytes(out)))
    for i, (how, data) in enumerate(cases):
        db = tmp_path / f"case{i}" / "mlflow.db"
        db.parent.mkdir()
        db.write_bytes(data)
        report = run_import(store, SQLITE, db)
        one_line_problems_about(report, {str(db)})
        if how in ("empty", "header-only", "garbage"):
            assert report.problems and not report.counts, how
    points_consistent(store)
    assert len(cases) == 93


def filestore_targets(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "artifacts" not in p.parts)


def unit_of(path: Path, root: Path) -> str:
    """The run folder (or experiment) a file belongs to: one corruption per unit per round."""
    parts = path.relative_to(root).parts
    return parts[1] if len(parts) > 2 else parts[0]


def pick(targets: list[Path], root: Path, n: int, rng: random.Random) -> list[Path]:
    chosen: dict[str, Path] = {}
    while len(chosen) < n:
        target = rng.choice(targets)
        chosen.setdefault(unit_of(target, root), target)
    return list(chosen.values())


def test_files_corrupt_files_in_a_fresh_import_spare_the_rest(tmp_path: Path) -> None:
    rng = random.Random(7)
    root = filestore_copy(tmp_path)
    oracle = {r["run_id"]: r for r in ORACLE["stores"]["filestore"]["runs"]}
    targets = filestore_targets(root)
    for _ in range(12):  # 3 corrupt files in 3 different runs per import: 36 cases
        originals = {t: t.read_bytes() for t in pick(targets, root, 3, rng)}
        for target, original in originals.items():
            target.write_bytes(mutate(original, rng)[1])
        store = open_memory_store()
        report = run_import(store, FILES, root)
        for target, original in originals.items():
            target.write_bytes(original)
        one_line_problems_about(report, {str(t) for t in originals})
        points_consistent(store)
        hit = {unit_of(t, root) for t in originals}
        runs = by_native(store)
        spared = [native for native in oracle if native not in hit]
        summaries = store.summaries([runs[n].id for n in spared])  # every spared run is whole
        for native in spared:
            counts = {k: s.count for k, s in summaries[runs[native].id].items()}
            assert counts == oracle[native]["metric_history_len"]
            assert store.params(runs[native].id) == oracle[native]["params"]


def test_files_corrupt_then_restored_files_never_raise(tmp_path: Path) -> None:
    """Corrupt files, re-scan, restore them, re-scan: the store ends as it began."""
    rng = random.Random(11)
    root = filestore_copy(tmp_path)
    store = open_memory_store()
    run_import(store, FILES, root)
    baseline = store.table_counts()
    targets = filestore_targets(root)
    for _ in range(30):  # 4 corrupt files in 4 different units per round: 120 cases
        originals = {t: t.read_bytes() for t in pick(targets, root, 4, rng)}
        hows = {t: mutate(original, rng) for t, original in originals.items()}
        for target, (_, data) in hows.items():
            target.write_bytes(data)
        report = run_import(store, FILES, root)
        one_line_problems_about(report, {str(t) for t in originals})
        for target, original in originals.items():
            target.write_bytes(original)
        restored = run_import(store, FILES, root)
        assert restored.problems == [], hows
        assert store.table_counts() == baseline, hows
    points_consistent(store)


def test_files_a_run_records_one_state_for_its_small_files(tmp_path: Path) -> None:
    root = filestore_copy(tmp_path)
    store = open_memory_store()
    run_import(store, FILES, root)
    folder = run_dir(root, "gbr-diabetes")
    paths = {p for p in store.file_states(str(root)) if p.startswith(f"{folder}{os.sep}")}
    metrics = {str(p) for p in (folder / "metrics").rglob("*") if p.is_file()}
    assert paths == metrics | {str(folder / mlflow_files_tree.SMALL_FILES)}


@pytest.mark.parametrize("change", ["tag edited", "tag added", "param removed", "meta touched"])
def test_files_any_change_to_a_small_file_rereads_the_run_alone(
    tmp_path: Path, change: str
) -> None:
    root = filestore_copy(tmp_path)
    store = open_memory_store()
    run_import(store, FILES, root)
    folder = run_dir(root, "gbr-diabetes")
    rid = run_id(FILES, str(root), folder.name)
    tag = next(p for p in (folder / "tags").iterdir() if p.name == "mlflow.runName")
    param = sorted((folder / "params").iterdir())[0]
    if change == "tag edited":
        tag.write_text("gbr-diabetes-renamed")
    elif change == "tag added":
        (folder / "tags" / "reviewed").write_text("yes")
    elif change == "param removed":
        param.unlink()
    else:
        os.utime(folder / "meta.yaml", (1, 1))
    for written in (tag, folder / "tags" / "reviewed"):
        if written.exists():  # past the clock-tick guard, so the next scan may trust it
            os.utime(written, (written.stat().st_atime - 60, written.stat().st_mtime - 60))
    report = run_import(store, FILES, root)
    assert report.counts[FILES].runs == 1 and report.problems == []
    assert param.exists() == (param.name in store.params(rid))
    assert store.tags(rid).get("reviewed") == ("yes" if change == "tag added" else None)
    assert run_import(store, FILES, root).counts == {}


def test_files_a_store_recording_each_small_file_is_read_once_more_then_folded(
    tmp_path: Path,
) -> None:
    """A store written when every param and tag file had its own state: the first scan finds
    each run's files differ, reads the small files once and keeps the folded state only."""
    root = filestore_copy(tmp_path)
    store = open_memory_store()
    run_import(store, FILES, root)
    folder = run_dir(root, "gbr-diabetes")
    rid = run_id(FILES, str(root), folder.name)
    old = [
        mlflow_files.file_state(p, p.stat(), p.stat().st_size, run_id=rid)
        for p in [folder / "meta.yaml", *(folder / "params").iterdir()]
    ]
    store.put_files(str(root), old)
    report = run_import(store, FILES, root)
    assert report.counts[FILES].runs == 1
    assert not {str(s.path) for s in old} & set(store.file_states(str(root)))
    assert run_import(store, FILES, root).counts == {}


def test_files_an_unreadable_param_is_named_at_every_scan_until_it_reads(tmp_path: Path) -> None:
    root = filestore_copy(tmp_path)
    folder = run_dir(root, "gbr-diabetes")
    param = sorted((folder / "params").iterdir())[0]
    param.write_bytes(b"\xff\xfe not text")
    store = open_memory_store()
    for _ in range(2):
        report = run_import(store, FILES, root)
        assert [p.path for p in report.problems] == [str(param)]
    param.write_text("0.5")
    report = run_import(store, FILES, root)
    assert report.problems == [] and report.counts[FILES].runs == 1
    assert store.params(run_id(FILES, str(root), folder.name))[param.name] == "0.5"


def test_sqlite_points_read_with_their_chunk_or_batch_by_batch_are_the_same(
    tmp_path: Path, monkeypatch
) -> None:
    """A first import reads a chunk's points in the chunk's own read transaction when they are
    few, and batch by batch when they are many: the store ends the same either way."""
    db = sqlite_copy(tmp_path)
    with_chunk = open_memory_store()
    run_import(with_chunk, SQLITE, db)
    monkeypatch.setattr(mlflow_sqlite, "BATCH_POINTS", 5)  # every chunk has more
    batch_by_batch = open_memory_store()
    report = run_import(batch_by_batch, SQLITE, db)
    assert report.problems == []
    assert summary_rows(with_chunk) == summary_rows(batch_by_batch)
    runs = {r.id: r for r in with_chunk.runs()}
    assert runs == {r.id: r for r in batch_by_batch.runs()}
    keys = with_chunk.summaries(list(runs))
    assert sum(len(k) for k in keys.values()) > 20

    def points(store: Store, rid: str, key: str) -> list[tuple[object, ...]]:
        cols = store.history(rid, key).to_pydict()
        rows = zip(cols["step"], cols["ts"], cols["value"], strict=True)
        return [(s, t, "nan" if v != v else v) for s, t, v in rows]

    for rid, summaries in keys.items():
        for key in summaries:
            assert points(with_chunk, rid, key) == points(batch_by_batch, rid, key)
    points_consistent(with_chunk)
    # The latest metric time taken from the points is the one a re-scan computes in SQL: a
    # database whose file changed and whose rows did not rewrites no run.
    os.utime(db, (1, 1))
    assert run_import(with_chunk, SQLITE, db).counts == {}


def test_files_tree_is_listed_with_the_collector_held_and_it_comes_back(
    tmp_path: Path, monkeypatch
) -> None:
    """The listing makes objects a file and no cycle: the collector's passes over them (and, in
    the app, over every row on screen) are held off while a chunk is listed, not after."""
    root = filestore_copy(tmp_path)
    during: list[bool] = []
    real = mlflow_files_tree.fold_small_files

    def spy(listed):  # type: ignore[no-untyped-def]
        during.append(gc.isenabled())
        return real(listed)

    monkeypatch.setattr(mlflow_files_tree, "fold_small_files", spy)
    was = gc.isenabled()
    gc.enable()
    try:
        report = run_import(open_memory_store(), FILES, root)
        assert gc.isenabled()
    finally:
        if not was:
            gc.disable()
    assert report.counts[FILES].runs == 16 and report.problems == []
    assert len(during) == 16 and not any(during)


def test_sqlite_chunks_read_ahead_while_histories_are_read_batch_by_batch_end_the_same(
    tmp_path: Path, monkeypatch
) -> None:
    """The next chunk is read on a thread of its own while this one's histories are read from
    the same connection: many small chunks, every history read batch by batch, same store."""
    db = sqlite_copy(tmp_path)
    whole = open_memory_store()
    run_import(whole, SQLITE, db)
    monkeypatch.setattr(mlflow_sqlite, "WRITE_RUNS", 3)
    monkeypatch.setattr(mlflow_sqlite, "BATCH_RUNS", 2)
    monkeypatch.setattr(mlflow_sqlite, "BATCH_POINTS", 5)
    chunked = open_memory_store()
    report = run_import(chunked, SQLITE, db)
    assert report.problems == []
    assert summary_rows(whole) == summary_rows(chunked)
    assert {r.id: r for r in whole.runs()} == {r.id: r for r in chunked.runs()}
    assert whole.point_count() == chunked.point_count() > 100
    points_consistent(chunked)
    assert not [t for t in threading.enumerate() if t.name == "mltop-read-mlflow-db"]
