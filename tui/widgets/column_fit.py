"""Which runs-table columns are on screen first when they do not all fit the terminal.

At 80 columns the default set (status, name, experiment, source, started, duration, three
params, four metrics) is about three screens wide. Shown in the order they were chosen, the
metrics, the reason to open mltop, would all be off to the right. Instead the columns that fit
are chosen by precedence (status and name, then the columns the user just asked for, then
metrics, then params, then the other attributes, source last) and drawn first in their chosen
order; the rest follow and stay reachable by scrolling sideways. When everything fits nothing
moves.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from mltop.core.runs.runs_view import Column

# The padding the table draws on either side of each cell.
CELL_PADDING = 2


def precedence(column: Column, wanted: Collection[Column]) -> int:
    """Lower comes on screen first when space is short."""
    if column.kind == "attr" and column.name in ("status", "name"):
        return 0
    if column in wanted or column.kind == "live":
        return 1
    if column.kind == "metric":
        return 2
    if column.kind == "param":
        return 3
    if column.kind == "attr" and column.name == "source":
        return 5
    return 4


def fit_order(
    columns: Sequence[Column],
    widths: Sequence[int],
    room: int,
    wanted: Collection[Column] = (),
) -> list[int]:
    """Indices of ``columns`` in drawing order for a table ``room`` cells wide.

    ``widths`` are content widths (padding is added here); ``wanted`` are columns to fit before
    any other (the sorted column, one just added). Columns that fit keep their relative order;
    those that do not follow them, also in order.
    """
    total = sum(w + CELL_PADDING for w in widths)
    if room <= 0 or total <= room:
        return list(range(len(columns)))
    ranked = sorted(range(len(columns)), key=lambda i: (precedence(columns[i], wanted), i))
    used = 0
    fits: set[int] = set()
    for i in ranked:
        need = widths[i] + CELL_PADDING
        if used + need <= room:
            fits.add(i)
            used += need
    return [i for i in range(len(columns)) if i in fits] + [
        i for i in range(len(columns)) if i not in fits
    ]
