"""One metric of several runs on one braille chart, a colour per run, with a legend.

The data comes from :func:`mltop.core.compare.overlay.overlay` (histories already downsampled in SQL
to about one point per dot column, and smoothed); this module only places the points. Each run
is drawn into its own dot grid and packed into braille cells; where runs share a cell, the one
drawn last owns its colour, and the baseline is drawn last so it stays on top.

:func:`draw_overlay` is pure (series in, styled lines out) so it can be tested and timed without
an app; :class:`OverlayChart` is the widget around it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from mltop.core.common.formatting import fmt_duration, fmt_value, local_moment
from mltop.core.common.sanitize import inert
from mltop.core.compare.overlay import Series
from mltop.tui.widgets.chart import PlotArea, _braille, _draw_series, _fit, x_axis_line
from mltop.tui.widgets.chart_widget import BucketChart, ChartResized

# Run colours, in run order (the table's column headers use the same ones). Chosen to read on
# dark and light backgrounds and to stay clear of the green/red that mean better/worse.
RUN_COLOURS = (
    "#4e9fe5",
    "#f28e2b",
    "#b07aa1",
    "#4fc1c9",
    "#edc948",
    "#ff9da7",
    "#9c755f",
    "#a0cbe8",
    "#ffbe7d",
    "#d4a6c8",
)
LINE = "──"


def run_colour(index: int) -> str:
    """The colour of the run in column ``index`` (the palette repeats past ten runs)."""
    return RUN_COLOURS[index % len(RUN_COLOURS)]


@dataclass(frozen=True)
class OverlayStyles:
    """Resolved styles; each carries the widget's background, so no cell shows the terminal's."""

    axis: Style
    muted: Style
    runs: tuple[Style, ...]
    text: Style


def x_label(x: float, kind: str, span: float, origin: float | None = None) -> str:
    """Steps as numbers, wall time as a clock (with the date over a day), relative as a duration.

    A wall-time label after the first (``origin``) on an axis shorter than a minute is the time
    since the first, since the clock would read the same at every tick.
    """
    if kind == "step":
        return fmt_value(round(x) if abs(x - round(x)) < 1e-9 else x)
    if kind == "time":
        if origin is not None and x != origin and span < 60:
            return "+" + x_label(x - origin, "relative", span)
        local = local_moment(x)
        if local is None:
            return "—"
        return local.strftime("%m-%d %H:%M" if span >= 86_400 else "%H:%M:%S")
    if abs(span) < 10:
        return f"{x:.2f}s" if abs(span) >= 0.1 else f"{x * 1000:.0f}ms"
    return fmt_duration(x) if x >= 0 else "-" + fmt_duration(-x)


def legend_lines(
    series: Sequence[Series], styles: OverlayStyles, width: int, max_lines: int
) -> list[Text]:
    """The runs' names after a line in their colour, wrapped into at most ``max_lines`` lines;
    what does not fit is counted as ``+N more``."""
    items: list[Text] = []
    for i, s in enumerate(series):
        item = Text(no_wrap=True, style=styles.text)
        item.append(LINE + " ", style=styles.runs[i % len(styles.runs)])
        item.append(inert(s.label))
        note = s.note
        if note:
            item.append(f" ({note})", style=styles.muted)
        if item.cell_len > width:
            item.truncate(max(4, width), overflow="ellipsis")
        items.append(item)
    lines: list[Text] = []
    current = Text(no_wrap=True, style=styles.text)
    for placed, item in enumerate(items):
        gap = 3 if current.cell_len else 0
        if current.cell_len + gap + item.cell_len <= width:
            current.append(" " * gap)
            current.append_text(item)
            continue
        lines.append(current)
        if len(lines) == max_lines:
            # Out of lines: end the last one with how many runs are not named.
            more = Text(f"   +{len(items) - placed} more", style=styles.muted)
            last = lines[-1]
            while last.cell_len + more.cell_len > width and last.cell_len > 0:
                last.right_crop(1)
            last.append_text(more)
            return lines
        current = item.copy()
    if current.cell_len:
        lines.append(current)
    return lines


def _finite(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


def draw_overlay(
    series: Sequence[Series],
    width: int,
    height: int,
    styles: OverlayStyles,
    *,
    x_kind: str = "step",
    smoothed: bool = False,
    on_top: int | None = None,
    legend_max: int = 2,
    message: str | None = None,
) -> list[list[Segment]]:
    """Lines of segments for a ``width`` x ``height`` chart: legend, plot, x labels.

    ``on_top`` is the index of the series drawn last (the baseline). Unsmoothed, each bucket's
    extremes (``y_min``..``y_max``) are drawn as a span so a lone spike stays visible; smoothed,
    only the average line is drawn (spans of the raw values would hide it).
    """
    width, height = max(1, width), max(1, height)
    legend = legend_lines(series, styles, width, max(1, min(legend_max, height - 3)))
    out: list[list[Segment]] = [_fit(line, width) for line in legend]
    plot_h = height - len(out) - 1
    if plot_h < 1:
        return out[:height]
    blank = [Segment(" " * width, styles.text)]

    def note(text: str) -> list[list[Segment]]:
        lines = [list(blank) for _ in range(plot_h + 1)]
        lines[plot_h // 2] = _fit(Text(f"  {text}", style=styles.muted), width)
        return out + lines

    if message:
        return note(message)
    xs, ys, spans = [], [], []
    for s in series:
        x = np.asarray(s.x, dtype=np.float64)
        y = _finite(s.y)
        lo = y if smoothed else np.fmin(_finite(s.y_min), y)
        hi = y if smoothed else np.fmax(_finite(s.y_max), y)
        xs.append(x)
        ys.append(y)
        spans.append((lo, hi))
    finite_x = [x[np.isfinite(x)] for x in xs]
    all_x = np.concatenate(finite_x) if finite_x else np.empty(0)
    all_y = np.concatenate(
        [v[np.isfinite(v)] for lo, hi in spans for v in (lo, hi)] or [np.empty(0)]
    )
    if all_x.size == 0 or all_y.size == 0:
        if all(s.points == 0 for s in series):
            return note("no data for this metric in these runs")
        if all_x.size == 0 and x_kind != "step":
            return note("no timestamps for this metric")
        return note("no finite values")
    x_min, x_max = float(all_x.min()), float(all_x.max())
    y_min, y_max = float(all_y.min()), float(all_y.max())
    area = PlotArea.fit(y_min, y_max, width, plot_h, lambda v: fmt_value(v, 3))
    label_w, plot_w, dots_w, to_row = area.label_w, area.plot_w, area.dots_w, area.to_row
    x_span = x_max - x_min

    def to_col(x: np.ndarray) -> np.ndarray:
        if x_span <= 0:
            return np.full(x.shape, (dots_w - 1) // 2, dtype=np.int64)
        return np.clip(np.rint((x - x_min) / x_span * (dots_w - 1)), 0, dots_w - 1).astype(np.int64)

    order = list(range(len(series)))
    if on_top is not None and 0 <= on_top < len(order):
        order.remove(on_top)
        order.append(on_top)
    owner = np.full((plot_h, plot_w), -1, dtype=np.int64)
    cells = np.zeros((plot_h, plot_w), dtype=np.uint8)
    for i in order:
        x, y = xs[i], ys[i]
        lo, hi = spans[i]
        ok = np.isfinite(x)
        if not ok.any():
            continue
        grid = np.zeros((area.dots_h, dots_w), dtype=bool)
        # The dot columns must rise: several points may share one (a run denser than the chart).
        cols = to_col(x[ok])
        _draw_series(grid, cols, to_row(lo[ok]), to_row(hi[ok]), to_row(y[ok]))
        packed = _braille(grid, plot_h, plot_w)
        owner[packed > 0] = i
        cells |= packed

    lines: list[list[Segment]] = []
    for row in range(plot_h):
        segs = area.y_axis(row, styles.muted, styles.axis)
        segs += _row_segments(cells[row], owner[row], styles)
        lines.append(segs)
    lines.append(_x_axis(x_min, x_max, label_w, plot_w, styles, x_kind))
    return out + lines


def _row_segments(cells: np.ndarray, owner: np.ndarray, styles: OverlayStyles) -> list[Segment]:
    """One plot row: runs of cells owned by the same series become one segment."""
    segs: list[Segment] = []
    buf: list[str] = []
    current = -2
    for bits, who in zip(cells.tolist(), owner.tolist(), strict=True):
        who = who if bits else -1
        if who != current and buf:
            segs.append(Segment("".join(buf), _owner_style(current, styles)))
            buf = []
        current = who
        buf.append(chr(0x2800 + bits) if bits else " ")
    if buf:
        segs.append(Segment("".join(buf), _owner_style(current, styles)))
    return segs


def _owner_style(who: int, styles: OverlayStyles) -> Style:
    return styles.axis if who < 0 else styles.runs[who % len(styles.runs)]


def _x_axis(
    first: float, last: float, label_w: int, plot_w: int, styles: OverlayStyles, x_kind: str
) -> list[Segment]:
    span = last - first
    labels = [(0, x_label(first, x_kind, span))]
    if last > first:
        if plot_w >= 30:
            mid = first + span / 2
            mid = round(mid) if x_kind == "step" else mid
            labels.append((plot_w // 2, x_label(mid, x_kind, span, first)))
        end = x_label(last, x_kind, span, first)
        labels.append((plot_w - len(end), end))
    return x_axis_line(labels, label_w, plot_w, styles.muted, styles.axis)


class OverlayChart(BucketChart):
    """The compared runs' histories of one metric. The screen feeds it; it asks when resized."""

    DEFAULT_CSS = """
    OverlayChart {
        height: 12;
        min-height: 6;
        padding: 0 1;
    }
    OverlayChart > .overlay--axis { color: $foreground 40%; }
    OverlayChart > .overlay--muted { color: $foreground 55%; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"overlay--axis", "overlay--muted"}

    class Resized(ChartResized):
        """The chart's width changed: it wants ``buckets`` points per run."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.series: list[Series] = []
        self.colours: list[str] = []
        self.x_kind = "step"
        self.smoothed = False
        self.on_top: int | None = None

    def show(
        self,
        series: list[Series],
        colours: list[str],
        x_kind: str,
        *,
        smoothed: bool = False,
        on_top: int | None = None,
    ) -> None:
        self.series = series
        self.smoothed = smoothed
        self.colours = colours
        self.x_kind = x_kind
        self.on_top = on_top
        self.message_text = None
        self.redraw()

    def show_message(self, text: str) -> None:
        self.message_text = text
        self.redraw()

    def _styles(self) -> OverlayStyles:
        get = self.get_component_rich_style
        base = self.rich_style
        runs = tuple(base + Style(color=c) for c in self.colours) or (base,)
        return OverlayStyles(
            axis=get("overlay--axis"), muted=get("overlay--muted"), runs=runs, text=base
        )

    def cache_key(self) -> object:
        return (self.content_size, self.app.theme)

    def draw(self, width: int, height: int) -> list[list[Segment]]:
        return draw_overlay(
            self.series,
            width,
            height,
            self._styles(),
            x_kind=self.x_kind,
            smoothed=self.smoothed,
            on_top=self.on_top,
            legend_max=3 if height >= 14 else 2 if height >= 9 else 1,
            message=self.message_text,
        )
