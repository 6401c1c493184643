"""What the Logs screen says: "following" only while the run can still write, counts that agree
with their number, and notices wrapped to the terminal rather than cut at its edge."""

from __future__ import annotations

from pathlib import Path

from tui_pilot import until

from mltop.core.discovery import ingest
from mltop.core.store import open_memory_store
from mltop.core.tracking import start_run
from mltop.tui.screens.logs import LogsApp, LogsScreen
from mltop.tui.widgets.keybar import KeyBar

SMALL = (80, 24)


def _header(screen: LogsScreen) -> str:
    return str(screen.query_one("#logs-header").render())


async def _open_run_logs(app: LogsApp, pilot) -> LogsScreen:  # type: ignore[no-untyped-def]
    await until(pilot, lambda: isinstance(app.screen, LogsScreen) and app.screen.run is not None)
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
    store = open_memory_store()
    ingest(root, store)
    app = LogsApp(run_id=next(r.id for r in store.runs()), store=store)
    async with app.run_test(size=SMALL) as pilot:
        screen = await _open_run_logs(app, pilot)
        await until(pilot, lambda: screen.model is not None and screen.model.rows == 1)
        await pilot.pause()
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
        store = open_memory_store()
        ingest(root, store)
        app = LogsApp(run_id=next(r.id for r in store.runs()), store=store)
        async with app.run_test(size=SMALL) as pilot:
            screen = await _open_run_logs(app, pilot)
            await until(pilot, lambda: screen.model is not None and screen.model.rows == 2)
            await pilot.pause()
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
    store = open_memory_store()
    ingest(root, store)
    app = LogsApp(run_id=next(r.id for r in store.runs()), store=store)
    async with app.run_test(size=SMALL) as pilot:
        screen = await _open_run_logs(app, pilot)
        await until(pilot, lambda: bool(screen.view.notice))
        await pilot.pause()
        view = screen.view
        rows = [view.render_line(y).text.rstrip() for y in range(6)]
        text = " ".join(r for r in rows if r)
        assert len([r for r in rows if r]) > 1
        assert text.endswith("count)")  # the whole notice, down to its last word
