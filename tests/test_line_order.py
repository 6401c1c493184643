"""A metric file without a step field numbers its points by line, in the file's own order.

DuckDB scans a large file with several threads; numbering rows with a window that has no order
gave a third of 900,000 lines the step of another line. Each file here holds the line's own
number as its value, so every point must have step == value.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc

from mltop.core import tabular

LINES = 300_000


def _misplaced(points) -> int:  # type: ignore[no-untyped-def]
    return pc.sum(pc.not_equal(points["step"], pc.cast(points["value"], "int64"))).as_py() or 0


def test_jsonl_files_without_a_step_number_points_by_line(tmp_path: Path) -> None:
    files = {}
    for k in range(3):
        path = tmp_path / f"m{k}.jsonl"
        path.write_text("".join(json.dumps({"loss": i}) + "\n" for i in range(LINES)))
        files[str(path)] = f"run-{k}"
    points = tabular.jsonl_points(files)
    assert points.num_rows == 3 * LINES
    assert _misplaced(points) == 0


def test_lines_of_many_files_parsed_together_keep_their_files_order(tmp_path: Path) -> None:
    path = tmp_path / "together.jsonl"
    with path.open("w") as fh:
        for k in range(3):
            for i in range(LINES):
                fh.write(json.dumps({"loss": i, tabular.FILE_COLUMN: f"f{k}"}) + "\n")
    points = tabular.jsonl_points({str(path): ""}, tagged={"f0": "a", "f1": "b", "f2": "c"})
    assert sorted(set(points["run_id"].to_pylist())) == ["a", "b", "c"]
    assert _misplaced(points) == 0


def test_csv_files_without_a_step_number_points_by_row(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text("loss\n" + "".join(f"{i}\n" for i in range(2 * LINES)))
    points = tabular.csv_points({str(path): "run"})
    assert points.num_rows == 2 * LINES
    assert _misplaced(points) == 0


def test_a_csv_column_named_rowid_is_a_metric_and_rows_keep_their_order(tmp_path: Path) -> None:
    # The rows are numbered by the rowid of the table the scan fills; a column of that name
    # would have numbered them by its own text ("10" before "2").
    path = tmp_path / "history.csv"
    path.write_text("loss,rowid\n" + "".join(f"{i},{LINES - i}\n" for i in range(LINES)))
    points = tabular.csv_points({str(path): "run"})
    loss = points.filter(pc.equal(points["key"], "loss"))
    rowid = points.filter(pc.equal(points["key"], "rowid"))
    assert loss.num_rows == rowid.num_rows == LINES
    assert _misplaced(loss) == 0
    assert pc.sum(pc.add(rowid["step"], pc.cast(rowid["value"], "int64"))).as_py() == LINES * LINES
