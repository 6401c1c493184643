"""Importing mltop run folders and plain JSONL/CSV metric logs: incremental and hostile input."""

from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path

import pytest
from conftest import copy_fixture, write_run

from mltop.core import tabular
from mltop.core.discovery import ingest
from mltop.core.importers import mltop_runs
from mltop.core.store import Store, open_memory_store
from mltop.core.tracking import META_FILE, METRICS_FILE


def _ingest(root: Path, store: Store | None = None) -> tuple[Store, object]:
    store = store or open_memory_store()
    return store, ingest(root, store)


def _by_name(store: Store) -> dict[str, object]:
    return {r.name: r for r in store.runs()}


def test_runs_statuses_params_and_histories_are_imported(runs_root: Path) -> None:
    store, _ = _ingest(runs_root)
    runs = _by_name(store)
    assert set(runs) == {"sgd-lr0.1", "sgd-lr0.01", "sgd-lr0.001", "sgd-diverged"}
    assert runs["sgd-diverged"].status == "FAILED"
    assert runs["sgd-diverged"].error == "RuntimeError: diverged: loss is NaN"
    assert runs["sgd-lr0.1"].status == "FINISHED"
    assert runs["sgd-lr0.1"].experiment == "runs"
    run_id = runs["sgd-lr0.01"].id
    assert store.params(run_id) == {"lr": "0.01", "model": "sgd"}
    history = store.history(run_id, "loss").to_pydict()
    assert history["step"] == list(range(11))
    assert history["value"][-1] == pytest.approx(1 / 11)
    summary = store.summaries([run_id])[run_id]["loss"]
    assert summary.count == 11 and summary.min_step == 10


def test_appended_steps_are_read_from_the_last_offset(runs_root: Path) -> None:
    store, _ = _ingest(runs_root)
    metrics = runs_root / "runs" / "sgd-lr0.1" / METRICS_FILE
    with open(metrics, "a") as fh:
        fh.write(json.dumps({"step": 10, "loss": 0.01}) + "\n")
        fh.write(json.dumps({"step": 11, "loss": 0.005, "acc": 1.0}) + "\n")
    _, report = _ingest(runs_root, store)
    assert report.points_added == 3
    run = _by_name(store)["sgd-lr0.1"]
    assert store.summaries([run.id])[run.id]["loss"].last == 0.005
    assert store.point_count(run.id) == 10 * 2 + 3


