"""A braille line chart of one metric, drawn from per-bucket min/max rows.

The store cuts a history into as many x-slices as the chart has dot columns and keeps each
slice's min, max, mean and last value (:meth:`Store.history_buckets`), so a million points arrive
here as a few hundred rows. Each dot column draws its slice's min..max span (a lone spike stays
visible) joined to its neighbours; with smoothing on, the raw envelope is dimmed and an EMA of
the slice means is drawn over it, as TensorBoard and W&B do. Braille gives 2x4 dots per cell.

:func:`draw_chart` is pure (arrays in, styled lines out) so it can be benchmarked and tested
without an app; :class:`LineChart` is the widget around it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive

from mltop.core.common.formatting import fmt_duration, fmt_value
from mltop.core.common.sanitize import inert
from mltop.tui.widgets.chart_widget import BucketChart, ChartResized
from mltop.tui.widgets.segments import text_segments

BRAILLE = 0x2800
# Bit of each dot in a braille cell, indexed [row 0..3][column 0..1] (Unicode's dot numbering).
_DOT_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint8)
SMOOTHING_STEPS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class Series:
    """One metric's buckets as arrays (NaN where a bucket has no finite value)."""

    bucket: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    mean: np.ndarray
    last: np.ndarray
    x_first: float
    x_last: float
    buckets: int
    points: int
    nonfinite: int
    last_value: float | None

    @classmethod
    def from_table(cls, table: pa.Table, buckets: int) -> Series:
        def col(name: str, dtype: type = np.float64) -> np.ndarray:
            return _numbers(table.column(name), dtype)

        n = table.num_rows
        last_values = col("y_last") if n else np.empty(0)
        return cls(
            bucket=col("bucket", np.int64),
            lo=col("y_min"),
            hi=col("y_max"),
            mean=col("y_mean"),
            last=last_values,
            x_first=float(table.column("x_min")[0].as_py()) if n else 0.0,
            x_last=float(table.column("x_max")[n - 1].as_py()) if n else 0.0,
            buckets=max(1, buckets),
            points=int(pc.sum(table.column("n")).as_py() or 0) if n else 0,
            nonfinite=int(pc.sum(table.column("nonfinite")).as_py() or 0) if n else 0,
            last_value=float(last_values[-1]) if n else None,
        )


def _numbers(column: pa.ChunkedArray, dtype: type) -> np.ndarray:
    """A null-free numeric column as numpy, read straight from its buffer.

    ``to_numpy`` would do, but pyarrow asks on the way whether pandas is around, which imports
    pandas (most of a second) in the middle of drawing the first chart. The store sends NaN,
    never null, for empty slices, so the validity bitmap can be ignored.
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(array) == 0:
        return np.empty(0, dtype=dtype)
    if array.null_count:
        raise ValueError("chart columns must not hold nulls")
    width = np.dtype(dtype).itemsize
    data = array.buffers()[1]
    return np.frombuffer(data, dtype=dtype, count=len(array), offset=array.offset * width).copy()


@dataclass(frozen=True)
class ChartStyles:
    line: Style
    raw: Style
    axis: Style
    title: Style
    value: Style
    muted: Style


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's), skipping NaN gaps."""
    if weight <= 0:
        return values.copy()
    out = np.full(values.shape, np.nan)
    acc = 0.0
    count = 0
    for i, v in enumerate(values):
        if not math.isfinite(v):
            continue
        acc = acc * weight + (1 - weight) * v
        count += 1
        out[i] = acc / (1 - weight**count)
    return out


def _log(values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, np.log10(np.where(values > 0, values, 1.0)), np.nan)


def _x_label(x: float, kind: str, origin: float, span: float) -> str:
    """Step numbers as they are; times as the time since the first point."""
    if kind == "time":
        seconds = x - origin
        if span < 10:
            return f"{seconds:.2f}s" if span >= 0.1 else f"{seconds * 1000:.0f}ms"
        return fmt_duration(seconds)
    return fmt_value(x)


