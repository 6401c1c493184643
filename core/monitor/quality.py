"""Data quality of a section: missing values, values the reference never had, schema changes.

Shares are of all the section's rows (so a new category on 4 of 100 rows reads 0.04 however
many values are missing). Missing means null, or NaN in a floating-point column. Out of range
means below the reference's smallest or above its largest value; a new category is a present
value absent from the reference's present values. Schema changes compare the log's columns
with the reference's, and each file of a log of several with its first file.
"""

from __future__ import annotations

from collections.abc import Sequence

from mltop.core.monitor.drift import Counts
from mltop.core.monitor.results import ColumnQuality, SchemaChange
from mltop.core.monitor.source import is_numeric


def column_quality(
    column: str,
    rows: int,
    present: int,
    kind: str | None,
    current: Counts | None,
    reference: Counts | None,
) -> ColumnQuality:
    """Quality of one column; ``kind`` is None for columns that are not features."""
    missing = rows - present
    share = missing / rows if rows else None
    if kind is None or reference is None or reference.n == 0:
        return ColumnQuality(column, missing, share)
    current = current if current is not None else Counts.empty(kind == "numerical")
    if kind == "numerical":
        lo, hi = float(reference.values[0]), float(reference.values[-1])
        values = current.values.astype(float)
        outside = int(current.counts[(values < lo) | (values > hi)].sum())
        return ColumnQuality(
            column,
            missing,
            share,
            out_of_range_count=outside,
            out_of_range_share=outside / rows if rows else None,
        )
    seen = set(reference.values.tolist())
    new = {
        str(v): int(n)
        for v, n in zip(current.values.tolist(), current.counts.tolist(), strict=True)
        if v not in seen
    }
    total = sum(new.values())
    return ColumnQuality(
        column,
        missing,
        share,
        new_category_count=total,
        new_category_share=total / rows if rows else None,
        new_categories=dict(sorted(new.items())),
    )


def schema_changes(
    reference: dict[str, str],
    current: dict[str, str],
    where: str,
    ignore: Sequence[str] = (),
) -> list[SchemaChange]:
    """Columns added, removed or of another kind in ``current`` than in ``reference``.

    Integer and floating-point columns count as one kind (numbers), as do the timestamp types:
    a CSV reader's choice between BIGINT and DOUBLE is not a change in the data.
    """
    out: list[SchemaChange] = []
    for name, kind in current.items():
        if name in ignore:
            continue
        if name not in reference:
            out.append(SchemaChange(name, "added", None, kind, where))
        elif _family(reference[name]) != _family(kind):
            out.append(SchemaChange(name, "type", reference[name], kind, where))
    for name, kind in reference.items():
        if name not in current and name not in ignore:
            out.append(SchemaChange(name, "removed", kind, None, where))
    return out


def _family(duck_type: str) -> str:
    if is_numeric(duck_type):
        return "number"
    if duck_type.startswith("TIMESTAMP") or duck_type == "DATE":
        return "time"
    return duck_type