def test_following_continues_across_reopenings_of_the_parse_database(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The parse database is reopened every few uses (DuckDB keeps native memory per parse
    # that only closing frees); every scan after a reopening must still read the new steps.
    monkeypatch.setattr(tabular, "RECYCLE_AFTER", 2)
    store, _ = _ingest(runs_root)
    metrics = runs_root / "runs" / "sgd-lr0.1" / METRICS_FILE
    databases = [tabular.connection()]  # held, so a new one cannot reuse an old one's id
    for step in range(10, 16):
        with open(metrics, "a") as fh:
            fh.write(json.dumps({"step": step, "loss": 1.0 / step}) + "\n")
        _, report = _ingest(runs_root, store)
        assert report.points_added == 1
        databases.append(tabular.connection())
    run = _by_name(store)["sgd-lr0.1"]
    assert store.history(run.id, "loss").to_pydict()["step"] == list(range(16))
    assert len({id(con) for con in databases}) > 2


def test_a_half_written_last_line_waits_for_the_next_scan(runs_root: Path) -> None:
    store, _ = _ingest(runs_root)
    metrics = runs_root / "runs" / "sgd-lr0.1" / METRICS_FILE
    with open(metrics, "a") as fh:
        fh.write('{"step": 10, "loss": 0.0')
    _, report = _ingest(runs_root, store)
    assert report.points_added == 0 and not report.problems
    with open(metrics, "a") as fh:
        fh.write("1}\n")
    _, report = _ingest(runs_root, store)
    assert report.points_added == 1
    run = _by_name(store)["sgd-lr0.1"]
    assert store.summaries([run.id])[run.id]["loss"].last == 0.01


def test_a_truncated_or_replaced_file_is_read_again_from_the_start(runs_root: Path) -> None:
    store, _ = _ingest(runs_root)
    metrics = runs_root / "runs" / "sgd-lr0.1" / METRICS_FILE
    metrics.write_text(json.dumps({"step": 0, "loss": 9.0}) + "\n")
    _ingest(runs_root, store)
    run = _by_name(store)["sgd-lr0.1"]
    assert store.point_count(run.id) == 1
    assert store.summaries([run.id])[run.id]["loss"].last == 9.0
    assert "acc" not in store.summaries([run.id])[run.id]


def test_a_metrics_file_deleted_between_scans_drops_its_points(runs_root: Path) -> None:
    store, _ = _ingest(runs_root)
    (runs_root / "runs" / "sgd-lr0.1" / METRICS_FILE).unlink()
    _, report = _ingest(runs_root, store)
    assert not report.problems
    run = _by_name(store)["sgd-lr0.1"]
    assert store.point_count(run.id) == 0
    assert store.summaries([run.id])[run.id] == {}


def test_a_deleted_run_folder_disappears_from_the_store(runs_root: Path) -> None:
    import shutil

    store, _ = _ingest(runs_root)
    shutil.rmtree(runs_root / "runs" / "sgd-lr0.1")
    _, report = _ingest(runs_root, store)
    assert report.removed_runs == 1
    assert "sgd-lr0.1" not in _by_name(store)
    assert store.table_counts()["metrics"] == (11 + 12 + 3) * 2


def test_an_unchanged_tree_reads_nothing(runs_root: Path) -> None:
    store, _ = _ingest(runs_root)
    counts = store.table_counts()
    _, report = _ingest(runs_root, store)
    assert report.points_added == 0 and report.runs_added == 0
    assert store.table_counts() == counts


def test_an_unchanged_tree_is_compared_in_the_store_without_opening_a_file(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = _ingest(runs_root)
    opened: list[str] = []
    real_open = os.open

    def spying_open(path: object, *args: object, **kwargs: object) -> int:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    # Spied, not replaced: every open still happens for real.
    monkeypatch.setattr(os, "open", spying_open)
    _, report = _ingest(runs_root, store)
    assert report.points_added == 0
    assert not [p for p in opened if p.startswith(str(runs_root / "runs"))]


def test_a_params_file_that_appears_or_changes_in_an_unchanged_run_is_read(
    runs_root: Path,
) -> None:
    store, _ = _ingest(runs_root)
    folder = runs_root / "runs" / "sgd-lr0.1"
    params = folder / "params.json"
    params.write_text(json.dumps({"lr": 0.5, "model": "sgd", "extra": 1}))
    _ingest(runs_root, store)
    run_id = _by_name(store)["sgd-lr0.1"].id
    assert store.params(run_id) == {"lr": "0.5", "model": "sgd", "extra": "1"}
    params.unlink()
    _ingest(runs_root, store)
    assert store.params(run_id) == {}


def test_changed_runs_against_folder_digests_names_changed_folders_only(tmp_path: Path) -> None:
    from mltop.core.entities import FileState
    from mltop.core.importers.base import stat_table
    from mltop.core.store import open_store

    names = ("/m", "/p")

    def state(path: str, size: int = 10, mtime: float = 1.5, inode: int = 7) -> FileState:
        return FileState(path, size, mtime, inode, size, "", "run", path.rsplit("/", 1)[0])

    with open_store(tmp_path, tmp_path / "store.duckdb") as store:
        store.put_files(
            None,
            [
                *(state(f"/r/{run}/m") for run in ("same", "size", "mtime", "inode", "lost")),
                *(state(f"/r/{run}/p") for run in ("same", "size", "mtime", "inode", "gone")),
                state("/r/gone/m"),
                state("/r/grew/m"),
                state("/r/same/other.txt"),  # recorded under the folder by another name
            ],
        )
        recorded = store.folder_digests(names)
        # The seven folders with a file of those names, and none other.
        assert recorded.num_rows == 7
        #         m: size, mtime, inode (None: not there)     p: the same
        now = {
            "/r/same": [(10, 1.5, 7), (10, 1.5, 7)],
            "/r/size": [(11, 1.5, 7), (10, 1.5, 7)],
            "/r/mtime": [(10, 1.5, 7), (10, 1.25, 7)],
            "/r/inode": [(10, 1.5, 8), (10, 1.5, 7)],
            "/r/lost": [None, None],
            "/r/gone": [(10, 1.5, 7), None],
            "/r/grew": [(10, 1.5, 7), (1, 1.0, 9)],
            "/r/new": [(3, 1.0, 1), None],
            "/r/never": [None, None],
        }
        folders = list(now)
        paths = [folder + name for folder in folders for name in names]
        stats = [st for folder in folders for st in now[folder]]
        there = bytearray(st is not None for st in stats)
        table = stat_table(
            folders,
            paths,
            [st[0] if st else 0 for st in stats],
            [st[1] if st else 0.0 for st in stats],
            [st[2] if st else 0 for st in stats],
            there,
        )
        assert dict(store.changed_runs(table, recorded)) == {
            "/r/size": True,
            "/r/mtime": True,
            "/r/inode": True,
            "/r/lost": True,
            "/r/gone": True,
            "/r/grew": True,
            # Not recorded: new, or (nothing there either) nothing at all, the caller tells.
            "/r/new": False,
            "/r/never": False,
        }


def test_growing_metrics_keep_the_run_alive_without_rewriting_it(runs_root: Path) -> None:
    store, _ = _ingest(runs_root)
    folder = runs_root / "runs" / "sgd-lr0.1"
    run = _by_name(store)["sgd-lr0.1"]
    later = time.time() + 3600  # an hour of silence, then the job logs again
    with open(folder / METRICS_FILE, "a") as fh:
        fh.write(json.dumps({"step": 10, "loss": 0.01}) + "\n")
    os.utime(folder / METRICS_FILE, (later, later))
    _, report = _ingest(runs_root, store)
    after = _by_name(store)["sgd-lr0.1"]
    assert report.points_added == 1
    assert after.updated == later and after.status == run.status and after.name == run.name
    assert store.params(run.id) == {"lr": "0.1", "model": "sgd"}
    assert store.summaries([run.id])[run.id]["loss"].last == 0.01


def test_a_run_ending_with_new_steps_has_the_summaries_of_its_whole_history(
    runs_root: Path,
) -> None:
    # The job's last scan sees its final steps and its status change together: the new points
    # fold into the stored summaries, which must equal summaries computed from scratch.
    store, _ = _ingest(runs_root)
    folder = runs_root / "runs" / "sgd-lr0.1"
    with open(folder / METRICS_FILE, "a") as fh:
        fh.write(json.dumps({"step": 10, "loss": 0.001, "acc": 0.5}) + "\n")
        fh.write(json.dumps({"step": 11, "loss": 0.2, "lr": 0.1}) + "\n")
    meta = json.loads((folder / META_FILE).read_text())
    meta["status"] = "KILLED"
    (folder / META_FILE).write_text(json.dumps(meta))
    _ingest(runs_root, store)
    run = _by_name(store)["sgd-lr0.1"]
    fresh, _ = _ingest(runs_root)
    assert run.status == "KILLED"
    assert store.summaries([run.id]) == fresh.summaries([run.id])
    assert store.summaries([run.id])[run.id]["loss"].min == 0.001


def test_a_log_file_that_appears_while_metrics_grow_is_listed(runs_root: Path) -> None:
    store, _ = _ingest(runs_root)
    folder = runs_root / "runs" / "sgd-lr0.1"
    run_id = _by_name(store)["sgd-lr0.1"].id
    before = [log.path for log in store.logs(run_id)]
    (folder / "train.err").write_text("CUDA warning\n")
    with open(folder / METRICS_FILE, "a") as fh:
        fh.write(json.dumps({"step": 10, "loss": 0.01}) + "\n")
    _ingest(runs_root, store)
    assert [log.path for log in store.logs(run_id)] == sorted([*before, str(folder / "train.err")])


BAD_METRICS = {
    "empty": b"",
    "truncated mid line": b'{"step": 0, "loss": 1.0}\n{"step": 1, "lo',
    "binary garbage": bytes(random.Random(7).randrange(256) for _ in range(4096)),
    "non-utf8": b'{"step": 0, "loss": 1.0}\n{"step": 1, "loss": 2.0, "n\xff\xfe": 1}\n',
    "not objects": b"[1, 2, 3]\n42\n",
    "mixed good and bad": b'{"step": 0, "loss": 1.0}\nnot json\n{"step": 2, "loss": 3.0}\n',
    "string values": b'{"step": 0, "loss": "high"}\n{"step": 1, "loss": 0.5}\n',
    "nested values": b'{"step": 0, "loss": {"a": 1}, "acc": [1, 2]}\n',
    "deeply nested": b'{"step": 0, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}\n",
}


@pytest.mark.parametrize("case", sorted(BAD_METRICS))
def test_bad_metric_files_are_reported_and_the_rest_imported(runs_root: Path, case: str) -> None:
    target = runs_root / "runs" / "sgd-lr0.1" / METRICS_FILE
    target.write_bytes(BAD_METRICS[case])
    store, report = _ingest(runs_root)
    runs = _by_name(store)
    assert len(runs) == 4, report.problems  # the run itself and every other run are still there
    assert store.point_count(runs["sgd-lr0.01"].id) == 22
    for problem in report.problems:
        assert problem.path == str(target)
        assert "\n" not in problem.message
    run_id = runs["sgd-lr0.1"].id
    losses = store.history(run_id, "loss").column("value").to_pylist()
    if case == "mixed good and bad":
        assert losses == [1.0, 3.0]
        assert "1 malformed line skipped (first at line 2)" in str(report.problems[0])
    if case == "string values":
        assert losses == [0.5]
    if case == "truncated mid line":
        assert losses == [1.0]


def test_a_ten_megabyte_single_line_is_handled(runs_root: Path) -> None:
    target = runs_root / "runs" / "sgd-lr0.1" / METRICS_FILE
    target.write_text(json.dumps({"step": 0, "loss": 0.5, "note": "x" * 10_000_000}) + "\n")
    store, _ = _ingest(runs_root)
    run_id = _by_name(store)["sgd-lr0.1"].id
    assert store.history(run_id, "loss").column("value").to_pylist() == [0.5]
    assert len(_by_name(store)) == 4


def test_nan_and_infinity_survive(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "runs", "weird", steps=0)
    (folder / METRICS_FILE).write_text(
        '{"step": 0, "a": NaN, "b": Infinity, "c": -Infinity}\n'
        '{"step": 1, "a": "NaN", "b": "Infinity", "c": "-Infinity"}\n'
    )
    store, report = _ingest(tmp_path)
    assert not report.problems
    run_id = _by_name(store)["weird"].id
    for key, check in (("a", math.isnan), ("b", lambda v: v == math.inf)):
        values = store.history(run_id, key).column("value").to_pylist()
        assert len(values) == 2 and all(check(v) for v in values)
    assert store.history(run_id, "c").column("value").to_pylist() == [-math.inf, -math.inf]


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"[]", b"\xff\xfe\x00garbage", b'{"name": "x"' + b" " * 10],
)
def test_a_broken_metadata_file_skips_only_that_run(runs_root: Path, content: bytes) -> None:
    meta = runs_root / "runs" / "sgd-lr0.1" / META_FILE
    meta.write_bytes(content)
    store, report = _ingest(runs_root)
    assert set(_by_name(store)) == {"sgd-lr0.01", "sgd-lr0.001", "sgd-diverged"}
    assert [p.path for p in report.problems] == [str(meta)]
    assert store.table_counts()["metrics"] == (11 + 12 + 3) * 2  # nothing half-written


def test_byte_mutated_run_folders_never_raise(runs_root: Path) -> None:
    rng = random.Random(1234)
    folder = runs_root / "runs" / "sgd-lr0.01"
    originals = {p: p.read_bytes() for p in folder.iterdir()}
    for _ in range(25):
        for path, data in originals.items():
            mutated = bytearray(data)
            for _ in range(rng.randrange(1, 6)):
                if mutated:
                    mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            if rng.random() < 0.3:
                mutated = mutated[: rng.randrange(len(mutated) + 1)]
            path.write_bytes(bytes(mutated))
        store, report = _ingest(runs_root)
        names = set(_by_name(store))
        assert {"sgd-lr0.1", "sgd-lr0.001", "sgd-diverged"} <= names
        for problem in report.problems:
            assert problem.path.startswith(str(folder)) and "\n" not in problem.message


def test_plain_jsonl_and_csv_logs_become_runs(tmp_path: Path) -> None:
    logs = copy_fixture("training-logs/python-logging", tmp_path)
    expected = json.loads((logs / "expected.json").read_text())
    store, _ = _ingest(tmp_path)
    runs = _by_name(store)
    assert set(runs) == set(expected) == {"run-a", "run-b", "run-crash"}
    for name, oracle in expected.items():
        run = runs[name]
        assert run.source_kind == "jsonl"  # the JSONL copy wins over the CSV copy of the same run
        history = store.history(run.id, "val_acc").to_pydict()
        assert history["step"] == [e["epoch"] for e in oracle["epochs"]]
        assert history["value"] == [e["val_acc"] for e in oracle["epochs"]]
        assert history["ts"][0] is not None  # ISO timestamps are understood
        log_names = {Path(x.path).name for x in store.logs(run.id)}
        assert f"{name}.log" in log_names and f"{name}.stderr.txt" in log_names


def test_a_csv_metric_log_is_read_and_followed(tmp_path: Path) -> None:
    target = tmp_path / "exp" / "metrics.csv"
    target.parent.mkdir()
    target.write_text("epoch,loss,acc\n0,1.0,0.1\n1,0.5,0.2\n")
    store, _ = _ingest(tmp_path)
    with open(target, "a") as fh:
        fh.write("2,0.25,0.3\n3,0.1")
    _, report = _ingest(tmp_path, store)
    assert report.points_added == 2  # the half-written row waits
    run = _by_name(store)["metrics"]
    assert store.history(run.id, "loss").column("value").to_pylist() == [1.0, 0.5, 0.25]
    assert run.experiment == "exp"


def test_data_files_that_are_not_metric_logs_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "iris.csv").write_text("sepal,petal,species\n1,2,setosa\n")
    (tmp_path / "events.jsonl").write_text('{"user": "a", "action": "click"}\n')
    store, report = _ingest(tmp_path)
    assert store.count_runs() == 0 and not report.problems


