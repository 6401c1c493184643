"""Small JSONL metric files parsed together give what parsing each alone gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import summary_rows, write_run

from mltop.core import tabular
from mltop.core.discovery import ingest
from mltop.core.importers import linefiles
from mltop.core.store import open_memory_store

ODD_LINES = {
    # each run's metrics.jsonl gets one of these appended to its writer-made lines
    "plain": "",
    "other-plain": "",
    "nan-bare": '{"step": 9, "loss": NaN, "acc": Infinity}\n',
    "nan-quoted": '{"step": 9, "loss": "NaN", "acc": "-Infinity"}\n',
    "empty-object": "{}\n",
    "blank-line": "\n",
    "not-an-object": "[1, 2]\n",
    "not-json": "loss=0.3\n",
    "no-step": '{"loss": 0.5}\n',
    "text-step": '{"step": "nine", "loss": 0.5}\n',
    "nested": '{"step": 9, "loss": {"a": 1}, "acc": true}\n',
    "spaced": '{ "step": 9, "loss": 0.2 }\n',
    "iso-time": '{"step": 9, "ts": "2024-05-01T10:00:00Z", "loss": 0.2}\n',
    "no-newline": '{"step": 9, "loss": 0.2}',
}


def _tree(root: Path, odd: list[str]) -> Path:
    for name in odd:
        folder = write_run(root / "runs", name, steps=4)
        with (folder / "metrics.jsonl").open("a") as fh:
            fh.write(ODD_LINES[name])
    return root


def _imported(root: Path) -> tuple[dict, list[tuple[str, str]], dict]:
    store = open_memory_store()
    report = ingest(root, store)
    problems = sorted((Path(p.path).parent.name, p.message) for p in report.problems)
    files = {path: (s.offset, s.head) for path, s in store.file_states().items()}
    return summary_rows(store), problems, {"files": files, **store.table_counts()}


@pytest.mark.parametrize("odd", [*sorted(ODD_LINES), "all"])
def test_parsing_together_stores_what_parsing_alone_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, odd: str
) -> None:
    # One odd file beside a clean one: the batch is parsed together when the odd line can be
    # tagged, else each file alone; either way the store must hold what parsing alone gives.
    root = _tree(tmp_path / "project", sorted(ODD_LINES) if odd == "all" else ["plain", odd])
    together = _imported(root)
    monkeypatch.setattr(linefiles, "TOGETHER_BYTES", -1)  # every file parsed alone
    alone = _imported(root)
    assert together == alone


def test_a_batch_parsed_together_skips_the_scan_per_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path / "project", ["plain", "nan-bare", "no-step"])
    for i in range(5):
        write_run(root / "runs", f"more-{i}", steps=3)
    scans: list[str] = []
    real = tabular.jsonl_points

    def counted(run_of_file, **kwargs):  # type: ignore[no-untyped-def]
        scans.append(json.dumps(list(run_of_file)))
        return real(run_of_file, **kwargs)

    monkeypatch.setattr(tabular, "jsonl_points", counted)
    ingest(root, open_memory_store())
    assert len(scans) == 1


def test_appended_lines_are_parsed_together_too(tmp_path: Path) -> None:
    root = _tree(tmp_path / "project", ["plain", "nan-quoted"])
    store = open_memory_store()
    ingest(root, store)
    for name in ("plain", "nan-quoted"):
        with (root / "runs" / name / "metrics.jsonl").open("a") as fh:
            fh.write('{"step": 20, "loss": 0.01}\n')
    report = ingest(root, store)
    assert report.points_added == 2
    fresh = open_memory_store()
    ingest(root, fresh)
    assert summary_rows(store) == summary_rows(fresh)


def test_without_a_file_for_duckdb_each_file_is_read_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path / "project", ["plain", "nan-bare"])
    expected = _imported(root)

    # No real way to make the scratch folder and memfd_create fail for root here: both refuse.
    def refuse(data: bytes, suffix: str):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tabular, "readable_bytes", refuse)
    assert _imported(root) == expected
