"""What the runs screen adds to the help screen and the command palette.

Apart from the screen because it is a list of entries built from the screen's state (its keys,
shown columns, filter), not part of keeping that state: the status legend, filter examples, and
the "Sort by" / "Add column" commands for every param and metric.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from mltop.core.common.sanitize import inert
from mltop.core.runs.runs_view import STATUS_SYMBOLS, Column, available_columns, default_columns
from mltop.tui.commands import ScreenCommand
from mltop.tui.widgets.run_table import RunTable


class RunsState(Protocol):
    """What the palette's commands read and change on the runs screen."""

    param_keys: list[str]
    metric_keys: list[str]
    varying_params: list[str]
    sort: Column
    descending: bool

    @property
    def table(self) -> RunTable: ...

    def set_filter(self, text: str) -> None: ...

    def set_columns(self, columns: list[Column]) -> None: ...

    def sort_by(self, column: Column, descending: bool | None = None) -> None: ...

    def _shown_columns(self) -> list[Column]: ...


def runs_help() -> RenderableType:
    """The status symbols and filter examples shown under the runs screen's keys in help."""
    legend = Table.grid(padding=(0, 2))
    legend.add_column(style="bold")
    legend.add_column()
    for state, symbol in STATUS_SYMBOLS.items():
        note = (
            " (RUNNING, silent for 5 minutes; MLTOP_STALE_AFTER sets it)"
            if state == "stale"
            else ""
        )
        legend.add_row(symbol, state + note)
    filters = Text(
        "\nFilter examples (/):\n"
        '  metrics.val_acc > 0.9 and params.model = "sgd"\n'
        '  name ~ "rf-.*" or status = failed\n'
        "  not tags.stage   ·   start > -2h   ·   duration > 5m   ·   metrics.loss.min < 0.1\n",
        style="",
    )
    return Group(Text("\nStatus symbols", style="bold underline"), legend, filters)


def runs_commands(screen: RunsState) -> list[ScreenCommand]:
    """The palette's runs commands: filters, columns, marks, and sort/add for each key."""

    def reset_columns() -> None:
        screen.set_columns(
            default_columns(screen.param_keys, screen.metric_keys, varying=screen.varying_params)
        )

    out = [
        ScreenCommand("Clear filter", "show every run", lambda: screen.set_filter("")),
        ScreenCommand(
            "Show failed runs", "filter: status = failed",
            lambda: screen.set_filter("status = failed"),
        ),
        ScreenCommand(
            "Show running runs", "filter: status = running",
            lambda: screen.set_filter("status = running"),
        ),
        ScreenCommand("Reset columns", "the default columns", reset_columns),
        ScreenCommand("Clear marks", "unmark every run", screen.table.clear_marks),
    ]  # fmt: skip
    shown = set(screen._shown_columns())
    for column in available_columns(screen.param_keys, screen.metric_keys):
        if column.kind == "attr":
            continue
        label = inert(column.label)
        if column in shown:
            out.append(ScreenCommand(f"Sort by {label}", "sort the table", _sorter(screen, column)))
        else:
            out.append(
                ScreenCommand(f"Add column {label}", "show it in the table", _adder(screen, column))
            )
    return out


def _sorter(screen: RunsState, column: Column) -> Callable[[], None]:
    return lambda: screen.sort_by(column, column.natural_descending)


def _adder(screen: RunsState, column: Column) -> Callable[[], None]:
    def add() -> None:
        # Sorting by the new column also scrolls the table to show it.
        screen.sort, screen.descending = column, column.natural_descending
        screen.set_columns([*screen._shown_columns(), column])

    return add
