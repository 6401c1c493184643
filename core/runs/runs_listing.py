"""The table ``mltop runs`` prints: its columns, their widths, and which ones fit a terminal.

Squeezing a dozen columns into 80 terminal cells turns every number into ``0…``: a table of
values nobody can read. In a terminal the listing instead keeps the columns that fit whole, in
the order people look for them (name, status, the metrics, then params, then the rest), and says
how many it left out and how to pick them (``--columns``). Piped or redirected, every column is
printed whole, however wide the lines get.

Fifty thousand runs are printed as they stream out of the store, so the widths are chosen before
most values are read: from column statistics the store computes in one pass (the longest text,
the widest value of each metric as it prints, which kinds of start time and duration occur) and,
for text that is not printable ASCII, from the first batch. Numbers always fit, and their
columns are no wider than their widest value (or header). A later text wider than its column
anyway (wide characters past the first batch) is fitted by
:mod:`mltop.core.common.formatting`'s rule: it ends in ``…``, never cut silently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
from rich.cells import cell_len

from mltop.core.common.formatting import (
    fit_cells,
    fit_text,
    fit_value,
    fmt_duration,
    fmt_time,
    fmt_value,
)
from mltop.core.common.sanitize import inert
from mltop.core.runs.runs_view import metric_interest
from mltop.core.runs.system_keys import is_system_key

ATTRIBUTES = ("name", "status", "experiment", "source", "start", "duration")
#: Attribute -> the run attribute (a store runs-table column) it shows.
ATTRIBUTE_SOURCES = {
    "status": "status",
    "experiment": "experiment",
    "source": "source_kind",
    "start": "start_time",
    "duration": "run_duration",
}
#: Text columns longer than this end in "…"; numbers are never shortened.
NAME_MAX = 40
PARAM_MAX = 24
#: Cells between two columns (rich's default padding of one on each side).
GAP = 2
DEFAULT_PARAMS = 6
DEFAULT_METRICS = 6
#: The left-out note names this many columns, then counts the rest.
NOTE_NAMES = 6


class ColumnError(ValueError):
    """A ``--columns`` entry that names no attribute, param or metric of the listed runs."""


@dataclass(frozen=True)
class ListingColumn:
    """One printed column: its header, where its values come from, and how wide it is.

    ``source`` names the batch column (``name``, ``start_time``, ``params.lr``,
    ``metrics.acc.last``); ``plain`` says every value is printable ASCII, so a character is a
    cell and padding needs no measuring.
    """

    header: str
    kind: str  # name | text | start | duration | param | metric
    source: str
    width: int
    numeric: bool = False
    plain: bool = True


def _texts(values: list[Any], cap: int, missing: str = "—") -> list[str]:
    return [fit_text(inert(v), cap) if v else missing for v in values]


_CELLS: dict[str, Callable[[list[Any], float], list[str]]] = {
    "name": lambda vs, now: [fit_text(inert(v), NAME_MAX) for v in vs],
    "status": lambda vs, now: [inert(v) for v in vs],
    "experiment": lambda vs, now: _texts(vs, NAME_MAX),
    "source": lambda vs, now: [inert(v) for v in vs],
    "start": lambda vs, now: [fmt_time(v, now) for v in vs],
    "duration": lambda vs, now: [fmt_duration(v) for v in vs],
    "param": lambda vs, now: [fit_text(inert("—" if v is None else v), PARAM_MAX) for v in vs],
    "metric": lambda vs, now: [fmt_value(v) for v in vs],
}


def _width(cells: Sequence[str], plain: bool) -> int:
    if not cells:
        return 0
    return max(map(len, cells)) if plain else max(map(cell_len, cells))


@dataclass(frozen=True)
class Listing:
    columns: tuple[ListingColumn, ...]
    left_out: tuple[str, ...] = ()
    now: float = 0.0

    @property
    def width(self) -> int:
        return sum(c.width for c in self.columns) + GAP * max(0, len(self.columns) - 1)

    def header_line(self) -> str:
        return (" " * GAP).join(
            _pad(c.header, c.width, c.numeric, cell_len(c.header)) for c in self.columns
        )

    def lines(self, batch: pa.RecordBatch) -> list[str]:
        """The rows of ``batch`` as text, one string per row, each column padded to its width."""
        padded = [self._column(batch, c) for c in self.columns]
        return [(" " * GAP).join(row) for row in zip(*padded, strict=True)]

    def _column(self, batch: pa.RecordBatch, column: ListingColumn) -> list[str]:
        values = batch.column(column.source).to_pylist()
        cells = _CELLS[column.kind](values, self.now)
        width = column.width
        if _width(cells, column.plain) > width:
            if column.kind == "metric":
                pairs = zip(cells, values, strict=True)
                cells = [c if len(c) <= width else fit_value(v, width) for c, v in pairs]
            else:
                cells = [fit_cells(c, width) for c in cells]
        if column.plain and all(c.isascii() for c in cells):
            return (
                [c.rjust(width) for c in cells]
                if column.numeric
                else [c.ljust(width) for c in cells]
            )
        return [_pad(c, width, column.numeric, cell_len(c)) for c in cells]


def _pad(text: str, width: int, right: bool, cells: int) -> str:
    room = width - cells
    if room <= 0:
        return text
    return " " * room + text if right else text + " " * room


def day_and_year(now: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """The local bounds (epoch seconds) of the day and the year ``now`` falls in."""
    today = datetime.fromtimestamp(now).date()
    start = datetime.combine(today, datetime.min.time())
    end = datetime.combine(today + timedelta(days=1), datetime.min.time())
    year = datetime.combine(date(today.year, 1, 1), datetime.min.time())
    next_year = datetime.combine(date(today.year + 1, 1, 1), datetime.min.time())
    return (start.timestamp(), end.timestamp()), (year.timestamp(), next_year.timestamp())


def _candidates(
    stats: Mapping[str, Any], chosen: Sequence[str] | None
) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """The columns worth sizing: ``(kind, key)`` in print order, the param and metric keys."""
    param_keys = list(stats["params"])
    metric_keys = list(stats["metrics"])
    if chosen is not None:
        return [_chosen(name, param_keys, metric_keys) for name in chosen], param_keys, metric_keys
    # System metrics (CPU, GPU...) are many and say nothing about the model: chosen, not default.
    metric_keys = [k for k in metric_keys if not is_system_key(k)][:DEFAULT_METRICS]
    param_keys = param_keys[:DEFAULT_PARAMS]
    order = [("attr", a) for a in ATTRIBUTES]
    order += [("param", k) for k in param_keys] + [("metric", k) for k in metric_keys]
    return order, param_keys, metric_keys


def listing_query(
    stats: Mapping[str, Any], chosen: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """The params and metrics (last values) the store should join for this listing."""
    order, _, _ = _candidates(stats, chosen)
    params = list(dict.fromkeys(k for kind, k in order if kind == "param"))
    metrics = list(dict.fromkeys(k for kind, k in order if kind == "metric"))
    return params, metrics


def build_listing(
    stats: Mapping[str, Any],
    first: pa.RecordBatch,
    *,
    now: float,
    width: int | None = None,
    chosen: Sequence[str] | None = None,
) -> Listing:
    """The columns to print, sized from the store's ``stats`` (:meth:`Store.listing_stats`) and
    the ``first`` batch of rows.

    ``chosen`` (from ``--columns``) names them outright: attributes, ``params.KEY``,
    ``metrics.KEY`` or a bare metric or param key. Otherwise the listing holds the attributes,
    the six most common params and the six most common model metrics (system metrics only when
    chosen); with a terminal ``width`` it keeps only what fits whole, picking name, status,
    metrics, params, then the rest, and listing the headers it left out.
    """
    order, param_keys, metric_keys = _candidates(stats, chosen)
    columns = [_column(kind, key, stats, first, now) for kind, key in order]
    if chosen is not None or width is None:
        return Listing(tuple(columns), now=now)
    count = stats["count"]
    ranked = [columns[0], columns[1]]
    by_interest = sorted(metric_keys, key=metric_interest)  # stable: frequency breaks ties
    ranked += [
        columns[len(ATTRIBUTES) + len(param_keys) + metric_keys.index(k)] for k in by_interest
    ]
    # Params whose value differs between the runs say more than constant ones: they go first.
    varying = [k for k in param_keys if stats["params"][k][1] > 1 or stats["params"][k][0] < count]
    by_difference = varying + [k for k in param_keys if k not in varying]
    ranked += [columns[len(ATTRIBUTES) + param_keys.index(k)] for k in by_difference]
    ranked += [columns[i] for i in (5, 4, 2, 3)]  # duration, start, experiment, source
    # The name always stays (shortened with "…" when even it is wider than the terminal).
    name = columns[0]
    if name.width > width:
        name = replace(name, width=max(1, width))
        columns[0] = ranked[0] = name
    kept: set[int] = {id(name)}
    used = name.width
    for column in ranked[1:]:
        if used + GAP + column.width <= width:
            kept.add(id(column))
            used += GAP + column.width
    return Listing(
        tuple(c for c in columns if id(c) in kept),
        tuple(c.header for c in columns if id(c) not in kept),
        now=now,
    )


def _column(
    kind: str, key: str, stats: Mapping[str, Any], first: pa.RecordBatch, now: float
) -> ListingColumn:
    """One column, as wide as its header and the widest value the statistics foresee."""
    if kind == "param":
        runs, _, longest, plain = stats["params"][key]
        column = ListingColumn(fit_text(inert(f"params.{key}"), PARAM_MAX), "param",
                               f"params.{key}", 0, plain=plain)  # fmt: skip
        widths = [min(longest, PARAM_MAX), 1 if runs < stats["count"] else 0]
    elif kind == "metric":
        runs, least, greatest, nan, finite = stats["metrics"][key]
        column = ListingColumn(inert(key), "metric", f"metrics.{key}.last", 0, numeric=True)
        # The extremes stand for the infinities, the store measured the finite values.
        widths = [len(fmt_value(v)) for v in (least, greatest) if v is not None]
        widths += [len(fmt_value(math.nan)) if nan else 0, finite]
        widths.append(1 if runs < stats["count"] else 0)
    elif key == "start":
        today, this_year, other, invalid = stats["start"]
        column = ListingColumn(key, "start", "start_time", 0)
        widths = [len(fmt_time(t, now)) for t in (today, this_year, other) if t is not None]
        widths.append(1 if invalid else 0)
    elif key == "duration":
        column = ListingColumn(key, "duration", "run_duration", 0, numeric=True)
        widths = [len(fmt_duration(d)) for d in stats["durations"]]
        widths.append(1 if stats["no_duration"] else 0)
    else:
        source = ATTRIBUTE_SOURCES.get(key, key)
        longest, plain = stats["text"][source]
        cap = NAME_MAX if key in ("name", "experiment") else longest
        column = ListingColumn(key, key, source, 0, plain=plain)
        widths = [min(longest, cap), 1 if key == "experiment" else 0]
    if not column.plain:
        # Cells the statistics cannot measure exactly: the first batch shows what they look like.
        widths.append(_width(_CELLS[column.kind](first.column(column.source).to_pylist(), now),
                             column.plain))  # fmt: skip
    return replace(column, width=max(cell_len(column.header), 1, *widths))


def _chosen(name: str, param_keys: Sequence[str], metric_keys: Sequence[str]) -> tuple[str, str]:
    if name in ATTRIBUTES:
        return ("attr", name)
    if name.startswith("params.") and name[7:] in param_keys:
        return ("param", name[7:])
    if name.startswith("metrics.") and name[8:] in metric_keys:
        return ("metric", name[8:])
    if name in metric_keys:
        return ("metric", name)
    if name in param_keys:
        return ("param", name)
    raise ColumnError(
        f"unknown column {name!r}: choose from {', '.join(ATTRIBUTES)}, params.KEY, metrics.KEY"
    )


def left_out_note(listing: Listing, width: int) -> str:
    """One line saying which columns did not fit and how to choose columns."""
    count = len(listing.left_out)
    names = ", ".join(listing.left_out[:NOTE_NAMES])
    if count > NOTE_NAMES:
        names += f" and {count - NOTE_NAMES} more"
    return (
        f"{count} column{'s' if count != 1 else ''} left out to fit {width} columns ({names}); "
        "choose them with --columns, e.g. --columns name,status,metrics.KEY"
    )
