"""The table ``mltop runs`` prints: its columns, their widths, and which ones fit a terminal.

Squeezing a dozen columns into 80 terminal cells turns every number into ``0…``: a table of
values nobody can read. In a terminal the listing instead keeps the columns that fit whole, in
the order people look for them (name, status, the metrics, then params, then the rest), and says
how many it left out and how to pick them (``--columns``). Piped or redirected, every column is
printed whole, however wide the lines get. Numbers are never cut in either case.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from mltop.core.common.formatting import fit_text, fmt_duration, fmt_time, fmt_value
from mltop.core.common.sanitize import inert
from mltop.core.entities import Run
from mltop.core.runs.runs_view import metric_interest
from mltop.core.runs.system_keys import is_system_key

ATTRIBUTES = ("name", "status", "experiment", "source", "start", "duration")
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
    """One printed column: its header, its cells as text, and how it aligns."""

    header: str
    cells: tuple[str, ...]
    numeric: bool = False

    @functools.cached_property
    def width(self) -> int:
        # Terminal cells, not characters: a wide character (学) takes two.
        return max([cell_len(self.header), *(cell_len(c) for c in self.cells)])


@dataclass(frozen=True)
class Listing:
    columns: tuple[ListingColumn, ...]
    left_out: tuple[str, ...] = ()

    def table(self) -> Table:
        """The listing as a rich table whose columns are exactly as wide as their cells."""
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for column in self.columns:
            table.add_column(
                Text(column.header),
                justify="right" if column.numeric else "left",
                no_wrap=True,
                min_width=column.width,
                max_width=column.width,
            )
        rows = len(self.columns[0].cells) if self.columns else 0
        for row in range(rows):
            table.add_row(*(Text(c.cells[row]) for c in self.columns))
        return table

    @property
    def width(self) -> int:
        return sum(c.width for c in self.columns) + GAP * max(0, len(self.columns) - 1)

    def header_line(self) -> str:
        return self._line([c.header for c in self.columns])

    def lines(self) -> Iterator[str]:
        """The rows as text, laid out as :meth:`table` lays them out, one string per row.

        Fifty thousand rows go through a rich ``Table`` in about ten seconds; padding strings
        that are already fitted costs a fraction of one.
        """
        cells = [c.cells for c in self.columns]
        for row in zip(*cells, strict=True):
            yield self._line(row)

    def _line(self, texts: Sequence[str]) -> str:
        return (" " * GAP).join(
            _pad(text, column.width, column.numeric)
            for text, column in zip(texts, self.columns, strict=True)
        )


def _pad(text: str, width: int, right: bool) -> str:
    room = width - (len(text) if text.isascii() else cell_len(text))
    if room <= 0:
        return text
    return " " * room + text if right else text + " " * room


def _common_keys(per_run: Mapping[str, Mapping[str, Any]]) -> list[str]:
    seen: dict[str, int] = {}
    for values in per_run.values():
        for key in values:
            seen[key] = seen.get(key, 0) + 1
    return [k for k, _ in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))]


def _attribute(name: str, runs: Sequence[Run]) -> ListingColumn:
    if name == "name":
        cells = [fit_text(inert(r.name), NAME_MAX) for r in runs]
    elif name == "status":
        cells = [inert(r.status) for r in runs]
    elif name == "experiment":
        cells = [fit_text(inert(r.experiment), NAME_MAX) if r.experiment else "—" for r in runs]
    elif name == "source":
        cells = [inert(r.source_kind) for r in runs]
    elif name == "start":
        cells = [fmt_time(r.start_time) for r in runs]
    else:
        return ListingColumn(name, tuple(fmt_duration(r.duration) for r in runs), numeric=True)
    return ListingColumn(name, tuple(cells))


def _param(key: str, runs: Sequence[Run], params: Mapping[str, Mapping[str, str]]) -> ListingColumn:
    cells = tuple(fit_text(inert(params[r.id].get(key, "—")), PARAM_MAX) for r in runs)
    return ListingColumn(fit_text(inert(f"params.{key}"), PARAM_MAX), cells)


def _metric(
    key: str, runs: Sequence[Run], metrics: Mapping[str, Mapping[str, Any]]
) -> ListingColumn:
    cells = tuple(fmt_value(metrics[r.id][key].last) if key in metrics[r.id] else "—" for r in runs)
    return ListingColumn(inert(key), cells, numeric=True)


def build_listing(
    runs: Sequence[Run],
    params: Mapping[str, Mapping[str, str]],
    metrics: Mapping[str, Mapping[str, Any]],
    *,
    width: int | None = None,
    chosen: Sequence[str] | None = None,
) -> Listing:
    """The columns to print for ``runs``.

    ``chosen`` (from ``--columns``) names them outright: attributes, ``params.KEY``,
    ``metrics.KEY`` or a bare metric or param key. Otherwise the listing holds the attributes,
    the six most common params and the six most common model metrics (system metrics only when
    chosen); with a terminal ``width`` it
    keeps only what fits whole, picking name, status, metrics, params, then the rest, and
    listing the headers it left out.
    """
    param_keys = _common_keys(params)
    metric_keys = _common_keys(metrics)
    if chosen is not None:
        return Listing(tuple(_chosen(name, runs, params, metrics, param_keys, metric_keys)
                             for name in chosen))  # fmt: skip
    # System metrics (CPU, GPU...) are many and say nothing about the model: chosen, not default.
    metric_keys = [k for k in metric_keys if not is_system_key(k)][:DEFAULT_METRICS]
    param_keys = param_keys[:DEFAULT_PARAMS]
    order: list[ListingColumn] = [_attribute(a, runs) for a in ATTRIBUTES]
    order += [_param(k, runs, params) for k in param_keys]
    order += [_metric(k, runs, metrics) for k in metric_keys]
    if width is None:
        return Listing(tuple(order))
    by_interest = sorted(metric_keys, key=metric_interest)  # stable: frequency breaks ties
    ranked = [order[0], order[1]]
    ranked += [order[len(ATTRIBUTES) + len(param_keys) + metric_keys.index(k)] for k in by_interest]
    # Params whose value differs between the runs say more than constant ones: they go first.
    varying = [k for k in param_keys if len({params[r.id].get(k) for r in runs}) > 1]
    by_difference = varying + [k for k in param_keys if k not in varying]
    ranked += [order[len(ATTRIBUTES) + param_keys.index(k)] for k in by_difference]
    ranked += [order[i] for i in (5, 4, 2, 3)]  # duration, start, experiment, source
    # The name always stays (shortened with "…" when even it is wider than the terminal).
    name = order[0]
    if name.width > width:
        name = ListingColumn(name.header, tuple(fit_text(c, max(1, width)) for c in name.cells))
        order[0] = ranked[0] = name
    kept: set[int] = {id(name)}
    used = name.width
    for column in ranked[1:]:
        if used + GAP + column.width <= width:
            kept.add(id(column))
            used += GAP + column.width
    return Listing(
        tuple(c for c in order if id(c) in kept),
        tuple(c.header for c in order if id(c) not in kept),
    )


def _chosen(
    name: str,
    runs: Sequence[Run],
    params: Mapping[str, Mapping[str, str]],
    metrics: Mapping[str, Mapping[str, Any]],
    param_keys: Sequence[str],
    metric_keys: Sequence[str],
) -> ListingColumn:
    if name in ATTRIBUTES:
        return _attribute(name, runs)
    if name.startswith("params.") and name[7:] in param_keys:
        return _param(name[7:], runs, params)
    if name.startswith("metrics.") and name[8:] in metric_keys:
        return _metric(name[8:], runs, metrics)
    if name in metric_keys:
        return _metric(name, runs, metrics)
    if name in param_keys:
        return _param(name, runs, params)
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
