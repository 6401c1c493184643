"""Messages that carry results from workers (threads) back to the screens that draw them.

Workers never touch widgets: they post one of these and the screen's handler, on the UI
thread, mounts the data. Frequent ones (ingest progress) may replace an unhandled predecessor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from textual.message import Message

from mltop.core.entities import ImportReport, LogFile, MetricSummary, Run
from mltop.core.runs.runs_view import RunsView
from mltop.core.store import Store


class StoreOpened(Message):
    """The store is open (``note`` says when it is a private fallback copy)."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store


class StoreFailed(Message):
    """The store could not be opened at all."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class IngestProgress(Message):
    """Discovery/import progress: ``done`` of ``total`` sources, now importing ``what``."""

    def __init__(self, what: str, done: int, total: int) -> None:
        super().__init__()
        self.what = what
        self.done = done
        self.total = total

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, IngestProgress)


class StoreChanged(Message):
    """The ingest committed new rows: a good moment to reload what is on screen."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StoreChanged)


class IngestFinished(Message):
    """An ingest ended (``report`` is None when it failed with ``error``)."""

    def __init__(self, report: ImportReport | None, error: str | None = None) -> None:
        super().__init__()
        self.report = report
        self.error = error


class RunsLoaded(Message):
    """A new runs table for the runs screen (``generation`` drops stale answers)."""

    def __init__(
        self,
        view: RunsView,
        generation: int,
        keys: tuple[list[str], list[str], list[str]] | None = None,
        warnings: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.view = view
        self.generation = generation
        self.keys = keys  # (param keys, metric keys, params that vary) when re-read
        self.warnings = warnings  # why the filter may match nothing (metrics no run has)


class FilterRejected(Message):
    """The typed filter does not parse; the table keeps its last good result."""

    def __init__(self, text: str, message: str, position: int, generation: int) -> None:
        super().__init__()
        self.text = text
        self.message = message
        self.position = position
        self.generation = generation


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


class DetailsLoaded(Message):
    def __init__(self, details: RunDetails | None, run_id: str) -> None:
        super().__init__()
        self.details = details
        self.run_id = run_id


class ChartDataLoaded(Message):
    """Downsampled history for one chart: ``buckets`` rows from :meth:`Store.history_buckets`."""

    def __init__(self, key: str, buckets: pa.Table, x: str, width: int, info: Any = None) -> None:
        super().__init__()
        self.key = key
        self.buckets = buckets
        self.x = x
        self.width = width
        self.info = info


class CompareLoaded(Message):
    """A comparison for the compare screen, with its table layout worked out in the worker.

    ``layout`` is a :class:`mltop.tui.widgets.compare_table.CompareLayout`; ``error`` is set
    (and the rest None) when the runs could not be compared.
    """

    def __init__(
        self, comparison: Any, layout: Any, generation: int, error: str | None = None
    ) -> None:
        super().__init__()
        self.comparison = comparison
        self.layout = layout
        self.generation = generation
        self.error = error


class OverlayLoaded(Message):
    """One metric of the compared runs on a shared x axis
    (:func:`mltop.core.compare.overlay.overlay`).

    ``request`` is the (metric, x axis, smoothing, buckets) it answers, so a late answer to an
    older request is dropped.
    """

    def __init__(self, request: tuple[str, str, float, int], series: list[Any]) -> None:
        super().__init__()
        self.request = request
        self.series = series


class LiveUpdate(Message):
    """The live watcher imported changes: which runs changed (new ones included)."""

    def __init__(self, changed_runs: frozenset[str], new_runs: frozenset[str]) -> None:
        super().__init__()
        self.changed_runs = changed_runs
        self.new_runs = new_runs