def _snapshot(store: Store) -> dict[str, object]:
    runs = {r.id: r for r in store.runs()}
    ids = sorted(runs)
    return {
        "runs": runs,
        "params": {i: store.params(i) for i in ids},
        "summaries": store.summaries(ids),
        "logs": {i: [log.path for log in store.logs(i)] for i in ids},
        "points": store.point_count(),
    }


def test_many_small_batches_end_as_one_batch_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of two runs, each in its own transaction: a first import, then a scan after
    every kind of change (grown metrics, grown with a new log, new metadata, a truncated
    history, broken metadata), ends as one batch does."""

    def tree(name: str) -> Path:
        root = tmp_path / name
        for i in range(9):
            write_run(root / "runs", f"run-{i}", steps=4 + i, params={"i": i})
        return root

    def change(root: Path) -> None:
        runs = root / "runs"
        with open(runs / "run-1" / METRICS_FILE, "a") as fh:  # grown only
            fh.write(json.dumps({"step": 50, "loss": 0.5}) + "\n")
        with open(runs / "run-4" / METRICS_FILE, "a") as fh:  # grown, and a log appeared
            fh.write(json.dumps({"step": 50, "loss": 0.4}) + "\n")
        (runs / "run-4" / "train.log").write_text("epoch 50\n")
        meta = json.loads((runs / "run-6" / META_FILE).read_text())  # new metadata
        meta["status"] = "KILLED"
        (runs / "run-6" / META_FILE).write_text(json.dumps(meta))
        (runs / "run-7" / METRICS_FILE).write_text(json.dumps({"step": 0, "loss": 9.0}) + "\n")
        (runs / "run-8" / META_FILE).write_text("{not json")  # broken: that run only

    root = tree("project")
    whole, _ = _ingest(root)
    monkeypatch.setattr(mltop_runs, "BATCH_RUNS", 2)
    split, report = _ingest(root)
    assert report.problems == [] and report.runs_added == 9
    assert _snapshot(split) == _snapshot(whole)
    change(root)
    monkeypatch.setattr(mltop_runs, "BATCH_RUNS", 5000)
    _, whole_report = _ingest(root, whole)
    monkeypatch.setattr(mltop_runs, "BATCH_RUNS", 2)
    _, split_report = _ingest(root, split)
    assert [p.message for p in split_report.problems] == [p.message for p in whole_report.problems]
    assert len(split_report.problems) == 1
    assert _snapshot(split) == _snapshot(whole)
    runs = {r.name: r for r in split.runs()}
    assert [log.path for log in split.logs(runs["run-4"].id)] == [
        str(root / "runs" / "run-4" / "train.log")
    ]
    assert runs["run-6"].status == "KILLED"
    assert split.summaries([runs["run-7"].id])[runs["run-7"].id]["loss"].count == 1
