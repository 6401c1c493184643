"""JSONL metric files read wide and read as maps make the same points.

A batch whose lines share few keys is read into one table of a text column per key; a batch
whose files each log different keys is read line by line as maps. Both must give every value,
step and time the same meaning, whichever the batch takes: these files hold every kind of value
a metrics file meets (quoted numbers, NaN and infinities bare and quoted, booleans, nulls,
nested values, dates as times, steps as text or floats), and each batch is read both ways.
"""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pytest

from mltop.core import tabular

VALUES = (
    '{"step": 0, "ts": 1790000000.5, "loss": 1.5, "acc": "0.25", "lr": NaN, "note": "abc"}\n'
    '{"step": "1", "ts": "2026-01-02T03:04:05Z", "loss": Infinity, "acc": "NaN", "ok": true}\n'
    '{"step": 2.0, "ts": null, "loss": -Infinity, "acc": null, "nested": {"a": 1}, "l": [1]}\n'
    '{"step": "x", "loss": 4, "acc": "\\t5", "big": 12345678901234567, "tiny": 1e-7}\n'
    '{"step": 12345678901234567890, "loss": 6}\n'
    "{}\n"
    '{"step": 7, "loss": 0.1, "system/cpu_utilization_percentage": 12.5}\n'
)
EPOCHS = (
    '{"epoch": 3, "step": 10, "time": 5.5, "loss": 0.5}\n{"epoch": 4, "step": 20, "loss": 0.4}\n'
)
NO_STEP = '{"loss": 0.9}\n{"loss": 0.8, "ts": 3}\n{"acc": 0.1}\n'


def _rows(points: pa.Table) -> list[tuple[object, ...]]:
    def same(v: object) -> object:
        return "nan" if isinstance(v, float) and math.isnan(v) else v

    return sorted(
        (tuple(same(v) for v in row.values()) for row in points.to_pylist()),
        key=repr,
    )


def _both_ways(
    monkeypatch: pytest.MonkeyPatch, read: object
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], dict[str, int], dict[str, int]]:
    """The points of ``read(no_step)`` read wide, then read as maps, and the steps lost.

    These small files are sparse (each line has a few of many keys): the wide read is made
    to take them, and must have been taken.
    """
    wide_reads: list[int] = []
    real = tabular._wide_points
    monkeypatch.setattr(tabular, "_wide_points", lambda *a: wide_reads.append(1) or real(*a))
    monkeypatch.setattr(tabular, "WIDE_SPARSENESS", 100)
    wide_lost: dict[str, int] = {}
    wide = _rows(read(wide_lost))  # type: ignore[operator]
    assert wide_reads == [1]
    monkeypatch.setattr(tabular, "WIDE_COLUMNS", 0)
    map_lost: dict[str, int] = {}
    as_maps = _rows(read(map_lost))  # type: ignore[operator]
    return wide, as_maps, wide_lost, map_lost


def _files(tmp_path: Path, texts: dict[str, str]) -> dict[str, str]:
    out = {}
    for run, text in texts.items():
        path = tmp_path / f"{run}.jsonl"
        path.write_text(text)
        out[str(path)] = run
    return out


def test_every_kind_of_value_means_the_same_read_wide_or_as_maps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path, {"a": VALUES, "b": VALUES.replace("loss", "val_loss")})
    wide, as_maps, wide_lost, map_lost = _both_ways(
        monkeypatch, lambda lost: tabular.jsonl_points(files, no_step=lost)
    )
    assert wide == as_maps
    # the 4 values of the line whose step is "x", and the one whose step is beyond int64
    assert wide_lost == map_lost == {"a": 5, "b": 5}
    by_key = {(r[0], r[1], r[2]): r for r in wide}
    assert by_key[("a", "acc", 0)][4] == 0.25  # text that is a number is a number
    assert by_key[("a", "acc", 1)][3] == 1767323045.0  # an ISO date as the time
    assert by_key[("a", "lr", 0)][4] == "nan"
    assert by_key[("a", "loss", 2)][4] == -math.inf  # a float step is a step
    assert ("a", "ok", 1) not in by_key and ("a", "nested", 2) not in by_key
    assert by_key[("a", "system/cpu_utilization_percentage", 7)][4] == 12.5


