"""The run detail's info panel fits its width without cutting a number: metric lines break
between fields, a long param keeps one line ending in ``…``, and ``v`` shows values whole."""

from __future__ import annotations

from pathlib import Path

from helpers.tui import open_detail, pushed, running
from textual.widget import Widget

from mltop.core.tracking import start_run
from mltop.tui.screens.runs.detail import RunDetailScreen
from mltop.tui.screens.runs.values import RunValuesScreen

LONG = "".join(f"{i:04d}," for i in range(1000))  # 5,000 characters of numbers


def shown(widget: Widget) -> list[str]:
    return [strip.text for strip in widget.render_lines(widget.region.reset_offset)]


def project(root: Path) -> None:
    with start_run(root / "runs", name="wide", params={"files": LONG, "lr": 0.1}) as run:
        for step in range(15):
            run.log(step=step, grad=-1.2345678e-5 if step == 3 else -123456.789 + step)


async def test_metric_summary_lines_break_between_fields_never_inside_a_number(
    tmp_path: Path,
) -> None:
    project(tmp_path / "proj")
    async with running(tmp_path / "proj", tmp_path, (100, 30)) as (_, pilot):
        screen = await open_detail(pilot, charts_drawn=False)
        panel = screen.query_one("#detail-metrics")
        lines = shown(panel)
        text = " ".join(" ".join(line.split()) for line in lines)
        assert "n 15" in text
        assert "min -1.235e+05" in text and "max -1.235e-05" in text
        assert all(len(line.rstrip()) <= panel.size.width for line in lines)


async def test_a_long_param_keeps_one_line_and_v_shows_it_whole(tmp_path: Path) -> None:
    project(tmp_path / "proj")
    async with running(tmp_path / "proj", tmp_path, (120, 40)) as (app, pilot):
        screen = await open_detail(pilot, charts_drawn=False)
        params = shown(screen.query_one("#detail-params"))
        files = [line for line in params if "files" in line]
        assert len(files) == 1 and files[0].rstrip().endswith("…")
        assert len([line for line in params if line.strip()]) == 3  # heading, files, lr
        await pushed(pilot, "v", RunValuesScreen)
        await pilot.pause()
        values = app.screen.query_one("#values")
        whole = "".join(line.strip() for line in shown(values))
        assert LONG in whole.replace("files", "", 1)
        await pushed(pilot, "escape", RunDetailScreen)


async def test_overview_fields_keep_one_line_each(tmp_path: Path) -> None:
    project(tmp_path / "proj")
    async with running(tmp_path / "proj", tmp_path, (100, 30)) as (_, pilot):
        screen = await open_detail(pilot, charts_drawn=False)
        lines = [line for line in shown(screen.query_one("#detail-overview")) if line.strip()]
        # Every line starts with its field's name: no id or hash continues on a second line.
        assert all(not line.startswith(" ") for line in lines), lines
        ids = [line for line in lines if line.startswith("id ")]
        assert len(ids) == 1 and ids[0].rstrip().endswith("…")
