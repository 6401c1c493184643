"""Messages that carry results from workers (threads) back to the screens that draw them.

Workers never touch widgets: they post one of these and the screen's handler, on the UI
thread, mounts the data. Frequent ones (ingest progress) may replace an unhandled predecessor.
Each is a dataclass (Textual's ``Message`` initialises itself in ``__post_init__``), so a
message is the list of what it carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from textual.message import Message

from mltop.core.entities import ImportReport, LogFile, MetricSummary, Run
from mltop.core.runs.runs_view import RunsView
from mltop.core.store import Store


@dataclass
class StoreOpened(Message):
    """The store is open (``note`` says when it is a private fallback copy)."""

    store: Store


@dataclass
class StoreFailed(Message):
    """The store could not be opened at all."""

    error: str


@dataclass
class IngestProgress(Message):
    """Discovery/import progress: ``done`` of ``total`` sources, now importing ``what``."""

    what: str
    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, IngestProgress)


class StoreChanged(Message):
    """The ingest committed new rows: a good moment to reload what is on screen."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StoreChanged)


@dataclass
class IngestFinished(Message):
    """An ingest ended (``report`` is None when it failed with ``error``)."""

    report: ImportReport | None
    error: str | None = None


@dataclass
class RunsLoaded(Message):
    """A new runs table for the runs screen (``generation`` drops stale answers)."""

    view: RunsView
    generation: int
    # (param keys, metric keys, params that vary) when re-read
    keys: tuple[list[str], list[str], list[str]] | None = None
    warnings: tuple[str, ...] = ()  # why the filter may match nothing (metrics no run has)


@dataclass
class FilterRejected(Message):
    """The typed filter does not parse; the table keeps its last good result."""

    text: str
    message: str
    position: int
    generation: int


@dataclass(frozen=True)
class RunDetails:
    """Everything the run detail screen shows besides the charts."""

    run: Run
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, MetricSummary]
    parent: Run | None = None
    children: list[Run] = field(default_factory=list)
    logs: list[LogFile] = field(default_factory=list)
    points: int = 0


@dataclass
class DetailsLoaded(Message):
    details: RunDetails | None
    run_id: str


@dataclass
class ChartDataLoaded(Message):
    """Downsampled history for one chart: ``buckets`` rows from :meth:`Store.history_buckets`."""

    key: str
    buckets: pa.Table
    x: str
    width: int
    info: Any = None


@dataclass
class CompareLoaded(Message):
    """A comparison for the compare screen, with its table layout worked out in the worker.

    ``layout`` is a :class:`mltop.tui.widgets.compare_table.CompareLayout`; ``error`` is set
    (and the rest None) when the runs could not be compared.
    """

    comparison: Any
    layout: Any
    generation: int
    error: str | None = None


@dataclass
class OverlayLoaded(Message):
    """One metric of the compared runs on a shared x axis
    (:func:`mltop.core.compare.overlay.overlay`).

    ``request`` is the (metric, x axis, smoothing, buckets) it answers, so a late answer to an
    older request is dropped.
    """

    request: tuple[str, str, float, int]
    series: list[Any]


@dataclass
class LiveUpdate(Message):
    """The live watcher imported changes: which runs changed (new ones included)."""

    changed_runs: frozenset[str]
    new_runs: frozenset[str]
