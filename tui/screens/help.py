"""``?``: every mltop key of the screen underneath, generated from its bindings.

Grouped: the screen's own keys first, then those of its panels (runs table, log view...), then
the keys that work everywhere. Textual's internal bindings (focus cycling, copy) are left out.

The list is read from ``active_bindings`` when help opens, so it shows the keys a user keymap
set, and each line names the binding id a keymap file uses to change it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from mltop.tui.keymap import default_keymap_path


def binding_rows(screen: Screen) -> list[tuple[str, str, str, str]]:
    """(section, keys, description, binding ids) for every binding in reach on ``screen``."""
    app = screen.app
    by_action: dict[tuple[int, str], tuple[str, list[str], str, list[str]]] = {}
    # The whole chain, not ``active_bindings``: a key shadowed by the focused widget (arrows in
    # a scrolled panel) is still a key of this screen and belongs in its help.
    chain = screen._modal_binding_chain
    # A priority binding (ctrl+c quits) wins over any other binding of its key: leave those out.
    taken = {key for _, bindings in chain for key, binding in bindings if binding.priority}
    for node, bindings in chain:
        for key, binding in bindings:
            # Every mltop binding has an id (a keymap moves it by that id); those without one are
            # Textual's own (focus next, copy, select all, a scroll panel's keys), not mltop's.
            if not binding.id:
                continue
            if binding.priority or key not in taken:
                _add(by_action, app, screen, node, key, binding)
    order = {"this screen": 0}
    rows = [
        (section, ", ".join(dict.fromkeys(keys)), description, ", ".join(dict.fromkeys(ids)))
        for section, keys, description, ids in by_action.values()
    ]
    rows.sort(key=lambda r: (order.get(r[0], 2 if r[0] == "everywhere" else 1), r[0]))
    return rows


def _add(
    by_action: dict[tuple[int, str], tuple[str, list[str], str, list[str]]],
    app: App[object],
    screen: Screen,
    node: DOMNode,
    key: str,
    binding: Binding,
) -> None:
    if node is app:
        section = "everywhere"
    elif node is screen:
        section = "this screen"
    else:
        section = getattr(node, "HELP_SECTION", None) or type(node).__name__
    description = binding.description or binding.action.replace("_", " ")
    slot = by_action.setdefault((id(node), binding.action), (section, [], description, []))
    slot[1].append(app.get_key_display(binding) or key)
    if binding.id:
        slot[3].append(binding.id)


def bindings_table(rows: Iterable[tuple[str, str, str, str]]) -> RenderableType:
    parts: list[RenderableType] = []
    current = None
    table: Table | None = None
    for section, keys, description, binding_id in rows:
        if section != current:
            current = section
            if table is not None:
                parts.append(table)
                parts.append(Text(""))
            parts.append(Text(section, style="bold underline"))
            table = Table.grid(padding=(0, 2))
            table.add_column(min_width=12, style="bold")
            table.add_column(min_width=24)
            table.add_column(style="dim")
        assert table is not None
        table.add_row(Text(keys), Text(description), Text(binding_id))
    if table is not None:
        parts.append(table)
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    """A scrollable list of keys; any of escape, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "close", id="help.close"),
        Binding("j,down", "scroll_down", "scroll down", show=False, id="help.down"),
        Binding("k,up", "scroll_up", "scroll up", show=False, id="help.up"),
        Binding("space,pagedown", "page(1)", "page down", show=False, id="help.page_down"),
        Binding("pageup", "page(-1)", "page up", show=False, id="help.page_up"),
        Binding("G,end", "end", "end", show=False, id="help.end"),
        Binding("g,home", "home", "top", show=False, id="help.home"),
    ]

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > Vertical {
        width: 96;
        max-width: 100%;
        height: 90%;
        border: round $accent;
        border-title-color: $accent;
        background: $surface;
        padding: 0 1;
    }
    HelpScreen VerticalScroll {
        height: 1fr;
    }
    HelpScreen .help--footer {
        height: 1;
        color: $text-muted;
    }
    """

    def __init__(
        self, title: str, rows: list[tuple[str, str, str, str]], extra: RenderableType | None = None
    ) -> None:
        super().__init__()
        self._title = title
        self._rows = rows
        self._extra = extra

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"keys: {self._title}"
            with VerticalScroll():
                yield Static(bindings_table(self._rows), id="help-keys")
                if self._extra is not None:
                    yield Static(self._extra, id="help-extra")
            yield Static(
                Text(
                    f"esc close  ·  rebind any key by its id in {default_keymap_path()}"
                    "  ·  ctrl+p commands",
                    no_wrap=True,
                    overflow="ellipsis",
                ),
                classes="help--footer",
            )

    def action_scroll_down(self) -> None:
        self.query_one(VerticalScroll).scroll_down()

    def action_scroll_up(self) -> None:
        self.query_one(VerticalScroll).scroll_up()

    def action_page(self, direction: int) -> None:
        scroller = self.query_one(VerticalScroll)
        if direction > 0:
            scroller.scroll_page_down()
        else:
            scroller.scroll_page_up()

    def action_end(self) -> None:
        self.query_one(VerticalScroll).scroll_end(animate=False)

    def action_home(self) -> None:
        self.query_one(VerticalScroll).scroll_home(animate=False)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
