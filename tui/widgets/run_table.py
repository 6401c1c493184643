"""The runs table: textual-fastdatatable over an Arrow table, formatting cells only when drawn.

The built-in DataTable builds a Python object per cell up front (about 6 s for 10,000 runs);
fastdatatable keeps the Arrow table and renders the rows on screen. On top of it this widget:

* draws cells from typed values (status symbols and colours, times, durations, metric values)
  with the formatting shared with the CLI, as ``rich.text.Text`` made inert, never markup;
* keeps marks (``space``) by run id, so they survive sorting, filtering and reloads;
* keeps the cursor on the same run when a new table arrives;
* posts ``Opened`` / ``HeaderClicked`` / ``MarksChanged`` instead of reaching into the screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import pyarrow as pa
from rich.console import RenderableType
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.message import Message
from textual_fastdatatable import ArrowBackend
from textual_fastdatatable.data_table import DataTable

from mltop.core.common.formatting import fit_text, fit_value, fmt_duration, fmt_time
from mltop.core.common.sanitize import inert
from mltop.core.runs.runs_view import LIVE_GPU, MAX_TEXT_WIDTH, STATUS_SYMBOLS, Column, RunsView
from mltop.tui.widgets.column_fit import fit_order
from mltop.tui.widgets.cut_edges import CutEdges
from mltop.tui.widgets.table_style import table_css

MARK = "◆"
DASH = "—"


class RunsBackend(ArrowBackend):
    """An Arrow backend whose column widths come from :mod:`mltop.core.runs.runs_view`.

    The stock backend measures raw values (a float as ``0.9623456``); the cells show formatted
    ones, whose widths the view computes from column statistics without formatting every row.
    """

    def __init__(self, data: pa.Table, widths: list[int]) -> None:
        super().__init__(data)
        self._fixed_widths = widths

    @property
    def column_content_widths(self) -> list[int]:
        return self._fixed_widths


def status_styles(app: Any) -> dict[str, Style]:
    theme = app.current_theme

    def color(name: str, fallback: str) -> str:
        value = getattr(theme, name, None)
        return str(value) if value else fallback

    return {
        "running": Style(color=color("accent", "dodger_blue2"), bold=True),
        "finished": Style(color=color("success", "green")),
        "failed": Style(color=color("error", "red"), bold=True),
        "killed": Style(color=color("warning", "yellow")),
        "stale": Style(color=color("warning", "yellow"), dim=True),
        "scheduled": Style(dim=True),
    }


class RunTable(CutEdges, DataTable):
    """Runs, one per row. Feed it with :meth:`show`; it never queries anything itself."""

    HELP_SECTION = "runs table"

    # Only the keys that mean something for a list of runs (the base table's range-selection
    # and copy keys do not), each with an id so a keymap can move it.
    _inherit_bindings = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "open", id="runs.open"),
        Binding("space", "toggle_mark", "mark", id="runs.mark"),
        Binding("down,j", "cursor_down", "next run", show=False, id="runs.down"),
        Binding("up,k", "cursor_up", "previous run", show=False, id="runs.up"),
        Binding("home,g", "scroll_home", "first run", show=False, id="runs.first"),
        Binding("end,G", "scroll_end", "last run", show=False, id="runs.last"),
        Binding("pagedown", "page_down", "page down", show=False, id="runs.page_down"),
        Binding("pageup", "page_up", "page up", show=False, id="runs.page_up"),
        Binding("right", "cursor_right", "scroll right", show=False, id="runs.scroll_right"),
        Binding("left", "cursor_left", "scroll left", show=False, id="runs.scroll_left"),
    ]

    DEFAULT_CSS = """
    RunTable {
        height: 1fr;
        max-height: 100%;
        scrollbar-size-vertical: 1;
    }
    RunTable > .datatable--even-row { background: $surface; }
    RunTable:dark > .datatable--even-row { background: $surface; }
    """ + table_css("RunTable")

    class Opened(Message):
        """The user asked to open a run (enter, double click)."""

        def __init__(self, run_id: str) -> None:
            super().__init__()
            self.run_id = run_id

    class HeaderClicked(Message):
        """A column header was clicked: sort by ``column``."""

        def __init__(self, column: Column) -> None:
            super().__init__()
            self.column = column

    class MarksChanged(Message):
        def __init__(self, marked: frozenset[str]) -> None:
            super().__init__()
            self.marked = marked

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        self.view: RunsView | None = None
        self.marked: set[str] = set()
        self.collapsed: set[str] = set()
        self.sort_column: Column | None = None
        self.sort_descending = True
        self._styles: dict[str, Style] = {}
        self._mark_in_status = True
        self._widths: dict[Column, int] = {}
        # Running runs' live GPU use and idle time, a column of their own (set_live).
        self.live: dict[str, tuple[str, float | None]] = {}
        # The view's columns in drawing order (see show) and what that order was fitted for.
        self.shown: tuple[Column, ...] = ()
        self._wanted: tuple[Column, ...] = ()
        self._fitted_for = 0
        super().__init__(
            # Built from pa.nulls: pa.array would import pandas (most of a second) at start-up.
            backend=RunsBackend(pa.table({" ": pa.nulls(0, pa.string())}), [1]),
            cursor_type="row",
            show_row_labels=False,
            zebra_stripes=False,
            render_markup=False,
            null_rep="—",
            id=id,
            classes=classes,
        )

    # -- data ------------------------------------------------------------------------------------

    def show(
        self,
        view: RunsView,
        sort: Column | None,
        descending: bool,
        wanted: tuple[Column, ...] = (),
    ) -> None:
        """Swap in a new table, keeping the cursor on the run it was on.

        ``wanted`` are columns to keep on screen when not all fit (the column sorted on by
        choice, one just added): see :mod:`mltop.tui.widgets.column_fit`. The first of them
        is scrolled into view.
        """
        current = self.current_run_id()
        self.view = view
        self.sort_column = sort
        self.sort_descending = descending
        self._wanted = wanted
        # Marks share the status column (one cell: mark, symbol), or prefix the name without it.
        self._mark_in_status = any(c.cell == "status" for c in view.columns)
        columns = self.with_live(view.columns)
        self._widths = dict(zip(view.columns, view.widths, strict=True))
        if LIVE_GPU in columns:
            widest = max(len(_live_text(*v)) for v in self.live.values())
            self._widths[LIVE_GPU] = min(widest, MAX_TEXT_WIDTH)
        extra = {"status": 1, "name": 0 if self._mark_in_status else 2}
        widths = [
            max(self._widths[c] + extra.get(c.cell, 0), self._label(c).cell_len) for c in columns
        ]
        order = fit_order(columns, widths, self._room(), wanted)
        self.shown = tuple(columns[i] for i in order)
        self._fitted_for = self._room()
        # The live column's cells are drawn from ``live``: no value per run is built for it.
        data = {
            column.id: view.table.column(column.id)
            if column.kind != "live"
            else pa.nulls(view.rows, pa.string())
            for column in self.shown
        }
        widths = [widths[i] for i in order]
        if not data:
            data, widths = {" ": pa.nulls(view.rows, pa.string())}, [1]
        self.backend = RunsBackend(pa.table(data), widths)
        self.backend.render_markup = False
        self._column_labels = [self._label(c) for c in self.shown] or [Text(" ")]
        # Status and name stay put while the other columns scroll sideways.
        cells = [c.cell for c in self.shown]
        self.fixed_columns = cells.index("name") + 1 if "name" in cells[:3] else 0
        self._column_widths = None
        self._ordered_columns = None
        self._reset()
        row = view.row_of(current) if current else None
        target = row if row is not None else min(self.cursor_row, max(view.rows - 1, 0))
        self.cursor_coordinate = Coordinate(max(target, 0), 0)
        self._scroll_cursor_into_view()
        self.call_after_refresh(self._reveal_sort_column)

    def with_live(self, columns: Sequence[Column]) -> tuple[Column, ...]:
        """``columns`` and, while some run is running on a GPU, the live GPU column after the
        name (or first): the table shows it, ``s`` steps through it."""
        if not self.live:
            return tuple(columns)
        at = next((i + 1 for i, c in enumerate(columns) if c.cell == "name"), 0)
        return (*columns[:at], LIVE_GPU, *columns[at:])

    def _room(self) -> int:
        """Cells the columns can take: the table's width less its vertical scrollbar."""
        width = self.size.width or (self.app.size.width if self.is_attached else 0)
        return max(width - 1, 0)

    def on_resize(self) -> None:
        # A terminal made narrower (or wider) changes which columns fit.
        if self.view is not None and self._room() != self._fitted_for:
            self.show(self.view, self.sort_column, self.sort_descending, self._wanted)

    def _reveal_sort_column(self) -> None:
        """Scroll sideways so the first wanted column (the sorted one, that ``s``, ``<``, ``>``
        act on, or one just added) is seen."""
        target = next((c for c in self._wanted if c in self.shown), None)
        if self.view is None or target is None:
            return
        index = self.shown.index(target)
        columns = self.ordered_columns
        if index >= len(columns):
            return
        fixed = self.fixed_columns
        if index < fixed:
            return
        fixed_width = sum(c.render_width for c in columns[:fixed])
        left = sum(c.render_width for c in columns[fixed:index])
        right = left + columns[index].render_width
        view_left = int(self.scroll_x)
        width = self.scrollable_content_region.width - fixed_width
        if left < view_left:
            self.scroll_to(x=left, animate=False)
        elif right > view_left + width:
            self.scroll_to(x=right - width, animate=False)

    def _reset(self) -> None:
        self._styles = {}
        self._update_count += 1
        self._clear_caches()
        self._require_update_dimensions = True
        self.check_idle()
        self.refresh()

    def _label(self, column: Column) -> Text:
        text = Text(inert(column.label), no_wrap=True)
        if self.sort_column is not None and column == self.sort_column:
            text.append(" ▼" if self.sort_descending else " ▲")
            text.stylize("bold")
        if column.cell in ("number", "duration"):
            text.justify = "right"
        return text

    def current_run_id(self) -> str | None:
        if self.view is None or self.view.rows == 0:
            return None
        return self.view.run_id(self.cursor_row)

    def column_at(self, index: int) -> Column | None:
        if self.view is None or not 0 <= index < len(self.shown):
            return None
        return self.shown[index]

    # -- cells -----------------------------------------------------------------------------------

    def _value(self, name: str, row: int) -> Any:
        assert self.view is not None
        return self.view.table.column(name)[row].as_py()

    def _get_cell_renderable(
        self, row_index: int, column_index: int, max_width: int | None = None
    ) -> RenderableType | Text:
        if row_index == -1 or self.view is None:
            return super()._get_cell_renderable(row_index, column_index, max_width)
        if not self._styles:
            self._styles = status_styles(self.app)
        if not self.shown:
            return Text("")
        column = self.shown[column_index]
        return self._cell(column, row_index)

    def _cell(self, column: Column, row: int) -> Text:
        cell = column.cell
        if cell == "live":
            return self._live_cell(row)
        value = self._value(column.id, row)
        if cell == "status":
            state = value or "finished"
            text = Text(self._mark(row), style="bold", no_wrap=True)
            text.append(STATUS_SYMBOLS.get(state, "?"), style=self._styles.get(state, ""))
            return text
        if cell == "name":
            return self._name_cell(row, value)
        if value is None:
            return Text(DASH, style="dim", no_wrap=True)
        if cell == "time":
            return Text(fmt_time(value, self.view.now if self.view else None), no_wrap=True)
        if cell == "duration":
            duration = fmt_duration(value)
            return Text(
                fit_text(duration, self._widths.get(column, len(duration))),
                justify="right",
                no_wrap=True,
            )
        if cell == "number":
            # Widths come from a sample of each column: a wider value elsewhere is rounded to
            # the column (or ends in …) rather than cut by it.
            running = self._value("state", row) == "running"
            width = self._widths.get(column, 1) - (2 if running else 0)
            text = Text(fit_value(value, width), justify="right", no_wrap=True)
            if running:
                text.append(" ⋯", style="dim")
            return text
        if cell == "commit":
            return Text(inert(value)[:8], no_wrap=True)
        return Text(inert(value), no_wrap=True, overflow="ellipsis")

    def _mark(self, row: int) -> str:
        return MARK if self._value("id", row) in self.marked else " "

    def _name_cell(self, row: int, name: str | None) -> Text:
        depth = self._value("depth", row) or 0
        children = self._value("children", row) or 0
        text = Text(no_wrap=True, overflow="ellipsis")
        if not self._mark_in_status:
            text.append(self._mark(row) + " ", style="bold")
        if depth:
            text.append("  " * (depth - 1) + "└ ", style="dim")
        if children:
            folded = self._value("id", row) in self.collapsed
            text.append("▸ " if folded else "▾ ", style="dim")
        style = "dim strike" if self._value("deleted", row) else ""
        text.append(inert(name) if name is not None else DASH, style=style)
        if children and self._value("id", row) in self.collapsed:
            text.append(f" +{children}", style="dim")
        return text

    def _live_cell(self, row: int) -> Text:
        """A running run's GPUs now and, in bold, how long they have sat idle; blank for the
        other runs. A text wider than the column loses the end of its GPU part, with a visible
        ``…``: the idle flag stays whole."""
        live = self.live.get(self._value("id", row))
        if live is None:
            return Text("", no_wrap=True)
        label, idle = live
        flag = _live_text("", idle)
        width = self._widths.get(LIVE_GPU, MAX_TEXT_WIDTH)
        text = Text(fit_text(label, width - len(flag)), no_wrap=True)
        text.append(flag, style="bold yellow")
        return text

    def set_live(self, live: dict[str, tuple[str, float | None]]) -> None:
        """Show each running run's GPU use (``GPU 0,1 · 87% · 61 GB``) and idle time in the
        live GPU column, there while some run has them."""
        if live == self.live:
            return
        self.live = live
        if self.view is not None:
            self.show(self.view, self.sort_column, self.sort_descending, self._wanted)

    # -- actions ---------------------------------------------------------------------------------

    def action_open(self) -> None:
        run_id = self.current_run_id()
        if run_id:
            self.post_message(self.Opened(run_id))

    def action_toggle_mark(self) -> None:
        run_id = self.current_run_id()
        if not run_id:
            return
        if run_id in self.marked:
            self.marked.discard(run_id)
        else:
            self.marked.add(run_id)
        self._reset()
        self.post_message(self.MarksChanged(frozenset(self.marked)))
        self.action_cursor_down()

    def clear_marks(self) -> None:
        self.marked.clear()
        self._reset()
        self.post_message(self.MarksChanged(frozenset()))

    def restyle(self, *_: object) -> None:
        """Re-resolve theme colours (after a theme change)."""
        self._reset()

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, self.restyle)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        column = self.column_at(event.column_index)
        if column is not None:
            self.post_message(self.HeaderClicked(column))

    async def _on_click(self, event: events.Click) -> None:
        if event.chain == 2:
            meta = event.style.meta
            if meta and meta.get("row", -1) >= 0:
                self.action_open()


def _live_text(label: str, idle: float | None) -> str:
    return label + (f" ⚠ idle {fmt_duration(idle)}" if idle is not None else "")
