"""Sorting the runs table by what running runs do now (their GPUs' utilization).

The live figures come from the machine (NVML, read by the runs screen every few seconds), not
from the store, so SQL cannot order by them: the store's answer (newest first) is reordered
here, with Arrow over the whole table at once. Only running runs have a figure; every other
run keeps its place after them, so a table of 100,000 runs costs one vectorized sort, with no
Python per row.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

_SORT_COLUMN = "__mltop_live"


def order_by_live(table: pa.Table, values: Mapping[str, float], descending: bool) -> pa.Table:
    """``table`` (with an ``id`` column) with the runs in ``values`` first, ordered by their
    value; the others after them in the order they came (the sort is stable)."""
    if table.num_rows == 0 or not values:
        return table
    ids = pa.array(list(values), pa.string())
    figures = pa.array(list(values.values()), pa.float64())
    where = pc.index_in(table.column("id"), value_set=ids)
    keyed = table.append_column(_SORT_COLUMN, pc.take(figures, where))
    direction = "descending" if descending else "ascending"
    order = pc.sort_indices(keyed, sort_keys=[(_SORT_COLUMN, direction, "at_end")])
    return table.take(order)
