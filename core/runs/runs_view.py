"""What the runs screen shows: its columns, the staleness rule, nesting, and the table itself.

The screen holds a list of :class:`Column` and asks :func:`load_runs` for a :class:`RunsView`:
an Arrow table straight from the store (sorted and filtered in SQL), reordered so child runs sit
under their parent, with the display widths of each column. Cells are formatted only when drawn,
so 100,000 runs cost no more to show than 100; this module decides widths up front from cheap
column statistics instead of formatting every value.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mltop.core.common.formatting import fmt_duration, fmt_value
from mltop.core.runs.live_column import order_by_live
from mltop.core.runs.system_keys import is_system_key
from mltop.core.store import RunQuery, Store, string_array

STALE_ENV = "MLTOP_STALE_AFTER"
#: A RUNNING run silent for longer than this (seconds) is shown as stale.
DEFAULT_STALE_AFTER = 300.0

#: Display states, in the order a reader scans for trouble.
STATUS_SYMBOLS = {
    "running": "●",
    "finished": "✓",
    "failed": "✗",
    "killed": "■",
    "stale": "◌",
    "scheduled": "○",
}

# Words that mean "lower is better" in a metric name; everything else is taken as higher-better.
_LOWER_BETTER = (
    "loss", "err", "error", "mse", "mae", "rmse", "mape", "perplexity", "ppl", "wer", "cer",
    "time", "latency", "duration", "regret", "nll", "cost", "distance", "fpr", "fnr",
)  # fmt: skip

MAX_TEXT_WIDTH = 40
MAX_PARAM_WIDTH = 24
NUMBER_SAMPLE = 512


def stale_after() -> float:
    """The staleness threshold: ``$MLTOP_STALE_AFTER`` seconds, else 5 minutes."""
    try:
        value = float(os.environ.get(STALE_ENV, ""))
    except ValueError:
        return DEFAULT_STALE_AFTER
    return value if value > 0 and math.isfinite(value) else DEFAULT_STALE_AFTER


def metric_goal(key: str) -> str:
    """``"min"`` when a metric reads as lower-is-better (loss, error, ...), else ``"max"``."""
    words = key.lower().replace("/", "_").replace(".", "_").replace("-", "_").split("_")
    return "min" if any(w in _LOWER_BETTER for w in words) else "max"


# -- columns ---------------------------------------------------------------------------------------

#: Attribute columns: name -> (header label, store column, cell kind, sort key).
ATTRIBUTES: dict[str, tuple[str, str, str]] = {
    "status": ("", "state", "status"),
    "name": ("name", "name", "name"),
    "experiment": ("experiment", "experiment", "text"),
    "source": ("source", "source_kind", "text"),
    "start": ("started", "start_time", "time"),
    "end": ("ended", "end_time", "time"),
    "duration": ("dur", "duration", "duration"),
    "updated": ("updated", "updated", "time"),
    "host": ("host", "host", "text"),
    "commit": ("commit", "git_commit", "commit"),
    "location": ("location", "location", "text"),
}
DEFAULT_ATTRIBUTES = ("status", "name", "experiment", "source", "start", "duration")
METRIC_AGGREGATES = ("last", "min", "max")


@dataclass(frozen=True)
class Column:
    """One column of the runs table: a run attribute, a param, an aggregate of a metric, or
    ``live``: what a running run does now (its GPUs), known to the screen, not to the store."""

    kind: str  # "attr" | "param" | "metric" | "live"
    name: str  # attribute name, param key or metric key
    agg: str = "last"

    @classmethod
    def attr(cls, name: str) -> Column:
        if name not in ATTRIBUTES:
            raise ValueError(f"unknown attribute column {name!r}")
        return cls("attr", name)

    @classmethod
    def param(cls, key: str) -> Column:
        return cls("param", key)

    @classmethod
    def metric(cls, key: str, agg: str = "last") -> Column:
        if agg not in METRIC_AGGREGATES:
            raise ValueError(f"unknown metric aggregate {agg!r}")
        return cls("metric", key, agg)

    @property
    def id(self) -> str:
        """The name of this column in the table :func:`load_runs` returns."""
        if self.kind == "attr":
            return ATTRIBUTES[self.name][1]
        if self.kind == "param":
            return f"params.{self.name}"
        if self.kind == "live":
            return f"live.{self.name}"
        return f"metrics.{self.name}.{self.agg}"

    @property
    def label(self) -> str:
        """Header text. Params carry their prefix (as in filters); metrics read bare."""
        if self.kind == "attr":
            return ATTRIBUTES[self.name][0]
        if self.kind == "param":
            return f"params.{self.name}"
        if self.kind == "live":
            return self.name.upper()
        return self.name if self.agg == "last" else f"{self.agg}({self.name})"

    @property
    def cell(self) -> str:
        """How a cell of this column is drawn: name, status, text, time, duration, number..."""
        if self.kind == "attr":
            return ATTRIBUTES[self.name][2]
        if self.kind == "live":
            return "live"
        return "param" if self.kind == "param" else "number"

    @property
    def order(self) -> tuple[str, ...]:
        """This column as a sort key for :meth:`Store.runs_table`. A live column sorts after
        the store answers (:func:`~mltop.core.runs.live_column.order_by_live`), newest first
        among the runs it has no value for."""
        if self.kind == "live":
            return ("attr", "start")
        if self.kind == "attr":
            return ("attr", "status" if self.name == "status" else self.name)
        if self.kind == "param":
            return ("param", self.name)
        return ("metric", self.name, self.agg)

    @property
    def natural_descending(self) -> bool:
        """The direction a first sort on this column takes: newest, longest, best first."""
        if self.kind == "metric":
            return metric_goal(self.name) == "max"
        if self.kind == "live":
            return True  # the busiest GPUs first
        return self.kind == "attr" and self.name in ("start", "end", "updated", "duration")


_VALIDATION = ("val", "valid", "validation", "test", "eval", "dev")
_QUALITY = (
    "acc", "accuracy", "loss", "f1", "auc", "roc", "r2", "rmse", "mae", "mse", "score",
    "precision", "recall", "bleu", "map", "iou", "perplexity", "ppl", "err", "error",
)  # fmt: skip
_PLUMBING = ("time", "epoch", "step", "lr", "learning", "rate", "n", "trees", "iter", "memory")


def metric_interest(key: str) -> int:
    """0 for validation quality metrics (val_acc), 1 for quality (loss), 3 for plumbing
    (epoch_time, lr), 2 otherwise: the order a fresh runs table shows metrics in."""
    words = set(key.lower().replace("/", "_").replace(".", "_").replace("-", "_").split("_"))
    quality = bool(words & set(_QUALITY))
    if quality and words & set(_VALIDATION):
        return 0
    if quality:
        return 1
    if words & set(_PLUMBING):
        return 3
    return 2


def default_columns(
    param_keys: Sequence[str],
    metric_keys: Sequence[str],
    params: int = 3,
    metrics: int = 4,
    varying: Iterable[str] | None = None,
) -> list[Column]:
    """What a fresh runs screen shows: the attributes, then telling params and metrics.

    ``param_keys`` and ``metric_keys`` come most common first; params in ``varying`` (those
    with more than one value) go first, and metrics are ordered by :func:`metric_interest`.
    """
    cols = [Column.attr(a) for a in DEFAULT_ATTRIBUTES]
    if varying is not None:
        differ = set(varying)
        param_keys = sorted(param_keys, key=lambda k: k not in differ)  # stable
    # System metrics (CPU, GPU...) stay in the column picker: a fresh table shows the model's.
    model_keys = [k for k in metric_keys if not is_system_key(k)]
    ranked = sorted(model_keys, key=metric_interest)  # stable: frequency breaks ties
    cols += [Column.param(k) for k in param_keys[:params]]
    cols += [Column.metric(k) for k in ranked[:metrics]]
    return cols


#: Running runs' GPUs now (``GPU 0,1 · 87% · 61 GB``), sorted by their utilization.
LIVE_GPU = Column("live", "gpu")


def available_columns(param_keys: Iterable[str], metric_keys: Iterable[str]) -> list[Column]:
    """Every column the picker offers: attributes, params, and last/min/max of each metric."""
    cols = [Column.attr(a) for a in ATTRIBUTES]
    cols += [Column.param(k) for k in param_keys]
    for key in metric_keys:
        cols += [Column.metric(key, agg) for agg in METRIC_AGGREGATES]
    return cols


# -- loading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunsView:
    """A sorted, filtered, nested table of runs ready for the runs screen.

    ``table`` holds id, parent_id, name, ``state`` (the status as shown: lower case, ``stale``
    for a silent RUNNING run), ``deleted``, the requested columns, and per row a ``depth``
    (nesting level) and ``children`` (number of direct children, shown or folded).
    """

    table: pa.Table
    columns: tuple[Column, ...]
    widths: tuple[int, ...]
    matched: int
    total: int
    stats: dict[str, Any] = field(default_factory=dict)
    now: float = 0.0

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def run_id(self, row: int) -> str | None:
        if 0 <= row < self.table.num_rows:
            return self.table.column("id")[row].as_py()
        return None

    def row_of(self, run_id: str) -> int | None:
        """The row showing ``run_id``.

        A scan of the id column (a millisecond at 100,000 runs, once per reload) rather than a
        dictionary of every id, which would keep 100,000 Python strings (15 MB) for it.
        """
        if not run_id or self.table.num_rows == 0:
            return None
        hits = pc.is_in(self.table.column("id"), value_set=string_array([run_id]))
        rows = pc.indices_nonzero(hits)  # not to_numpy(): on a chunked array it imports pandas
        return int(rows[0].as_py()) if len(rows) else None


def nest(table: pa.Table, collapsed: frozenset[str] | set[str] = frozenset()) -> pa.Table:
    """Put child runs right under their parent (depth-first, keeping the sort among siblings).

    A child whose parent is filtered out stays at the top level. Children of a run in
    ``collapsed`` are left out. Adds ``depth`` and ``children`` columns.
    """
    n = table.num_rows
    ids_col = table.column("id")
    parent_col = table.column("parent_id")
    # Most runs have no parent: only look the parents up when some are set.
    nested = (
        n > 0
        and parent_col.null_count < n
        and pc.any(pc.is_in(parent_col.drop_null(), value_set=ids_col.combine_chunks())).as_py()
    )
    if not nested:
        zeros = _int32(np.zeros(n, dtype=np.int32))
        return table.append_column("depth", zeros).append_column("children", zeros)
    ids = ids_col.to_pylist()
    parents = parent_col.to_pylist()
    present = {rid: i for i, rid in enumerate(ids)}
    kids: dict[int, list[int]] = {}
    roots: list[int] = []
    for i, parent in enumerate(parents):
        p = present.get(parent) if parent is not None else None
        if p is None or p == i:
            roots.append(i)
        else:
            kids.setdefault(p, []).append(i)
    order: list[int] = []
    depth: list[int] = []
    counts = [len(kids.get(i, ())) for i in range(n)]
    visited = [False] * n

    def walk(start: int) -> None:
        stack = [(start, 0)]
        while stack:
            i, d = stack.pop()
            if visited[i]:
                continue
            visited[i] = True
            order.append(i)
            depth.append(d)
            if ids[i] in collapsed:
                for child in kids.get(i, ()):  # folded away, but never re-listed as a root
                    _mark_subtree(child, kids, visited)
                continue
            stack.extend((c, d + 1) for c in reversed(kids.get(i, ())))

    for root in roots:
        walk(root)
    for i in range(n):  # parent cycles (a→b→a) have no root: list them rather than lose them
        if not visited[i]:
            walk(i)
    taken = table.take(_int32(np.array(order, dtype=np.int32)))
    return taken.append_column("depth", _int32(np.array(depth, dtype=np.int32))).append_column(
        "children", _int32(np.array([counts[i] for i in order], dtype=np.int32))
    )


def _int32(values: np.ndarray) -> pa.Array:
    """An Arrow int32 array over a numpy buffer.

    ``pa.array`` would do, but it asks whether its input is a pandas object, and that question
    imports pandas (most of a second) on a first call; start-up has better uses for the time.
    """
    values = np.ascontiguousarray(values, dtype=np.int32)
    return pa.Array.from_buffers(pa.int32(), len(values), [None, pa.py_buffer(values)])


def _mark_subtree(start: int, kids: dict[int, list[int]], visited: list[bool]) -> None:
    stack = [start]
    while stack:
        i = stack.pop()
        if not visited[i]:
            visited[i] = True
            stack.extend(kids.get(i, ()))


class ValuesCache:
    """Param and metric columns of every run, each fetched once per store version.

    Joining a column of values onto 100,000 runs by their text id costs DuckDB about 30 ms of
    CPU per column, so a table of seven such columns would spend 200 ms on joins for every
    keystroke in the filter. Instead each column is fetched once for all runs, aligned to one
    sorted id vector; a filtered, sorted answer only looks its rows up in that vector. Any
    change to the store (a new ``version``) starts over.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: object = None
        self._ids: pa.Array | None = None
        self._columns: dict[Column, pa.Array] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._version = None
            self._ids = None
            self._columns.clear()

    def covers(self, version: object, columns: Sequence[Column]) -> bool:
        with self._lock:
            return version == self._version and all(c in self._columns for c in columns)

    def seed(self, version: object, table: pa.Table, columns: Sequence[Column]) -> None:
        """Adopt the columns of an unfiltered answer (it holds every run already)."""
        with self._lock:
            self._version = version
            self._ids = _own(table.column("id"))
            self._columns = {c: _own(table.column(c.id)) for c in columns}

    def take(
        self, store: Store, version: object, ids: pa.Array, columns: Sequence[Column]
    ) -> dict[Column, pa.Array]:
        """The values of ``columns`` for runs ``ids`` (in that order), fetching what is missing."""
        wanted = [c for c in dict.fromkeys(columns) if c.kind in ("param", "metric")]
        with self._lock:
            if version != self._version or self._ids is None:
                self._version = version
                self._columns.clear()
                self._ids = _own(
                    store.runs_table(attributes=[], order=("attr", "id"), descending=False).column(
                        "id"
                    )
                )
            missing = [c for c in wanted if c not in self._columns]
            if missing:
                fetched = store.runs_table(
                    attributes=[],
                    params=[c.name for c in missing if c.kind == "param"],
                    metrics=[(c.name, c.agg) for c in missing if c.kind == "metric"],
                    order=("attr", "id"),
                    descending=False,
                )
                if fetched.num_rows != len(self._ids):  # the store moved on under us
                    self._version = None
                    return _plain_take(fetched, ids, wanted)
                for column in missing:
                    self._columns[column] = _own(fetched.column(column.id))
            positions = pc.index_in(ids, value_set=self._ids)
            return {c: self._columns[c].take(positions) for c in wanted}


