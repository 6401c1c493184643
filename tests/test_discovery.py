"""The discovery walk: what it finds, what it skips."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import deep_tree, write_run

from mltop.core.discovery import discover


@pytest.mark.parametrize(
    "skipped",
    [".git", ".mltop", "node_modules", "__pycache__", ".venv", "venv", ".tox", "site-packages"],
)
def test_runs_inside_skipped_folders_are_not_found(tmp_path: Path, skipped: str) -> None:
    write_run(tmp_path / skipped / "runs", "hidden")
    write_run(tmp_path / "runs", "visible")
    found = discover(tmp_path)
    assert [ref.location.name for ref in found.refs] == ["visible"]


def test_a_virtualenv_under_any_name_is_skipped(tmp_path: Path) -> None:
    env = tmp_path / "my-env"
    env.mkdir()
    (env / "pyvenv.cfg").write_text("home = /usr/bin\n")
    write_run(env / "lib" / "runs", "hidden")
    assert list(discover(tmp_path).refs) == []


def test_a_run_folder_claims_its_files(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "runs", "one")
    found = discover(tmp_path)
    assert [(ref.kind, ref.location) for ref in found.refs] == [("mltop", folder)]


def test_sources_are_found_at_any_depth_and_in_stable_order(tmp_path: Path) -> None:
    for name in ("b", "a", "c"):
        write_run(tmp_path / "deep" / "er" / name, "run")
    found = [ref.location.parent.name for ref in discover(tmp_path).refs]
    assert found == ["a", "b", "c"]


def test_a_single_file_can_be_the_root(tmp_path: Path) -> None:
    log = tmp_path / "train.metrics.jsonl"
    log.write_text('{"step": 0, "loss": 1}\n')
    found = discover(log)
    assert [(r.kind, r.location) for r in found.refs] == [("jsonl", log)]


def test_a_folder_tree_deeper_than_pythons_recursion_limit_is_walked(tmp_path: Path) -> None:
    with deep_tree(tmp_path) as deepest_folder:
        deepest = write_run(deepest_folder / "runs", "bottom")
        write_run(tmp_path / "runs", "top")
        found = [ref.location for ref in discover(tmp_path).refs]
        assert found == [deepest, tmp_path / "runs" / "top"]


def test_metrics_csv_beside_metrics_jsonl_is_a_run_too_and_shares_the_folders_logs(
    tmp_path: Path,
) -> None:
    from mltop.core.discovery import ingest
    from mltop.core.store import open_memory_store

    (tmp_path / "metrics.jsonl").write_text('{"step": 0, "loss": 1.0}\n{"step": 1, "loss": 0.5}\n')
    (tmp_path / "metrics.csv").write_text("epoch,val_loss,val_acc\n0,0.6,0.7\n1,0.4,0.8\n")
    (tmp_path / "train.log").write_text("epoch 0 done\nepoch 1 done\n")
    store = open_memory_store()
    report = ingest(tmp_path, store)
    assert report.problems == []
    runs = {r.name: r for r in store.runs()}
    assert set(runs) == {"metrics.jsonl", "metrics.csv"}
    summaries = store.summaries([r.id for r in runs.values()])
    assert set(summaries[runs["metrics.jsonl"].id]) == {"loss"}
    assert summaries[runs["metrics.csv"].id]["val_acc"].last == 0.8
    for run in runs.values():
        assert [log.path for log in store.logs(run.id)] == [str(tmp_path / "train.log")]


def test_a_log_named_after_one_run_stays_that_runs(tmp_path: Path) -> None:
    from mltop.core.discovery import ingest
    from mltop.core.store import open_memory_store

    for name in ("run-a", "run-b"):
        (tmp_path / f"{name}.jsonl").write_text('{"step": 0, "loss": 1.0}\n')
        (tmp_path / f"{name}.log").write_text(f"{name} started\n")
    store = open_memory_store()
    ingest(tmp_path, store)
    logs = {r.name: [log.path for log in store.logs(r.id)] for r in store.runs()}
    assert logs == {n: [str(tmp_path / f"{n}.log")] for n in ("run-a", "run-b")}
