"""The compare screen, driven from the runs screen like a person would: marking and comparing,
changing the baseline, hiding equal rows, switching the charted metric and its x axis, diffing a
run with the one before it, over real run folders and a real DuckDB store."""

from __future__ import annotations

import contextlib
import html
import math
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from conftest import write_run
from helpers.tui import on_runs, pushed
from rich.style import Style
from textual.command import CommandPalette
from textual.pilot import Pilot
from tui_pilot import SIZE, names, type_text

from mltop.core.compare.diff import Verdict
from mltop.core.compare.overlay import Series
from mltop.core.tracking import start_run
from mltop.tui.app import MltopApp
from mltop.tui.screens.compare.screen import CompareScreen
from mltop.tui.screens.help import HelpScreen
from mltop.tui.screens.runs.screen import RunsScreen
from mltop.tui.widgets.compare_table import CompareTable, verdict_styles
from mltop.tui.widgets.overlay_chart import OverlayStyles, draw_overlay, legend_lines


async def until(pilot: Pilot, predicate: Callable[[], object], timeout: float = 15.0) -> None:
    """Let the app run until ``predicate`` holds.

    Polls instead of awaiting the workers: the compare screen's workers are exclusive, and a
    superseded one ends cancelled, which ``workers.wait_for_complete`` reports as an error.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the app did not reach the expected state in time")
        await pilot.pause(0.02)


def notifications(app: MltopApp) -> list[str]:
    return [n.message for n in app._notifications]


async def opened(pilot: Pilot) -> CompareScreen:
    """Wait for the compare screen to show its comparison and its first overlay."""
    app = pilot.app

    def ready() -> bool:
        screen = app.screen
        return (
            isinstance(screen, CompareScreen)
            and screen.comparison is not None
            and (screen.metric is None or bool(screen.chart.series))
        )

    await until(pilot, ready)
    screen = app.screen
    assert isinstance(screen, CompareScreen)
    return screen


async def charted(pilot: Pilot, screen: CompareScreen, key: str, x: str = "step") -> None:
    """Wait until the overlay chart shows ``key`` against ``x``."""
    await until(
        pilot,
        lambda: (
            bool(screen.chart.series)
            and screen.chart.series[0].key == key
            and screen.chart.x_kind == x
        ),
    )


def header(screen: CompareScreen) -> str:
    return str(screen.query_one("#compare-header").render())


def headline(screen: CompareScreen) -> str:
    return str(screen.query_one("#compare-headline").render())


async def mark_first(pilot: Pilot, count: int) -> list[str]:
    """Mark the first ``count`` rows (space marks and moves down); their names, in order."""
    screen = pilot.app.runs_screen  # type: ignore[attr-defined]
    marked = names(screen)[:count]
    await pilot.press(*["space"] * count)
    return marked


async def compare_first(pilot: Pilot, count: int) -> tuple[list[str], CompareScreen]:
    """Mark the first ``count`` rows and press c: their names, and the compare screen shown."""
    marked = await mark_first(pilot, count)
    await pilot.press("c")
    return marked, await opened(pilot)


@contextlib.asynccontextmanager
async def comparing(
    root: Path, tmp_path: Path, count: int, size: tuple[int, int] = SIZE
) -> AsyncIterator[tuple[Pilot, CompareScreen]]:
    """The app over ``root`` showing the compare screen of its first ``count`` runs."""
    async with on_runs(root, tmp_path, size) as (_, pilot, _):
        _, screen = await compare_first(pilot, count)
        yield pilot, screen


@pytest.fixture
def swept(tmp_path: Path) -> Path:
    """A project holding :func:`sweep`'s three runs."""
    root = tmp_path / "proj"
    sweep(root)
    return root


