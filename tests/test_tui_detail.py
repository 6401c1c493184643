"""The run detail screen: overview, params, metrics, and the chart keys."""

from __future__ import annotations

from pathlib import Path

from conftest import write_run
from helpers.tui import open_detail, pushed, running
from textual.widgets import Input
from tui_pilot import type_text, until

from mltop.tui.screens.runs.chart_focus import ChartFocusScreen
from mltop.tui.screens.runs.detail import RunDetailScreen
from mltop.tui.widgets.chart import SMOOTHING_STEPS, LineChart


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    write_run(root / "runs", "sgd-lr0.1", steps=40, params={"lr": 0.1, "model": "sgd",
              "long": "x" * 300})  # fmt: skip
    return root


async def test_detail_shows_overview_params_metrics_and_charts(tmp_path: Path) -> None:
    async with running(_project(tmp_path), tmp_path) as (app, pilot):
        screen = await open_detail(pilot)
        header = str(screen.query_one("#detail-header").render())
        assert "sgd-lr0.1" in header and "finished" in header
        assert set(screen.charts) == {"acc", "loss"}
        loss = screen.charts["loss"].series
        assert loss is not None and loss.points == 40
        assert loss.last_value is not None and abs(loss.last_value - 1 / 40) < 1e-9
        svg = app.export_screenshot().replace("&#160;", " ")
        assert "params (3)" in svg and "metrics (2)" in svg
        assert "min 0.025" in svg  # loss min, in the metrics table
        assert "x" * 30 in svg  # long values wrap instead of vanishing


async def test_chart_keys_change_axis_smoothing_scale_and_focus(tmp_path: Path) -> None:
    async with running(_project(tmp_path), tmp_path) as (app, pilot):
        screen = await open_detail(pilot)
        chart = screen.charts["loss"]
        await pilot.press("x")
        assert screen.x_kind == "time"
        await until(pilot, lambda: chart.series is not None and chart.x_kind == "time")
        assert chart.series.points == 40
        await pilot.press("x")
        await until(pilot, lambda: chart.series is not None and chart.x_kind == "step")
        await pilot.press("plus", "plus")
        assert chart.smoothing == SMOOTHING_STEPS[2]
        await pilot.press("minus")
        assert chart.smoothing == SMOOTHING_STEPS[1]
        await pilot.press("y")
        assert chart.log_y and screen.log_y
        title = str(screen.query_one("#detail-charts-title").render())
        assert "log-y on" in title and f"smoothing {SMOOTHING_STEPS[1]:g}" in title
        # arrows move between charts; enter opens the focused one large
        await pilot.press("down")
        assert isinstance(app.focused, LineChart)
        first = app.focused
        await pilot.press("right")
        assert app.focused is not first
        key = app.focused.key
        await pilot.press("enter")
        await until(
            pilot,
            lambda: (
                isinstance(app.screen, ChartFocusScreen) and app.screen.chart.series is not None
            ),
        )
        assert app.screen.key == key
        await pilot.press("y", "escape")
        await pilot.pause()
        assert app.screen is screen
        assert not screen.log_y  # the focused view hands its settings back
        await pushed(pilot, "z", ChartFocusScreen)
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert app.screen is app.runs_screen


async def test_filter_narrows_charts_and_params(tmp_path: Path) -> None:
    async with running(_project(tmp_path), tmp_path) as (app, pilot):
        screen = await open_detail(pilot)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await type_text(pilot, "los")
        assert [c.key for c in screen._visible_charts()] == ["loss"]
        count = str(screen.query_one(".filter--count").render())
        assert "1 of 2 metrics" in count
        svg = app.export_screenshot().replace("&#160;", " ")
        assert "params (0 of 3)" in svg
        await pilot.press("escape")
        assert len(screen._visible_charts()) == 2


async def test_info_panel_toggles_and_narrow_terminals_hide_it(tmp_path: Path) -> None:
    async with running(_project(tmp_path), tmp_path, (80, 24)) as (_, pilot):
        screen = await open_detail(pilot)
        info = screen.query_one("#detail-info")
        assert not info.display
        await pilot.press("i")
        assert info.display
        await pilot.press("i")
        assert not info.display


async def test_help_on_detail_lists_chart_keys(tmp_path: Path) -> None:
    async with running(_project(tmp_path), tmp_path) as (app, pilot):
        await open_detail(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        ids = {i for row in app.screen._rows for i in row[3].split(", ")}
        for binding in RunDetailScreen.BINDINGS:
            assert binding.id in ids