def draw_chart(
    series: Series | None,
    width: int,
    height: int,
    styles: ChartStyles,
    *,
    title: str = "",
    smoothing: float = 0.0,
    log_y: bool = False,
    x_kind: str = "step",
    message: str | None = None,
) -> list[list[Segment]]:
    """Lines of segments for a chart ``width`` x ``height`` cells (title, plot, x labels)."""
    width = max(1, width)
    height = max(1, height)
    head = Text(inert(title), style=styles.title, no_wrap=True, overflow="ellipsis")
    if series is not None and series.last_value is not None:
        tail = Text.assemble(("last ", styles.muted), (fmt_value(series.last_value), styles.value))
        if series.nonfinite:
            tail.append(f"  {series.nonfinite:,} non-finite", style=styles.muted)
        room = width - tail.cell_len - 1
        head.truncate(max(1, room), overflow="ellipsis")
        head.append(" " * max(1, width - head.cell_len - tail.cell_len))
        head.append_text(tail)
    lines: list[list[Segment]] = [_fit(head, width)]
    if height == 1:
        return lines
    plot_h = max(1, height - 2)
    body = _plot(series, width, plot_h, styles, smoothing, log_y, x_kind, message)
    lines += body
    return lines[:height]


def _fit(text: Text, width: int) -> list[Segment]:
    """A one-line Text as exactly ``width`` cells of segments."""
    text = text.copy()
    text.no_wrap = True
    text.truncate(width, overflow="ellipsis", pad=True)
    return text_segments(text, _console())


_RENDER_CONSOLE: Console | None = None


def _console() -> Console:
    """A private console for turning Text into segments (styles are resolved objects already)."""
    global _RENDER_CONSOLE
    if _RENDER_CONSOLE is None:
        _RENDER_CONSOLE = Console(file=io.StringIO(), width=1000, color_system="truecolor")
    return _RENDER_CONSOLE


@dataclass(frozen=True)
class PlotArea:
    """Where a plot stands: its y range with the labels at its left edge, and the braille dots
    right of the axis. The run detail's chart and the compare overlay lay out alike."""

    y_min: float
    y_max: float
    top: str
    bottom: str
    label_w: int
    plot_w: int
    plot_h: int

    @classmethod
    def fit(
        cls, y_min: float, y_max: float, width: int, plot_h: int, label: Callable[[float], str]
    ) -> PlotArea:
        """The area for values from ``y_min`` to ``y_max`` in ``width`` cells; a flat line gets
        a band around it rather than a zero span."""
        if y_max - y_min < 1e-12 * max(1.0, abs(y_max)):
            pad = abs(y_max) * 0.05 or 0.5
            y_min, y_max = y_min - pad, y_max + pad
        top, bottom = label(y_max), label(y_min)
        label_w = max(len(top), len(bottom))
        return cls(y_min, y_max, top, bottom, label_w, max(1, width - label_w - 1), plot_h)

    @property
    def dots_w(self) -> int:
        return self.plot_w * 2

    @property
    def dots_h(self) -> int:
        return self.plot_h * 4

    def to_row(self, values: np.ndarray) -> np.ndarray:
        """Values to dot rows, the top row for ``y_max``."""
        scaled = (self.y_max - values) / (self.y_max - self.y_min) * (self.dots_h - 1)
        return np.clip(np.rint(scaled), 0, self.dots_h - 1)

    def y_axis(self, row: int, muted: Style, axis: Style) -> list[Segment]:
        """The label (on the first and last rows) and the axis left of plot row ``row``."""
        last = self.plot_h - 1
        tick = self.top if row == 0 else self.bottom if row == last else ""
        mark = "┤" if row in (0, last) else "│"
        return [Segment(tick.rjust(self.label_w), muted), Segment(mark, axis)]