def sweep(root: Path) -> None:
    """Three runs of one experiment that differ in lr; model and epochs are the same."""
    for i, lr in enumerate((0.1, 0.01, 0.001)):
        with start_run(
            root / "runs",
            name=f"sgd-lr{lr}",
            params={"lr": lr, "model": "sgd", "epochs": 5},
            experiment="digits",
        ) as run:
            for step in range(5):
                run.log(
                    step=step,
                    val_loss=1.0 / (step + 1) + lr,
                    val_acc=0.5 + step * 0.1 - lr,
                    epoch_time=0.25,
                )
            if i == 2:
                run.log(step=5, grad_norm=float("nan"))


async def test_c_opens_compare_on_the_marked_runs_first_marked_is_baseline(
    swept: Path, tmp_path: Path
) -> None:
    async with on_runs(swept, tmp_path) as (app, pilot, runs):
        # Mark the second row first, then the first: marking order decides the baseline.
        order = names(runs)
        await pilot.press("j", "space", "k", "k", "space")
        await pilot.press("c")
        screen = await opened(pilot)
        assert [c.run.name for c in screen.comparison.runs] == [order[1], order[0]]
        assert screen.comparison.baseline == 0
        table = screen.query_one(CompareTable)
        labels = [c.label.plain for c in table.ordered_columns]
        assert len(labels) == 3  # the row names, then one column per run
        assert labels[1].startswith("● " + order[1]) and "(baseline)" in labels[1]
        assert labels[2] == "● " + order[0]
        assert f"baseline: {order[1]}" in header(screen)
        # A params section and a metrics section, with direction arrows after metric names.
        titles = [line.title for line in screen.compare_layout.lines if line.row is None]
        assert titles[0].startswith("metrics") and titles[1].startswith("params")
        keys = {table.cell_text(i, 0).plain for i in range(len(screen.compare_layout.lines))}
        assert {"val_loss ↓", "val_acc ↑", "lr"} <= keys
        # The chart shows a validation metric of both runs, coloured like the headers.
        assert screen.metric in ("val_acc", "val_loss")
        assert [s.label for s in screen.chart.series] == [order[1], order[0]]
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is runs


async def test_metric_cells_show_value_change_and_best_coloured_by_direction(
    swept: Path, tmp_path: Path
) -> None:
    async with on_runs(swept, tmp_path) as (app, pilot, runs):
        await pilot.press("G", "space", "k", "k", "space")  # lr0.1 (oldest) then lr0.001
        order = names(runs)
        await pilot.press("c")
        screen = await opened(pilot)
        assert [c.run.name for c in screen.comparison.runs] == [order[-1], order[0]]
        table = screen.query_one(CompareTable)
        layout = screen.compare_layout
        styles = verdict_styles(app)
        loss = layout.line_of("metric", "val_loss")
        text = table.cell_text(loss, 2)
        # lr 0.001 has the lower (better) loss than lr 0.1: green, with delta and percent.
        assert "0.201" in text.plain and "-0.099" in text.plain and "%" in text.plain
        assert "↓0.201@4" in text.plain  # best of history: the minimum, at its step
        change = next(s for s in text.spans if "0.099" in text.plain[s.start : s.end])
        assert change.style == styles[Verdict.BETTER]
        acc = table.cell_text(layout.line_of("metric", "val_acc"), 2)
        acc_change = next(s for s in acc.spans if "+" in acc.plain[s.start : s.end])
        assert acc_change.style == styles[Verdict.BETTER]
        # A metric only one run logged: — for the other, NaN shown as nan.
        grad = layout.line_of("metric", "grad_norm")
        assert table.cell_text(grad, 1).plain.strip() == "—"
        assert table.cell_text(grad, 2).plain.split()[0] == "nan"
        # A metric every run agrees on is named in dim.
        same = layout.line_of("metric", "epoch_time")
        assert table.cell_text(same, 0).style == "dim"
        assert table.cell_text(loss, 0).style == "bold"


