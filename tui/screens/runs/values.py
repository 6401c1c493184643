"""A run's fields, params and tags whole (``v`` on the run detail screen).

The detail panel keeps each value on one line, ending in ``…`` when it is longer, so a
5,000-character param (a serialised config, a list of files) does not push everything else out
of sight. Here every value is shown in full, its lines kept, wrapped to the screen, and each
time with the raw number its source wrote (one no date can hold is shown as invalid there).
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from mltop.core.common.sanitize import inert
from mltop.tui.screens.base import MltopScreen, back_binding
from mltop.tui.widgets.keybar import KeyBar


class RunValuesScreen(MltopScreen[None]):
    HELP_TITLE = "full values"
    BINDINGS: ClassVar[list[BindingType]] = [
        back_binding("values", "escape,v"),
    ]

    DEFAULT_CSS = """
    RunValuesScreen #values-title {
        height: 1;
        background: $panel;
    }
    RunValuesScreen #values-body {
        height: 1fr;
        padding: 0 1;
    }
    """

    def __init__(
        self,
        run_name: str,
        fields: dict[str, str],
        params: dict[str, str],
        tags: dict[str, str],
    ) -> None:
        super().__init__()
        self.run_name = run_name
        self.fields = fields
        self.params = params
        self.tags = tags

    def compose(self) -> ComposeResult:
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(f" {inert(self.run_name)} ", style="bold reverse")
        title.append("  fields, params and tags, whole")
        yield Static(title, id="values-title")
        with VerticalScroll(id="values-body"):
            yield Static(self._body(), id="values")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#values-body").focus()

    def _body(self) -> RenderableType:
        return Group(
            _section("run", self.fields),
            _section("params", self.params),
            _section("tags", self.tags),
        )

    def action_back(self) -> None:
        self.dismiss(None)


def _section(title: str, values: dict[str, str]) -> RenderableType:
    heading = Text(f"\n{title} ({len(values)})", style="bold")
    if not values:
        return heading
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True, overflow="fold", max_width=32)
    grid.add_column(overflow="fold")
    for key, value in values.items():
        grid.add_row(Text(inert(key)), Text(inert(value, keep_newlines=True)))
    return Group(heading, grid)