def _plot(
    series: Series | None,
    width: int,
    plot_h: int,
    styles: ChartStyles,
    smoothing: float,
    log_y: bool,
    x_kind: str,
    message: str | None,
) -> list[list[Segment]]:
    blank = [Segment(" " * width)]
    has_data = series is not None and series.lo.size > 0 and np.isfinite(series.hi).any()
    if not has_data or series is None:
        text = message or ("no finite values" if series is not None and series.points else "…")
        out = [list(blank) for _ in range(plot_h + 1)]
        middle = min(plot_h // 2, plot_h)
        out[middle] = _fit(Text(f"  {text}", style=styles.muted), width)
        return out
    lo, hi, mean = series.lo, series.hi, series.mean
    if log_y:
        lo, hi, mean = _log(lo), _log(hi), _log(mean)
    finite_hi = hi[np.isfinite(hi)]
    finite_lo = np.concatenate([lo[np.isfinite(lo)], finite_hi])
    if finite_hi.size == 0:
        out = [list(blank) for _ in range(plot_h + 1)]
        out[plot_h // 2] = _fit(
            Text("  no positive values for log scale", style=styles.muted), width
        )
        return out
    y_min, y_max = float(finite_lo.min()), float(finite_hi.max())
    if log_y:
        # A slice reaching zero or below has no log: let its span run to the bottom of the axis.
        lo = np.where(np.isnan(lo) & np.isfinite(hi), y_min, lo)
        mean = np.where(np.isnan(mean) & np.isfinite(hi), lo, mean)
    smooth = ema(mean, smoothing) if smoothing > 0 else None

    def label(v: float) -> str:
        return fmt_value(10**v if log_y else v, 3)

    area = PlotArea.fit(y_min, y_max, width, plot_h, label)
    label_w, plot_w, dots_w, dots_h, to_row = (
        area.label_w, area.plot_w, area.dots_w, area.dots_h, area.to_row
    )  # fmt: skip

    # Bucket index -> dot column (a chart resized since the query still draws right).
    span = max(1, series.buckets - 1)
    cols = np.rint(series.bucket * (dots_w - 1) / span).astype(np.int64) if span else series.bucket
    cols = np.clip(cols, 0, dots_w - 1)

    raw = np.zeros((dots_h, dots_w), dtype=bool)
    _draw_series(raw, cols, to_row(lo), to_row(hi), to_row(mean))
    line = None
    if smooth is not None:
        line = np.zeros((dots_h, dots_w), dtype=bool)
        r = to_row(smooth)
        _draw_series(line, cols, r, r, r)
    raw_cells = _braille(raw, plot_h, plot_w)
    line_cells = _braille(line, plot_h, plot_w) if line is not None else None

    out: list[list[Segment]] = []
    for row in range(plot_h):
        segs = area.y_axis(row, styles.muted, styles.axis)
        segs += _row_segments(
            raw_cells[row],
            None if line_cells is None else line_cells[row],
            styles,
            smooth is not None,
        )
        out.append(segs)
    out.append(_x_axis(series, label_w, plot_w, styles, x_kind))
    return out


def _draw_series(
    grid: np.ndarray, cols: np.ndarray, lo: np.ndarray, hi: np.ndarray, mid: np.ndarray
) -> None:
    """Fill each bucket's lo..hi span and join consecutive buckets through their mid values."""
    ok = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(mid)
    if not ok.any():
        return
    cols, lo, hi, mid = cols[ok], lo[ok], hi[ok], mid[ok]
    dots_h, _ = grid.shape
    # Line value at every dot column between the first and last bucket (linear in between).
    all_cols = np.arange(cols[0], cols[-1] + 1)
    path = np.rint(np.interp(all_cols, cols, mid))
    prev = np.concatenate(([path[0]], path[:-1]))
    top = np.minimum(path, prev)
    bottom = np.maximum(path, prev)
    # The spans at the buckets themselves cover their whole min..max range.
    idx = cols - cols[0]
    top[idx] = np.minimum(top[idx], np.minimum(lo, hi))
    bottom[idx] = np.maximum(bottom[idx], np.maximum(lo, hi))
    rows = np.arange(dots_h)[:, None]
    grid[:, all_cols] |= (rows >= top[None, :]) & (rows <= bottom[None, :])


def _braille(grid: np.ndarray | None, plot_h: int, plot_w: int) -> np.ndarray:
    """Pack a dots_h x dots_w boolean grid into plot_h x plot_w braille bit masks."""
    if grid is None:
        return np.zeros((plot_h, plot_w), dtype=np.uint8)
    cells = grid.reshape(plot_h, 4, plot_w, 2)
    bits = cells * _DOT_BITS[None, :, None, :]
    return bits.sum(axis=(1, 3)).astype(np.uint8)


def _row_segments(
    raw: np.ndarray, line: np.ndarray | None, styles: ChartStyles, smoothed: bool
) -> list[Segment]:
    """One plot row: consecutive cells of the same style merge into one segment."""
    segs: list[Segment] = []
    buf: list[str] = []
    current: Style | None = None
    raw_style = styles.raw if smoothed else styles.line
    for i in range(raw.shape[0]):
        lb = int(line[i]) if line is not None else 0
        rb = int(raw[i])
        if lb:
            char, style = chr(BRAILLE + (lb | rb)), styles.line
        elif rb:
            char, style = chr(BRAILLE + rb), raw_style
        else:
            char, style = " ", styles.axis
        if style is not current and buf:
            segs.append(Segment("".join(buf), current))
            buf = []
        current = style
        buf.append(char)
    if buf:
        segs.append(Segment("".join(buf), current))
    return segs


def _x_axis(
    series: Series, label_w: int, plot_w: int, styles: ChartStyles, x_kind: str
) -> list[Segment]:
    first, last = series.x_first, series.x_last
    origin = first
    span = last - first
    labels = [(0, _x_label(first, x_kind, origin, span))]
    if plot_w >= 24 and last > first:
        mid = first + (last - first) / 2
        if x_kind == "step":
            mid = round(mid)
        labels.append((plot_w // 2, _x_label(mid, x_kind, origin, span)))
    if last > first:
        end = _x_label(last, x_kind, origin, span)
        labels.append((plot_w - len(end), end))
    return x_axis_line(labels, label_w, plot_w, styles.muted, styles.axis)


def x_axis_line(
    labels: list[tuple[int, str]], label_w: int, plot_w: int, muted: Style, axis: Style
) -> list[Segment]:
    """The line under a plot: ``labels`` at their columns, left to right, each dropped that
    would overlap the one before it or run past the right edge."""
    chars = [" "] * plot_w
    taken_until = -1
    for pos, text in labels:
        pos = max(pos, taken_until + 2 if taken_until >= 0 else 0)
        if pos + len(text) > plot_w:
            continue
        chars[pos : pos + len(text)] = list(text)
        taken_until = pos + len(text)
    return [Segment(" " * label_w, muted), Segment("└", axis), Segment("".join(chars), muted)]


class LineChart(BucketChart, can_focus=True):
    """A focusable chart of one metric. The screen feeds it buckets; it asks when resized."""

    DEFAULT_CSS = """
    LineChart {
        height: 10;
        min-width: 20;
        padding: 0 1;
    }
    LineChart:focus {
        background: $boost;
    }
    LineChart > .chart--line { color: $accent; }
    LineChart > .chart--raw { color: $accent 45%; }
    LineChart > .chart--axis { color: $foreground 40%; }
    LineChart > .chart--title { color: $foreground; text-style: bold; }
    LineChart:focus > .chart--title { color: $accent; text-style: bold underline; }
    LineChart > .chart--value { color: $foreground; }
    LineChart > .chart--muted { color: $foreground 55%; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "chart--line",
        "chart--raw",
        "chart--axis",
        "chart--title",
        "chart--value",
        "chart--muted",
    }

    smoothing: reactive[float] = reactive(0.0)
    log_y: reactive[bool] = reactive(False)
    x_kind: reactive[str] = reactive("step")

    FIRST_WIDTH = 40

    class Resized(ChartResized):
        """The chart's width changed: it wants ``buckets`` slices of its history."""

    def __init__(
        self,
        key: str,
        *,
        title: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.key = key
        #: What the chart is headed with: the key, or a shorter name its group makes clear.
        self.title = key if title is None else title
        self.series: Series | None = None

    # -- data ------------------------------------------------------------------------------------

    def set_buckets(self, table: pa.Table, buckets: int, x_kind: str) -> None:
        self.series = Series.from_table(table, buckets)
        self.message_text = (
            None if table.num_rows else ("no timestamps" if x_kind == "time" else "no points")
        )
        self.set_reactive(LineChart.x_kind, x_kind)
        self.redraw()

    def show_message(self, text: str) -> None:
        self.message_text = text
        self.series = None
        self.redraw()

    def watch_smoothing(self) -> None:
        self.redraw()

    def watch_log_y(self) -> None:
        self.redraw()

    # -- drawing ---------------------------------------------------------------------------------

    def _styles(self) -> ChartStyles:
        get = self.get_component_rich_style
        return ChartStyles(
            line=get("chart--line"),
            raw=get("chart--raw"),
            axis=get("chart--axis"),
            title=get("chart--title"),
            value=get("chart--value"),
            muted=get("chart--muted"),
        )

    def cache_key(self) -> object:
        return (self.content_size, self.has_focus, self.app.theme, self.smoothing, self.log_y)

    def draw(self, width: int, height: int) -> list[list[Segment]]:
        return draw_chart(
            self.series,
            width,
            height,
            self._styles(),
            title=self.title,
            smoothing=self.smoothing,
            log_y=self.log_y,
            x_kind=self.x_kind,
            message=self.message_text,
        )
