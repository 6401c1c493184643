"""One rule for symlinks: followed when the target lies inside the opened folder, never outside.

Files and folders alike. A folder symlink is never descended (a target inside is walked in its
own place, so its runs are not listed twice); a file symlink pointing outside is refused with a
problem line naming the link and its target.
"""

from __future__ import annotations

from pathlib import Path

from conftest import write_run
from test_import_mlflow import sqlite_copy

from mltop.core.discovery import ingest
from mltop.core.live.watch import Watcher
from mltop.core.store import open_memory_store, open_store


def _ingest(root: Path) -> tuple[list[str], dict[str, int]]:
    with open_store(root) as store:
        report = ingest(root, store)
        points = {run.name: store.point_count(run.id) for run in store.runs()}
    return [str(problem) for problem in report.problems], points


def test_a_file_symlink_pointing_outside_the_folder_is_not_followed(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    secret = write_run(elsewhere, "secret", steps=7)
    run = write_run(root / "runs", "linked", steps=2)
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to(secret / "metrics.jsonl")
    problems, points = _ingest(root)
    target = (secret / "metrics.jsonl").resolve()
    assert problems == [
        f"{run / 'metrics.jsonl'}: cannot read (a symlink to {target}, "
        f"outside {root.resolve()}: not followed)"
    ]
    assert points == {"linked": 0}


def test_sources_found_only_through_a_symlink_out_of_the_folder_are_named_not_read(
    tmp_path: Path,
) -> None:
    root, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "train.metrics.jsonl").write_text('{"step": 0, "loss": 1.0}\n')
    db = sqlite_copy(elsewhere)
    (root / "logs").mkdir(parents=True)
    (root / "logs" / "train.metrics.jsonl").symlink_to(elsewhere / "train.metrics.jsonl")
    (root / "mlflow.db").symlink_to(db)
    write_run(root / "runs", "inside")
    problems, points = _ingest(root)
    assert sorted(line.split(": ", 1)[0] for line in problems) == [
        str(root / "logs" / "train.metrics.jsonl"),
        str(root / "mlflow.db"),
    ]
    assert all(line.endswith("not followed") for line in problems), problems
    assert list(points) == ["inside"]


def test_a_folder_symlink_pointing_outside_is_not_descended(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    write_run(elsewhere / "runs", "outside")
    write_run(root / "runs", "inside")
    (root / "more").symlink_to(elsewhere, target_is_directory=True)
    problems, points = _ingest(root)
    assert problems == []
    assert list(points) == ["inside"]


def test_symlinks_inside_the_folder_are_followed_and_runs_listed_once(tmp_path: Path) -> None:
    root = tmp_path / "project"
    original = write_run(root / "archive", "original", steps=4)
    (root / "latest").symlink_to(root / "archive", target_is_directory=True)
    linked = write_run(root / "runs", "linked", steps=2)
    (linked / "metrics.jsonl").unlink()
    (linked / "metrics.jsonl").symlink_to(original / "metrics.jsonl")
    problems, points = _ingest(root)
    assert problems == []
    assert points == {"original": 8, "linked": 8}


def test_a_symlinked_store_root_is_its_real_folder(tmp_path: Path) -> None:
    real = tmp_path / "real"
    write_run(real / "runs", "one", steps=3)
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    problems, points = _ingest(tmp_path / "alias")
    assert problems == []
    assert points == {"one": 6}


def test_the_watcher_does_not_follow_a_metrics_file_relinked_outside(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    secret = write_run(elsewhere, "secret", steps=7)
    run = write_run(root / "runs", "watched", steps=2)
    store = open_memory_store()
    ingest(root, store)
    (before,) = store.runs()
    had = store.point_count(before.id)
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to(secret / "metrics.jsonl")
    update = Watcher([root], store, lambda u: None).apply({str(run / "metrics.jsonl")})
    assert not update.full_scan
    assert update.report is not None
    assert [problem.path for problem in update.report.problems] == [str(run / "metrics.jsonl")]
    assert "not followed" in update.report.problems[0].message
    (watched,) = store.runs()
    # A file that cannot be read writes nothing: the run keeps what it had, none from outside.
    assert store.point_count(watched.id) == had
