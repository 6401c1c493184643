"""What the Logs screen says: "following" only while the run can still write, counts that agree
with their number, and notices wrapped to the terminal rather than cut at its edge."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from textual.pilot import Pilot
from tui_pilot import until

from mltop.core.discovery import ingest
from mltop.core.store import open_memory_store
from mltop.core.tracking import start_run
from mltop.tui.screens.logs.screen import LogsScreen
from mltop.tui.screens.logs.standalone import LogsApp
from mltop.tui.widgets.keybar import KeyBar

SMALL = (80, 24)


def _header(screen: LogsScreen) -> str:
    return str(screen.query_one("#logs-header").render())


@contextlib.asynccontextmanager
async def _logs_of_the_one_run(
    root: Path, rows: int | None = None, size: tuple[int, int] = SMALL
) -> AsyncIterator[tuple[LogsApp, Pilot, LogsScreen]]:
    """The Logs app over the one run of ``root`` (imported into a fresh store) running at
    ``size``, once its screen knows the run and, given ``rows``, shows that many lines."""
    store = open_memory_store()
    ingest(root, store)
    app = LogsApp(run_id=next(r.id for r in store.runs()), store=store)
    async with app.run_test(size=size) as pilot:
        await until(
            pilot, lambda: isinstance(app.screen, LogsScreen) and app.screen.run is not None
        )
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        if rows is not None:
            await until(pilot, lambda: screen.model is not None and screen.model.rows == rows)
            await pilot.pause()
        yield app, pilot, screen


async def _open_file_logs(app: LogsApp, pilot, rows: int) -> LogsScreen:  # type: ignore[no-untyped-def]
    """The Logs screen of a file app, once its file shows ``rows`` lines."""

    def shown() -> bool:
        screen = app.screen
        return (
            isinstance(screen, LogsScreen)
            and screen.model is not None
            and screen.model.rows == rows
        )

    await until(pilot, shown)
    screen = app.screen
    assert isinstance(screen, LogsScreen)
    return screen


async def test_a_finished_run_is_not_said_to_be_followed_and_one_line_is_singular(
    tmp_path: Path,
) -> None:
    root = tmp_path / "proj"
    with start_run(root / "runs", name="done", capture_output=True) as run:
        print("the only line")
        run.log(step=0, loss=1.0)
    async with _logs_of_the_one_run(root, 1) as (_, _, screen):
        header = _header(screen)
        assert "✓ finished" in header
        assert " 1 line " in header and "1 lines" not in header
        assert "following" not in header and "paused" not in header
        assert "  ·  ·" not in header
        keys = str(screen.query_one(KeyBar).render())
        assert "follow" not in keys and "? help" in keys


async def test_a_running_run_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    live = start_run(root / "runs", name="training", capture_output=True)
    run = live.__enter__()  # left open while the screen looks: the run is RUNNING
    try:
        print("epoch 1")
        print("epoch 2")
        run.log(step=0, loss=1.0)
        async with _logs_of_the_one_run(root, 2) as (_, _, screen):
            header = _header(screen)
            assert "running" in header and "● following" in header
            assert " 2 lines " in header
            assert "f follow" in str(screen.query_one(KeyBar).render())
    finally:
        live.__exit__(None, None, None)


async def test_a_notice_wraps_at_80_columns(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    with start_run(root / "runs", name="silent") as run:
        run.log(step=0, loss=1.0)
    async with _logs_of_the_one_run(root) as (_, pilot, screen):
        await until(pilot, lambda: bool(screen.view.notice))
        await pilot.pause()
        view = screen.view
        rows = [view.render_line(y).text.rstrip() for y in range(6)]
        text = " ".join(r for r in rows if r)
        assert len([r for r in rows if r]) > 1
        assert text.endswith("count)")  # the whole notice, down to its last word


async def test_search_keeps_letters_typed_right_after_the_slash(tmp_path: Path) -> None:
    """A terminal delivers "/nan" in one read: the letters belong to the search, not to the log
    view (where n is "next match" and h/l scroll)."""
    from textual import events
    from textual.widgets import Input

    log = tmp_path / "train.log"
    log.write_text("loss=0.5\nloss=nan\n", encoding="utf-8")
    app = LogsApp([log])
    async with app.run_test(size=SMALL) as pilot:
        screen = await _open_file_logs(app, pilot, rows=2)
        for key, character in (("slash", "/"), ("n", "n"), ("a", "a"), ("n", "n")):
            app.post_message(events.Key(key, character))
        await pilot.pause(0.2)
        field = screen.query_one("#logs-input", Input)
        assert app.focused is field and field.value == "nan"
        # Inside the field, / is text (a path, a ratio), not a new search.
        app.post_message(events.Key("slash", "/"))
        await pilot.pause(0.1)
        assert field.value == "nan/"


def _header_row(screen: LogsScreen) -> str:
    """The header as the terminal shows it (one row, cut to the screen)."""
    return screen.query_one("#logs-header").render_line(0).text.rstrip()


async def test_the_run_folder_is_cut_at_its_start_with_an_ellipsis_at_80_columns(
    tmp_path: Path,
) -> None:
    root = tmp_path / "proj"
    with start_run(root / "runs" / "digits-classifier", name="sgd-lr0.01", capture_output=True):
        print("the only line")
    async with _logs_of_the_one_run(root, 1) as (_, _, screen):
        assert screen.model is not None
        folder = str(screen.model.path.parent)
        row = _header_row(screen)
        assert len(row) <= SMALL[0] and "output.log" in row
        shown = row.rsplit("  ·  ", 1)[1]
        assert shown.startswith("…") and len(shown) > 1
        assert folder.endswith(shown[1:]) and shown[1:] != folder


async def test_the_run_folder_is_whole_when_the_terminal_is_wide(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    with start_run(root / "runs", name="wide", capture_output=True):
        print("the only line")
    async with _logs_of_the_one_run(root, 1, size=(250, 40)) as (_, _, screen):
        assert screen.model is not None
        assert _header_row(screen).endswith(f"  ·  {screen.model.path.parent}")


async def test_a_header_too_long_for_its_folder_says_so_with_an_ellipsis(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("loss=0.5\n", encoding="utf-8")
    app = LogsApp([log])
    async with app.run_test(size=SMALL) as pilot:
        screen = await _open_file_logs(app, pilot, rows=1)
        await pilot.press("ampersand")
        await pilot.pause()
        screen.query_one("#logs-input").value = "loss=0.5|a-rather-long-alternative-pattern"
        await pilot.press("enter")
        await until(pilot, lambda: "&" in _header_row(screen))
        row = _header_row(screen)
        assert len(row) <= SMALL[0] and row.endswith("…")
