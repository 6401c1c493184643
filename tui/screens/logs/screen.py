"""A run's console and log files, followed live (``l`` on a run, or ``mltop FILE.log``).

    LogsScreen(run_id="…")                   # the logs the store lists for a run
    LogsScreen(paths=[Path("train.log")])    # any files
    LogsScreen(run_id=…, store=store)        # outside MltopApp: pass the store to read

One worker thread keeps every file's :class:`~mltop.core.logs.logmodel.LogModel` current
(:func:`~mltop.core.logs.logmodel.follow_logs`: inotify wakes it, updates coalesce to at most 20 a
second) and posts :class:`~mltop.tui.screens.logs.messages.LogsChanged`; the
:class:`~mltop.tui.widgets.log_view.LogView` then draws only the rows in view. Searches run in
their own worker, so a search through a gigabyte never blocks scrolling; a filter is built by the
follow worker a chunk at a time. The header row is :mod:`~mltop.tui.screens.logs.header`; the
stand-alone app for ``mltop FILE.log`` is :mod:`~mltop.tui.screens.logs.standalone`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from mltop.core.common.sanitize import inert
from mltop.core.entities import Run
from mltop.core.logs.filewatch import FileWatch
from mltop.core.logs.loghighlight import timestamp_length
from mltop.core.logs.logmodel import LineMatcher, LogModel, PatternError, follow_logs
from mltop.core.store import Store
from mltop.tui.commands import ScreenCommand
from mltop.tui.screens.base import MltopScreen, back_binding
from mltop.tui.screens.logs.header import logs_header, run_state
from mltop.tui.screens.logs.messages import LogsChanged, RunLogsLoaded, RunRefreshed, SearchDone
from mltop.tui.widgets.keybar import KeyBar
from mltop.tui.widgets.log_view import LogView

__all__ = ["LogInput", "LogsScreen"]

#: Seconds between checks for a run's log files when it has none yet (a job about to print).
LOGS_RETRY = 3.0
#: Typing in the filter field applies it after this pause.
FILTER_DELAY = 0.25
#: The screen repaints a followed log at most this often (seconds).
PAINT_INTERVAL = 0.1


class LogInput(Input):
    """The search/filter field; escape closes it and keeps what was applied before."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "cancel", show=False, id="logs.input_cancel"),
    ]

    def action_cancel(self) -> None:
        screen = self.screen
        if isinstance(screen, LogsScreen):
            screen.cancel_input()


