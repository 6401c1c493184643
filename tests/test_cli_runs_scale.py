"""`mltop runs` over many runs: written a batch at a time, and not re-scanning a fresh store."""

from __future__ import annotations

import io
import json
import time
from datetime import datetime
from pathlib import Path

import pytest
from conftest import write_run

from mltop.core.cli.runs import cmd_runs
from mltop.core.common.sanitize import inert_json
from mltop.core.discovery import ingest
from mltop.core.entities import RunRecord
from mltop.core.live.watch import Watcher
from mltop.core.store import open_store
from mltop.core.store import queries as store_queries
from mltop.core.tracking import start_run


def _runs(root: Path, *args: str) -> str:
    out = io.StringIO()
    assert cmd_runs([str(root), *args], out_file=out) == 0
    return out.getvalue()


def _store_path(root: Path) -> Path:
    return root / ".mltop" / "store.duckdb"


def test_json_written_in_batches_is_the_whole_list_dumped_at_once(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _runs(runs_root, "--json", "--sort=name")
    monkeypatch.setattr(store_queries, "LISTING_BATCH", 1)
    batched = _runs(runs_root, "--json", "--sort=name", "--scan")
    assert batched == whole
    data = json.loads(batched)
    assert [r["name"] for r in data] == sorted(r["name"] for r in data)
    assert len(data) == 4
    assert batched == inert_json(data, indent=2, allow_nan=False) + "\n"


def test_json_of_no_runs_is_an_empty_list(runs_root: Path) -> None:
    assert _runs(runs_root, "--json", "--filter", "name = 'nothing'") == "[]\n"


def test_the_table_written_in_batches_matches_the_whole_table(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _runs(runs_root, "--sort=name")
    monkeypatch.setattr(store_queries, "LISTING_BATCH", 3)
    assert _runs(runs_root, "--sort=name", "--scan") == whole
    assert whole.splitlines()[-1] == "4 runs"


class _Writes(io.StringIO):
    """Counts the writes, to see the table go out a batch at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_the_table_goes_out_a_batch_at_a_time(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_queries, "LISTING_BATCH", 1)
    out = _Writes()
    assert cmd_runs([str(runs_root), "--sort=name"], out_file=out) == 0
    assert out.writes == 1 + 4 + 1  # the header, a run per batch, the count
    assert out.getvalue().splitlines()[-1] == "4 runs"


def test_numbers_past_the_first_batch_are_printed_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Neither the extremes (0.1, 0.9) nor the first batch (0.5) show how wide 0.123456 prints:
    # the column is sized from the magnitudes, so it still fits whole.
    for name, value in (("a", 0.5), ("b", 0.1), ("c", 0.123456), ("d", 0.9), ("e", -3e-7)):
        with start_run(tmp_path / "runs", name=name) as run:
            run.log(step=0, q=value)
    monkeypatch.setattr(store_queries, "LISTING_BATCH", 1)
    lines = _runs(tmp_path, "--sort=name", "--columns", "name,q").splitlines()
    assert [line.split() for line in lines[:6]] == [
        ["name", "q"], ["a", "0.5"], ["b", "0.1"], ["c", "0.1235"], ["d", "0.9"],
        ["e", "-3.000e-07"],
    ]  # fmt: skip
    assert len({len(line) for line in lines[:6]}) == 1


def test_a_number_column_is_as_wide_as_its_widest_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Magnitudes from 0.25 to 12.5 and a negative value could take seven characters (-0.1235);
    # these take four at most, and the column is four wide.
    for name, value in (("a", 0.5), ("b", 0.25), ("c", -3.0), ("d", 12.5)):
        with start_run(tmp_path / "runs", name=name) as run:
            run.log(step=0, q=value)
    monkeypatch.setattr(store_queries, "LISTING_BATCH", 1)
    lines = _runs(tmp_path, "--sort=name", "--columns", "name,q").splitlines()
    assert lines[:5] == ["name     q", "a      0.5", "b     0.25", "c       -3", "d     12.5"]


def test_the_store_measures_numbers_as_fmt_value_writes_them() -> None:
    import duckdb
    import numpy as np

    from mltop.core.common.formatting import fmt_value

    rng = np.random.default_rng(7)
    values = (rng.standard_normal(20_000) * 10.0 ** rng.integers(-12, 14, 20_000)).tolist()
    values += [round(v, k) for v in rng.uniform(-1000, 1000, 2000).tolist() for k in (0, 1, 3)]
    values += [0.0, -0.0, 1e-4, 9.9995e-5, 999999.5, 1e6, -1e6, 1e9, -1e9, 999999999.0, 9999.5]
    values += [12.5, 0.125, 1e100, 1e-100, 5e-324, 1.7976931348623157e308, 99995.0, 1e5 + 0.5]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, v DOUBLE)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    expression = store_queries.FMT_VALUE_SQL.format("v")
    written = [
        text for _, text in con.execute(f"SELECT i, {expression} FROM t ORDER BY i").fetchall()
    ]
    assert written == [fmt_value(v) for v in values]


def test_wide_characters_past_the_first_batch_end_in_an_ellipsis_when_they_do_not_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "bb", "学学学"):
        with start_run(tmp_path / "runs", name=name) as run:
            run.log(step=0, q=1.0)
    monkeypatch.setattr(store_queries, "LISTING_BATCH", 1)
    lines = _runs(tmp_path, "--sort=name", "--columns", "name,q").splitlines()
    assert lines[3] == "学…   1"  # "name" is four cells wide: three wide characters take six
    monkeypatch.setattr(store_queries, "LISTING_BATCH", 2048)
    lines = _runs(tmp_path, "--sort=name", "--columns", "name,q", "--scan").splitlines()
    assert lines[3] == "学学学  1"  # in the first batch: measured, shown whole


def test_limit_lists_the_first_runs_of_the_order(runs_root: Path) -> None:
    lines = _runs(runs_root, "--sort=-params.lr", "--limit", "2").splitlines()
    assert [line.split()[0] for line in lines[1:3]] == ["sgd-diverged", "sgd-lr0.1"]
    assert lines[-1] == "2 runs"
    data = json.loads(_runs(runs_root, "--sort=-params.lr", "--limit", "2", "--json"))
    assert [r["params"]["lr"] for r in data] == ["5.0", "0.1"]


def test_a_store_the_app_brought_up_to_date_seconds_ago_is_not_scanned_again(
    runs_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(runs_root) as store:
        began = time.time()
        ingest(runs_root, store)
        store.record_scan(str(runs_root), began)
    write_run(runs_root / "runs", "late")
    assert "late" not in _runs(runs_root)
    assert "not scanning: the store was brought up to date" in capsys.readouterr().err
    assert "late" in _runs(runs_root, "--scan")


def test_a_scan_older_than_a_few_seconds_or_of_another_folder_is_not_trusted(
    runs_root: Path, tmp_path: Path
) -> None:
    with open_store(runs_root) as store:
        ingest(runs_root, store)
        store.record_scan(str(runs_root), time.time() - 60)
        store.record_scan(str(tmp_path / "elsewhere"), time.time())
    write_run(runs_root / "runs", "late")
    assert "late" in _runs(runs_root)


def test_no_scan_reads_the_store_as_it_is(runs_root: Path) -> None:
    with open_store(runs_root) as store:
        ingest(runs_root, store)
    write_run(runs_root / "runs", "late")
    assert "late" not in _runs(runs_root, "--no-scan")
    assert "late" in _runs(runs_root)


def test_a_scan_of_a_folder_holding_the_path_counts(runs_root: Path) -> None:
    with open_store(runs_root) as store:
        store.record_scan(str(runs_root), 100.0)
        assert store.last_scan(str(runs_root / "runs" / "x")) == 100.0
        assert store.last_scan(str(runs_root) + "-sibling") is None


def test_the_watcher_records_when_it_brought_the_store_up_to_date(runs_root: Path) -> None:
    with open_store(runs_root) as store:
        watcher = Watcher([runs_root], store, lambda u: None)
        before = time.time()
        watcher.apply(set(), force_full=True)
        assert (store.last_scan(str(runs_root)) or 0) >= before - 1
        assert _store_path(runs_root).exists()


def test_the_fast_indented_json_is_exactly_json_dumps_with_an_indent() -> None:
    from mltop.core.common.sanitize import inert_json_indented

    value = [
        {"a": 1, "b": [1, 2.5, None, True, 'x\x1b[31mred\u202e\x85"q\\'], "c": {}, "d": []},
        {"学": {"k": {"z": 1e300, "n": -0.0}}, "e": [[]]},
        {},
    ]
    assert inert_json_indented(value) == inert_json(value, indent=2, allow_nan=False)
    with pytest.raises(ValueError):
        inert_json_indented({"x": float("nan")})


def test_start_and_duration_columns_hold_every_kind_of_value_past_the_first_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first batch holds one run started today (13:05 reads in five cells) and lasting 5 s;
    # later runs started this year (Jan 02 12:00, twelve cells), years ago, or never, and last
    # over two days: the column widths come from the store's statistics, so all fit whole.
    now = datetime.now()
    this_year = datetime(now.year, 1, 2, 12) if now.timetuple().tm_yday > 2 else None
    this_year = this_year or datetime(now.year, 12, 30, 12)
    starts = {
        "a": (now.replace(hour=0, minute=5).timestamp(), 5.0),
        "b": (this_year.timestamp(), 200_000.0),
        "c": (datetime(2001, 5, 6, 7, 8).timestamp(), 3_000.0),
        "d": (None, None),
    }
    with open_store(tmp_path) as store:
        store.put_runs(None, [
            RunRecord(id=f"id-{name}", source_kind="mltop", location=str(tmp_path / name),
                      name=name, start_time=start, end_time=start + took if start else None)
            for name, (start, took) in starts.items()
        ])  # fmt: skip
    monkeypatch.setattr(store_queries, "LISTING_BATCH", 1)
    lines = _runs(tmp_path, "--no-scan", "--sort=name", "--columns", "name,start,duration")
    rows = lines.splitlines()[:5]
    assert len({len(row) for row in rows}) == 1 and "…" not in lines
    cells = [row.split(None, 1)[1].rsplit(None, 1) if i else row.split() for i, row in
             enumerate(rows)]  # fmt: skip
    assert cells[1:] == [
        ["00:05", "5.0s"],
        [this_year.strftime("%b %d %H:%M"), "2d07h"],
        ["2001-05-06", "50m00s"],
        ["—", "—"],
    ]
