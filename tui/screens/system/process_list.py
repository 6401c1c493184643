"""The Host screen's process list: a header line and one line per process, with a cursor.

Drawn as one block of text rather than a DataTable: the screen above it changes every second,
and a DataTable redraws every cell each time anything else on the screen is updated, which
alone cost more than the Host screen's whole budget (bench/host.py).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widget import Widget


class ProcessList(Widget, can_focus=True):
    DEFAULT_CSS = """
    ProcessList {
        height: 1fr;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "move(1)", "down", show=False, id="host.down"),
        Binding("up,k", "move(-1)", "up", show=False, id="host.up"),
        Binding("pagedown", "page(1)", "page down", show=False, id="host.page_down"),
        Binding("pageup", "page(-1)", "page up", show=False, id="host.page_up"),
        Binding("home,g", "move(-1000000)", "first", show=False, id="host.first"),
        Binding("end,G", "move(1000000)", "last", show=False, id="host.last"),
    ]

    cursor: reactive[int] = reactive(0)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.header = Text("")
        self.rows: list[Text] = []
        self.top = 0

    def set_rows(self, header: Text, rows: list[Text], cursor: int | None = None) -> None:
        self.header, self.rows = header, rows
        if cursor is not None:
            self.cursor = cursor
        self.cursor = max(0, min(self.cursor, len(rows) - 1))
        self.refresh()

    def _visible(self) -> int:
        return max(1, self.size.height - 1)

    def render(self) -> Text:
        visible = self._visible()
        if self.cursor < self.top:
            self.top = self.cursor
        elif self.cursor >= self.top + visible:
            self.top = self.cursor - visible + 1
        self.top = max(0, min(self.top, max(0, len(self.rows) - visible)))
        out = Text(no_wrap=True, overflow="crop")
        out.append_text(self.header)
        for index in range(self.top, min(len(self.rows), self.top + visible)):
            out.append("\n")
            line = self.rows[index].copy()
            if index == self.cursor and self.has_focus:
                line.stylize("reverse")
            out.append_text(line)
        return out

    def watch_cursor(self) -> None:
        self.refresh()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def action_move(self, delta: int) -> None:
        if self.rows:
            self.cursor = max(0, min(len(self.rows) - 1, self.cursor + delta))

    def action_page(self, direction: int) -> None:
        self.action_move(direction * self._visible())

    def on_click(self, event: events.Click) -> None:
        row = self.top + event.y - 1
        if 0 <= row < len(self.rows):
            self.cursor = row