async def test_b_makes_the_cursor_column_the_baseline(swept: Path, tmp_path: Path) -> None:
    async with on_runs(swept, tmp_path) as (app, pilot, _):
        marked, screen = await compare_first(pilot, 3)
        assert screen.comparison.baseline == 0
        # On the row-name column, b says what to do and changes nothing.
        await pilot.press("h", "h", "h", "h", "b")
        await pilot.pause()
        assert screen.comparison.baseline == 0
        assert any("baseline" in m for m in notifications(app))
        await pilot.press("l", "l", "b")
        await until(pilot, lambda: screen.comparison.baseline == 1)
        assert f"baseline: {marked[1]}" in header(screen)
        row = screen.comparison.find("val_loss")
        assert row is not None and row.cells[1].verdict is Verdict.BASELINE
        assert row.cells[0].delta is not None
        labels = [c.label.plain for c in screen.query_one(CompareTable).ordered_columns]
        assert "(baseline)" in labels[2] and "(baseline)" not in labels[1]
        # The baseline is drawn on top of the other runs in the chart.
        assert screen.chart.on_top == 1


async def test_o_toggles_only_differences_and_the_header_counts_rows(
    swept: Path, tmp_path: Path
) -> None:
    async with comparing(swept, tmp_path, 2) as (pilot, screen):
        comparison = screen.comparison
        # Everything fits on a 40-row screen, so every row shows at first.
        assert not comparison.only_changed
        total = comparison.total_rows
        assert f"only differences: off ({total} rows)" in header(screen)
        await pilot.press("o")
        await until(pilot, lambda: screen.comparison.only_changed)
        shown = len(screen.comparison.rows)
        assert shown == screen.comparison.changed_rows < total
        assert f"only differences: on ({shown} of {total} rows)" in header(screen)
        assert {r.key for r in screen.comparison.rows} >= {"lr", "val_loss"}
        assert "model" not in {r.key for r in screen.comparison.rows}
        assert screen.query_one(CompareTable).row_count == shown + 2  # plus two section titles
        await pilot.press("o")
        await until(pilot, lambda: not screen.comparison.only_changed)
        assert len(screen.comparison.rows) == total


