"""The compare table: metrics and params down, one column per run across, drawn lazily.

A comparison of 100 runs over 200 rows is 20,000 cells. The table keeps them as short strings
worked out once, in a worker, by :func:`build_layout` (values, changes against the baseline and
best-of-history, with each run column's part widths), and turns only the cells on screen into
``rich.text.Text`` (textual-fastdatatable asks for visible cells only). The first column (the
row names) stays put while the runs scroll sideways.

When the runs do not all fit the terminal at full width the table turns compact: each change is
shown as its percent alone and best-of-history is left out (the line under the table shows the
cursor's cell in full), run names are cut with ``…`` to their column, and :meth:`shown_runs`
tells the screen which runs are on screen so it can say that the rest are a scroll away. At 120
columns that is four runs, at 80 three.

Colours carry the meaning: a change is green when better and red when worse for the metric's
direction, dim when nothing says which way is better; each run's header has the run's colour,
the one its line has in the overlay chart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pyarrow as pa
from rich.console import RenderableType
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.message import Message
from textual_fastdatatable.data_table import DataTable

from mltop.core.common.sanitize import inert
from mltop.core.compare.diff import Cell, Comparison, Row, Verdict
from mltop.core.compare.diff_format import best_text, change_text, fmt_delta, fmt_pct, value_text
from mltop.core.compare.directions import Direction
from mltop.tui.widgets.cut_edges import CutEdges
from mltop.tui.widgets.overlay_chart import run_colour
from mltop.tui.widgets.run_table import RunsBackend
from mltop.tui.widgets.table_style import table_css

KEY_MAX = 30
# A run's name in a compact column: at least this wide, cut with … beyond its column.
COMPACT_LABEL = 16
VALUE_MAX = 28
LABEL_MAX = 30
GAP = "  "
DASH = "—"


@dataclass(frozen=True)
class Line:
    """One table row: a section title (``row`` is None) or a metric or param row."""

    kind: Literal["section", "metric", "param"]
    row: Row | None
    title: str = ""

    @property
    def key(self) -> str | None:
        return self.row.key if self.row is not None else None


@dataclass(frozen=True)
class CompareLayout:
    """A comparison cut into table lines, with every cell's text and each part's width.

    ``cells[line][run]`` is (value, change, best) for metric lines and (value, "", "") for param
    lines; section lines have no cells.
    """

    comparison: Comparison
    lines: tuple[Line, ...]
    cells: tuple[tuple[tuple[str, str, str], ...], ...]
    key_width: int
    value_w: tuple[int, ...]
    change_w: tuple[int, ...]
    best_w: tuple[int, ...]
    labels: tuple[str, ...]
    # The compact form of each change (the percent alone) and each run's widest one.
    short: tuple[tuple[str, ...], ...] = ()
    short_w: tuple[int, ...] = ()

    def line_of(self, kind: str, key: str) -> int | None:
        for i, line in enumerate(self.lines):
            if line.kind == kind and line.key == key:
                return i
        return None


def key_label(row: Row) -> str:
    """The row name: the metric key with its direction arrow (↑ higher is better, ↓ lower)."""
    arrow = row.direction.arrow if row.kind == "metric" else ""
    return f"{inert(row.key)} {arrow}" if arrow else inert(row.key)


def short_change(cell: Cell) -> str:
    """A change in few characters: the percent when there is one, else the delta or word."""
    full = change_text(cell)
    if cell.verdict in (Verdict.MISSING, Verdict.ADDED) or not full:
        return full
    return fmt_pct(cell.pct) or fmt_delta(cell.delta) or full


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def build_layout(comparison: Comparison) -> CompareLayout:
    """Cut ``comparison`` into lines (metrics, then params) and format every cell once.

    Pure and thread-safe: the compare screen calls it in the worker that built the comparison.
    """
    runs = len(comparison.runs)
    lines: list[Line] = []
    metrics, params = comparison.metrics, comparison.params
    if metrics:
        lines.append(Line("section", None, f"metrics ({len(metrics)})"))
        lines += [Line("metric", row) for row in metrics]
    if params:
        lines.append(Line("section", None, f"params ({len(params)})"))
        lines += [Line("param", row) for row in params]
    value_w = [0] * runs
    change_w = [0] * runs
    best_w = [0] * runs
    short_w = [0] * runs
    cells: list[tuple[tuple[str, str, str], ...]] = []
    shorts: list[tuple[str, ...]] = []
    key_width = max((len(line.title) for line in lines if line.row is None), default=6)
    for line in lines:
        row = line.row
        if row is None:
            cells.append(())
            shorts.append(())
            continue
        key_width = max(key_width, len(key_label(row)))
        out = []
        short = []
        for i, cell in enumerate(row.cells):
            value = _clip(value_text(row, cell), VALUE_MAX)
            if row.kind == "metric":
                change = "" if cell.verdict is Verdict.MISSING else change_text(cell)
                best = best_text(row, cell) if cell.present else ""
                if best and row.direction is not Direction.NEUTRAL:
                    best = ("↓" if row.direction is Direction.MIN else "↑") + best
            else:
                change = best = ""
            brief = short_change(cell) if change else ""
            short.append(brief)
            short_w[i] = max(short_w[i], len(brief))
            value_w[i] = max(value_w[i], len(value))
            change_w[i] = max(change_w[i], len(change))
            best_w[i] = max(best_w[i], len(best))
            out.append((value, change, best))
        cells.append(tuple(out))
        shorts.append(tuple(short))
    return CompareLayout(
        comparison=comparison,
        lines=tuple(lines),
        cells=tuple(cells),
        key_width=min(KEY_MAX, key_width),
        value_w=tuple(value_w),
        change_w=tuple(change_w),
        best_w=tuple(best_w),
        labels=tuple(_clip(inert(c.label), LABEL_MAX) for c in comparison.runs),
        short=tuple(shorts),
        short_w=tuple(short_w),
    )


def verdict_styles(app: Any) -> dict[Verdict, Style]:
    """Better and worse in the theme's success and error colours; anything else dim."""
    theme = app.current_theme

    def color(name: str, fallback: str) -> str:
        value = getattr(theme, name, None)
        return str(value) if value else fallback

    dim = Style(dim=True)
    return {
        Verdict.BETTER: Style(color=color("success", "green")),
        Verdict.WORSE: Style(color=color("error", "red")),
        Verdict.CHANGED: dim,
        Verdict.SAME: dim,
        Verdict.MISSING: dim,
        Verdict.ADDED: dim,
        Verdict.BASELINE: Style(),
    }


