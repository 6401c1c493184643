"""The runs screen, driven like a person would: start-up, sorting, filtering, marking, opening,
help, palette, keymap and quitting, over real run folders and a real DuckDB store."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_run
from helpers.tui import on_runs, pushed, running
from textual.command import CommandPalette
from textual.widgets import Input
from tui_pilot import SIZE, make_app, names, settled, type_text, until

from mltop.core.discovery import ingest
from mltop.core.entities import RunRecord
from mltop.core.runs.runs_view import Column
from mltop.core.store import open_store
from mltop.tui.messages import IngestFinished
from mltop.tui.screens.help import HelpScreen
from mltop.tui.screens.runs.detail import RunDetailScreen
from mltop.tui.screens.runs.screen import RunsScreen
from mltop.tui.widgets.column_picker import ColumnPicker
from mltop.tui.widgets.filter_bar import FilterBar
from mltop.tui.widgets.keybar import KeyBar
from mltop.tui.widgets.run_table import MARK, RunTable


async def test_startup_on_a_fresh_folder_imports_and_fills_the_table(
    runs_root: Path, tmp_path: Path
) -> None:
    async with on_runs(runs_root, tmp_path) as (app, _, screen):
        assert sorted(names(screen)) == ["sgd-diverged", "sgd-lr0.001", "sgd-lr0.01", "sgd-lr0.1"]
        assert screen.table.row_count == 4
        header = str(screen.query_one("#runs-header").render())
        assert "4 runs" in header and "mltop" in header
        assert app.last_report is None or not app.last_report.problems


async def test_reopening_an_indexed_folder_shows_rows_before_the_rescan(
    runs_root: Path, tmp_path: Path
) -> None:
    store_path = tmp_path / "store" / "store.duckdb"
    with open_store(runs_root, store_path) as store:
        ingest(runs_root, store)
    app = make_app(runs_root, tmp_path)
    rows_when_scan_started: list[int] = []
    original = app.start_ingest

    def spy() -> None:
        rows_when_scan_started.append(app.runs_screen.table.row_count)
        original()

    app.start_ingest = spy  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
    assert rows_when_scan_started == [4]


async def test_startup_on_an_empty_folder_explains_what_mltop_reads(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    async with on_runs(root, tmp_path) as (app, pilot, screen):
        empty = screen.query_one("#runs-empty")
        assert screen.has_class("-empty") and empty.display
        assert "No runs found" in str(empty.render())
        # The keys still work on an empty table.
        await pilot.press("j", "k", "s", "space", "enter", "g", "G")
        await settled(pilot)
        assert isinstance(app.screen, type(screen))


async def test_sort_keys_cycle_and_reverse(runs_root: Path, tmp_path: Path) -> None:
    async with on_runs(runs_root, tmp_path) as (_, pilot, screen):
        assert screen.sort == Column.attr("start")
        # s moves the sort to the next column after "started": duration, then the params.
        await pilot.press("s", "s")
        await settled(pilot)
        assert screen.sort == Column.param("lr")
        assert names(screen) == ["sgd-lr0.001", "sgd-lr0.01", "sgd-lr0.1", "sgd-diverged"]
        await pilot.press("S")
        await settled(pilot)
        assert screen.descending
        assert names(screen)[0] == "sgd-diverged"
        label = screen.table.ordered_columns[screen.table.view.columns.index(screen.sort)].label
        assert "▼" in label.plain


async def test_clicking_a_header_sorts_by_it(runs_root: Path, tmp_path: Path) -> None:
    async with on_runs(runs_root, tmp_path) as (_, pilot, screen):
        table = screen.table
        index = [c.label for c in table.view.columns].index("name")
        x = sum(c.render_width for c in table.ordered_columns[:index]) + 2
        await pilot.click(RunTable, offset=(x, 0))
        await settled(pilot)
        assert screen.sort == Column.attr("name")
        assert names(screen) == sorted(names(screen), key=str.lower)


async def test_clicking_a_row_moves_the_cursor(runs_root: Path, tmp_path: Path) -> None:
    async with on_runs(runs_root, tmp_path) as (_, pilot, screen):
        await pilot.click(RunTable, offset=(10, 3))
        await pilot.pause()
        assert screen.table.cursor_row == 2


async def test_filter_narrows_the_table_and_counts(runs_root: Path, tmp_path: Path) -> None:
    async with on_runs(runs_root, tmp_path) as (app, pilot, screen):
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await type_text(pilot, "params.lr < 0.05")
        await pilot.press("enter")
        await settled(pilot)
        assert sorted(names(screen)) == ["sgd-lr0.001", "sgd-lr0.01"]
        count = str(screen.query_one(".filter--count").render())
        assert "2 of 4 match" in count
        assert app.focused is screen.table
        # escape clears the filter and shows every run again
        await pilot.press("escape")
        await settled(pilot)
        assert len(names(screen)) == 4
        assert screen.filter_bar.text == ""


async def test_bad_filter_points_at_the_mistake_and_keeps_the_last_result(
    runs_root: Path, tmp_path: Path
) -> None:
    async with on_runs(runs_root, tmp_path) as (_, pilot, screen):
        await pilot.press("slash")
        await type_text(pilot, "params.lr < 0.05")
        await settled(pilot)
        assert len(names(screen)) == 2
        await type_text(pilot, " and (")
        await settled(pilot)
        bar = screen.query_one(FilterBar)
        assert bar.has_error
        error = str(bar.query_one(".filter--error").render())
        caret = error.index("^")
        typed = "params.lr < 0.05 and ("
        assert caret == len("/ ") + len(typed)  # under the end, where an expression is missing
        assert len(names(screen)) == 2  # the table kept its last good result
        await pilot.press("backspace", "backspace")
        await settled(pilot)
        assert bar.has_error  # "params.lr < 0.05 an" still is not a filter
        await pilot.press("ctrl+u")  # delete everything left of the cursor
        await type_text(pilot, "params.lr < 0.05")
        await settled(pilot)
        assert not bar.has_error
        # unknown field: the caret sits under the field
        await pilot.press("escape")
        await settled(pilot)
        await pilot.press("slash")
        await type_text(pilot, "bogus > 1")
        await settled(pilot)
        error = str(bar.query_one(".filter--error").render())
        assert error.index("^") == len("/ ")
        assert "bogus" in error
        assert len(names(screen)) == 4


async def test_space_marks_runs_and_marks_survive_sorting(runs_root: Path, tmp_path: Path) -> None:
    async with on_runs(runs_root, tmp_path) as (_, pilot, screen):
        first, second = names(screen)[:2]
        await pilot.press("space", "space")
        table = screen.table
        marked_names = {r["name"] for r in screen.view.table.to_pylist() if r["id"] in table.marked}
        assert marked_names == {first, second}
        keys = str(screen.query_one(KeyBar).render())
        assert "mark (2)" in keys
        assert table._cell(Column.attr("status"), 0).plain.startswith(MARK)
        await pilot.press("S")
        await settled(pilot)
        assert len(table.marked) == 2
        await pilot.press("escape")  # no filter: escape clears the marks
        await pilot.pause()
        assert not table.marked


async def test_enter_opens_the_run_and_escape_comes_back(runs_root: Path, tmp_path: Path) -> None:
    async with on_runs(runs_root, tmp_path) as (app, pilot, screen):
        await pilot.press("j")
        wanted = names(screen)[1]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.details)
        assert app.screen.details.run.name == wanted
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        assert screen.table.cursor_row == 1


async def test_help_lists_every_binding_of_the_screen(runs_root: Path, tmp_path: Path) -> None:
    async with on_runs(runs_root, tmp_path) as (app, pilot, screen):
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        ids = {i for row in app.screen._rows for i in row[3].split(", ")}
        for binding in (*type(screen).BINDINGS, *RunTable.BINDINGS):
            assert binding.id in ids
        assert "app.quit" in ids and "app.help" in ids
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen


async def test_keymap_rebinds_by_id(runs_root: Path, tmp_path: Path) -> None:
    async with on_runs(runs_root, tmp_path, keymap={"runs.sort": "f2"}) as (_, pilot, screen):
        await pilot.press("s")
        await settled(pilot)
        assert screen.sort == Column.attr("start")
        await pilot.press("f2")
        await settled(pilot)
        assert screen.sort == Column.attr("duration")


async def test_command_palette_offers_screen_commands(runs_root: Path, tmp_path: Path) -> None:
    async with on_runs(runs_root, tmp_path) as (_, pilot, screen):
        await pushed(pilot, "ctrl+p", CommandPalette)
        await type_text(pilot, "Show failed runs")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settled(pilot)
        assert screen.filter_text == "status = failed"
        assert names(screen) == ["sgd-diverged"]


async def test_columns_can_be_hidden_moved_and_picked(runs_root: Path, tmp_path: Path) -> None:
    async with on_runs(runs_root, tmp_path) as (_, pilot, screen):
        labels = [c.label for c in screen.view.columns]
        assert labels[:3] == ["", "name", "experiment"]
        await pilot.press("s", "s", "s")  # sort by params.lr... then params.model
        await settled(pilot)
        assert screen.sort == Column.param("model")
        await pilot.press("less_than_sign")
        await settled(pilot)
        labels = [c.label for c in screen.view.columns]
        assert labels.index("params.model") == labels.index("params.lr") - 1
        await pilot.press("minus")
        await settled(pilot)
        assert "params.model" not in [c.label for c in screen.view.columns]
        # + opens the picker; the first hidden entry after the shown ones gets shown
        picker = await pushed(pilot, "plus", ColumnPicker)
        shown = sum(1 for _, on in picker.entries if on)
        for _ in range(shown):
            await pilot.press("j")
        await pilot.press("space", "enter")
        await settled(pilot)
        assert len(screen.view.columns) == shown + 1


async def test_experiment_picker_restricts_the_table(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write_run(root / "digits", "a", params={"lr": 0.1})
    write_run(root / "digits", "b", params={"lr": 0.2})
    write_run(root / "iris", "c", params={"lr": 0.3})
    async with on_runs(root, tmp_path) as (app, pilot, screen):
        await pilot.press("e")
        await until(pilot, lambda: app.screen is not screen)
        await pilot.press("down", "down", "enter")  # all, digits, iris
        await settled(pilot)
        assert names(screen) == ["c"]
        assert "1 of 3 match" in str(screen.query_one(".filter--count").render())
        await pilot.press("escape")
        await settled(pilot)
        assert len(names(screen)) == 3


async def test_nested_runs_show_under_their_parent_and_fold(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    store_path = tmp_path / "store" / "store.duckdb"
    now = time.time()
    with open_store(root, store_path) as store:
        store.put_runs(
            None,
            [
                RunRecord("p", "mlflow-sqlite", "/elsewhere/p", "sweep", start_time=now - 9),
                RunRecord("c1", "mlflow-sqlite", "/elsewhere/c1", "fold-1", parent_id="p",
                          start_time=now - 8),
                RunRecord("c2", "mlflow-sqlite", "/elsewhere/c2", "fold-2", parent_id="p",
                          start_time=now - 7),
            ],
        )  # fmt: skip
    async with on_runs(root, tmp_path) as (_, pilot, screen):
        assert names(screen) == ["sweep", "fold-2", "fold-1"]
        assert screen.table._cell(Column.attr("name"), 1).plain.startswith("└ ")
        await pilot.press("o")
        await settled(pilot)
        assert names(screen) == ["sweep"]
        assert "+2" in screen.table._cell(Column.attr("name"), 0).plain
        await pilot.press("O")
        await settled(pilot)
        assert len(names(screen)) == 3


async def test_run_text_is_shown_inert(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    evil = "[bold red]x[/] \x1b[31mred\x1b]52;c;ZXZpbA==\x07"
    write_run(root / "runs", evil, params={"note": evil, "lr": 0.1})
    async with on_runs(root, tmp_path) as (app, pilot, screen):
        table = screen.table
        cell = table._cell(Column.attr("name"), 0)
        assert cell.plain == "[bold red]x[/] ␛[31mred␛]52;c;ZXZpbA==␇"
        assert not cell.spans or all(s.style != "bold red" for s in cell.spans)
        svg = app.export_screenshot()
        assert "\x1b" not in svg and "\x07" not in svg
        assert "[bold&#160;red]x[/]" in svg or "[bold red]x[/]" in svg
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.details)
        await pilot.pause()
        params = app.screen.query_one("#detail-params").render()
        plain = str(params) if not hasattr(params, "renderables") else ""
        svg = app.export_screenshot()
        assert "\x1b" not in svg and "␛[31mred" in svg.replace("&#160;", " ")
        del plain


async def test_locked_store_falls_back_and_says_so(runs_root: Path, tmp_path: Path) -> None:
    store_path = tmp_path / "store" / "store.duckdb"
    with open_store(runs_root, store_path):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True);"
         " time.sleep(60)", str(store_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        async with on_runs(runs_root, tmp_path) as (app, _, screen):
            note = screen.query_one("#runs-note")
            assert note.display
            assert "in use by another mltop" in str(note.render())
            assert len(names(screen)) == 4
        app.close_store()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
async def test_quit_keys(runs_root: Path, tmp_path: Path, key: str) -> None:
    async with on_runs(runs_root, tmp_path) as (app, pilot, _):
        await pilot.press(key)
        await pilot.pause()
    assert app.return_code == 0 or app.return_value == 0
    assert not app.is_running
    app.close_store()
    assert app.wait_for_store_users(1.0)


async def test_quitting_during_an_import_stops_it_cleanly(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    for i in range(30):
        write_run(root / "runs", f"run-{i}", steps=3)
    async with running(root, tmp_path) as (app, pilot):
        await until(pilot, lambda: app.store is not None)
        await pilot.press("q")
    app.close_store()
    # The store is consistent afterwards: every run it holds has its params.
    with open_store(root, tmp_path / "store" / "store.duckdb") as store:
        counts = store.table_counts()
        assert counts["params"] == counts["runs"]


async def test_refresh_during_an_import_never_imports_twice(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    for i in range(20):
        write_run(root / "runs", f"run-{i}", steps=4)
    async with running(root, tmp_path) as (app, pilot):
        await until(pilot, lambda: app.runs_screen.view is not None)
        await pilot.press("r", "r", "r")
        screen = await settled(pilot)
        await until(pilot, lambda: not app.ingesting)
        await settled(pilot)
        assert len(names(screen)) == 20
        with app.store_in_use() as store:
            assert store.point_count() == 20 * 4 * 2  # loss and acc, four steps each


async def test_theme_change_recolours_status_symbols(runs_root: Path, tmp_path: Path) -> None:
    async with on_runs(runs_root, tmp_path) as (app, pilot, screen):
        row = names(screen).index("sgd-diverged")
        before = screen.table._cell(Column.attr("status"), row).spans[-1].style
        app.theme = "nord"
        await pilot.pause()
        after = screen.table._cell(Column.attr("status"), row).spans[-1].style
        assert before != after


async def test_the_blocks_a_rescan_read_are_let_go_when_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A re-scan reads every file's record; nothing reads them again before the next one, so
    # the app hands them back instead of keeping them cached for as long as it is open (at
    # 100,000 runs: 20 MB).
    root = tmp_path / "project"
    for i in range(150):
        write_run(root / "runs", f"run-{i}", steps=2)
    store_path = tmp_path / "store" / "store.duckdb"
    with open_store(root, store_path) as store:
        ingest(root, store)
        store.release_buffers()
        floor = store.table_cache_bytes()  # what DuckDB keeps whatever is asked
    app = make_app(root, tmp_path, live=False)
    cached_when_done: list[int] = []
    finished = RunsScreen.on_ingest_finished

    def spy(screen: RunsScreen, message: IngestFinished) -> None:
        # The folder is unchanged: nothing was committed, so nothing read the store since.
        assert app.store is not None
        cached_when_done.append(app.store.table_cache_bytes())
        finished(screen, message)

    monkeypatch.setattr(RunsScreen, "on_ingest_finished", spy)
    async with app.run_test(size=SIZE) as pilot:
        screen = await settled(pilot)
        assert screen.table.row_count == 150
    assert len(cached_when_done) == 1 and cached_when_done[0] <= floor
