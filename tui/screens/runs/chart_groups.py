"""Run detail's charts in groups: the model's metrics, then the System group, one per GPU.

What the trackers record about the machine (CPU, memory, GPU utilization...) would bury the
loss curves if the grid mixed them in alphabetical order; each group is its own grid, under a
one-line title, and the arrows walk from the last row of one group into the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from rich.text import Text
from textual.containers import Container
from textual.widgets import Static

from mltop.core.runs.system_keys import split_keys, system_groups

T = TypeVar("T")


class ChartGroup(Container):
    """One group's grid of charts (its columns follow the screen's width)."""

    DEFAULT_CSS = """
    ChartGroup {
        layout: grid;
        grid-size: 2;
        grid-rows: 10;
        grid-gutter: 0 0;
        height: auto;
    }
    """

    def __init__(self, label: str | None, count: int) -> None:
        super().__init__(classes="chart-group")
        self.label = label
        #: The line above the grid (mounted before it); the model's metrics have none.
        self.title = ChartGroupTitle(Text(f"{label} ({count})")) if label is not None else None


class ChartGroupTitle(Static):
    DEFAULT_CSS = """
    ChartGroupTitle {
        height: 1;
        color: $text-muted;
        text-style: bold;
        padding: 0 1;
    }
    """


def chart_sections(keys: Sequence[str]) -> list[tuple[str | None, list[str]]]:
    """(title, keys) per group: the model's metrics (no title) first, then ``system`` and
    ``GPU 0``, ``GPU 1``... (see :func:`mltop.core.runs.system_keys.system_groups`)."""
    model, system = split_keys(sorted(keys))
    sections: list[tuple[str | None, list[str]]] = [(None, model)] if model else []
    sections += [(label, group) for label, group in system_groups(system)]
    return sections


def neighbour(
    groups: Sequence[Sequence[T]], current: object, dx: int, dy: int, columns: int
) -> T | None:
    """The item an arrow key moves to from ``current`` in grids of ``columns`` per group.

    Left and right step through the items in reading order, across groups. Down goes to the
    item below in the same group, to the group's last item when the row below is shorter,
    and from the last row into the next group's first row (same column, or its last item);
    up mirrors it.
    """
    groups = [list(g) for g in groups if g]
    flat = [item for group in groups for item in group]
    if current not in flat:
        return flat[0] if flat else None
    if dx:
        index = flat.index(current) + dx
        return flat[index] if 0 <= index < len(flat) else None
    g = next(i for i, group in enumerate(groups) if current in group)
    group = groups[g]
    index = group.index(current)
    column = index % columns
    if dy > 0:
        if index + columns < len(group):
            return group[index + columns]
        if index // columns < (len(group) - 1) // columns:
            return group[-1]
        if g + 1 < len(groups):
            below = groups[g + 1]
            return below[min(column, len(below) - 1)]
        return None
    if dy < 0:
        if index - columns >= 0:
            return group[index - columns]
        if g > 0:
            above = groups[g - 1]
            start = (len(above) - 1) // columns * columns
            return above[min(start + column, len(above) - 1)]
    return None