def _own(column: pa.ChunkedArray) -> pa.Array:
    """A copy of ``column`` in memory of its own, for keeping beyond the table it came from.

    The buffers of a table DuckDB hands over are freed only once every column of it is gone:
    one column kept from a 100,000-run answer kept all of it (14 MB of ids, names, ...) for as
    long as the cache held the column, beside the table on screen.
    """
    if column.num_chunks == 0:
        return pa.nulls(0, column.type)
    return pa.concat_arrays(column.chunks)


def _plain_take(
    table: pa.Table, ids: pa.Array, columns: Sequence[Column]
) -> dict[Column, pa.Array]:
    positions = pc.index_in(ids, value_set=table.column("id").combine_chunks())
    return {c: table.column(c.id).take(positions) for c in columns}


def load_runs(
    store: Store,
    query: RunQuery | None = None,
    columns: Sequence[Column] = (),
    sort: Column | None = None,
    descending: bool = True,
    *,
    collapsed: frozenset[str] | set[str] = frozenset(),
    now: float | None = None,
    stale_after_s: float | None = None,
    with_stats: bool = True,
    cache: ValuesCache | None = None,
    version: object = 0,
    live: Mapping[str, float] | None = None,
) -> RunsView:
    """Query the store for the runs screen: filter and sort in SQL, then nest and measure.

    With a :class:`ValuesCache` the SQL only filters and orders the runs; their param and
    metric values come from the cache (fetched for every run once per store ``version``).
    Sorted by :data:`LIVE_GPU`, the running runs in ``live`` (GPU utilization by run id) come
    first, by utilization.
    """
    now = time.time() if now is None else now
    stale_s = stale_after() if stale_after_s is None else stale_after_s
    sort = sort or Column.attr("start")
    valued = [c for c in dict.fromkeys(columns) if c.kind in ("param", "metric")]
    attributes = ["deleted"]
    attributes += [c.id for c in columns if c.kind == "attr" and c.id not in ("state", "name")]
    unfiltered = query is None or query.where == "TRUE"
    # Join the values in SQL when there is no cache, or when this answer (every run) can seed it.
    joined = cache is None or not valued or (unfiltered and not cache.covers(version, valued))
    table = store.runs_table(
        query,
        attributes=list(dict.fromkeys(attributes)),
        params=[c.name for c in valued if c.kind == "param"] if joined else [],
        metrics=[(c.name, c.agg) for c in valued if c.kind == "metric"] if joined else [],
        order=sort.order,
        descending=descending or sort.kind == "live",  # runs with no live figure: newest first
        stale_before=now - stale_s,
    )
    if cache is not None and valued:
        if joined:
            cache.seed(version, table, valued)
        else:
            ids = table.column("id").combine_chunks()
            for column, values in cache.take(store, version, ids, valued).items():
                table = table.append_column(column.id, values)
    matched = table.num_rows
    if sort.kind == "live":
        table = order_by_live(table, live or {}, descending)
    table = nest(table, collapsed)
    stats = store.run_stats(now - stale_s) if with_stats else {}
    total = stats.get("total", matched) if with_stats else matched
    widths = tuple(column_width(table, c, now) for c in columns)
    return RunsView(table, tuple(columns), widths, matched, total, stats, now)


