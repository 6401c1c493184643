"""mltop at 80x24, the size of a default terminal over SSH: the runs table, its footer and the
column chooser, driven with Pilot over real run folders and a real DuckDB store."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_run
from helpers.tui import on_runs, pushed, running
from textual.widgets import Input, OptionList
from tui_pilot import settled, until

from mltop.core.runs.runs_view import Column
from mltop.tui.widgets.column_fit import fit_order
from mltop.tui.widgets.column_picker import ColumnPicker
from mltop.tui.widgets.keybar import KeyBar

SMALL = (80, 24)


@pytest.fixture
def wide_root(tmp_path: Path) -> Path:
    """Runs whose names and params are long enough that the default columns need ~3 screens."""
    root = tmp_path / "project"
    for i, lr in enumerate((0.1, 0.01, 0.001)):
        params = {
            "lr": lr,
            "optimizer": f"adamw-cosine-warmup-{i}",
            "dataset": f"imagenet-subset-{i * 100}",
            "augmentation": f"randaugment-n2-m{9 + i}",
            "seed": i,
        }
        write_run(root / "runs", f"resnet50-adamw-lr{lr}-long-name", steps=5, params=params)
    return root


def header_line(screen: object) -> str:
    """The table's header row as drawn (after sideways scrolling)."""
    return screen.table.render_line(0).text  # type: ignore[attr-defined]


async def test_runs_table_at_80x24_shows_status_name_and_a_metric(
    wide_root: Path, tmp_path: Path
) -> None:
    async with on_runs(wide_root, tmp_path, SMALL) as (_, _, screen):
        header = header_line(screen)
        assert "name" in header
        assert "loss" in header or "acc" in header
        first_row = screen.table.render_line(1).text
        assert "✓" in first_row and "resnet50-adamw" in first_row
        # Every column stays reachable: those that do not fit follow, scrolled to sideways.
        assert len(screen.table.shown) == len(screen.view.columns)


async def test_footer_at_80_columns_keeps_help_and_quit(wide_root: Path, tmp_path: Path) -> None:
    async with on_runs(wide_root, tmp_path, SMALL) as (_, pilot, screen):
        await pilot.pause()
        keys = str(screen.query_one(KeyBar).render())
        assert keys.rstrip().endswith("? help")
        assert "q quit" in keys and "…" in keys
        assert len(keys.rstrip()) <= SMALL[0]


def test_metrics_take_the_room_before_params_and_source() -> None:
    columns = [
        Column.attr("status"),
        Column.attr("name"),
        Column.attr("source"),
        Column.param("optimizer"),
        Column.metric("val_acc"),
    ]
    widths = [2, 20, 10, 20, 7]
    order = fit_order(columns, widths, 40)
    drawn = [columns[i] for i in order]
    assert drawn[:3] == [Column.attr("status"), Column.attr("name"), Column.metric("val_acc")]
    assert set(drawn) == set(columns)
    # When everything fits, the chosen order stands.
    assert fit_order(columns, widths, 200) == list(range(5))
    # A column the user asked for comes before the metrics.
    wanted = fit_order(columns, widths, 50, wanted=[Column.param("optimizer")])
    assert [columns[i] for i in wanted][:3] == [
        Column.attr("status"),
        Column.attr("name"),
        Column.param("optimizer"),
    ]


async def test_a_column_added_with_plus_is_visible_at_80_columns(
    wide_root: Path, tmp_path: Path
) -> None:
    async with on_runs(wide_root, tmp_path, SMALL) as (_, pilot, screen):
        assert "min(loss)" not in header_line(screen)
        await pushed(pilot, "plus", ColumnPicker)
        await pilot.press("slash", *"min(loss")
        await pilot.press("down", "space", "enter")
        await settled(pilot)
        await pilot.pause()
        assert Column.metric("loss", "min") in screen.view.columns
        assert "min(loss)" in header_line(screen)


async def test_column_search_shows_what_is_typed_and_down_enters_the_list(
    wide_root: Path, tmp_path: Path
) -> None:
    async with on_runs(wide_root, tmp_path, SMALL) as (app, pilot, _):
        await pushed(pilot, "plus", ColumnPicker)
        await pilot.press("slash", "s", "e", "e")
        await pilot.pause()
        search = app.screen.query_one(Input)
        assert app.focused is search
        assert "see" in search.render_line(0).text
        assert app.screen.query_one(OptionList).option_count == 1  # params.seed
        await pilot.press("down")
        await pilot.pause()
        assert isinstance(app.focused, OptionList)


@pytest.fixture
def many_metrics_root(tmp_path: Path) -> Path:
    """One run with six metrics: three rows of charts, taller than an 80x24 screen."""
    from mltop.core.tracking import start_run

    root = tmp_path / "project"
    with start_run(root / "runs", name="six-metrics", params={"lr": 0.1}) as run:
        for step in range(20):
            run.log(step=step, a_loss=1 / (step + 1), b_acc=step / 20, c_lr=0.1, d_time=step,
                    e_norm=step % 3, f_mem=100 + step)  # fmt: skip
    return root