class CompareTable(CutEdges, DataTable):
    """Rows of a comparison, one column per run. Feed it with :meth:`show`."""

    HELP_SECTION = "compare table"

    _inherit_bindings = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "cursor_down", "next row", show=False, id="compare.down"),
        Binding("up,k", "cursor_up", "previous row", show=False, id="compare.up"),
        Binding("right,l", "cursor_right", "next run", show=False, id="compare.right"),
        Binding("left,h", "cursor_left", "previous run", show=False, id="compare.left"),
        Binding("home,g", "first", "first row", show=False, id="compare.first"),
        Binding("end,G", "scroll_end", "last row", show=False, id="compare.last"),
        Binding("pagedown", "page_down", "page down", show=False, id="compare.page_down"),
        Binding("pageup", "page_up", "page up", show=False, id="compare.page_up"),
    ]

    DEFAULT_CSS = """
    CompareTable {
        height: 1fr;
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 1;
    }
    """ + table_css("CompareTable")

    class RunsShown(Message):
        """The table scrolled sideways or was resized: which runs are on screen changed."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        self.layout_data: CompareLayout | None = None
        self.show_best = True
        # Changes as percent alone, no best-of-history: set by show() when runs do not all fit.
        self.compact = False
        self._fitted_for = 0
        # In compact mode, the width each run's name is cut to (see show()).
        self._label_widths: list[int] = []
        self._styles: dict[Verdict, Style] = {}
        super().__init__(
            backend=RunsBackend(pa.table({" ": pa.nulls(0, pa.string())}), [1]),
            cursor_type="cell",
            show_row_labels=False,
            zebra_stripes=False,
            render_markup=False,
            null_rep="",
            id=id,
            classes=classes,
        )

    # -- data ------------------------------------------------------------------------------------

    def show(self, layout: CompareLayout, show_best: bool | None = None) -> None:
        """Swap in a new layout, keeping the cursor on the same row (by key) and column."""
        before = self.current_line()
        column = self.cursor_column
        self.layout_data = layout
        if show_best is not None:
            self.show_best = show_best
        runs = len(layout.comparison.runs)
        room = self._room()
        self._fitted_for = room
        self.compact = False
        widths = [layout.key_width] + [self._column_width(layout, i) for i in range(runs)]
        self._label_widths = []
        if room and sum(w + 2 for w in widths) > room:
            self.compact = True
            widths = [layout.key_width] + [self._column_width(layout, i) for i in range(runs)]
            # Room left over goes to the names cut shortest, left to right.
            spare = room - sum(w + 2 for w in widths)
            for i in range(runs):
                grow = min(max(spare, 0), max(0, self._label(i + 1).cell_len - widths[i + 1]))
                widths[i + 1] += grow
                spare -= grow
            self._label_widths = widths[1:]
        data = {f"c{i}": pa.nulls(len(layout.lines), pa.string()) for i in range(runs + 1)}
        self.backend = RunsBackend(pa.table(data), widths)
        self.backend.render_markup = False
        self._column_labels = [self._label(i) for i in range(runs + 1)]
        self.fixed_columns = 1
        self._column_widths = None
        self._ordered_columns = None
        self._reset()
        row = 0
        if before is not None and before.row is not None:
            found = layout.line_of(before.kind, before.row.key)
            row = found if found is not None else min(self.cursor_row, len(layout.lines) - 1)
        elif layout.lines:
            row = next((i for i, line in enumerate(layout.lines) if line.row is not None), 0)
        self.cursor_coordinate = Coordinate(max(row, 0), min(max(column, 0), runs))
        self.call_after_refresh(self.post_message, self.RunsShown())

    def _room(self) -> int:
        """Cells the columns can take: the table's width less its vertical scrollbar."""
        width = self.size.width or (self.app.size.width if self.is_attached else 0)
        return max(width - 1, 0)

    def on_resize(self) -> None:
        # Wider or narrower: full or compact columns, and which runs are on screen.
        if self.layout_data is not None and self._room() != self._fitted_for:
            self.show(self.layout_data)
        self.post_message(self.RunsShown())

    def watch_scroll_x(self, old: float, new: float) -> None:
        super().watch_scroll_x(old, new)
        self.post_message(self.RunsShown())

    def shown_runs(self) -> tuple[int, int, int]:
        """(first, last, total): the runs whose whole column is on screen (1-based, inclusive).

        ``first > last`` when none is whole (a terminal narrower than one column).
        """
        layout = self.layout_data
        if layout is None:
            return (1, 0, 0)
        runs = len(layout.comparison.runs)
        columns = self.ordered_columns
        if len(columns) != runs + 1:
            return (1, runs, runs)
        room = self.scrollable_content_region.width - columns[0].render_width
        left = int(self.scroll_x)
        x = 0
        whole = []
        for i, column in enumerate(columns[1:], start=1):
            if x >= left and x + column.render_width <= left + room:
                whole.append(i)
            x += column.render_width
        if not whole:
            return (1, 0, runs)
        return (whole[0], whole[-1], runs)

    def action_first(self) -> None:
        """The first row of the first run, scrolled back to the left edge: after scrolling
        sideways, home brings the baseline column back whole."""
        self._set_hover_cursor(False)
        runs = len(self.layout_data.comparison.runs) if self.layout_data is not None else 0
        self.cursor_coordinate = Coordinate(0, 1 if runs else 0)
        self.scroll_to(x=0, y=0, animate=False, immediate=True)

    def set_show_best(self, show: bool) -> None:
        if self.layout_data is not None:
            self.show(self.layout_data, show)

    def _column_width(self, layout: CompareLayout, i: int) -> int:
        width = layout.value_w[i]
        if self.compact:
            if layout.short_w and layout.short_w[i]:
                width += len(GAP) + layout.short_w[i]
            # The run's name is cut to its column (the header line names the baseline in full).
            return max(width, min(self._label(i + 1).cell_len, COMPACT_LABEL))
        if layout.change_w[i]:
            width += len(GAP) + layout.change_w[i]
        if self.show_best and layout.best_w[i]:
            width += len(GAP) + layout.best_w[i]
        return max(width, self._label(i + 1).cell_len)

    def _reset(self) -> None:
        self._styles = {}
        self._update_count += 1
        self._clear_caches()
        self._require_update_dimensions = True
        self.check_idle()
        self.refresh()

    def _label(self, column: int) -> Text:
        layout = self.layout_data
        if layout is None:
            return Text(" ")
        if column == 0:
            return Text("", no_wrap=True)
        run = column - 1
        text = Text(no_wrap=True, overflow="ellipsis")
        suffix = " (baseline)" if run == layout.comparison.baseline else ""
        label = layout.labels[run]
        if self.compact and run < len(self._label_widths):
            width = self._label_widths[run]
            if len(label) + len(suffix) + 2 > width:
                suffix = " (base)" if suffix else ""
                label = _clip(label, max(4, width - 2 - len(suffix)))
        text.append("● ", style=Style(color=run_colour(run)))
        text.append(label, style=Style(color=run_colour(run), bold=True))
        if suffix:
            text.append(suffix, style="dim")
        return text

    # -- where the cursor is ---------------------------------------------------------------------

    def current_line(self) -> Line | None:
        layout = self.layout_data
        if layout is None or not 0 <= self.cursor_row < len(layout.lines):
            return None
        return layout.lines[self.cursor_row]

    def current_run(self) -> int | None:
        """The run of the cursor's column (None on the row-name column)."""
        layout = self.layout_data
        if layout is None or self.cursor_column < 1:
            return None
        run = self.cursor_column - 1
        return run if run < len(layout.comparison.runs) else None

    def move_to(self, kind: str, key: str) -> bool:
        """Put the cursor on the row of ``key`` (keeping its column); False if it is hidden."""
        layout = self.layout_data
        if layout is None:
            return False
        line = layout.line_of(kind, key)
        if line is None:
            return False
        if line != self.cursor_row:
            self.move_cursor(row=line, column=self.cursor_column)
        return True

    # -- cells -----------------------------------------------------------------------------------

    def _get_cell_renderable(
        self, row_index: int, column_index: int, max_width: int | None = None
    ) -> RenderableType | Text:
        layout = self.layout_data
        if row_index == -1 or layout is None:
            return super()._get_cell_renderable(row_index, column_index, max_width)
        if not self._styles:
            self._styles = verdict_styles(self.app)
        return self.cell_text(row_index, column_index)

    def cell_text(self, line_index: int, column: int) -> Text:
        """The cell at a line and column (0 is the row names, then one per run)."""
        layout = self.layout_data
        assert layout is not None
        if not self._styles:
            self._styles = verdict_styles(self.app)
        line = layout.lines[line_index]
        row = line.row
        if row is None:
            if column == 0:
                return Text(line.title, style="bold underline", no_wrap=True)
            return Text("", no_wrap=True)
        if column == 0:
            style = "bold" if row.differs else "dim"
            return Text(key_label(row), style=style, no_wrap=True, overflow="ellipsis")
        run = column - 1
        cell = row.cells[run]
        value, change, best = layout.cells[line_index][run]
        if line.kind == "param":
            return self._param_cell(value, cell.verdict)
        text = Text(no_wrap=True, overflow="ellipsis")
        verdict = cell.verdict
        value_style = "dim" if verdict in (Verdict.SAME, Verdict.MISSING) else ""
        if not row.differs:
            value_style = "dim"
        text.append(value.rjust(layout.value_w[run]), style=value_style)
        if self.compact:
            if layout.short_w[run]:
                text.append(GAP)
                brief = layout.short[line_index][run]
                text.append(brief.ljust(layout.short_w[run]), style=self._styles[verdict])
            return text
        if layout.change_w[run]:
            text.append(GAP)
            text.append(change.ljust(layout.change_w[run]), style=self._styles[verdict])
        if self.show_best and layout.best_w[run]:
            text.append(GAP)
            text.append(best.ljust(layout.best_w[run]), style="dim")
        return text

    def _param_cell(self, value: str, verdict: Verdict) -> Text:
        if verdict in (Verdict.CHANGED, Verdict.ADDED):
            return Text(value, style="bold", no_wrap=True, overflow="ellipsis")
        if verdict is Verdict.BASELINE:
            return Text(value, no_wrap=True, overflow="ellipsis")
        return Text(value, style="dim", no_wrap=True, overflow="ellipsis")

    def restyle(self, *_: object) -> None:
        """Re-resolve theme colours (after a theme change)."""
        self._reset()

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, self.restyle)