# -- widths ----------------------------------------------------------------------------------------


# Widths are computed without Python scalars in Arrow compute calls: pyarrow turns a Python
# scalar into an Arrow one by first asking whether it is a pandas object, which imports pandas
# (most of a second) the first time, in the middle of start-up.


def _max_length(values: pa.ChunkedArray | pa.Array, extra: pa.ChunkedArray | None = None) -> int:
    if len(values) == 0:
        return 0
    lengths = pc.utf8_length(values.cast(pa.string()))
    if extra is not None:
        lengths = pc.add(lengths, extra)
    widest = pc.max(lengths).as_py()
    return int(widest) if widest is not None else 0


def _number_width(values: pa.ChunkedArray | pa.Array) -> int:
    """The widest formatted value, judged from the extremes and a sample (never every row)."""
    return _sampled_width(values, fmt_value)


def _sampled_width(
    values: pa.ChunkedArray | pa.Array, formatter: Callable[[float | None], str]
) -> int:
    """The widest of ``values`` as ``formatter`` writes them, judged from the extremes and a
    sample (never every row). A wider value past the sample is fitted to this width when drawn.
    """
    if len(values) == 0:
        return 1
    sample: list[Any] = values.slice(0, NUMBER_SAMPLE).to_pylist()
    extremes = pc.min_max(values)
    sample += [extremes["min"].as_py(), extremes["max"].as_py()]
    if values.type in (pa.float64(), pa.float32()) and pc.any(pc.is_nan(values)).as_py():
        sample.append(math.nan)
    return max((len(formatter(v)) for v in sample if v is not None), default=1)


