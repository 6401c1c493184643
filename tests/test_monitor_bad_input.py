"""Bad prediction logs: one clear line naming the file, exit 2 when nothing can be computed,
and a report with the hole said out loud when only part of it is missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.files import write_lines

from mltop.core.cli import main
from mltop.core.monitor import MonitorConfig, MonitorError, build_report


def _log(days: list[int], rows_per_day: int = 40, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    stamps = []
    for day in days:
        base = np.datetime64("2025-05-01T00:00:00") + np.timedelta64(day, "D")
        offsets = np.sort(rng.integers(0, 86_400_000, rows_per_day)).astype("timedelta64[ms]")
        stamps.append(base + offsets)
    ts = np.concatenate(stamps)
    n = len(ts)
    return pa.table(
        {
            "ts": pa.array(ts.astype("datetime64[ms]"), pa.timestamp("ms", tz="UTC")),
            "amount": rng.gamma(2.0, 10.0, n).round(2),
            "kind": rng.choice(["a", "b", "c"], n),
            "prediction": rng.integers(0, 2, n),
            "label": rng.integers(0, 2, n),
        }
    )


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["monitor", *args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = run(args, capsys)
    assert code == 2, (out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_a_log_without_a_timestamp_asks_for_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pq.write_table(_log([0, 1]).drop(["ts"]), tmp_path / "log.parquet")
    line = one_line_error(
        [str(tmp_path / "log.parquet"), "--ref", str(tmp_path / "log.parquet")], capsys
    )
    assert line == (
        f"mltop monitor: {tmp_path / 'log.parquet'}: no timestamp column (timestamp, ts or time); "
        "name one with --timestamp"
    )


def test_a_label_column_of_numbers_and_words_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [f"2025-05-01T0{i % 10}:00:00Z,{i},1,{'yes' if i == 7 else i % 2}" for i in range(40)]
    log = write_lines(tmp_path / "log.csv", ["ts,x,prediction,label", *rows])
    line = one_line_error([str(log), "--ref-window", "2025-05-01..2025-05-01T05:00"], capsys)
    assert line.startswith(
        f"mltop monitor: {tmp_path / 'log.csv'}: label column 'label' mixes numbers and text"
    )
    assert "(39 numbers, 1 texts" in line


def test_a_corrupt_parquet_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    pq.write_table(_log([0]), folder / "day-0.parquet")
    good = (folder / "day-0.parquet").read_bytes()
    (folder / "day-1.parquet").write_bytes(good[: len(good) // 2])  # cut short mid-write
    line = one_line_error([str(folder), "--ref", str(folder / "day-0.parquet")], capsys)
    assert line.startswith(
        f"mltop monitor: {folder / 'day-1.parquet'}: not a readable Parquet file"
    )


def test_a_glob_matching_nothing_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pattern = str(tmp_path / "logs" / "*.parquet")
    line = one_line_error([pattern, "--ref", pattern], capsys)
    assert line == f"mltop monitor: {pattern}: no file matches this pattern"


def test_a_missing_reference_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pq.write_table(_log([0, 1]), tmp_path / "log.parquet")
    line = one_line_error(
        [str(tmp_path / "log.parquet"), "--ref", str(tmp_path / "ref.parquet")], capsys
    )
    assert line == f"mltop monitor: {tmp_path / 'ref.parquet'}: no such file or folder"


def test_an_empty_window_is_reported_and_left_empty(tmp_path: Path) -> None:
    pq.write_table(_log([0, 1, 3, 4]), tmp_path / "log.parquet")  # nothing on 2025-05-03
    pq.write_table(_log([0], seed=9), tmp_path / "ref.parquet")
    report = build_report(
        MonitorConfig(log=str(tmp_path / "log.parquet"), reference=str(tmp_path / "ref.parquet"))
    )
    assert report.window == "day" and len(report.windows) == 5
    empty = report.windows[2]
    assert empty.n_rows == 0 and empty.drift == {} and empty.performance is None
    assert empty.notes == ("no rows in this window",)
    assert empty.dataset_drift.share is None
    assert report.problems == (
        f"{tmp_path / 'log.parquet'}: 1 day window without rows (first 2025-05-03T00:00:00Z)",
    )
    assert report.windows[3].drift["amount"].statistic is not None


def test_a_feature_with_no_values_is_not_tested_and_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _log([0, 1])
    table = table.append_column("score_v2", pa.nulls(len(table), pa.float64()))
    pq.write_table(table, tmp_path / "log.parquet")
    pq.write_table(_log([0], seed=5), tmp_path / "ref.parquet")
    code, out, err = run(
        [str(tmp_path / "log.parquet"), "--ref", str(tmp_path / "ref.parquet"),
         "--features", "amount,kind"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run(
        [
            str(tmp_path / "log.parquet"),
            "--ref",
            str(tmp_path / "log.parquet"),
            "--format",
            "json",
            "--window",
            "day",
        ],
        capsys,
    )
    assert code == 0
    assert err.strip().splitlines() == [
        f"mltop monitor: {tmp_path / 'log.parquet'}: feature 'score_v2' has no values in the "
        "reference; not tested",
        f"mltop monitor: {tmp_path / 'log.parquet'}: feature 'score_v2' has no values in the log; "
        "not tested",
    ]
    assert '"score_v2"' in out and '"missing_share": 1.0' in out


def test_rows_with_unreadable_times_are_left_out_and_counted(tmp_path: Path) -> None:
    lines = ["time,x"] + [f"2025-05-0{1 + i % 2}T10:00:00Z,{i}" for i in range(30)]
    log = write_lines(tmp_path / "log.csv", [*lines, "yesterday,3", "not a time,4"])
    report = build_report(MonitorConfig(log=str(log), reference_window="2025-05-01..2025-05-02"))
    assert report.overall.n_rows == 15  # the second day; the first is the reference
    assert report.problems[0] == (
        f"{tmp_path / 'log.csv'}: 2 rows without a readable time in 'time' were left out"
    )


def test_a_glob_of_many_files_is_read_in_place_as_one_log(tmp_path: Path) -> None:
    """Sixty files, one per half day, under a glob: one log, windows across file boundaries."""
    folder = tmp_path / "parts"
    folder.mkdir()
    whole = _log(list(range(30)), rows_per_day=50)
    for i in range(60):
        pq.write_table(whole.slice(i * 25, 25), folder / f"part-{i:03d}.parquet")
    report = build_report(
        MonitorConfig(
            log=str(folder / "part-*.parquet"), reference=str(folder / "part-000.parquet")
        )
    )
    assert report.overall.n_rows == 1500
    assert [w.n_rows for w in report.windows] == [50] * 30
    assert report.schema_changes == ()


def test_a_column_that_changes_type_between_files_is_a_schema_change(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    first = _log([0])
    pq.write_table(first, folder / "a.parquet")
    second = _log([1]).set_column(2, "kind", pa.array(np.arange(40)))
    pq.write_table(second.append_column("extra", pa.array(np.zeros(40))), folder / "b.parquet")
    report = build_report(MonitorConfig(log=str(folder), reference=str(folder / "a.parquet")))
    changes = {(c.column, c.change, c.where) for c in report.schema_changes}
    assert ("extra", "added", str(folder / "b.parquet")) in changes
    assert ("kind", "type", str(folder / "b.parquet")) in changes
    assert f"{folder / 'a.parquet'}: no column 'extra' (a feature of the log); not tested" in (
        report.problems
    )
    assert "extra" not in report.overall.drift and "kind" in report.overall.drift


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_csv_and_jsonl_files_changing_columns_are_schema_changes(
    tmp_path: Path, suffix: str
) -> None:
    """A column added in one file, removed from another, holding numbers where the first file
    held text: each a schema change naming its file. A column left empty in one file (a CSV
    reader sees text, a JSONL reader nulls) is missing values, not a change of type."""
    folder = tmp_path / "parts"
    folder.mkdir()
    frames = [_log([day]).to_pandas() for day in range(4)]
    frames[1]["extra"] = 1.5
    frames[2] = frames[2].drop(columns=["prediction"])
    frames[2]["kind"] = np.arange(40)
    frames[3]["amount"] = None
    for k, frame in enumerate(frames):
        path = folder / f"part-{k}.{suffix}"
        if suffix == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_json(path, orient="records", lines=True, date_format="iso")
    report = build_report(
        MonitorConfig(log=str(folder), reference=str(folder / f"part-0.{suffix}"))
    )
    changes = {(c.column, c.change, Path(c.where).name) for c in report.schema_changes}
    files = {c for c in changes if c[2] != "log"}
    assert files == {
        ("extra", "added", f"part-1.{suffix}"),
        ("prediction", "removed", f"part-2.{suffix}"),
        ("kind", "type", f"part-2.{suffix}"),
    }
    assert report.overall.n_rows == 160
    assert report.overall.quality["amount"].missing_count == 40


def test_a_reference_window_is_compared_with_what_came_after_it(tmp_path: Path) -> None:
    pq.write_table(_log([0, 1, 2, 3, 4, 5]), tmp_path / "log.parquet")
    log = str(tmp_path / "log.parquet")
    report = build_report(
        MonitorConfig(log=log, reference_window="2025-05-02..2025-05-04", window="day")
    )
    assert report.reference_rows == 80
    assert [w.start[:10] for w in report.windows] == ["2025-05-04", "2025-05-05", "2025-05-06"]
    assert report.overall.n_rows == 120
    assert report.problems == (f"{log}: 40 rows before the reference window were left out",)
    with pytest.raises(MonitorError) as caught:
        build_report(MonitorConfig(log=log, reference_window="2025-05-04..2025-06-01"))
    assert str(caught.value) == f"{log}: no rows after the reference window to compare with it"
