"""A re-scan of run folders: found by their marker as detect would find them, compared in bulk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import write_run

from mltop.core.discovery import discover, ingest
from mltop.core.entities import SourceRef
from mltop.core.importers import mltop_runs
from mltop.core.importers.base import Detection, Sources
from mltop.core.importers.registry import importers
from mltop.core.store import open_store


class _DetectOnly:
    """The mltop importer without its ``folder_marker``: every folder goes through detect."""

    kind = mltop_runs.KIND

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        return mltop_runs.IMPORTER.detect(dirpath, dirnames, filenames)

    def import_sources(self, store, refs, report) -> None:  # type: ignore[no-untyped-def]
        mltop_runs.IMPORTER.import_sources(store, refs, report)


def _mixed_tree(root: Path) -> None:
    for name in ("b", "a", "c"):
        write_run(root / "runs", name)
    inner = write_run(root / "runs", "outer")
    write_run(inner / "nested", "inside")  # below a run folder: never walked
    os.mkfifo(root / "runs" / "a" / "pipe")
    (root / "logs").mkdir()
    (root / "logs" / "train.metrics.jsonl").write_text('{"step": 0, "loss": 1}\n')
    write_run(root / "node_modules" / "runs", "skipped")


def test_run_folders_found_by_their_marker_are_what_detect_finds(tmp_path: Path) -> None:
    _mixed_tree(tmp_path)
    fast = discover(tmp_path)
    rest = importers()[1:]
    slow = discover(tmp_path, [_DetectOnly(), *rest])  # type: ignore[list-item]
    listed = [(r.kind, r.location, r.root) for r in fast.refs]
    assert listed == [(r.kind, r.location, r.root) for r in slow.refs]
    assert [loc.name for kind, loc, _ in listed if kind == "mltop"] == ["a", "b", "c", "outer"]
    assert fast.not_regular == slow.not_regular == [(tmp_path / "runs" / "a" / "pipe", "a FIFO")]
    assert fast.problems == slow.problems


def test_discovered_sources_keep_walk_order_by_kind_and_as_text(tmp_path: Path) -> None:
    _mixed_tree(tmp_path)
    found = discover(tmp_path).refs
    assert isinstance(found, Sources)
    runs = found.of_kind("mltop")
    assert runs.texts() == [str(tmp_path / "runs" / n) for n in ("a", "b", "c", "outer")]
    assert runs[1] == SourceRef("mltop", tmp_path / "runs" / "b", tmp_path)
    assert [ref.location.name for ref in runs[2:]] == ["c", "outer"]
    assert found.texts() == [str(ref.location) for ref in found]
    assert found.kinds() == [ref.kind for ref in found]
    assert [ref.kind for ref in found.detected()] == ["jsonl"]


RESCAN = """
import sys
from pathlib import Path
from mltop.core.discovery import ingest
from mltop.core.store import open_store
tree = Path(sys.argv[1])
with open_store(tree, tree / "store.duckdb") as store:
    report = ingest(tree, store)
