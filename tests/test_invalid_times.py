"""Times no date can hold (milliseconds written as seconds, ``start_time=1e15`` in an MLflow
SQLite row) are kept as they are and shown as invalid: ``—`` in tables, null in JSON, the raw
number in the run detail, never a ``year 33658 is out of range`` from a formatter."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_run
from test_import_mlflow import sqlite_copy
from test_import_tensorboard import _event_file, _scalar, _version
from tui_pilot import SIZE, make_app, settled, until

from mltop.core.common.formatting import fmt_clock, fmt_duration, fmt_iso, fmt_time, valid_time
from mltop.core.runs.runs_view import Column
from mltop.tui.screens.runs.detail import RunDetailScreen
from mltop.tui.screens.runs.values import RunValuesScreen

WILD = [1e12, 1e15, -1e15, 1e300, math.inf, -math.inf, math.nan]


def _mltop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mltop.core.cli", *args], capture_output=True, text=True, timeout=120
    )


def _set_start(folder: Path, start: float) -> None:
    meta_path = folder / "mltop-run.json"
    meta = json.loads(meta_path.read_text())
    meta["start_time"] = start
    meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize("epoch", WILD)
def test_formatters_show_a_time_no_date_can_hold_as_invalid(epoch: float) -> None:
    assert not valid_time(epoch)
    assert fmt_time(epoch) == "—"
    assert fmt_iso(epoch) is None
    assert fmt_clock(epoch).startswith("— (not a valid time: ")


def test_a_duration_between_an_invalid_and_a_valid_time_is_invalid() -> None:
    assert fmt_duration(1.7e9 - 1e12) == "—"
    assert fmt_duration(1e15) == "—"
    assert fmt_duration(math.inf) == "—"
    assert fmt_duration(-3.0) == "0.0s"  # a little clock skew still reads as no time at all


def test_runs_table_and_json_survive_a_start_in_milliseconds(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "runs", "ms-as-seconds")
    write_run(tmp_path / "runs", "fine")
    _set_start(folder, 1e12)
    table = _mltop("runs", str(tmp_path))
    assert table.returncode == 0, table.stderr
    assert "Traceback" not in table.stderr
    row = next(line for line in table.stdout.splitlines() if "ms-as-seconds" in line)
    assert "—" in row
    listed = _mltop("runs", str(tmp_path), "--json")
    assert listed.returncode == 0, listed.stderr
    runs = {r["name"]: r for r in json.loads(listed.stdout)}
    assert runs["ms-as-seconds"]["start"] is None
    assert runs["ms-as-seconds"]["duration"] is None
    assert runs["fine"]["start"] is not None


def test_an_mlflow_sqlite_start_of_1e15_is_listed(tmp_path: Path) -> None:
    db = sqlite_copy(tmp_path)
    con = sqlite3.connect(db)
    with con:
        (name,) = con.execute("SELECT name FROM runs ORDER BY name LIMIT 1").fetchone()
        con.execute("UPDATE runs SET start_time = 1000000000000000 WHERE name = ?", [name])
    con.close()
    listed = _mltop("runs", str(db.parent), "--json")
    assert listed.returncode == 0, listed.stderr
    runs = {r["name"]: r for r in json.loads(listed.stdout)}
    assert runs[name]["start"] is None and runs[name]["duration"] is None
    table = _mltop("runs", str(db.parent))
    assert table.returncode == 0 and "Traceback" not in table.stderr


async def test_the_app_shows_an_invalid_start_and_its_raw_value_in_the_detail(
    tmp_path: Path,
) -> None:
    folder = write_run(tmp_path / "project" / "runs", "ms-as-seconds")
    _set_start(folder, 1e12)
    app = make_app(tmp_path / "project", tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await settled(pilot)
        assert screen.table._cell(Column.attr("start"), 0).plain == "—"
        assert screen.table._cell(Column.attr("duration"), 0).plain == "—"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.details)
        overview = app.screen.query_one("#detail-overview")
        strips = overview.render_lines(overview.region.reset_offset)
        assert any("— (not a valid time" in strip.text for strip in strips)
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, RunValuesScreen))
        await pilot.pause()
        values = app.screen.query_one("#values")
        whole = " ".join(s.text.strip() for s in values.render_lines(values.region.reset_offset))
        assert "not a valid time: 1000000000000.0" in whole
    assert app.return_code in (None, 0)


def test_a_tensorboard_record_with_a_wild_wall_time_is_listed(tmp_path: Path) -> None:
    records = [_version(1e15)] + [_scalar(1e15 + s, s, "loss", 1.0 / (s + 1)) for s in range(3)]
    _event_file(tmp_path / "tb" / "run", "events.out.tfevents.1000000000.host.1.0", records)
    listed = _mltop("runs", str(tmp_path), "--json")
    assert listed.returncode == 0, listed.stderr
    (run,) = json.loads(listed.stdout)
    assert run["start"] is None and run["metrics"]["loss"] == pytest.approx(1 / 3)
    table = _mltop("runs", str(tmp_path))
    assert table.returncode == 0 and "Traceback" not in table.stderr
