"""Large first imports: new runs inserted without replacing, large commits without the WAL."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from conftest import summary_rows, write_run

from mltop.core.discovery import ingest
from mltop.core.entities import FileState, RunRecord
from mltop.core.importers import mltop_runs
from mltop.core.store import open_memory_store, open_store


def _points(run_ids: list[str], steps: int = 3) -> pa.Table:
    rows = [(r, "loss", s, float(s), 1.0 / (s + 1)) for r in run_ids for s in range(steps)]
    return pa.table(
        {
            "run_id": [r[0] for r in rows],
            "key": [r[1] for r in rows],
            "step": pa.array([r[2] for r in rows], pa.int64()),
            "ts": [r[3] for r in rows],
            "value": [r[4] for r in rows],
        }
    )


def _write(store, run_ids: list[str], name: str) -> None:  # type: ignore[no-untyped-def]
    store.mark_new_runs(run_ids)
    store.put_runs(
        None,
        [RunRecord(id=r, source_kind="test", location=f"/x/{r}", name=name) for r in run_ids],
        params=[(r, "lr", 0.1) for r in run_ids],
        tags=[(r, "t", name) for r in run_ids],
    )
    points = _points(run_ids)
    store.add_points(points)
    store.update_summaries(run_ids, [points])
    store.put_files(None, [FileState(f"/x/{r}/m", 1, 1.0, 1, 1, "", r, "/x") for r in run_ids])
    store.put_logs({r: [f"/x/{r}/out.log"] for r in run_ids})


def test_a_run_marked_new_that_the_store_holds_is_still_replaced() -> None:
    # A caller that wrongly believes a run is new must not leave two rows of it: the ids the
    # runs table holds are not taken as new.
    store = open_memory_store()
    with store.transaction():
        _write(store, ["a", "b"], "first")
    with store.transaction():
        store.delete_points(["a", "b"])
        _write(store, ["a", "b", "c"], "second")
    counts = store.table_counts()
    assert counts["runs"] == 3 and counts["params"] == 3 and counts["tags"] == 3
    assert counts["files"] == 3 and counts["logs"] == 3
    assert counts["metric_summary"] == 3 and counts["metrics"] == 9
    assert {r.name for r in store.runs()} == {"second"}


def test_summaries_of_new_runs_match_summaries_from_their_histories() -> None:
    store = open_memory_store()
    with store.transaction():
        _write(store, ["a", "b"], "first")
    written = summary_rows(store)
    store.refresh_summaries(["a", "b"])
    assert summary_rows(store) == written


def test_a_large_commit_goes_into_the_file_and_leaves_the_threshold_as_it_was(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.duckdb"
    ids = [f"run-{i}" for i in range(2000)]
    with open_store(tmp_path, path) as store:
        threshold = store._con.execute("SELECT current_setting('checkpoint_threshold')").fetchall()
        with store.transaction(large=True):
            _write(store, ids, "bulk")
        wal = path.with_name(path.name + ".wal")
        assert not wal.exists() or wal.stat().st_size < 64 * 1024
        after = store._con.execute("SELECT current_setting('checkpoint_threshold')").fetchall()
        assert after == threshold
    with open_store(tmp_path, path) as store:
        assert store.table_counts()["metrics"] == 3 * len(ids)


def test_dropping_cached_blocks_frees_them_and_leaves_the_store_as_it_was(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.duckdb"
    ids = [f"run-{i}" for i in range(20_000)]
    with open_store(tmp_path, path) as store:
        limit = store._con.execute("SELECT current_setting('memory_limit')").fetchall()
        with store.transaction(large=True):
            _write(store, ids, "bulk")
        cached = store.table_cache_bytes()
        assert cached > 1_000_000  # the blocks the commit wrote stay in DuckDB's buffers
        store.release_buffers()
        assert store.table_cache_bytes() < cached / 4
        assert store._con.execute("SELECT current_setting('memory_limit')").fetchall() == limit
        assert store.table_counts()["metrics"] == 3 * len(ids)  # read back from the file


def test_a_first_import_in_several_batches_stores_what_one_batch_does(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "project"
    for i in range(7):
        write_run(root / "runs", f"run-{i}", steps=4 + i, params={"lr": 0.1 * i})
    whole = open_memory_store()
    ingest(root, whole)
    monkeypatch.setattr(mltop_runs, "BATCH_RUNS", 3)
    monkeypatch.setattr(mltop_runs, "LARGE_BATCH", 2)
    batched = open_memory_store()
    report = ingest(root, batched)
    assert report.runs_added == 7 and not report.problems
    assert batched.table_counts() == whole.table_counts()
    assert summary_rows(batched) == summary_rows(whole)


def test_batches_are_cut_by_runs_and_by_metric_bytes(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from mltop.core.entities import SourceRef

    monkeypatch.setattr(mltop_runs, "BATCH_RUNS", 3)
    monkeypatch.setattr(mltop_runs, "BATCH_BYTES", 100)
    refs = [SourceRef("mltop", Path(f"/r/{i}")) for i in range(6)]
    sizes = [10, 10, 10, 10, 150, 10]
    batches = mltop_runs._batches(list(zip(refs, sizes, strict=True)))
    assert [[r.location.name for r in b] for b in batches] == [
        ["0", "1", "2"],
        ["3"],
        ["4"],
        ["5"],
    ]


@pytest.mark.parametrize("kind", ["sqlite", "filestore"])
def test_an_mlflow_store_imported_in_small_large_commits_matches_one_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    from test_import_mlflow import FILES, SQLITE, filestore_copy, run_import, sqlite_copy

    from mltop.core.importers import mlflow_files, mlflow_sqlite

    location = sqlite_copy(tmp_path) if kind == "sqlite" else filestore_copy(tmp_path)
    source = SQLITE if kind == "sqlite" else FILES
    whole = open_memory_store()
    run_import(whole, source, location)
    monkeypatch.setattr(mlflow_sqlite, "BATCH_RUNS", 2)
    monkeypatch.setattr(mlflow_sqlite, "WRITE_RUNS", 5)
    monkeypatch.setattr(mlflow_sqlite, "RESCAN_RUNS", 4)
    monkeypatch.setattr(mlflow_sqlite, "LARGE_WRITE", 3)
    monkeypatch.setattr(mlflow_files, "BATCH_RUNS", 5)
    monkeypatch.setattr(mlflow_files, "LARGE_BATCH", 3)
    with open_store(tmp_path, tmp_path / "store.duckdb") as batched:
        report = run_import(batched, source, location)
        assert not report.problems
        assert batched.table_counts() == whole.table_counts()
        assert summary_rows(batched) == summary_rows(whole)
        again = run_import(batched, source, location)
        assert again.runs_added == 0 and again.points_added == 0


def _anonymous_mb() -> float:
    """Resident anonymous memory of this process (heap, not mapped files), in MB."""
    with open("/proc/self/status") as status:
        return next(int(x.split()[1]) / 1024 for x in status if x.startswith("RssAnon:"))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_memory_a_query_freed_goes_back_at_once_and_the_cached_blocks_stay(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.duckdb"
    ids = [f"run-{i}" for i in range(20_000)]
    with open_store(tmp_path, path) as store:
        limit = store._con.execute("SELECT current_setting('memory_limit')").fetchall()
        with store.transaction(large=True):
            _write(store, ids, "bulk")
        store.runs_table(attributes=[], params=["lr"], metrics=[("loss", "last")])
        before = _anonymous_mb()
        # A hash aggregate of millions of groups: about 100 MB of working memory, all freed
        # when it ends, and a one-row answer.
        store._con.execute("SELECT count(*) FROM (SELECT DISTINCT i FROM range(3000000) t(i))")
        grown = _anonymous_mb()
        cached = store.table_cache_bytes()
        store.return_freed_memory()
        assert grown - before > 40  # the allocator kept it (it lets go about a second later)
        assert _anonymous_mb() - before < 15
        assert store.table_cache_bytes() == cached  # unlike release_buffers
        assert store._con.execute("SELECT current_setting('memory_limit')").fetchall() == limit