assert report.sources_seen == 30 and not report.problems, report
print(report.runs_added, report.points_added, "pandas" in sys.modules)
"""


def test_a_rescan_of_unchanged_run_folders_reads_no_file_and_loads_no_pandas(
    tmp_path: Path,
) -> None:
    """pandas (~45 MB resident) comes in with ``pa.array`` on Python lists: a re-scan that
    finds nothing changed builds its Arrow columns from buffers instead."""
    for i in range(30):
        write_run(tmp_path / "runs", f"run-{i:02d}")
    first = subprocess.run(
        [sys.executable, "-c", RESCAN, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert first.stdout.split()[:1] == ["30"]
    again = subprocess.run(
        [sys.executable, "-c", RESCAN, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert again.stdout.split() == ["0", "0", "False"]


def test_a_changed_run_among_many_is_the_one_read_again(tmp_path: Path) -> None:
    folders = [write_run(tmp_path / "runs", f"run-{i:02d}") for i in range(12)]
    with open_store(tmp_path, tmp_path / "store.duckdb") as store:
        ingest(tmp_path, store)
        with open(folders[7] / mltop_runs.METRICS_FILE, "a") as fh:
            fh.write('{"step": 5, "loss": 0.01}\n')
        (folders[3] / mltop_runs.PARAMS_FILE).unlink()
        old, mltop_runs.COMPARE_RUNS = mltop_runs.COMPARE_RUNS, 5  # three comparisons
        try:
            report = ingest(tmp_path, store)
        finally:
            mltop_runs.COMPARE_RUNS = old
        assert report.points_added == 1 and report.runs_added == 0 and not report.problems
        by_name = {run.name: run for run in store.runs()}
        assert store.params(by_name["run-03"].id) == {}
        assert store.params(by_name["run-04"].id) == {"lr": "0.1"}


def test_path_text_crosses_to_arrow_unchanged_whatever_its_characters() -> None:
    from mltop.core.store import string_array

    texts = ["/runs/a", "", "/runs/caf\u00e9", "/runs/\u6f22\u5b57/x", "/runs/b"]
    assert string_array(texts).to_pylist() == texts
    assert string_array(["/runs/a", "/runs/b"]).to_pylist() == ["/runs/a", "/runs/b"]
    assert string_array([]).to_pylist() == []


def test_each_run_folder_keeps_which_of_its_files_the_walk_listed(tmp_path: Path) -> None:
    _mixed_tree(tmp_path)
    runs = tmp_path / "runs"
    (runs / "b" / mltop_runs.PARAMS_FILE).unlink()
    (runs / "c" / mltop_runs.SYSTEM_FILE).write_text("step,ts,system/cpu\n0,1.0,5.0\n")
    found = discover(tmp_path).refs
    mine = found.of_kind("mltop")

    def expected(folder: str) -> int:
        there = set(os.listdir(runs / folder))
        return sum(1 << i for i, name in enumerate(mltop_runs.RUN_FILES) if name in there)

    assert list(mine.listed()) == [expected(n) for n in ("a", "b", "c", "outer")]
    assert expected("b") & 0b10 == 0 and expected("c") & 0b1000
    assert list(mine[1:3].listed()) == [expected("b"), expected("c")]
    # A source no walk listed (a detected file, a ref made by hand) has every file looked for.
    assert [m for m, k in zip(found.listed(), found.kinds(), strict=True) if k != "mltop"] == [0xFF]


def test_files_that_appear_or_go_between_scans_are_read_at_the_next(tmp_path: Path) -> None:
    """The walk's listing decides which files a re-scan looks at: a system.csv written after a
    scan is imported by the next, and a params.json deleted is forgotten by it."""
    folders = [write_run(tmp_path / "runs", f"run-{i}") for i in range(3)]
    with open_store(tmp_path, tmp_path / "store.duckdb") as store:
        ingest(tmp_path, store)
        (folders[1] / mltop_runs.SYSTEM_FILE).write_text(
            "step,ts,system/cpu_utilization_percentage\n4,1790000000.0,55.5\n"
        )
        (folders[2] / mltop_runs.PARAMS_FILE).unlink()
        report = ingest(tmp_path, store)
        assert report.points_added == 1 and not report.problems
        by_name = {run.name: run for run in store.runs()}
        keys = store.summaries([by_name["run-1"].id])[by_name["run-1"].id]
        assert keys["system/cpu_utilization_percentage"].last == 55.5
        assert store.params(by_name["run-2"].id) == {}
        assert ingest(tmp_path, store).runs_added == 0
        (folders[1] / mltop_runs.SYSTEM_FILE).unlink()
        ingest(tmp_path, store)
        keys = store.summaries([by_name["run-1"].id])[by_name["run-1"].id]
        assert "system/cpu_utilization_percentage" not in keys
