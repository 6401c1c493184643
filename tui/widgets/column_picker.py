"""Choose and order the runs table's columns (``+`` on the runs screen).

Shown columns come first in their order, then every other attribute, param and metric
aggregate the store knows. ``space`` shows or hides one, ``K``/``J`` (or shift+up/down) move
it, ``/`` narrows the list (``↓`` goes back to it), ``enter`` applies, ``escape`` leaves the
table as it was.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from mltop.core.common.sanitize import inert
from mltop.core.runs.runs_view import Column


def _describe(column: Column) -> str:
    if column.kind == "attr":
        return "run attribute"
    if column.kind == "param":
        return "param"
    return {"last": "metric, last value", "min": "metric, minimum", "max": "metric, maximum"}[
        column.agg
    ]


class ColumnPicker(ModalScreen[list[Column] | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle", "show/hide", id="columns.toggle"),
        Binding("K,shift+up", "move(-1)", "move up", id="columns.move_up"),
        Binding("J,shift+down", "move(1)", "move down", id="columns.move_down"),
        # Priority, as the runs filter's "/": a plain binding runs only once the key reaches the
        # list, after the letters typed right behind it (queued in a fast terminal) went there.
        Binding("slash", "search", "search", id="columns.search", priority=True),
        Binding("enter", "apply", "apply", id="columns.apply", priority=True),
        Binding("escape", "cancel", "cancel", id="columns.cancel"),
        Binding("j", "cursor(1)", "down", show=False, id="columns.down"),
        Binding("k", "cursor(-1)", "up", show=False, id="columns.up"),
        # From the search input, down goes to the list (the list handles its own down key).
        # Priority, so a space typed right after it toggles a column instead of reaching the
        # search text.
        Binding("down", "to_list", "to the list", show=False, id="columns.to_list", priority=True),
    ]

    DEFAULT_CSS = """
    ColumnPicker {
        align: center middle;
    }
    ColumnPicker > Vertical {
        width: 72;
        max-width: 100%;
        height: 80%;
        border: round $accent;
        border-title-color: $accent;
        background: $surface;
    }
    /* Input:focus draws a tall border; inside one line it would leave no room for the text. */
    ColumnPicker Input, ColumnPicker Input:focus {
        border: none;
        height: 1;
        padding: 0 1;
        display: none;
    }
    ColumnPicker.-searching Input {
        display: block;
    }
    ColumnPicker OptionList, ColumnPicker OptionList:focus {
        height: 1fr;
        border: none;
        padding: 0;
    }
    ColumnPicker .picker--keys {
        height: 1;
        color: $text-muted;
        padding: 0 1;
    }
    """

    def __init__(self, current: list[Column], available: list[Column]) -> None:
        super().__init__()
        shown = list(dict.fromkeys(current))
        self.entries: list[tuple[Column, bool]] = [(c, True) for c in shown]
        self.entries += [(c, False) for c in available if c not in set(shown)]
        self.search = ""

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "columns"
            yield Input(placeholder="search columns", id="column-search")
            yield OptionList(id="column-list")
            yield Static(
                Text("space show/hide  K/J move  / search  enter apply  esc cancel"),
                classes="picker--keys",
            )

    def on_mount(self) -> None:
        self._refill(0)
        self.query_one(OptionList).focus()

    def _visible(self) -> list[int]:
        needle = self.search.lower()
        return [
            i
            for i, (column, _) in enumerate(self.entries)
            if not needle or needle in column.label.lower() or needle in column.id.lower()
        ]

    def _refill(self, highlight: int | None = None) -> None:
        options = self.query_one(OptionList)
        visible = self._visible()
        rendered = []
        for i in visible:
            column, shown = self.entries[i]
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append("[x] " if shown else "[ ] ", style="bold" if shown else "dim")
            label = inert(column.label) or "status"
            line.append(label.ljust(max(28, len(label) + 2)), style="" if shown else "dim")
            line.append(_describe(column), style="dim")
            rendered.append(Option(line, id=str(i)))
        old = options.highlighted
        options.clear_options()
        options.add_options(rendered)
        if rendered:
            target = highlight if highlight is not None else (old or 0)
            options.highlighted = max(0, min(target, len(rendered) - 1))

    def _current(self) -> int | None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return None
        option = options.get_option_at_index(options.highlighted)
        return int(option.id) if option.id is not None else None

    def action_toggle(self) -> None:
        index = self._current()
        if index is None:
            return
        column, shown = self.entries[index]
        self.entries[index] = (column, not shown)
        self._refill()

    def action_move(self, delta: int) -> None:
        index = self._current()
        if index is None:
            return
        target = index + delta
        if not 0 <= target < len(self.entries):
            return
        self.entries[index], self.entries[target] = self.entries[target], self.entries[index]
        options = self.query_one(OptionList)
        self._refill((options.highlighted or 0) + delta)

    def action_cursor(self, delta: int) -> None:
        options = self.query_one(OptionList)
        if delta > 0:
            options.action_cursor_down()
        else:
            options.action_cursor_up()

    def action_to_list(self) -> None:
        self.set_focus(self.query_one(OptionList))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # "/" typed in the search input is text (a metric called val/loss), not a command;
        # down leaves the input, and in the list it moves the highlight as usual.
        if action == "search":
            return not isinstance(self.focused, Input)
        if action == "to_list":
            return isinstance(self.focused, Input)
        return True

    def action_search(self) -> None:
        self.add_class("-searching")
        # Synchronously: ``focus()`` would move the focus only after the next queued keys.
        self.set_focus(self.query_one(Input))

    @on(Input.Changed)
    def _search_changed(self, event: Input.Changed) -> None:
        self.search = event.value
        self._refill(0)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.action_toggle()

    def action_apply(self) -> None:
        if self.focused is self.query_one(Input):
            self.query_one(OptionList).focus()
            return
        chosen = [column for column, shown in self.entries if shown]
        self.dismiss(chosen)

    def action_cancel(self) -> None:
        if self.search and self.focused is self.query_one(Input):
            self.query_one(Input).value = ""
            self.remove_class("-searching")
            self.query_one(OptionList).focus()
            return
        self.dismiss(None)