class LogsScreen(MltopScreen[None]):
    """Log files of a run (``run_id``) or any files (``paths``), followed as they grow.

    ``store`` is the store to read a run's log list from; inside :class:`~mltop.tui.app.MltopApp`
    it may be left out (the app's store is used). ``follow`` starts in ``tail -f`` mode.
    """

    CSS_PATH = "logs.tcss"
    HELP_TITLE = "logs"

    BINDINGS: ClassVar[list[BindingType]] = [
        back_binding("logs"),
        Binding("f", "toggle_follow", "follow", id="logs.follow"),
        # Priority (as the runs filter's "/"): a plain binding would run only after the letters
        # typed right behind it, already queued in a fast terminal, went to the log view.
        Binding("slash", "search", "search", priority=True, id="logs.search"),
        Binding("n", "find(True)", "next match", id="logs.next"),
        Binding("N", "find(False)", "previous match", show=False, id="logs.previous"),
        Binding("ampersand", "filter", "filter", priority=True, id="logs.filter"),
        Binding("exclamation_mark", "invert_filter", "invert filter", id="logs.invert"),
        Binding("t", "toggle_timestamps", "timestamps", id="logs.timestamps"),
        Binding("w", "toggle_wrap", "wrap", id="logs.wrap"),
        Binding("right_square_bracket", "switch_file(1)", "next file", id="logs.next_file"),
        Binding("left_square_bracket", "switch_file(-1)", "previous file", show=False,
                id="logs.previous_file"),
    ]  # fmt: skip

    def __init__(
        self,
        run_id: str | None = None,
        paths: Sequence[str | Path] = (),
        store: Store | None = None,
        *,
        follow: bool = True,
        title: str | None = None,
    ) -> None:
        if run_id is None and not paths:
            raise ValueError("LogsScreen needs a run_id or paths")
        super().__init__()
        self.run_id = run_id
        self.paths = [Path(p) for p in paths]
        self.store = store
        self.title_text = title
        self.run: Run | None = None
        self.models: list[LogModel] = []
        self.current = 0
        self._start_follow = follow
        self._stop = threading.Event()
        self._watch: FileWatch | None = None
        self._input_mode: str | None = None  # "search" | "filter" while the field is open
        self._filter_timer: Timer | None = None
        self._paint_timer: Timer | None = None
        self._last_paint = 0.0
        self._view_stale = False
        self._filter_invert = False
        self._last_search: LineMatcher | None = None
        # Whether the log can still grow (plain files, a running run): follow keys are shown.
        self._growing = True

    # -- layout ------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(Text(" loading…", style="dim"), id="logs-header")
        yield Static("", id="logs-files")
        yield LogView(id="logs-view")
        with Horizontal(id="logs-input-row"):
            yield Static("/", id="logs-prompt")
            yield LogInput(id="logs-input", compact=True)
            yield Static("", id="logs-input-note")
        yield KeyBar(id="logs-keys")

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    @property
    def model(self) -> LogModel | None:
        return self.models[self.current] if self.models else None

    def on_mount(self) -> None:
        self.query_one("#logs-input-row").display = False
        self.view.follow = self._start_follow
        self.view.focus()
        if self.paths:
            self._open_models(self.paths)
        else:
            self._load_run()

    def on_resize(self) -> None:
        self._draw_header()  # the header is fitted to the width

    def on_unmount(self) -> None:
        # The follow worker closes the files once it has stopped using them.
        self._stop_following()
        if not self.models or self._watch is None:
            for model in self.models:
                model.close()

    # -- loading -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _store(self) -> Iterator[Store]:
        if self.store is not None:
            yield self.store
            return
        in_use = getattr(self.app, "store_in_use", None)
        if in_use is None:
            raise RuntimeError("no store to read the run's logs from")
        with in_use() as store:
            yield store

    @work(thread=True, exclusive=True, group="logs-load", exit_on_error=False)
    def _load_run(self) -> None:
        worker = get_current_worker()
        while not worker.is_cancelled:
            try:
                with self._store() as store:
                    run = store.run(self.run_id or "")
                    paths = [Path(log.path) for log in store.logs(self.run_id or "")]
            except Exception as exc:  # a closed store while quitting, a missing run
                self.post_message(RunLogsLoaded(None, [], f"{type(exc).__name__}: {exc}"))
                return
            self.post_message(RunLogsLoaded(run, paths))
            if paths or run is None:
                return
            # A run that has not printed yet may create its log any moment: look again.
            self._stop.wait(LOGS_RETRY)
            if self._stop.is_set():
                return

    def live_changed(self, run_ids: frozenset[str]) -> None:
        """The live watcher imported rows of this run: its status and duration may have moved."""
        if self.run is not None and self.run.id in run_ids:
            self._refresh_run()

    @work(thread=True, exclusive=True, group="logs-run", exit_on_error=False)
    def _refresh_run(self) -> None:
        try:
            with self._store() as store:
                run = store.run(self.run_id or "")
        except Exception:  # a closed store while quitting: the header keeps what it shows
            return
        if run is not None:
            self.post_message(RunRefreshed(run))

    def on_run_refreshed(self, message: RunRefreshed) -> None:
        self.run = message.run
        self._draw_header()

    def on_run_logs_loaded(self, message: RunLogsLoaded) -> None:
        self.run = message.run
        if message.error:
            self.view.notice = f"cannot read the run's logs: {message.error}"
        elif message.run is None:
            self.view.notice = "this run is no longer in the store"
        elif not message.paths:
            self.view.notice = (
                "this run has no log files yet (mltop run folders get output.log with "
                "start_run(..., capture_output=True); *.log, *.out, *.err in the run folder count)"
            )
        self.view.model_changed()
        if message.paths and not self.models:
            self._open_models(message.paths)
        self._draw_header()

    def _open_models(self, paths: Sequence[Path]) -> None:
        self.models = [LogModel(p) for p in paths]
        self.current = 0
        self.view.set_model(self.model)
        self._draw_header()
        self._start_following()

    # -- following ---------------------------------------------------------------------------------

    def _start_following(self) -> None:
        self._stop_following()
        self._stop = threading.Event()
        self._watch = FileWatch([m.path for m in self.models]).start()
        self._follow(self.models, self._watch, self._stop)

    def _stop_following(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
            self._watch = None

    @work(thread=True, exclusive=True, group="logs-follow", exit_on_error=False)
    def _follow(self, models: list[LogModel], watch: FileWatch, stop: threading.Event) -> None:
        try:
            follow_logs(
                models,
                lambda changes: self.post_message(LogsChanged(changes)),
                stop,
                watch=watch,
            )
        except OSError as exc:
            if not stop.is_set():
                self.app.call_from_thread(
                    self.notify, f"following stopped: {exc}", severity="error", timeout=10
                )
        finally:
            if stop.is_set():
                for model in models:
                    model.close()

    def on_logs_changed(self, message: LogsChanged) -> None:
        for model, change in message.changes:
            name = inert(model.title)
            if change.refresh.truncated:
                self.notify(f"{name} was truncated: reading it from the start", timeout=4)
            if change.refresh.rotated:
                self.notify(f"{name} was rotated: following the new file", timeout=4)
            if change.refresh.deleted:
                self.notify(f"{name} was deleted", severity="warning", timeout=6)
            if change.refresh.appeared:
                self.notify(f"{name} appeared", timeout=3)
        if any(model is self.model for model, _ in message.changes):
            self._view_stale = True
        self._schedule_paint()

    def _schedule_paint(self) -> None:
        """Repaint at most every :data:`PAINT_INTERVAL` seconds.

        The model takes every line as it is written; the screen shows the newest state ten
        times a second. A job printing a thousand lines a second replaces the whole view on each
        paint, and each paint costs Textual about as much as the rest of following combined.
        """
        if self._paint_timer is not None:
            return
        wait = PAINT_INTERVAL - (time.monotonic() - self._last_paint)
        if wait <= 0:
            self._paint()
        else:
            self._paint_timer = self.set_timer(wait, self._paint)

    def _paint(self) -> None:
        self._paint_timer = None
        self._last_paint = time.monotonic()
        if self._view_stale:
            self._view_stale = False
            self.view.model_changed()
        self._draw_header()

    @on(LogView.FollowChanged)
    def _follow_changed(self) -> None:
        self._draw_header()

    # -- header ------------------------------------------------------------------------------------

    def _draw_header(self) -> None:
        state = run_state(self.run)
        # A finished run's log is complete: "following" it would promise lines that never come.
        growing = (self.run is None and self.run_id is None) or state in ("running", "stale")
        if growing != self._growing:
            self._growing = growing
            hidden = frozenset() if growing else frozenset({"toggle_follow", "follow_end"})
            self.query_one(KeyBar).update_keys(hidden=hidden)
        following = self.view.follow if growing else None
        row = self.query_one("#logs-header", Static)
        width = row.content_size.width or self.app.size.width
        header = logs_header(self.run, self.title_text, self.model, following, width)
        row.update(header, layout=False)  # one fixed row
        self._draw_files()

    def _draw_files(self) -> None:
        files = self.query_one("#logs-files", Static)
        files.display = len(self.models) > 1
        if len(self.models) < 2:
            return
        line = Text(no_wrap=True, overflow="ellipsis")
        for i, model in enumerate(self.models):
            label = f" {inert(model.title)} "
            line.append(label, style="bold reverse" if i == self.current else "dim")
            line.append(" ")
        line.append(" [ ] switch", style="dim")
        files.update(line, layout=False)

    # -- actions -----------------------------------------------------------------------------------

    def action_back(self) -> None:
        model = self.model
        if model is not None and (model.search is not None or self.view.cursor_row is not None):
            model.search = None
            self.view.cursor_row = None
            return
        if model is not None and model.filter is not None:
            self._set_filter(None)
            return
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
        else:
            self.app.exit(0)

    def action_toggle_follow(self) -> None:
        self.view.follow = not self.view.follow

    def action_toggle_wrap(self) -> None:
        self.view.wrap = not self.view.wrap
        self.notify("wrap on" if self.view.wrap else "wrap off", timeout=1.5)

    def action_toggle_timestamps(self) -> None:
        hide = not (self.model.hide_timestamps if self.model else False)
        for model in self.models:
            model.hide_timestamps = hide
        self.view.model_changed()
        if hide and self.model is not None and not self._visible_timestamps():
            self.notify("no timestamps at the start of the lines on screen", timeout=3)
        else:
            self.notify("timestamps hidden" if hide else "timestamps shown", timeout=1.5)

    def _visible_timestamps(self) -> bool:
        model = self.model
        if model is None:
            return False
        top = self.view.top_row
        rows = range(top, min(model.rows, top + self.view.size.height))
        return any(timestamp_length(model.plain(row)) for row in rows)

    def action_switch_file(self, step: int) -> None:
        if len(self.models) < 2:
            return
        self.current = (self.current + step) % len(self.models)
        self.view.set_model(self.model)
        self._draw_header()

    # -- search and filter -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # In the search or filter field, / and & are text (a path, a regex), not commands.
        return not (action in ("search", "filter") and isinstance(self.focused, Input))

    def action_search(self) -> None:
        self._open_input("search")

    def action_filter(self) -> None:
        self._open_input("filter")

    def _open_input(self, mode: str) -> None:
        self._input_mode = mode
        row = self.query_one("#logs-input-row")
        row.display = True
        field = self.query_one("#logs-input", Input)
        model = self.model
        if mode == "search":
            self.query_one("#logs-prompt", Static).update("/")
            field.placeholder = "search (regex; n/N next/previous, capitals match case)"
            current = model.search.pattern if model and model.search else ""
        else:
            prompt = "!" if self._filter_invert else "&"
            self.query_one("#logs-prompt", Static).update(prompt)
            field.placeholder = "show only lines matching (regex; ! inverts)"
            current = model.filter.pattern if model and model.filter else ""
        with field.prevent(Input.Changed):
            field.value = current
        self._note("")
        # Focus at once (``focus()`` waits a message loop): keys typed fast after / go here.
        self.set_focus(field)
        field.cursor_position = len(current)

    def _close_input(self) -> None:
        self._input_mode = None
        self.query_one("#logs-input-row").display = False
        self.set_focus(self.view)

    def _note(self, text: str, error: bool = False) -> None:
        self.query_one("#logs-input-note", Static).update(
            Text(text, style="bold red" if error else "dim")
        )

    def _matcher(self, text: str, invert: bool = False) -> LineMatcher | None:
        if not text:
            return None
        try:
            matcher = LineMatcher(text, invert=invert)
        except PatternError as exc:
            self._note(str(exc), error=True)
            raise
        self._note("")
        return matcher

    @on(Input.Changed, "#logs-input")
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        model = self.model
        if model is None:
            return
        invert = self._input_mode == "filter" and self._filter_invert
        try:
            matcher = self._matcher(event.value, invert)
        except PatternError:
            return
        if self._input_mode == "search":
            model.search = matcher
            self.view.model_changed()
        elif self._input_mode == "filter":
            if self._filter_timer is not None:
                self._filter_timer.stop()
            self._filter_timer = self.set_timer(
                FILTER_DELAY, lambda: self._set_filter(matcher, keep_input=True)
            )

    @on(Input.Submitted, "#logs-input")
    def _input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        mode = self._input_mode
        try:
            matcher = self._matcher(event.value, mode == "filter" and self._filter_invert)
        except PatternError:
            return
        self._close_input()
        if mode == "filter":
            if self._filter_timer is not None:
                self._filter_timer.stop()
            self._set_filter(matcher)
        elif mode == "search" and self.model is not None:
            search = matcher
            self.model.search = search
            self._last_search = search
            self.view.model_changed()
            if search is not None:
                start = self.view.cursor_row
                self._find(search, self.view.top_row - 1 if start is None else start, True)

    def cancel_input(self) -> None:
        """Escape in the search or filter field: close it, keep what was applied before."""
        if self._input_mode == "search" and self.model is not None:
            self.model.search = self._last_search
            self.view.model_changed()
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._close_input()

    def _set_filter(self, matcher: LineMatcher | None, keep_input: bool = False) -> None:
        model = self.model
        if model is None:
            return
        if matcher is not None:
            self._filter_invert = matcher.invert
        model.set_filter(matcher)
        self.view.cursor_row = None
        self.view.model_changed()
        if self._watch is not None:
            self._watch.wake()  # the follow worker builds the filter
        if not keep_input and self._input_mode is not None:
            self._close_input()
        self._draw_header()

    def action_invert_filter(self) -> None:
        model = self.model
        if model is None or model.filter is None:
            self._filter_invert = not self._filter_invert
            self.notify(
                "the next filter hides matching lines"
                if self._filter_invert
                else "the next filter shows matching lines",
                timeout=2,
            )
            return
        self._set_filter(model.filter.inverted())

    def action_find(self, forward: bool) -> None:
        model = self.model
        search = model.search if model is not None else None
        if search is None:
            search = self._last_search
        if model is None or search is None:
            self.notify("no search yet: / to search", timeout=2)
            return
        model.search = search
        start = self.view.cursor_row
        if start is None:
            start = self.view.top_row - 1 if forward else self.view.top_row
        self._find(search, start, forward)

    def _find(self, matcher: LineMatcher, after_row: int, forward: bool) -> None:
        if self.model is not None:
            self._search_worker(self.model, matcher, after_row, forward)

    @work(thread=True, exclusive=True, group="logs-search", exit_on_error=False)
    def _search_worker(
        self, model: LogModel, matcher: LineMatcher, after_row: int, forward: bool
    ) -> None:
        worker = get_current_worker()
        try:
            found = model.find(
                matcher, after_row, forward=forward, cancelled=lambda: worker.is_cancelled
            )
        except OSError:  # the file was closed under the search (the screen is going away)
            return
        if worker.is_cancelled:
            return
        row, wrapped = found if found is not None else (None, False)
        self.post_message(SearchDone(model, row, wrapped, matcher.pattern, forward))

    def on_search_done(self, message: SearchDone) -> None:
        if message.model is not self.model:
            return
        if message.row is None:
            self.notify(f"no match for {inert(message.pattern)}", severity="warning", timeout=3)
            return
        if message.wrapped:
            where = "top" if message.forward else "bottom"
            self.notify(f"search wrapped to the {where}", timeout=2)
        self.view.show_row(message.row)

    # -- help and the palette ----------------------------------------------------------------------

    def help_extra(self) -> Text:
        return Text(
            "\nLines with ERROR/CRITICAL/FATAL and tracebacks show red, WARNING yellow; leading "
            "timestamps are dimmed (t hides them). A line redrawn with carriage returns (tqdm "
            "progress bars) shows its last state. Colour codes from the log are kept; every other "
            "escape sequence is dropped or shown as text, never acted on.",
            style="dim",
        )

    def commands(self) -> list[ScreenCommand]:
        return [
            ScreenCommand(
                f"logs: show {inert(m.title)}", str(m.path), lambda i=i: self._show_file(i)
            )
            for i, m in enumerate(self.models)
        ]

    def _show_file(self, index: int) -> None:
        self.current = index
        self.view.set_model(self.model)
        self._draw_header()
