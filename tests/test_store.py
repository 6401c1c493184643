"""The DuckDB store: idempotent writes, migrations, the locked-store fallback."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from conftest import summary_rows, write_run
from hypothesis import given, settings
from hypothesis import strategies as st

from mltop.core.discovery import ingest
from mltop.core.entities import FileState, RunRecord, Status
from mltop.core.store import (
    BLOCK_SIZE,
    MIGRATIONS,
    SCHEMA_VERSION,
    SMALL_ID_SET,
    UPDATED_RESOLUTION,
    Store,
    StoreError,
    default_store_path,
    open_memory_store,
    open_store,
)


def test_store_lives_in_dot_mltop_with_a_gitignore(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        assert store.path == tmp_path / ".mltop" / "store.duckdb"
        assert store.note is None
    assert (tmp_path / ".mltop" / ".gitignore").read_text().splitlines()[-1] == "*"


def test_an_open_store_lets_duckdb_purge_freed_memory_in_the_background(tmp_path: Path) -> None:
    # Without it a big import's freed pages stayed resident (bench/store_memory.py: ~330 MB).
    store = open_store(tmp_path)
    try:
        setting = (
            store.cursor()
            .execute("SELECT current_setting('allocator_background_threads')")
            .fetchall()
        )
        assert setting == [(True,)]
    finally:
        store.close()


def _block_size(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT block_size FROM pragma_database_size()").fetchall()[0][0]


def test_a_new_store_file_uses_small_blocks(runs_root: Path) -> None:
    # Ten tables, nine of them small: each holds at least one block in memory once written.
    with open_store(runs_root) as store:
        ingest(runs_root, store)
        store.checkpoint()
        path = store.path
    assert path is not None and _block_size(path) == BLOCK_SIZE < 256 * 1024


def test_a_store_made_with_duckdbs_default_blocks_still_opens(runs_root: Path) -> None:
    # Stores written before mltop chose its block size keep theirs, and their rows.
    path = runs_root / ".mltop" / "store.duckdb"
    path.parent.mkdir()
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t (i INTEGER)")  # an empty 256 KB-block file for the store
        con.execute("DROP TABLE t")
    assert _block_size(path) == 256 * 1024
    with open_store(runs_root) as store:
        assert ingest(runs_root, store).runs_added == 4
    with open_store(runs_root) as store:
        assert len(store.runs()) == 4 and store.point_count() > 0
    assert _block_size(path) == 256 * 1024


def test_store_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "elsewhere" / "custom.duckdb"
    monkeypatch.setenv("MLTOP_STORE", str(target))
    with open_store(tmp_path / "root") as store:
        assert store.path == target
    assert target.exists()


def test_importing_twice_gives_the_same_rows(runs_root: Path) -> None:
    with open_store(runs_root) as store:
        first = ingest(runs_root, store)
        counts = store.table_counts()
        second = ingest(runs_root, store)
        assert store.table_counts() == counts
    assert first.runs_added == 4
    assert second.runs_added == 0 and second.points_added == 0
    assert counts["runs"] == 4
    assert counts["metrics"] == (10 + 11 + 12 + 3) * 2


def test_a_batch_naming_a_run_or_param_twice_stores_it_once() -> None:
    # Some sources repeat a record (a run listed by two pages, a param logged twice); the
    # first one wins and the store never holds two rows for one id.
    store = open_memory_store()
    first = RunRecord(id="r", source_kind="mltop", location="/runs/r", name="first")
    again = RunRecord(id="r", source_kind="mltop", location="/runs/r", name="again")
    store.put_experiments(
        [("e", "mltop", "/runs", None, "one"), ("e", "mltop", "/runs", None, "two")]
    )
    store.put_runs(
        None,
        [first, again],
        params=[("r", "lr", 0.1), ("r", "lr", 0.2), ("r", "bs", 32)],
        tags=[("r", "team", "a"), ("r", "team", "b")],
    )
    assert [r.name for r in store.runs()] == ["first"]
    assert store.params("r") == {"lr": "0.1", "bs": "32"}
    assert store.tags("r") == {"team": "a"}
    assert [e.name for e in store.experiments()] == ["one"]


def test_rebuilding_a_deleted_store_gives_the_same_runs(runs_root: Path) -> None:
    with open_store(runs_root) as store:
        ingest(runs_root, store)
        before = sorted((r.id, r.name, r.status) for r in store.runs())
    shutil.rmtree(runs_root / ".mltop")  # the store file, its WAL and the temporary folder
    with open_store(runs_root) as store:
        ingest(runs_root, store)
        assert sorted((r.id, r.name, r.status) for r in store.runs()) == before


def test_put_runs_replaces_params_and_tags() -> None:
    store = open_memory_store()
    run = RunRecord(id="r1", source_kind="test", location="/x", name="a", status=Status.RUNNING)
    with store.transaction():
        store.put_runs("/x", [run], params=[("r1", "lr", "0.1")], tags=[("r1", "t", "1")])
    with store.transaction():
        store.put_runs("/x", [run], params=[("r1", "lr", 0.2)], tags=[])
    assert store.params("r1") == {"lr": "0.2"}
    assert store.tags("r1") == {}
    assert store.count_runs() == 1


def test_a_failed_transaction_leaves_nothing_behind() -> None:
    store = open_memory_store()
    run = RunRecord(id="r1", source_kind="test", location="/x", name="a")
    points = pa.table(
        {"run_id": ["r1"], "key": ["loss"], "step": [0], "ts": [None], "value": [1.0]}
    )
    with pytest.raises(RuntimeError), store.transaction():
        store.put_runs("/x", [run])
        store.add_points(points)
        raise RuntimeError("importer crashed")
    assert store.table_counts()["runs"] == 0
    assert store.table_counts()["metrics"] == 0


def test_summary_ignores_nan_and_infinities_for_best_but_keeps_them_as_last() -> None:
    store = open_memory_store()
    points = pa.table(
        {
            "run_id": ["r"] * 4,
            "key": ["loss"] * 4,
            "step": [0, 1, 2, 3],
            "ts": [1.0, 2.0, 3.0, 4.0],
            "value": [0.9, 0.2, float("inf"), float("nan")],
        }
    )
    with store.transaction():
        store.add_points(points)
        store.refresh_summaries(["r"])
    summary = store.summaries(["r"])["r"]["loss"]
    assert summary.count == 4
    assert summary.min == 0.2 and summary.min_step == 1
    assert summary.max == 0.9 and summary.max_step == 0  # inf is no best value
    assert summary.last != summary.last  # NaN survives as the last value
    assert summary.last_step == 3


def _first_version_store(path: Path) -> duckdb.DuckDBPyConnection:
    """A store file as the first version of mltop left it: the first migration's tables, at
    schema version 1; open, for the test to add its rows."""
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER, applied DOUBLE)")
    for statement in MIGRATIONS[0][1]:
        con.execute(statement)
    con.execute("INSERT INTO schema_version VALUES (1, 0)")
    return con


def test_migrating_an_older_store_backfills_summaries(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = _first_version_store(path)
    con.execute(
        "INSERT INTO runs (id, source_kind, source, name, status) "
        "VALUES ('r1', 'mltop', '/x', 'old-run', 'FINISHED')"
    )
    con.execute("INSERT INTO metrics VALUES ('r1', 'acc', 0, 1.0, 0.5), ('r1', 'acc', 1, 2.0, 0.7)")
    con.close()

    with open_store(tmp_path, path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        summary = store.summaries(["r1"])["r1"]["acc"]
        assert (summary.last, summary.max, summary.count) == (0.7, 0.7, 2)
        assert store.logs("r1") == []


def test_an_older_store_in_its_folder_opens_and_is_rebuilt_with_ids_that_survive_a_move(
    tmp_path: Path,
) -> None:
    project = tmp_path / "proj"
    write_run(project / "runs", "sgd", steps=4)
    path = default_store_path(project)
    path.parent.mkdir(parents=True)
    con = _first_version_store(path)
    # A run id as older versions made it: a hash of the absolute path.
    con.execute(
        "INSERT INTO runs (id, source_kind, source, name, status) "
        "VALUES ('absolute-id', 'mltop', ?, 'sgd', 'FINISHED')",
        [str(project / "runs" / "sgd")],
    )
    con.close()

    with open_store(project) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.table_counts()["runs"] == 0  # its ids cannot be recomputed: rebuilt
        ingest(project, store)
        (run,) = store.runs()
    moved = tmp_path / "moved"
    project.rename(moved)
    with open_store(moved) as store:
        (same,) = store.runs()
        assert (same.id, same.location) == (run.id, str(moved / "runs" / "sgd"))
        assert set(store.file_states()) <= {str(p) for p in moved.rglob("*")}


def test_the_store_of_a_folder_forgets_runs_of_siblings_imported_into_it(tmp_path: Path) -> None:
    project, sibling = tmp_path / "proj", tmp_path / "sibling"
    write_run(project / "runs", "mine")
    write_run(sibling / "runs", "theirs")
    with open_store(project) as store:
        ingest(sibling, store)
        assert [r.name for r in store.runs()] == ["theirs"]
        report = ingest(project, store)
        assert [r.name for r in store.runs()] == ["mine"]
        assert report.removed_runs == 1
        assert store.sources() == [("mltop", str(project / "runs" / "mine"))]


def test_an_empty_database_file_is_migrated_from_scratch(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    with open_store(tmp_path, path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.table_counts()["runs"] == 0


def test_a_store_from_a_newer_mltop_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "future.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER, applied DOUBLE)")
    con.execute("INSERT INTO schema_version VALUES (999, 0)")
    con.close()
    with pytest.raises(StoreError, match="newer than this mltop"):
        open_store(tmp_path, path)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.duckdb"
    path.write_bytes(b"this is not a duckdb file at all" * 100)
    with pytest.raises(StoreError, match=r"garbage\.duckdb"):
        open_store(tmp_path, path)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mltop.core.store import open_store
    store = open_store(Path(sys.argv[1]))
    print("holding", flush=True)
    time.sleep(60)
    """
)


