"""The one-line filter under the header: ``/`` to type, a caret under mistakes, a match count,
and a warning when the filter names a metric no run has.

It only edits text and reports it (``Changed`` as you type, ``Submitted`` on enter, ``Cleared``
on escape); the screen compiles and runs the filter in a worker and answers with
:meth:`FilterBar.show_error` or :meth:`FilterBar.show_count`. A bad filter never empties the
table: the screen keeps the last good result and the caret says what to fix.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Static

from mltop.core.common.sanitize import inert

PROMPT = "/ "


def caret_line(text: str, position: int, message: str, offset: int = 0) -> Text:
    """``^ message`` under column ``position`` of ``text`` as the input shows it.

    ``offset`` is the input's horizontal scroll; wide characters take two columns.
    """
    position = max(0, min(position, len(text)))
    column = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text[:position])
    column = max(0, column - offset) + len(PROMPT)
    line = Text(" " * column, no_wrap=True, overflow="ellipsis")
    line.append("^ ", style="bold")
    line.append(inert(message))
    return line


class FilterInput(Input):
    """The filter's text field: enter applies, escape clears.

    Both are priority bindings that move the focus at once, so keys typed right after them
    (``/lr<enter>s``) reach the table rather than the input.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "submit_filter", "apply filter", show=False, priority=True,
                id="filter.apply"),
        Binding("escape", "clear_filter", "clear filter", show=False, priority=True,
                id="filter.clear"),
    ]  # fmt: skip

    def _bar(self) -> FilterBar | None:
        bar = self.parent.parent if self.parent else None
        return bar if isinstance(bar, FilterBar) else None

    def action_submit_filter(self) -> None:
        bar = self._bar()
        if bar is not None:
            bar.submit()

    def action_clear_filter(self) -> None:
        bar = self._bar()
        if bar is not None:
            bar.clear()


class FilterBar(Widget):
    """Filter input, match count and (only when the filter is wrong) a caret line."""

    DEFAULT_CSS = """
    FilterBar {
        height: auto;
        width: 1fr;
    }
    FilterBar > Horizontal {
        height: 1;
        width: 1fr;
    }
    FilterBar .filter--prompt {
        width: 2;
        color: $accent;
        text-style: bold;
    }
    FilterBar FilterInput {
        border: none;
        height: 1;
        width: 1fr;
        padding: 0;
        background: transparent;
    }
    FilterBar FilterInput:focus {
        background: $boost;
    }
    FilterBar FilterInput > .input--placeholder {
        color: $text-disabled;
    }
    FilterBar .filter--count {
        width: auto;
        min-width: 10;
        padding: 0 1;
        color: $text-muted;
        text-align: right;
    }
    FilterBar .filter--error {
        height: 1;
        color: $error;
        display: none;
    }
    FilterBar.-error .filter--error {
        display: block;
    }
    FilterBar.-error .filter--count {
        color: $error;
    }
    FilterBar .filter--warning {
        height: auto;
        color: $warning;
        display: none;
    }
    FilterBar.-warning .filter--warning {
        display: block;
    }
    """

    @dataclass
    class Changed(Message):
        text: str

    @dataclass
    class Submitted(Message):
        text: str

    class Cleared(Message):
        pass

    def __init__(self, placeholder: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._placeholder = placeholder
        self._error: tuple[str, int, str] | None = None
        # Set by the screen: where the focus goes after enter or escape.
        self.return_to: Callable[[], Widget | None] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Static(PROMPT, classes="filter--prompt")
            yield FilterInput(placeholder=self._placeholder, id="filter-input", compact=True)
            yield Static("", classes="filter--count")
        yield Static("", classes="filter--error")
        yield Static("", classes="filter--warning")

    @property
    def input(self) -> FilterInput:
        return self.query_one(FilterInput)

    @property
    def text(self) -> str:
        return self.input.value

    def focus_input(self) -> None:
        # Synchronously: keys typed right after "/" (or pasted with it) must land in the input,
        # and ``focus()`` would only move the focus after the queued keys went elsewhere.
        self.screen.set_focus(self.input)
        self.input.cursor_position = len(self.input.value)

    def clear(self) -> None:
        """Empty the filter (escape) and hand the focus back."""
        with self.input.prevent(Input.Changed):
            self.input.value = ""
        self.clear_error()
        self._return_focus()
        self.post_message(self.Cleared())

    def submit(self) -> None:
        """Apply the filter as it is (enter) and hand the focus back."""
        self._return_focus()
        self.post_message(self.Submitted(self.input.value))

    def _return_focus(self) -> None:
        target = self.return_to() if self.return_to is not None else None
        if target is not None and self.screen.focused is self.input:
            self.screen.set_focus(target)

    def set_text(self, text: str) -> None:
        with self.input.prevent(Input.Changed):
            self.input.value = text

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(event.value))

    def show_error(self, text: str, message: str, position: int) -> None:
        if text != self.input.value:
            return  # an answer for text the user has already changed
        self._error = (text, position, message)
        scroll_x = int(self.input.scroll_offset.x)
        self.query_one(".filter--error", Static).update(
            caret_line(text, position, message, scroll_x)
        )
        self.add_class("-error")

    def show_warnings(self, lines: list[str] | tuple[str, ...]) -> None:
        """Lines under a valid filter that explain why it may match nothing (a metric no run
        has); an empty list removes them."""
        text = Text("\n").join(Text("⚠ " + inert(line)) for line in lines)
        self.query_one(".filter--warning", Static).update(text)
        self.set_class(bool(lines), "-warning")

    def clear_error(self) -> None:
        self._error = None
        self.remove_class("-error")

    @property
    def has_error(self) -> bool:
        return self._error is not None

    def show_count(self, text: Text | str) -> None:
        self.query_one(".filter--count", Static).update(text)
