"""Numbers in the app's tables are whole or visibly shortened: scrolled sideways, each word on
screen is a whole word of some cell or carries ``…``; a cell narrower than its value rounds it."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import write_run
from textual.pilot import Pilot
from textual.widget import Widget
from tui_pilot import make_app, settled

from mltop.core.common.formatting import fit_value, fmt_time
from mltop.core.runs import runs_view
from mltop.core.runs.runs_view import Column
from mltop.core.tracking import start_run
from mltop.tui.screens.compare.screen import CompareScreen
from mltop.tui.widgets.compare_table import CompareTable
from mltop.tui.widgets.run_table import RunTable


def shown(widget: Widget) -> list[str]:
    return [widget.render_line(y).text for y in range(widget.size.height)]


def words(texts: list[str]) -> set[str]:
    return {word for text in texts for word in text.split()}


def cut_words(lines: list[str], whole: set[str]) -> list[str]:
    return [w for line in lines for w in line.split() if w not in whole and "…" not in w]


async def until(pilot: Pilot, predicate: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the app did not reach the expected state in time"
        await pilot.pause(0.02)


def wide_project(root: Path, runs: int = 6) -> None:
    """Runs with many metrics and params, far wider than an 80-column terminal."""
    for i in range(runs):
        params = {f"param_{k}": f"value-{i}-{k}" for k in range(4)}
        with start_run(root / "runs", name=f"run-{i:03d}", params=params) as run:
            for step in range(21):
                run.log(
                    step=step,
                    val_loss=0.114 + i / 1000 + (20 - step) / 100,
                    val_acc=0.9756 - i * 0.01 - (20 - step) / 200,
                    train_loss=0.96 + i / 100,
                    lr=1.2345e-5 * (i + 1),
                    n=15 + i,
                )


async def scroll_everywhere(pilot: Pilot, table: Widget, whole: set[str]) -> None:
    for x in range(0, int(table.max_scroll_x) + 1):
        table.scroll_to(x=x, animate=False, immediate=True)
        await pilot.pause()
        assert cut_words(shown(table), whole) == [], f"scrolled to x={x}"


async def test_runs_table_marks_a_column_cut_by_either_edge(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    wide_project(root)
    app = make_app(root, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        table = screen.query_one(RunTable)
        assert table.view is not None
        cells = [c.label.plain for c in table.ordered_columns]
        cells += [
            table._cell(column, row).plain
            for column in table.view.columns
            for row in range(table.view.rows)
        ]
        assert table.max_scroll_x > 0
        await scroll_everywhere(pilot, table, words(cells))


async def test_compare_table_marks_cut_columns_and_home_brings_the_baseline_back(
    tmp_path: Path,
) -> None:
    root = tmp_path / "proj"
    wide_project(root, runs=8)
    app = make_app(root, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        runs = await settled(pilot)
        runs.table.marked.update(runs.view.table.column("id").to_pylist())
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.comparison)
        table = app.screen.query_one(CompareTable)
        await pilot.pause()
        layout = table.layout_data
        assert layout is not None
        cells = [c.label.plain for c in table.ordered_columns]
        cells += [
            table.cell_text(line, column).plain
            for line in range(len(layout.lines))
            for column in range(len(layout.comparison.runs) + 1)
        ]
        whole = words(cells)
        assert table.max_scroll_x > 0
        await scroll_everywhere(pilot, table, whole)
        # Scrolled part-way into the baseline column, home shows it whole again.
        table.scroll_to(x=5, animate=False, immediate=True)
        table.focus()
        await pilot.press("home")
        await pilot.pause()
        assert table.scroll_x == 0 and table.cursor_coordinate == (0, 1)
        # "(baseline)" whole, or "(base)" where the runs do not all fit and columns are compact.
        assert re.search(r"\(base(line)?\)", shown(table)[0])


async def test_runs_table_cells_never_cut_a_long_duration_or_an_unsampled_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Column widths are judged from a sample and the extremes: with a sample of one row, the
    # run in the middle (the oldest, drawn last) has the widest value and no say in the width.
    monkeypatch.setattr(runs_view, "NUMBER_SAMPLE", 1)
    root = tmp_path / "proj"
    for name, loss in (("middle", 0.3333333), ("low", 0.1), ("high", 0.9)):
        with start_run(root / "runs", name=name) as run:
            run.log(step=0, loss=loss)
    far = write_run(root / "runs", "far-past")
    meta = json.loads((far / "mltop-run.json").read_text())
    meta["start_time"] = meta["end_time"] - (2265 * 86400 + 7 * 3600 + 60)
    (far / "mltop-run.json").write_text(json.dumps(meta))
    app = make_app(root, tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await settled(pilot)
        table = screen.query_one(RunTable)
        assert table.view is not None
        rows = {table.view.table.column("name")[r].as_py(): r for r in range(table.view.rows)}
        loss = next(c for c in table.view.columns if c.name == "loss")
        width = table.view.widths[table.view.columns.index(loss)]
        middle = table._cell(loss, rows["middle"]).plain
        assert len(middle) <= width and middle == fit_value(0.3333333, width)
        duration = table._cell(Column.attr("duration"), rows["far-past"]).plain
        assert duration == "2265d07h"
        start = table._cell(Column.attr("start"), rows["far-past"]).plain
        assert start == fmt_time(meta["start_time"]) and start[:2] in ("19", "20")
        assert len(start) <= table.view.widths[table.view.columns.index(Column.attr("start"))]
        assert any("2265d07h" in line for line in shown(table))


def test_time_column_holds_a_date_far_in_the_future_beside_todays_times() -> None:
    now = time.time()
    table = pa.table({"start_time": pa.array([now - 60, 1e11], pa.float64())})
    width = runs_view.column_width(table, Column.attr("start"), now)
    assert width >= len(fmt_time(1e11, now)) == len("5138-11-16")
    assert runs_view.column_width(table.slice(0, 1), Column.attr("start"), now) == 5