@pytest.mark.parametrize("size", [SMALL, (120, 40)])
async def test_run_detail_arrows_move_between_charts_in_every_direction(
    many_metrics_root: Path, tmp_path: Path, size: tuple[int, int]
) -> None:
    from mltop.tui.screens.runs.detail import RunDetailScreen
    from mltop.tui.widgets.chart import LineChart

    async with on_runs(many_metrics_root, tmp_path, size) as (app, pilot, _):
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.charts)
        await pilot.pause()
        screen = app.screen
        charts = screen._visible_charts()
        assert len(charts) == 6 and app.focused is charts[0]
        columns = screen.groups[0].styles.grid_size_columns
        assert columns == 2
        moves = {"down": 2, "right": 3, "up": 1, "left": 0}
        for key, expected in moves.items():
            await pilot.press(key)
            await pilot.pause()
            assert app.focused is charts[expected], key
        await pilot.press("down", "down")
        await pilot.pause()
        assert app.focused is charts[4]
        # The focused chart carries a bar down its left side; the others do not.
        focused = app.focused
        assert isinstance(focused, LineChart)
        assert focused.styles.border_left[0] == "outer"
        assert all(c.styles.border_left[0] != "outer" for c in charts if c is not focused)


@pytest.fixture
def five_runs_root(tmp_path: Path) -> Path:
    """Five runs of different lengths (so values carry @step) and params, to compare."""
    root = tmp_path / "project"
    for i in range(5):
        params = {"lr": 10.0 ** -(i + 1), "model": "sgd", "seed": i}
        write_run(root / "runs", f"sgd-run-{i}", steps=8 + i, params=params)
    return root


async def _compare_all(pilot, app) -> object:  # type: ignore[no-untyped-def]
    import time

    from mltop.tui.screens.compare.screen import CompareScreen

    await settled(pilot)
    await pilot.press(*["space"] * 5, "c")
    deadline = time.monotonic() + 15
    while not (isinstance(app.screen, CompareScreen) and app.screen.comparison is not None):
        assert time.monotonic() < deadline, "compare did not open"
        await pilot.pause(0.05)
    await pilot.pause(0.2)
    return app.screen


def _headline(screen: object) -> str:
    return str(screen.query_one("#compare-headline").render())  # type: ignore[attr-defined]


async def test_compare_at_120_columns_fits_four_runs(five_runs_root: Path, tmp_path: Path) -> None:
    async with running(five_runs_root, tmp_path, (120, 40)) as (app, pilot):
        screen = await _compare_all(pilot, app)
        first, last, total = screen.table.shown_runs()
        assert total == 5 and first == 1 and last >= 4


async def test_compare_at_80x24_fits_what_it_can_and_says_the_rest_scroll(
    five_runs_root: Path, tmp_path: Path
) -> None:
    async with running(five_runs_root, tmp_path, SMALL) as (app, pilot):
        screen = await _compare_all(pilot, app)
        first, last, total = screen.table.shown_runs()
        assert (first, total) == (1, 5) and 3 <= last < 5
        assert f"runs 1–{last} of 5 on screen, → for the rest" in _headline(screen)
        # Every whole column on screen shows its run's name (cut with … at most).
        header = screen.table.render_line(0).text
        assert "sgd-run-" in header
        await pilot.press(*["right"] * 5)
        await pilot.pause(0.2)
        first, last, total = screen.table.shown_runs()
        assert last == 5 and first > 1
        assert "← for the rest" in _headline(screen)


async def test_column_search_keeps_letters_typed_right_after_the_slash(
    wide_root: Path, tmp_path: Path
) -> None:
    """A terminal delivers "/see" in one read: the letters must land in the search, not the
    list (Textual forwards each key to whatever has the focus when it arrives)."""
    from textual import events

    async with on_runs(wide_root, tmp_path, SMALL) as (app, pilot, _):
        await pushed(pilot, "plus", ColumnPicker)
        for key, character in (("slash", "/"), ("s", "s"), ("e", "e"), ("e", "e")):
            app.post_message(events.Key(key, character))
        await pilot.pause(0.2)
        assert app.screen.query_one(Input).value == "see"
        assert app.screen.query_one(OptionList).option_count == 1
        before = dict(app.screen.entries)[Column.param("seed")]
        for key, character in (("down", None), ("space", " ")):
            app.post_message(events.Key(key, character))
        await pilot.pause(0.2)
        # The space right behind the down arrow toggled the column; it was not typed.
        assert app.screen.query_one(Input).value == "see"
        assert dict(app.screen.entries)[Column.param("seed")] is not before