def test_files_with_different_step_fields_keep_their_own_read_wide_or_as_maps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path, {"a": VALUES, "e": EPOCHS, "n": NO_STEP})
    wide, as_maps, wide_lost, map_lost = _both_ways(
        monkeypatch, lambda lost: tabular.jsonl_points(files, no_step=lost)
    )
    assert wide == as_maps and wide_lost == map_lost
    steps = {(r[0], r[1], r[2]) for r in wide}
    # "step" comes before "epoch" as the step field, so epoch is a metric of that file; the
    # file without a step field numbers its lines
    assert ("e", "epoch", 10) in steps and ("e", "loss", 20) in steps
    assert {("n", "loss", 0), ("n", "loss", 1), ("n", "acc", 2)} <= steps


def test_row_steps_and_tagged_lines_read_wide_or_as_maps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "together.jsonl"
    tag = tabular.FILE_COLUMN
    lines = [
        line.replace("{", '{"' + tag + '": "f' + str(k) + '", ', 1).replace(", }", "}")
        for k, text in enumerate((VALUES, EPOCHS, NO_STEP))
        for line in text.splitlines(keepends=True)
    ]
    path.write_text("".join(lines))
    runs = {"f0": "a", "f1": "e", "f2": "n"}
    for row_step in (False, True):
        wide, as_maps, wide_lost, map_lost = _both_ways(
            monkeypatch,
            lambda lost, rs=row_step: tabular.jsonl_points(
                {str(path): ""}, tagged=runs, no_step=lost, row_step=rs
            ),
        )
        monkeypatch.undo()
        assert wide == as_maps and wide_lost == map_lost
        assert {r[0] for r in wide} == {"a", "e", "n"}
        assert all(r[1] != tag for r in wide)


def test_keys_differing_only_in_case_stay_two_metrics(tmp_path: Path) -> None:
    files = _files(tmp_path, {"a": '{"step": 1, "Loss": 1.0, "loss": 2.0}\n'})
    points = tabular.jsonl_points(files)
    assert sorted(zip(points["key"].to_pylist(), points["value"].to_pylist(), strict=True)) == [
        ("Loss", 1.0),
        ("loss", 2.0),
    ]


def test_files_spelling_the_step_field_differently_each_keep_their_own(tmp_path: Path) -> None:
    files = _files(tmp_path, {"a": '{"Step": 5, "loss": 1}\n', "b": '{"step": 7, "loss": 2}\n'})
    points = tabular.jsonl_points(files)
    assert sorted(zip(points["run_id"].to_pylist(), points["step"].to_pylist(), strict=True)) == [
        ("a", 5),
        ("b", 7),
    ]


def test_a_field_named_rowid_is_a_metric_and_lines_keep_their_order(tmp_path: Path) -> None:
    files = _files(tmp_path, {"a": "".join(f'{{"rowid": {9 - i}}}\n' for i in range(10))})
    points = tabular.jsonl_points(files)
    assert sorted(zip(points["step"].to_pylist(), points["value"].to_pylist(), strict=True)) == [
        (i, 9.0 - i) for i in range(10)
    ]


def test_a_batch_whose_files_each_log_other_keys_is_read_as_maps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(
        tmp_path,
        {f"r{k}": "".join(f'{{"step": {i}, "m{k}_{j}": {i}}}\n' for i in range(3) for j in range(4))
         for k in range(200)},
    )  # fmt: skip
    wide_reads: list[int] = []
    real = tabular._wide_points
    monkeypatch.setattr(tabular, "_wide_points", lambda *a: wide_reads.append(1) or real(*a))
    points = tabular.jsonl_points(files)
    assert wide_reads == [] and points.num_rows == 200 * 3 * 4


@pytest.mark.parametrize(
    "line", ['{"step": 1, "loss": 1, "loss": 2}\n', "[1, 2]\n", "5\n", '"text"\n']
)
def test_a_line_the_map_read_refuses_is_refused_wide_too(tmp_path: Path, line: str) -> None:
    files = _files(tmp_path, {"a": '{"step": 0, "loss": 1}\n' + line})
    with pytest.raises(tabular.ParseError):
        tabular.jsonl_points(files)