def _any_running(table: pa.Table) -> bool:
    if table.num_rows == 0:
        return False
    return bool(pc.any(pc.match_substring(table.column("state"), "running")).as_py())


def column_width(table: pa.Table, column: Column, now: float) -> int:
    """Display width of a column's cells (not its header), from column statistics."""
    cell = column.cell
    if cell == "status":
        return 1
    if cell == "duration":
        return _sampled_width(table.column(column.id), fmt_duration)
    if cell == "commit":
        return 8
    values = table.column(column.id)
    if cell == "time":
        if table.num_rows == 0:
            return 5
        extremes = pc.min_max(values)
        earliest, latest = extremes["min"].as_py(), extremes["max"].as_py()
        if earliest is None:
            return 1
        today = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
        # Only times of today read HH:MM; one in the future (a year 5138 from milliseconds
        # written as seconds) reads as a date, and the column must hold it whole.
        tomorrow = (today + timedelta(days=1)).timestamp()
        return 5 if today.timestamp() <= earliest and latest < tomorrow else 12
    if cell == "name":
        if table.num_rows == 0:
            return 4
        depth = table.column("depth")
        folded = (pc.max(table.column("children")).as_py() or 0) > 0
        widest = _max_length(values, pc.add(depth, depth)) + (6 if folded else 0)
        return min(widest, MAX_TEXT_WIDTH)
    if cell == "number":
        return _number_width(values) + (2 if _any_running(table) else 0)
    cap = MAX_PARAM_WIDTH if cell == "param" else MAX_TEXT_WIDTH
    return max(1, min(_max_length(values), cap))
