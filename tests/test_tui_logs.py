"""The Logs screen: following, search, filter, timestamps, wrap, and hostile text shown inert."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from textual.binding import Binding
from tui_pilot import SIZE, type_text, until

from mltop.core.discovery import ingest
from mltop.core.store import open_memory_store
from mltop.core.tracking import start_run
from mltop.tui.screens.help import HelpScreen
from mltop.tui.screens.logs.screen import LogInput, LogsScreen
from mltop.tui.screens.logs.standalone import LogsApp
from mltop.tui.widgets.log_view import LogView

WRITER = Path(__file__).parent / "log_writer.py"

HOSTILE = [
    "[bold red]markup stays literal[/] [link=file:///etc/passwd]click[/link]",
    "\x1b]0;pwned-title\x07 \x1b]52;c;c2VjcmV0\x07 \x1b[2J\x1b[H after-clear",
    "\x1b[31mred text\x1b[0m bell\x07 c1\x9b2J",
]


def _log(tmp_path: Path, lines: list[str], name: str = "train.log") -> Path:
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _screen(app: LogsApp) -> LogsScreen:
    screen = app.screen
    assert isinstance(screen, LogsScreen)
    return screen


async def _opened(pilot, app: LogsApp, rows: int) -> LogsScreen:  # type: ignore[no-untyped-def]
    await until(pilot, lambda: isinstance(app.screen, LogsScreen) and app.screen.model is not None)
    screen = _screen(app)
    # The worker has read the lines and the view has taken them.
    await until(pilot, lambda: screen.view.virtual_size.height >= rows)
    await pilot.pause()
    return screen


def _shown(screen: LogsScreen) -> list[str]:
    """The text of the rows on screen."""
    view = screen.view
    height = view.scrollable_content_region.height
    return [strip.text.rstrip() for strip in (view.render_line(y) for y in range(height))]


async def test_hostile_lines_render_literally_and_inert(tmp_path: Path) -> None:
    app = LogsApp([_log(tmp_path, HOSTILE)])
    async with app.run_test(size=SIZE) as pilot:
        screen = await _opened(pilot, app, 3)
        shown = _shown(screen)
        assert shown[0] == HOSTILE[0]
        assert shown[1] == "␛]0;pwned-title␇ ␛]52;c;c2VjcmV0␇  after-clear"
        assert shown[2] == "red text bell␇ c1\\x9b2J"
        for y in range(3):  # no segment carries a control character to the terminal
            for segment in screen.view.render_line(y):
                assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in segment.text)
                assert segment.style is None or segment.style.link is None
        svg = app.export_screenshot().replace("&#160;", " ")
        assert "[link=file:///etc/passwd]click[/link]" in svg
        assert "[bold red]markup" in svg and "pwned-title" in svg
        assert "\x1b" not in svg and "\x07" not in svg


async def test_errors_warnings_and_tracebacks_are_coloured_on_screen(tmp_path: Path) -> None:
    lines = [
        "epoch 1 ok",
        "WARNING: disk almost full",
        "Traceback (most recent call last):",
        '  File "train.py", line 3, in <module>',
        "    fit()",
        "ValueError: loss is nan",
    ]
    app = LogsApp([_log(tmp_path, lines)], follow=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _opened(pilot, app, len(lines))

        def colours(y: int) -> set[str]:
            return {
                seg.style.color.name
                for seg in screen.view.render_line(y)
                if seg.text.strip() and seg.style is not None and seg.style.color is not None
            }

        plain = colours(0)
        warning = colours(1)
        assert warning and warning != plain
        for y in range(2, 6):  # each line of the traceback, the exception line included
            shown = colours(y)
            assert shown and shown != plain and shown != warning, lines[y]


async def test_follow_shows_a_real_writers_lines_and_pauses_on_scroll_up(tmp_path: Path) -> None:
    path = _log(tmp_path, [f"line {i}" for i in range(100)])
    app = LogsApp([path])
    async with app.run_test(size=SIZE) as pilot:
        screen = await _opened(pilot, app, 100)
        view = screen.view
        assert view.follow and _shown(screen)[-1] == "line 99"
        subprocess.run([sys.executable, str(WRITER), "lines", str(path), "5", "0"], check=True)
        await until(pilot, lambda: screen.model is not None and screen.model.rows == 105)
        await until(pilot, lambda: _shown(screen)[-1] == "line 4")
        await pilot.press("up")
        assert not view.follow
        assert "paused" in str(screen.query_one("#logs-header").render())
        subprocess.run([sys.executable, str(WRITER), "lines", str(path), "3", "0"], check=True)
        await until(pilot, lambda: screen.model is not None and screen.model.rows == 108)
        assert _shown(screen)[-1] != "line 2"  # paused: the view stays put
        await pilot.press("end")
        assert view.follow
        await until(pilot, lambda: _shown(screen)[-1] == "line 2")
        await pilot.press("f")
        assert not view.follow
        await pilot.press("f")
        assert view.follow


async def test_search_moves_between_matches_with_n_and_shift_n(tmp_path: Path) -> None:
    lines = [f"step {i} {'loss=nan' if i in (10, 70, 130) else 'ok'}" for i in range(200)]
    app = LogsApp([_log(tmp_path, lines)], follow=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _opened(pilot, app, 200)
        await pilot.press("slash")
        assert isinstance(app.focused, LogInput)
        await type_text(pilot, "nan")
        await pilot.press("enter")
        await until(pilot, lambda: screen.view.cursor_row == 10)
        await pilot.press("n")
        await until(pilot, lambda: screen.view.cursor_row == 70)
        await pilot.press("n")
        await until(pilot, lambda: screen.view.cursor_row == 130)
        await pilot.press("N")
        await until(pilot, lambda: screen.view.cursor_row == 70)
        row = screen.view.cursor_row - screen.view.top_row
        assert "loss=nan" in _shown(screen)[row]
        await pilot.press("escape")  # clears the search first
        assert screen.view.cursor_row is None and isinstance(app.screen, LogsScreen)


async def test_filter_and_invert(tmp_path: Path) -> None:
    lines = [f"{'ERROR' if i % 10 == 0 else 'INFO'} step {i}" for i in range(100)]
    app = LogsApp([_log(tmp_path, lines)])
    async with app.run_test(size=SIZE) as pilot:
        screen = await _opened(pilot, app, 100)
        await pilot.press("ampersand")
        await type_text(pilot, "error")
        await pilot.press("enter")
        model = screen.model
        assert model is not None
        await until(pilot, lambda: model.filter is not None and model.rows == 10)
        assert all(line.startswith("ERROR") for line in _shown(screen)[:10])
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: model.filter is not None and model.rows == 90)
        assert model.filter is not None and model.filter.invert
        shown = [line for line in _shown(screen) if line]
        assert shown[-1] == "INFO step 99"  # following: the newest kept line at the bottom
        assert not any(line.startswith("ERROR") for line in shown)
        await pilot.press("escape")
        await until(pilot, lambda: model.filter is None and model.rows == 100)


async def test_timestamps_hide_and_progress_bars_show_their_last_state(tmp_path: Path) -> None:
    lines = [
        "2024-05-01 12:00:00,123 - train - INFO - epoch 1",
        "[2024-05-01T12:00:01Z] epoch 2",
        " 20%|##   |\r 80%|######## |\r100%|##########|",
    ]
    app = LogsApp([_log(tmp_path, lines)])
    async with app.run_test(size=SIZE) as pilot:
        screen = await _opened(pilot, app, 3)
        assert _shown(screen)[:3] == [lines[0], lines[1], "100%|##########|"]
        await pilot.press("t")
        await until(pilot, lambda: _shown(screen)[0] == "train - INFO - epoch 1")
        assert _shown(screen)[1] == "epoch 2"
        await pilot.press("t")
        await until(pilot, lambda: _shown(screen)[0] == lines[0])


async def test_wrap_splits_long_lines_over_rows(tmp_path: Path) -> None:
    long = "x" * 250 + " end"
    app = LogsApp([_log(tmp_path, ["short", long])], follow=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _opened(pilot, app, 2)
        assert _shown(screen)[1].endswith("x") and "end" not in _shown(screen)[1]
        await pilot.press("w")
        await until(pilot, lambda: screen.view.wrap)
        shown = _shown(screen)
        assert shown[0] == "short" and "end" in "".join(shown[1:4])


async def test_a_runs_logs_come_from_the_store(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    with start_run(root / "runs", name="printer", capture_output=True) as run:
        print("hello from the run")
        run.log(step=0, loss=1.0)
    (run.folder / "extra.err").write_text("stderr line\n")
    store = open_memory_store()
    ingest(root, store)
    app = LogsApp(run_id=next(r.id for r in store.runs()), store=store)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, LogsScreen))
        screen = _screen(app)
        await until(pilot, lambda: len(screen.models) == 2)
        assert "printer" in str(screen.query_one("#logs-header").render())
        await until(pilot, lambda: screen.model is not None and screen.model.rows >= 1)
        assert {m.path.name for m in screen.models} == {"output.log", "extra.err"}
        first = screen.model
        await pilot.press("right_square_bracket")
        assert screen.model is not first


async def test_every_binding_has_an_id_and_help_lists_them(tmp_path: Path) -> None:
    for cls in (LogsScreen, LogView, LogInput):
        for binding in cls.BINDINGS:
            assert isinstance(binding, Binding) and binding.id, (cls.__name__, binding)
    app = LogsApp([_log(tmp_path, ["a"])])
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot, app, 1)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = app.export_screenshot().replace("&#160;", " ")
        for binding_id in ("logs.follow", "logs.search", "logs.filter", "logs.invert",
                           "logs.timestamps", "logs.wrap", "logs.next", "logs.end"):  # fmt: skip
            assert binding_id in text, binding_id