@pytest.fixture
def held_store(runs_root: Path):
    """Another real process holding the root's store read-write, as a running TUI does."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(runs_root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        yield runs_root
    finally:
        holder.kill()
        holder.wait()


def test_a_locked_store_falls_back_to_a_private_temporary_one(held_store: Path) -> None:
    store = open_store(held_store)
    try:
        assert store.is_temporary
        assert "in use by another mltop" in (store.note or "")
        report = ingest(held_store, store)
        assert report.runs_added == 4
        temp = store.path
    finally:
        store.close()
    assert temp is not None and not temp.exists()
    assert default_store_path(held_store).exists()


def test_mltop_runs_works_while_another_mltop_holds_the_store(held_store: Path) -> None:
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "mltop.core.cli", "runs", str(held_store), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    notes = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(notes) == 1 and "temporary store" in notes[0]
    assert "sgd-lr0.1" in result.stdout
    assert time.monotonic() - start < 60


def _runs(n: int, prefix: str = "r") -> list[RunRecord]:
    return [
        RunRecord(id=f"{prefix}{i}", source_kind="test", location=f"/x/{prefix}{i}", name=f"n{i}")
        for i in range(n)
    ]


@pytest.mark.parametrize("count", [2, SMALL_ID_SET + 50])
def test_deleting_runs_by_id_works_for_small_and_large_id_sets(count: int) -> None:
    # Small id sets are matched with a list parameter, large ones with a join: same rows go.
    store = open_memory_store()
    keep, gone = _runs(5, "keep"), _runs(count, "gone")
    points = pa.table(
        {
            "run_id": [r.id for r in keep + gone],
            "key": ["loss"] * (len(keep) + count),
            "step": [0] * (len(keep) + count),
            "ts": [None] * (len(keep) + count),
            "value": [1.0] * (len(keep) + count),
        }
    )
    with store.transaction():
        store.put_runs(None, keep + gone, params=[(r.id, "lr", 0.1) for r in keep + gone])
        store.add_points(points)
        store.refresh_summaries([r.id for r in keep + gone])
    with store.transaction():
        store.delete_runs([r.id for r in gone])
    assert sorted(r.id for r in store.runs()) == sorted(r.id for r in keep)
    assert store.table_counts()["metrics"] == 5
    assert set(store.summaries([r.id for r in keep + gone])["keep0"]) == {"loss"}
    assert store.params_for([r.id for r in gone + keep])["gone0"] == {}
    assert set(store.runs_by_id([r.id for r in gone + keep])) == {r.id for r in keep}


@pytest.mark.parametrize("count", [3, SMALL_ID_SET + 10])
def test_file_states_of_some_sources_only(count: int) -> None:
    store = open_memory_store()
    states = [
        FileState(f"/src{i}/metrics.jsonl", 10, 1.0, i, 10, "h", f"run{i}", f"/src{i}")
        for i in range(count + 5)
    ]
    with store.transaction():
        store.put_files(None, states)
    wanted = [f"/src{i}" for i in range(count)]
    expected = {f"/src{i}/metrics.jsonl" for i in range(count)}
    assert set(store.file_states(sources=wanted)) == expected
    assert store.file_states(sources=[]) == {}
    assert len(store.file_states()) == count + 5


def test_touching_runs_raises_updated_only_when_it_lags() -> None:
    store = open_memory_store()
    run = RunRecord(id="r1", source_kind="test", location="/x", name="a", updated=1000.0)
    with store.transaction():
        store.put_runs(None, [run])
    # Within the resolution nothing is written; past it, updated moves; it never goes back.
    assert store.touch_runs({"r1": 1000.0 + UPDATED_RESOLUTION / 2}) == []
    assert store.run("r1").updated == 1000.0
    assert store.touch_runs({"r1": 1100.0, "unknown": 5.0}) == ["r1"]
    assert store.run("r1").updated == 1100.0
    assert store.touch_runs({"r1": 500.0}, older_than=0) == []
    assert store.run("r1").updated == 1100.0
    assert store.touch_runs({"r1": 1100.5}, older_than=0) == ["r1"]


def test_log_paths_of_several_runs() -> None:
    store = open_memory_store()
    with store.transaction():
        store.put_logs({"a": ["/a/z.log", "/a/output.log"], "b": ["/b/output.log"]})
    assert store.log_paths(["a", "b", "c"]) == {
        "a": ["/a/output.log", "/a/z.log"],
        "b": ["/b/output.log"],
    }


def _append_both_ways(folded: Store, full: Store, points: pa.Table) -> None:
    """Append ``points`` to both stores: ``folded`` folds them into its summaries, ``full``
    recomputes the summaries of their runs from the whole history."""
    for store in (folded, full):
        with store.transaction():
            store.add_points(points)
    with folded.transaction():
        folded.fold_into_summaries(points)
    with full.transaction():
        full.refresh_summaries(points.column("run_id").unique().to_pylist())


# Two runs, one with a name that is not plain ASCII: the fold groups by codes and maps back.
_RUNS = ["r", "rün 2"]
# Whole numbers (made unique below) or NaN: a tie between two equal values would leave the
# step of the min or max to the order DuckDB happens to aggregate in.
_values = st.one_of(st.integers(-1000, 1000).map(float), st.just(float("nan")))
_point = st.tuples(
    st.sampled_from(_RUNS), st.sampled_from(["loss", "acc"]), st.integers(0, 40), _values
)


def _chunk_table(chunk: list[tuple[str, str, int, float]], seen: int) -> pa.Table:
    """Points of a drawn chunk, the ``seen`` points before it setting times and making each
    number unique (so the step of a min or max is well defined)."""
    rows = [(run, key, step, value + 1e-6 * (seen + i) if value == value else value)
            for i, (run, key, step, value) in enumerate(chunk)]  # fmt: skip
    return pa.table(
        {
            "run_id": pa.array([r[0] for r in rows], pa.string()),
            "key": pa.array([r[1] for r in rows], pa.string()),
            "step": pa.array([r[2] for r in rows], pa.int64()),
            "ts": pa.array([float(seen + len(chunk) + i) for i in range(len(rows))], pa.float64()),
            "value": pa.array([r[3] for r in rows], pa.float64()),
        }
    )


@settings(max_examples=60, deadline=None)
@given(chunks=st.lists(st.lists(_point, min_size=1, max_size=8), min_size=1, max_size=5))
def test_folding_appended_points_equals_summarising_the_whole_history(chunks) -> None:
    # Histories of several runs arrive in chunks, as live jobs' do; folded summaries must be
    # what a full recompute says. Values are made unique so the step of a min or max is well
    # defined.
    folded, full = open_memory_store(), open_memory_store()
    seen = 0
    for chunk in chunks:
        _append_both_ways(folded, full, _chunk_table(chunk, seen))
        seen += len(chunk)

    assert summary_rows(folded, _RUNS) == summary_rows(full, _RUNS)


def test_folding_points_without_times_or_numbers_equals_a_full_recompute() -> None:
    # Points without a time (sorted as time 0) and a batch ending on NaN: the fold's Arrow
    # summary must agree with the SQL one on last, min/max and their steps.
    folded, full = open_memory_store(), open_memory_store()
    chunks = [
        {"step": [0, 1, 1], "ts": [None, None, 5.0], "value": [3.0, 1.0, 2.0]},
        {"step": [2, 3], "ts": [None, 7.0], "value": [float("nan"), 9.0]},
        {"step": [4, 5], "ts": [None, None], "value": [-1.0, float("nan")]},
    ]
    for chunk in chunks:
        n = len(chunk["step"])
        points = pa.table({"run_id": ["r"] * n, "key": ["loss"] * n, **chunk})
        _append_both_ways(folded, full, points)
    got, want = folded.summaries(["r"])["r"]["loss"], full.summaries(["r"])["r"]["loss"]
    assert (got.min, got.max, got.min_step, got.max_step) == (-1.0, 9.0, 4, 3)
    assert got.last != got.last and want.last != want.last  # NaN, the value at step 5
    fields = ("count", "first_step", "last_step", "last_time", "min", "max", "min_step", "max_step")
    assert [getattr(got, f) for f in fields] == [getattr(want, f) for f in fields]


_cuts = st.one_of(
    st.tuples(st.just("points"), st.sampled_from(_RUNS), st.none()),
    st.tuples(st.just("points"), st.sampled_from(_RUNS), st.sampled_from(["loss", "acc"])),
    st.tuples(st.just("run"), st.sampled_from(_RUNS), st.none()),
)


# A batch: what an importer deletes, then the points it appends.
_batch = st.tuples(st.lists(_cuts, max_size=2), st.lists(_point, max_size=6))


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(_batch, min_size=1, max_size=6))
def test_updating_summaries_after_cuts_and_appends_equals_a_full_recompute(batches) -> None:
    # Importers delete what they re-read (whole histories, single metrics, whole runs), then
    # append, in one transaction; update_summaries must fold only what is safe to fold.
    updated, full = open_memory_store(), open_memory_store()
    seen = 0
    for cuts, adds in batches:
        points = _chunk_table(adds, seen)
        seen += len(adds)
        for store in (updated, full):
            with store.transaction():
                for what, run, key in cuts:
                    if what == "run":
                        store.delete_runs([run])
                    else:
                        store.delete_points([run], None if key is None else [key])
                store.add_points(points)
                changed = {run for _, run, _ in cuts} | {a[0] for a in adds}
                if store is updated:
                    store.update_summaries(changed, [points])
                else:
                    store.refresh_summaries(_RUNS)
        assert summary_rows(updated, _RUNS) == summary_rows(full, _RUNS)


def test_updating_summaries_outside_a_transaction_reads_the_histories() -> None:
    # Nobody recorded what was deleted: the stored points are summarised as they are.
    store = open_memory_store()
    points = pa.table({"run_id": ["r"] * 3, "key": ["loss"] * 3, "step": [0, 1, 2],
                       "ts": [None] * 3, "value": [3.0, 2.0, 1.0]})  # fmt: skip
    with store.transaction():
        store.add_points(points)
        store.update_summaries(["r"], [points])
    store.delete_points(["r"], ["loss"])
    store.add_points(points.slice(2))
    store.update_summaries(["r"], [points.slice(2)])
    summary = store.summaries(["r"])["r"]["loss"]
    assert (summary.count, summary.first_step, summary.last) == (1, 2, 1.0)


def test_updating_summaries_folds_a_growing_run_without_reading_its_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The live case: 25 appended steps must not read a long history again, and a run listed as
    # changed without new or deleted points keeps its row.
    store = open_memory_store()
    big = pa.table({"run_id": ["a"] * 1000, "key": ["loss"] * 1000, "step": list(range(1000)),
                    "ts": [float(i) for i in range(1000)],
                    "value": [1.0 / (i + 1) for i in range(1000)]})  # fmt: skip
    other = pa.table({"run_id": ["b"], "key": ["loss"], "step": [0], "ts": [0.0], "value": [5.0]})
    with store.transaction():
        store.add_points(big)
        store.add_points(other)
        store.update_summaries(["a", "b"], [big, other])
    read: list[list[str]] = []
    original = store.refresh_summaries
    monkeypatch.setattr(
        store,
        "refresh_summaries",
        lambda ids, keys=None: (read.append(list(ids)), original(ids, keys)),
    )
    more = pa.table({"run_id": ["a"] * 2, "key": ["loss"] * 2, "step": [1000, 1001],
                     "ts": [1000.0, 1001.0], "value": [-1.0, 0.5]})  # fmt: skip
    with store.transaction():
        store.add_points(more)
        store.update_summaries(["a", "b"], [more])
    assert all(not ids for ids in read)
    a, b = store.summaries(["a"])["a"]["loss"], store.summaries(["b"])["b"]["loss"]
    assert (a.count, a.last, a.min, a.min_step, a.last_step) == (1002, 0.5, -1.0, 1000, 1001)
    assert (b.count, b.last) == (1, 5.0)


def test_the_step_of_a_tied_best_is_the_first_step_that_reached_it(tmp_path: Path) -> None:
    # A flat metric (epoch_time 2.0 at every step) once showed "min 2@4" or "2@0" depending on
    # the order rows reached arg_min, which picks any of tied rows. A log written newest first
    # puts the last step first.
    from mltop.core.store import open_memory_store

    lines = [f'{{"step": {step}, "epoch_time": 2.0}}' for step in reversed(range(50))]
    (tmp_path / "flat.jsonl").write_text("\n".join(lines) + "\n")
    store = open_memory_store()
    ingest(tmp_path, store)
    (run_id,) = [r.id for r in store.runs()]
    flat = store.summaries([run_id])[run_id]["epoch_time"]
    assert (flat.min_step, flat.max_step) == (0, 0)


@pytest.mark.parametrize(
    "relative",
    ["runs/a", "runs//a", "runs/./a", "./runs/a", "runs/a/", "runs/a/.", ".hidden/a", "a.", ""],
)
def test_a_run_folder_hashes_the_relative_path_pathlib_would_give(relative: str) -> None:
    """The id text of a folder under the store's anchor is its relative path in the form
    ``Path.as_posix`` gives, also when it is taken from the text without a Path."""
    store = open_memory_store()
    store.anchor = Path("/project")
    assert store.id_path("/project/" + relative) == Path(relative).as_posix()