async def test_only_differences_is_on_when_rows_do_not_fit(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    for i in range(2):
        params = {f"p{k:02d}": k for k in range(30)} | {"seed": i}
        write_run(root / "runs", f"run{i}", params=params)
    async with comparing(root, tmp_path, 2, (80, 24)) as (_, screen):
        comparison = screen.comparison
        assert comparison.only_changed
        assert {r.key for r in comparison.rows} == {"seed"}
        assert f"only differences: on (1 of {comparison.total_rows} rows)" in header(screen)
        # At 80x24 the table and the chart both get room.
        assert screen.query_one(CompareTable).size.height >= 4
        assert screen.chart.size.height >= 6


async def test_identical_runs_say_there_are_no_differences(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write_run(root / "runs", "first", params={"lr": 0.1})
    write_run(root / "runs", "second", params={"lr": 0.1})
    async with comparing(root, tmp_path, 2) as (pilot, screen):
        assert screen.comparison.identical
        assert "no differences between the 2 runs" in headline(screen)
        await pilot.press("o")  # hiding equal rows leaves none: the table says why
        await until(pilot, lambda: screen.comparison.only_changed)
        assert screen.has_class("-empty")
        assert "no differences between the 2 runs" in str(
            screen.query_one("#compare-empty").render()
        )


async def test_metric_keys_and_the_table_cursor_switch_the_charted_metric(
    swept: Path, tmp_path: Path
) -> None:
    async with comparing(swept, tmp_path, 3) as (pilot, screen):
        keys = screen.metric_keys
        assert keys == ["epoch_time", "grad_norm", "val_acc", "val_loss"]
        first = screen.metric
        await charted(pilot, screen, first)
        await pilot.press("m")
        after = keys[(keys.index(first) + 1) % len(keys)]
        assert screen.metric == after
        await charted(pilot, screen, after)
        assert [s.key for s in screen.chart.series] == [after] * 3
        await pilot.press("M", "M")
        before = keys[(keys.index(first) - 1) % len(keys)]
        await charted(pilot, screen, before)
        await pilot.press("right_square_bracket")
        await charted(pilot, screen, first)
        # Moving the table's cursor onto a metric row charts that metric.
        table = screen.query_one(CompareTable)
        table.move_cursor(row=screen.compare_layout.line_of("metric", "epoch_time"), column=1)
        await charted(pilot, screen, "epoch_time")
        assert screen.metric == "epoch_time"
        assert "epoch_time" in str(screen.chart.border_title)
        # A param row leaves the chart alone.
        table.move_cursor(row=screen.compare_layout.line_of("param", "lr"))
        await pilot.pause(0.3)
        assert screen.metric == "epoch_time"


async def test_x_cycles_the_axis_and_smoothing_changes_the_lines(
    swept: Path, tmp_path: Path
) -> None:
    async with comparing(swept, tmp_path, 2) as (pilot, screen):
        metric = screen.metric
        assert screen.x_kind == "step"
        steps = screen.chart.series[0].x
        assert steps == (0.0, 1.0, 2.0, 3.0, 4.0)
        await pilot.press("x")
        await charted(pilot, screen, metric, "time")
        assert screen.chart.series[0].axis == "time" and screen.chart.series[0].x[0] > 1e9
        assert "x: time" in header(screen)
        await pilot.press("x")
        await charted(pilot, screen, metric, "relative")
        assert 0 <= screen.chart.series[0].x[0] < 60
        await pilot.press("x")
        await charted(pilot, screen, metric, "step")
        smoothed = screen.chart.series[0].y
        await pilot.press("minus", "minus", "minus")
        assert screen.smoothing == 0
        await until(pilot, lambda: screen.chart.series[0].y == screen.chart.series[0].raw)
        assert screen.chart.series[0].y != smoothed
        assert "smoothing off" in header(screen)


async def test_d_diffs_the_current_run_with_the_previous_one_of_its_experiment(
    swept: Path, tmp_path: Path
) -> None:
    write_run(swept / "other", "elsewhere", experiment="other")
    async with on_runs(swept, tmp_path) as (app, pilot, runs):
        listed = names(runs)  # newest first
        digits = [n for n in listed if n != "elsewhere"]
        row = listed.index(digits[0])
        runs.table.move_cursor(row=row)
        await pilot.press("d")
        screen = await opened(pilot)
        assert [c.run.name for c in screen.comparison.runs] == [digits[1], digits[0]]
        assert screen.comparison.baseline == 0  # the older run is the baseline
        assert "diff with previous" in header(screen)
        await pilot.press("escape")
        await pilot.pause()
        # The first run of an experiment has nothing before it: a notification, no screen.
        runs.table.move_cursor(row=listed.index("elsewhere"))
        await pilot.press("d")
        await until(pilot, lambda: any("no earlier run" in m for m in notifications(app)))
        assert app.screen is runs


async def test_compare_needs_two_marked_runs(swept: Path, tmp_path: Path) -> None:
    async with on_runs(swept, tmp_path) as (app, pilot, runs):
        await pilot.press("c")
        await pilot.pause()
        assert app.screen is runs
        assert any("mark 2 or more runs with space" in m for m in notifications(app))
        await pilot.press("space", "c")
        await pilot.pause()
        assert app.screen is runs
        assert any("(1 is marked)" in m for m in notifications(app))


async def test_run_names_and_params_are_shown_inert(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    evil = "[bold red]x[/] \x1b[31mred\x07"
    write_run(root / "runs", evil, params={"note": evil, "lr": 0.1})
    write_run(root / "runs", "plain", params={"note": "[link=http://x]y[/link]", "lr": 0.2})
    async with on_runs(root, tmp_path) as (app, pilot, _):
        _, screen = await compare_first(pilot, 2)
        table = screen.query_one(CompareTable)
        labels = [c.label.plain for c in table.ordered_columns]
        shown = "[bold red]x[/] ␛[31mred␇"
        assert any(shown in label for label in labels)
        note = screen.compare_layout.line_of("param", "note")
        cells = [table.cell_text(note, i).plain for i in (1, 2)]
        assert shown in cells or "[link=http://x]y[/link]" in cells
        assert all(not t.spans or all("red" not in str(s.style) for s in t.spans)
                   for t in (table.cell_text(note, 1), table.cell_text(note, 2)))  # fmt: skip
        assert evil in [s.label for s in screen.chart.series]
        svg = html.unescape(app.export_screenshot()).replace("\xa0", " ")
        assert "\x1b" not in svg and "\x07" not in svg
        # Shown as typed in the column header, the param cell and the chart's legend.
        assert svg.count(shown) >= 3


async def test_help_and_palette_cover_the_compare_keys(swept: Path, tmp_path: Path) -> None:
    async with on_runs(swept, tmp_path) as (app, pilot, runs):
        # The runs screen's help lists its compare keys.
        help_screen = await pushed(pilot, "question_mark", HelpScreen)
        ids = {i for row in help_screen._rows for i in row[3].split(", ")}
        assert {"runs.compare", "runs.diff_previous"} <= ids
        assert {b.id for b in RunsScreen.BINDINGS} <= ids
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is runs)
        marked, screen = await compare_first(pilot, 2)
        help_screen = await pushed(pilot, "question_mark", HelpScreen)
        ids = {i for row in help_screen._rows for i in row[3].split(", ")}
        for binding in (*CompareScreen.BINDINGS, *CompareTable.BINDINGS):
            assert binding.id in ids
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await pushed(pilot, "ctrl+p", CommandPalette)
        await type_text(pilot, f"Baseline: {marked[1]}")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: screen.comparison.baseline == 1)


async def test_a_hundred_marked_runs_open_and_stay_usable(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    for i in range(100):
        with start_run(root / "runs", name=f"run-{i:03d}", params={"seed": i}) as run:
            run.log(step=0, loss=1.0 / (i + 1))
            run.log(step=1, loss=0.5 / (i + 1))
    async with on_runs(root, tmp_path) as (_, pilot, runs):
        runs.table.marked.update(runs.view.table.column("id").to_pylist())
        await pilot.press("c")
        screen = await opened(pilot)
        assert len(screen.comparison.runs) == 100
        table = screen.query_one(CompareTable)
        assert len(table.ordered_columns) == 101
        assert len(screen.chart.series) == 100
        # The table scrolls sideways to the last run, and it can become the baseline.
        await pilot.press("end", "G")
        for _ in range(100):
            table.action_cursor_right()
        await pilot.pause()
        assert table.current_run() == 99
        assert table.scroll_x > 0
        await pilot.press("b")
        await until(pilot, lambda: screen.comparison.baseline == 99)
        await pilot.press("m", "x")
        await charted(pilot, screen, "loss", "time")


# -- the overlay drawing, without an app ---------------------------------------------------------


def _series(label: str, ys: list[float], x0: float = 0.0) -> Series:
    xs = tuple(x0 + i for i in range(len(ys)))
    return Series(
        run_id=label, label=label, key="loss", axis="step", x=xs, y=tuple(ys), raw=tuple(ys),
        y_min=tuple(ys), y_max=tuple(ys), steps=tuple(range(len(ys))), points=len(ys),
        placed=len(ys), nonfinite=sum(1 for y in ys if not math.isfinite(y)),
    )  # fmt: skip


STYLES = OverlayStyles(
    axis=Style(dim=True),
    muted=Style(dim=True),
    runs=(Style(color="blue"), Style(color="red")),
    text=Style(),
)


def test_draw_overlay_fills_the_size_and_colours_each_run() -> None:
    down = _series("down", [1.0, 0.5, 0.25, 0.1])
    up = _series("up", [0.1, 0.3, 0.6, 1.0])
    lines = draw_overlay([down, up], 60, 12, STYLES, legend_max=1)
    assert len(lines) == 12
    assert all(sum(len(s.text) for s in line) == 60 for line in lines)
    legend = "".join(s.text for s in lines[0])
    assert "── down" in legend and "── up" in legend
    colours = {
        s.style.color.name for line in lines[1:-1] for s in line if s.style and s.style.color
    }
    assert colours == {"blue", "red"}
    x_axis = "".join(s.text for s in lines[-1])
    assert "└0" in x_axis and x_axis.rstrip().endswith("3")


def test_draw_overlay_says_when_there_is_nothing_to_draw() -> None:
    empty = Series("a", "a", "loss", "step", (), (), (), (), (), (), 0, 0, 0)
    lines = draw_overlay([empty, empty], 40, 8, STYLES)
    text = "\n".join("".join(s.text for s in line) for line in lines)
    assert "no data for this metric" in text and "(no data)" in text
    nan = _series("nan", [math.nan, math.nan])
    text = "\n".join("".join(s.text for s in line) for line in draw_overlay([nan], 40, 8, STYLES))
    assert "no finite values" in text


def test_draw_overlay_single_point_and_flat_lines_do_not_break() -> None:
    point = _series("point", [0.5])
    flat = _series("flat", [2.0, 2.0, 2.0], x0=5)
    lines = draw_overlay([point, flat], 50, 10, STYLES)
    assert len(lines) == 10
    plot = "".join(s.text for line in lines[1:-1] for s in line)
    assert any(0x2800 < ord(c) <= 0x28FF for c in plot)


def test_legend_counts_the_runs_it_cannot_name() -> None:
    many = [_series(f"run-{i:03d}", [1.0, 2.0]) for i in range(100)]
    lines = legend_lines(many, STYLES, 80, 2)
    assert len(lines) == 2
    assert lines[-1].plain.rstrip().endswith("more")
    assert all(line.cell_len <= 80 for line in lines)


# -- which run comes before ----------------------------------------------------------------------


def test_previous_run_follows_start_order_within_the_experiment() -> None:
    from mltop.core.compare.diff import previous_run
    from mltop.core.entities import RunRecord
    from mltop.core.store import open_memory_store

    store = open_memory_store()
    with store.transaction():
        store.put_experiments([("e1", "mlflow-sqlite", "/x", "1", "one"),
                               ("e2", "mlflow-sqlite", "/x", "2", "two")])  # fmt: skip
        store.put_runs(
            None,
            [
                RunRecord("a", "mlflow-sqlite", "/x/a", "a", experiment_id="e1", start_time=10),
                RunRecord("b", "mlflow-sqlite", "/x/b", "b", experiment_id="e1", start_time=20),
                # Started with b: the store's newest-first order (then by name) puts b first,
                # as the runs table lists them, so c comes before b.
                RunRecord("c", "mlflow-sqlite", "/x/c", "c", experiment_id="e1", start_time=20),
                RunRecord("d", "mlflow-sqlite", "/x/d", "d", experiment_id="e2", start_time=15),
                RunRecord("e", "mlflow-sqlite", "/x/e", "e", start_time=30),
                RunRecord("f", "mlflow-sqlite", "/x/f", "f", experiment_id="e1"),
            ],
        )
    assert previous_run(store, "b") is not None and previous_run(store, "b").id == "c"
    assert previous_run(store, "c") is not None and previous_run(store, "c").id == "a"
    assert previous_run(store, "a") is None  # the first of its experiment
    assert previous_run(store, "d") is None  # alone in its experiment
    assert previous_run(store, "e") is None  # no experiment
    assert previous_run(store, "f") is None  # no start time
    assert previous_run(store, "missing") is None
    store.close()
