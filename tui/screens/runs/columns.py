"""Sorting the runs table and choosing its columns: the part of the runs screen's state that
says what each row shows and in which order.

Apart from :mod:`.screen` so the screen module holds loading, filtering and opening runs; these
actions only change ``columns``, ``sort`` and ``descending`` and ask for a reload.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import on

from mltop.core.runs.runs_view import Column, RunsView, available_columns
from mltop.tui.screens.runs.live_gpu import LiveGpuScreen
from mltop.tui.widgets.column_picker import ColumnPicker
from mltop.tui.widgets.run_table import RunTable


class RunsColumnsScreen(LiveGpuScreen):
    """The runs screen's column and sort actions; the screen sets the state they change."""

    view: RunsView | None
    columns: list[Column] | None
    sort: Column
    descending: bool
    added: tuple[Column, ...]
    param_keys: list[str]
    metric_keys: list[str]
    reload: Callable[[], None]

    def _shown_columns(self) -> list[Column]:
        if self.columns is not None:
            return list(self.columns)
        return list(self.view.columns) if self.view is not None else []

    def sort_by(self, column: Column, descending: bool | None = None) -> None:
        if descending is None:
            descending = not self.descending if column == self.sort else column.natural_descending
        self.sort = column
        self.descending = descending
        self.reload()

    def action_sort_next(self) -> None:
        columns = list(self.table.with_live(self._shown_columns()))
        if not columns:
            return
        index = columns.index(self.sort) if self.sort in columns else -1
        nxt = columns[(index + 1) % len(columns)]
        self.sort_by(nxt, nxt.natural_descending)

    def action_sort_reverse(self) -> None:
        self.sort_by(self.sort, not self.descending)

    @on(RunTable.HeaderClicked)
    def _header_clicked(self, event: RunTable.HeaderClicked) -> None:
        self.sort_by(event.column)

    def set_columns(self, columns: list[Column]) -> None:
        before = set(self._shown_columns())
        self.columns = list(dict.fromkeys(columns)) or [Column.attr("name")]
        self.added = tuple(c for c in self.columns if c not in before)
        if self.sort not in self.columns:
            self.sort, self.descending = Column.attr("start"), True
        self.reload()

    def action_columns(self) -> None:
        current = self._shown_columns()
        available = available_columns(self.param_keys, self.metric_keys)

        def chosen(result: list[Column] | None) -> None:
            if result is not None:
                self.set_columns(result)

        self.app.push_screen(ColumnPicker(current, available), chosen)

    def action_hide_column(self) -> None:
        columns = self._shown_columns()
        if self.sort not in columns or len(columns) <= 1:
            self.notify("sort by a column first (s), then - hides it", timeout=3)
            return
        index = columns.index(self.sort)
        columns.pop(index)
        self.columns = columns
        nxt = columns[min(index, len(columns) - 1)]
        self.sort, self.descending = nxt, nxt.natural_descending
        self.reload()

    def action_move_column(self, delta: int) -> None:
        columns = self._shown_columns()
        if self.sort not in columns:
            return
        index = columns.index(self.sort)
        target = index + delta
        if 0 <= target < len(columns):
            columns[index], columns[target] = columns[target], columns[index]
            self.columns = columns
            self.reload()
