"""A log file's lines on screen: a Line-API ScrollView that renders only the visible rows.

The widget holds no lines. Its virtual height is the model's row count, and each refresh asks
:class:`~mltop.core.logs.logmodel.LogModel` for the rows in view (a page read or two, cached), so a
gigabyte log scrolls like a small one. Following (``tail -f``) keeps the view at the end while
rows arrive; scrolling up pauses it, ``end`` resumes it. With wrapping on, rows are still one per
line for scrolling and each line takes as many screen rows as it needs; at the end the view is
anchored to the bottom so the newest line is always whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from mltop.core.logs.loghighlight import clean_line, render
from mltop.core.logs.logmodel import LogModel
from mltop.tui.widgets.segments import text_segments

#: Horizontal extent never grows past this (a 1 MB line would make the scrollbar useless).
MAX_WIDTH = 4000


class LogView(ScrollView, can_focus=True, inherit_bindings=False):
    """Rows of a :class:`LogModel`; the screen owns the model and tells the view when it changed."""

    HELP_SECTION = "log view"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "scroll_up", "scroll up", show=False, id="logs.up"),
        Binding("down,j", "scroll_down", "scroll down", show=False, id="logs.down"),
        Binding("left,h", "scroll_left", "scroll left", show=False, id="logs.left"),
        Binding("right,l", "scroll_right", "scroll right", show=False, id="logs.right"),
        Binding("pageup,b", "page_up", "page up", show=False, id="logs.page_up"),
        Binding("pagedown,space", "page_down", "page down", show=False, id="logs.page_down"),
        Binding("home,g", "scroll_home", "first line", show=False, id="logs.home"),
        Binding("end,G", "follow_end", "resume follow", id="logs.end"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {"log-view--cursor", "log-view--notice"}

    DEFAULT_CSS = """
    LogView {
        height: 1fr;
        width: 1fr;
        background: $surface;
        scrollbar-size-vertical: 0;
        scrollbar-size-horizontal: 1;
    }
    LogView > .log-view--cursor {
        background: $accent 30%;
    }
    LogView > .log-view--notice {
        color: $text-muted;
        text-style: italic;
    }
    """

    follow: reactive[bool] = reactive(True)
    wrap: reactive[bool] = reactive(False)
    cursor_row: reactive[int | None] = reactive(None)

    @dataclass
    class FollowChanged(Message):
        """Following was switched on or off (by a key, or by scrolling away from the end)."""

        view: LogView
        follow: bool

    def __init__(self, model: LogModel | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model
        self._max_width = 0
        self._frame_key: tuple[object, ...] | None = None
        self._frame: list[Strip] = []
        self._programmatic = False
        self.notice: str | None = None  # shown when there are no rows (missing file, no match)

    # -- the model --------------------------------------------------------------------------------

    def set_model(self, model: LogModel | None) -> None:
        """Show another file (the screen keeps one model per file)."""
        self.model = model
        self._max_width = 0
        self.cursor_row = None
        self.model_changed()
        if self.follow:
            self._scroll_to_end()
        else:
            self._jump(0)

    def model_changed(self) -> None:
        """The model gained or lost rows: resize the scroll area, keep following."""
        rows = self.model.rows if self.model is not None else 0
        # The content's width, not the widget's: a virtual width that counts the vertical
        # scrollbar's column would bring up a horizontal scrollbar for nothing.
        room = self.scrollable_content_region.width
        width = room if self.wrap else max(self._max_width, room)
        self.virtual_size = Size(width, rows)
        if self.follow:
            self._scroll_to_end()
        self._frame_key = None
        self.refresh()

    def _jump(self, y: float) -> None:
        self._programmatic = True
        try:
            # force: right after the content grows, the scrollbar (and with it permission to
            # scroll) only appears at the next layout.
            self.scroll_to(y=y, animate=False, immediate=True, force=True)
        finally:
            self._programmatic = False

    def _scroll_to_end(self) -> None:
        self._jump(max(0, self.virtual_size.height - self.scrollable_content_region.height))
        # Once laid out, a new horizontal scrollbar may have taken a row: look again.
        self.call_after_refresh(self._settle_at_end)

    def _settle_at_end(self) -> None:
        if self.follow:
            end = max(0, self.virtual_size.height - self.scrollable_content_region.height)
            if int(self.scroll_y) != end:
                self._jump(end)

    # -- following --------------------------------------------------------------------------------

    def watch_follow(self, follow: bool) -> None:
        # Following, the view is at the end by definition: the vertical scrollbar would say
        # nothing and costs a second paint for every batch of lines (its thumb moves). Paused,
        # it shows where in the file the view is.
        self.styles.scrollbar_size_vertical = 0 if follow else 1
        self.call_after_refresh(self.model_changed)  # the content width changed with it
        if follow:
            self._scroll_to_end()
        self._frame_key = None
        self.refresh()
        self.post_message(self.FollowChanged(self, follow))

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        # The reader scrolled up to look at something: stop chasing the end. (A view that
        # shrank, say to a filter's few rows, also moves up, but stays at its end.)
        if self.follow and not self._programmatic and new < old and new < self.max_scroll_y:
            self.follow = False

    def watch_wrap(self) -> None:
        self.model_changed()

    def watch_cursor_row(self) -> None:
        self._frame_key = None
        self.refresh()

    def action_follow_end(self) -> None:
        self.cursor_row = None
        if self.follow:
            self._scroll_to_end()
        self.follow = True

    def action_scroll_home(self) -> None:
        self.follow = False
        self._jump(0)

    def action_scroll_up(self) -> None:
        self.follow = False
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self.follow = False
        super().action_page_up()

    def show_row(self, row: int) -> None:
        """Put ``row`` under the cursor and in view (a search result); pauses following."""
        self.follow = False
        self.cursor_row = row
        height = self.scrollable_content_region.height
        if not self.scroll_y <= row < self.scroll_y + height - 1:
            self._jump(max(0, row - height // 3))

    @property
    def top_row(self) -> int:
        return int(self.scroll_y)

    # -- rendering --------------------------------------------------------------------------------

    def on_resize(self) -> None:
        self.model_changed()

    def render_line(self, y: int) -> Strip:
        frame = self._current_frame()
        if 0 <= y < len(frame):
            return frame[y]
        return Strip.blank(self.scrollable_content_region.width, self.rich_style)

    def _current_frame(self) -> list[Strip]:
        model = self.model
        region = self.scrollable_content_region
        key = (
            id(model),
            model.version if model is not None else 0,
            model.hide_timestamps if model is not None else False,
            model.search.pattern if model is not None and model.search else None,
            model.indexing if model is not None else False,
            int(self.scroll_y),
            int(self.scroll_x),
            region.width,
            region.height,
            self.wrap,
            self.follow,
            self.cursor_row,
            self.notice,
        )
        if key != self._frame_key:
            self._frame = self._build_frame(region.width, region.height)
            self._frame_key = key
        return self._frame

    def _build_frame(self, width: int, height: int) -> list[Strip]:
        model = self.model
        base = self.rich_style
        if model is None or model.rows == 0:
            # A notice is a sentence or two: wrapped to the width, never cut at the edge.
            style = self.get_component_rich_style("log-view--notice")
            notice = Text(self.notice or "", style=style)
            lines = notice.wrap(self.app.console, max(1, width)) if notice else []
            return [self._strip(line, width, base) for line in lines][:height]
        if self.follow and model.indexing and model.filter is None:
            # Still indexing a big file: show its real end, read from the end, meanwhile.
            lines = model.file.tail_preview(height)
            texts = [render(clean_line(raw), hide_timestamp=model.hide_timestamps) for raw in lines]
            return self._layout(texts, [None] * len(texts), width, height, bottom=True)
        rows = model.rows
        top = int(self.scroll_y)
        bottom = self.wrap and (self.follow or top >= rows - height)
        if bottom:
            # Wrapped lines take more room: walk back from the end until the screen is full.
            rows_shown: list[int] = []
            texts: list[Text] = []
            used = 0
            row = rows - 1
            while row >= 0 and used < height:
                text = model.render(row)
                used += max(1, len(text.wrap(self.app.console, max(1, width))))
                rows_shown.insert(0, row)
                texts.insert(0, text)
                row -= 1
        else:
            rows_shown = list(range(top, min(rows, top + height)))
            texts = [model.render(row) for row in rows_shown]
        if not self.wrap:
            widest = max((t.cell_len for t in texts), default=0)
            if widest > self._max_width:
                self._max_width = min(MAX_WIDTH, widest)
                self.call_later(self._grow_width)
        return self._layout(texts, rows_shown, width, height, bottom=bottom)

    def _grow_width(self) -> None:
        if not self.wrap and self._max_width > self.virtual_size.width:
            self.virtual_size = Size(self._max_width, self.virtual_size.height)

    def _layout(
        self,
        texts: list[Text],
        rows: Sequence[int | None],
        width: int,
        height: int,
        *,
        bottom: bool,
    ) -> list[Strip]:
        base = self.rich_style
        cursor = self.get_component_rich_style("log-view--cursor")
        strips: list[Strip] = []
        for text, row in zip(texts, rows, strict=True):
            style = base + cursor if row is not None and row == self.cursor_row else base
            if self.wrap:
                for piece in text.wrap(self.app.console, max(1, width)) or [Text("")]:
                    strips.append(self._strip(piece, width, style))
            else:
                strips.append(self._strip(text, width, style, int(self.scroll_x)))
        if bottom:
            return strips[-height:] if len(strips) > height else strips
        return strips[:height]

    def _strip(self, text: Text, width: int, style: Style, x: int = 0) -> Strip:
        segments = text_segments(text, self.app.console)
        strip = Strip(Segment.apply_style(segments, style), text.cell_len)
        return strip.crop_extend(x, x + width, style)
