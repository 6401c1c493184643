"""Compare runs: params and metrics side by side against a baseline, and one metric overlaid.

Opened from the runs screen with ``c`` on the marked runs (the first one marked is the
baseline) or with ``d`` on one run (it and the run of its experiment that started before it,
the older one as the baseline). The table shows, for every metric, each run's last value, its
change against the baseline and its best of history; for every param, each run's value. Below
it one metric's histories are drawn on one chart, a colour per run, the same colour as the run's
column header.

The comparison is built once from the store (:func:`mltop.core.compare.diff.compare_runs`, in a
worker);
changing the baseline or hiding rows that agree rebuilds it from the data already read
(:meth:`Comparison.rebuild`), also in a worker because 100 runs make 20,000 cells. The chart's
histories come from :func:`mltop.core.compare.overlay.overlay` in a worker too; each answer
carries the request it answers and only the latest one is drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, cast

from rich.console import RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import get_current_worker

from mltop.core.common.sanitize import inert
from mltop.core.compare.diff import Comparison, compare_runs, previous_run
from mltop.core.compare.directions import Direction, load_directions
from mltop.core.compare.overlay import X_AXES, Series, XAxis, overlay
from mltop.core.entities import Run
from mltop.core.runs.system_keys import is_system_key
from mltop.core.store import StoreError
from mltop.tui.commands import ScreenCommand
from mltop.tui.messages import CompareLoaded, OverlayLoaded
from mltop.tui.screens.base import MltopScreen, back_binding
from mltop.tui.screens.compare.lines import (
    AXIS_NAMES,
    cell_text,
    chart_titles,
    empty_text,
    header_text,
    headline_text,
)
from mltop.tui.widgets.chart import SMOOTHING_STEPS
from mltop.tui.widgets.compare_table import CompareLayout, CompareTable, build_layout
from mltop.tui.widgets.keybar import KeyBar
from mltop.tui.widgets.overlay_chart import OverlayChart, run_colour

if TYPE_CHECKING:
    from textual.screen import Screen as AnyScreen

    from mltop.tui.context import AppContext

# The default smoothing (0.6, as in TensorBoard and :func:`overlay`).
DEFAULT_SMOOTHING = SMOOTHING_STEPS.index(0.6)
# The chart's least height, as lines and as a share of the screen.
CHART_MIN = 8
CHART_SHARE = 0.4
# Moving the cursor through metric rows switches the chart once the cursor rests this long.
FOLLOW_DELAY = 0.12


def open_compare(screen: AnyScreen, run_ids: Sequence[str], root: Path) -> None:
    """Open the compare screen on ``run_ids`` (the first is the baseline), or say why not."""
    ids = list(dict.fromkeys(run_ids))
    if len(ids) < 2:
        have = " (1 is marked)" if len(ids) == 1 else ""
        screen.notify(f"mark 2 or more runs with space to compare them{have}", timeout=4)
        return
    screen.app.push_screen(CompareScreen(ids, root))


def open_diff_with_previous(screen: AnyScreen, run_id: str | None, root: Path) -> None:
    """Compare ``run_id`` with the run of its experiment started just before it (in a worker)."""
    if run_id is None:
        screen.notify("no run under the cursor", timeout=3)
        return
    app = screen.app
    context = cast("AppContext", app)

    def find() -> None:
        with context.store_in_use() as store:
            run = store.run(run_id)
            previous = previous_run(store, run_id)
        app.call_from_thread(opened, run.name if run else run_id, previous)

    def opened(name: str, previous: Run | None) -> None:
        if previous is None:
            screen.notify(
                f"no earlier run in the experiment of {inert(name)} to diff with",
                timeout=4,
                markup=False,
            )
            return
        app.push_screen(CompareScreen([previous.id, run_id], root, title="diff with previous"))

    screen.run_worker(find, thread=True, exclusive=True, group="diff-previous")


class CompareScreen(MltopScreen[None]):
    CSS_PATH = "compare.tcss"
    HELP_TITLE = "compare"
    AUTO_FOCUS = "CompareTable"

    BINDINGS: ClassVar[list[BindingType]] = [
        back_binding("compare"),
        Binding("b", "baseline", "baseline", id="compare.baseline"),
        Binding("o", "only_differences", "only diffs", id="compare.only_differences"),
        Binding("m,right_square_bracket", "metric(1)", "metric", key_display="m/M",
                id="compare.next_metric"),
        Binding("M,left_square_bracket", "metric(-1)", "previous metric", show=False,
                id="compare.previous_metric"),
        Binding("enter", "chart_row", "chart this metric", show=False, id="compare.chart_row"),
        Binding("x", "x_axis", "x axis", id="compare.x_axis"),
        Binding("plus,equals_sign", "smooth(1)", "smoothing", key_display="+/-",
                id="compare.smooth_more"),
        Binding("minus", "smooth(-1)", "less smoothing", show=False, id="compare.smooth_less"),
        Binding("a", "best", "best-of-history on/off", show=False, id="compare.best"),
    ]  # fmt: skip

    def __init__(self, run_ids: Sequence[str], root: Path, *, title: str = "compare") -> None:
        super().__init__()
        self.run_ids = list(dict.fromkeys(run_ids))
        self.root = root
        self.title_word = title
        self.comparison: Comparison | None = None
        self.compare_layout: CompareLayout | None = None
        self.metric_keys: list[str] = []
        self.metric: str | None = None
        self.x_kind = "step"
        self.smoothing_index = DEFAULT_SMOOTHING
        self.show_best = True
        self.error: str | None = None
        self._generation = 0
        self._overlay_request: tuple[str, str, float, int] | None = None
        self._buckets = 0
        self._follow_timer: Timer | None = None

    @property
    def table(self) -> CompareTable:
        return self.query_one(CompareTable)

    @property
    def chart(self) -> OverlayChart:
        return self.query_one(OverlayChart)

    @property
    def smoothing(self) -> float:
        return SMOOTHING_STEPS[self.smoothing_index]

    # -- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="compare-header")
        yield Static(Text(" comparing…", style="dim"), id="compare-headline")
        yield CompareTable(id="compare-table")
        yield Static(id="compare-empty")
        yield Static(id="compare-cell")
        yield OverlayChart(id="compare-chart")
        yield KeyBar(id="compare-keys")

    def on_mount(self) -> None:
        self._draw_header()
        self._draw_chart_title()
        # Load once the layout is known: how many rows fit decides whether to hide equal ones.
        self.call_after_refresh(self._start)

    def _start(self) -> None:
        self._generation += 1
        # The table's header and horizontal scroll bar take two of its lines.
        self._compare(self._generation, self._table_room() - 2)

    def on_resize(self) -> None:
        self._draw_header()
        self._fit_table()
        self.query_one(KeyBar).update_keys()

    def _table_room(self) -> int:
        """Lines the table may take: what the header lines, the chart and the keys leave."""
        height = self.size.height or 40
        chart = max(CHART_MIN, int(height * CHART_SHARE))
        return max(4, height - 4 - chart)

    def _fit_table(self) -> None:
        """As tall as its rows need, up to its room; the chart takes the rest."""
        layout = self.compare_layout
        if layout is None:
            return
        rows = len(layout.lines) + 2 if layout.lines else 2
        self.table.styles.height = min(rows, self._table_room())

    # -- comparing (workers) ---------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="compare")
    def _compare(self, generation: int, screenful: int) -> None:
        worker = get_current_worker()
        root = self.root if self.root.is_dir() else self.root.parent
        directions = load_directions(root)
        try:
            with self.mltop.store_in_use() as store:
                comparison = compare_runs(store, self.run_ids, directions=directions)
        except (ValueError, StoreError) as exc:
            self.post_message(CompareLoaded(None, None, generation, str(exc)))
            return
        # Hide the rows where every run agrees when there are more rows than fit on the screen.
        sections = (1 if comparison.metrics else 0) + (1 if comparison.params else 0)
        if comparison.total_rows + sections > screenful and not comparison.identical:
            comparison = comparison.rebuild(only_changed=True)
        layout = build_layout(comparison)
        if not worker.is_cancelled:
            self.post_message(CompareLoaded(comparison, layout, generation))
        for problem in directions.problems[:1]:
            self.app.call_from_thread(
                self.notify, inert(problem), severity="warning", timeout=6, markup=False
            )

    @work(thread=True, exclusive=True, group="compare")
    def _rebuild(
        self, generation: int, comparison: Comparison, baseline: int, only_changed: bool
    ) -> None:
        worker = get_current_worker()
        rebuilt = comparison.rebuild(baseline=baseline, only_changed=only_changed)
        layout = build_layout(rebuilt)
        if not worker.is_cancelled:
            self.post_message(CompareLoaded(rebuilt, layout, generation))

    def rebuild(self, *, baseline: int | None = None, only_changed: bool | None = None) -> None:
        """Ask for the comparison with another baseline or row filter (no store reads)."""
        comparison = self.comparison
        if comparison is None:
            return
        self._generation += 1
        self._rebuild(
            self._generation,
            comparison,
            comparison.baseline if baseline is None else baseline,
            comparison.only_changed if only_changed is None else only_changed,
        )

    def on_compare_loaded(self, message: CompareLoaded) -> None:
        if message.generation != self._generation:
            return
        if message.error is not None or message.comparison is None:
            self.error = message.error or "cannot compare these runs"
            self.query_one("#compare-headline", Static).update(
                Text(f" {inert(self.error)}", style="bold red")
            )
            self.chart.show_message("nothing to draw")
            return
        first = self.comparison is None
        comparison: Comparison = message.comparison
        self.comparison = comparison
        self.compare_layout = message.layout
        if first:
            # The model's metrics, then what the trackers recorded about the machine (CPU,
            # GPU...): m/M reach a system metric after the model's, and so does the palette.
            self.metric_keys = sorted(
                {k for summaries in comparison.data.summaries.values() for k in summaries},
                key=lambda k: (is_system_key(k), k.lower(), k),
            )
            self.metric = self._first_metric(comparison)
        self.table.show(message.layout, self.show_best)
        self._fit_table()
        if first and self.metric is not None:
            self.table.move_to("metric", self.metric)
        self._draw_header()
        self._draw_headline()
        self._draw_empty()
        self._draw_cell()
        self._draw_chart_title()
        if first:
            if self.metric is None:
                self.chart.show_message("these runs logged no metrics")
            else:
                self._request_overlay()
        elif self.chart.series:
            # A new baseline draws on top of the others: redraw with the same data.
            self._show_series(self.chart.series)

    def _first_metric(self, comparison: Comparison) -> str | None:
        """The metric to chart first: one that differs and has a direction, validation first."""
        differing = [r for r in comparison.metrics if r.differs and not is_system_key(r.key)]
        directed = [r for r in differing if r.direction is not Direction.NEUTRAL]
        for group in (directed, differing):
            for row in group:
                if any(part in row.key.lower() for part in ("val", "test", "eval")):
                    return row.key
            if group:
                return group[0].key
        return self.metric_keys[0] if self.metric_keys else None

    # -- overlay (worker) ------------------------------------------------------------------------

    @on(OverlayChart.Resized)
    def _chart_resized(self, event: OverlayChart.Resized) -> None:
        self._buckets = event.buckets
        self._request_overlay()

    def _request_overlay(self) -> None:
        if self.metric is None or self.comparison is None:
            return
        buckets = self._buckets or self.chart.wanted_buckets()
        request = (self.metric, self.x_kind, self.smoothing, buckets)
        if request == self._overlay_request:
            return
        self._overlay_request = request
        self._overlay(request)

    @work(thread=True, exclusive=True, group="overlay")
    def _overlay(self, request: tuple[str, str, float, int]) -> None:
        worker = get_current_worker()
        key, x_kind, smoothing, buckets = request
        axis = cast(XAxis, x_kind)
        with self.mltop.store_in_use() as store:
            series = overlay(store, self.run_ids, key, x=axis, smoothing=smoothing, buckets=buckets)
        if not worker.is_cancelled:
            self.post_message(OverlayLoaded(request, series))

    def on_overlay_loaded(self, message: OverlayLoaded) -> None:
        if message.request != self._overlay_request:
            return
        self._show_series(message.series)

    def _show_series(self, series: list[Series]) -> None:
        comparison = self.comparison
        on_top = comparison.baseline if comparison is not None else None
        colours = [run_colour(i) for i in range(len(series))]
        x_kind = self._overlay_request[1] if self._overlay_request else self.x_kind
        self.chart.show(series, colours, x_kind, smoothed=self.smoothing > 0, on_top=on_top)

    # -- drawing (the words are lines.py's) --------------------------------------------------------

    def _draw_header(self) -> None:
        header = header_text(
            self.title_word, len(self.run_ids), self.comparison, self.x_kind, self.smoothing,
            self.size.width or 120,
        )  # fmt: skip
        self.query_one("#compare-header", Static).update(header)

    def _draw_headline(self) -> None:
        if self.comparison is not None:
            line = headline_text(self.comparison, *self.table.shown_runs())
            self.query_one("#compare-headline", Static).update(line)

    @on(CompareTable.RunsShown)
    def _runs_shown(self) -> None:
        self._draw_headline()

    def _draw_empty(self) -> None:
        """With every row hidden (identical runs, only differences on), say so in the table."""
        comparison = self.comparison
        nothing = comparison is not None and not comparison.rows
        self.set_class(nothing, "-empty")
        if comparison is not None and nothing:
            self.query_one("#compare-empty", Static).update(empty_text(comparison))

    def _draw_cell(self) -> None:
        """The line under the table: the cursor's cell in full (values there may be cut)."""
        comparison = self.comparison
        line = self.table.current_line() if comparison is not None else None
        text = Text("")
        if comparison is not None and line is not None and line.row is not None:
            text = cell_text(comparison, line.row, self.table.current_run())
        self.query_one("#compare-cell", Static).update(text)

    def _draw_chart_title(self) -> None:
        chart = self.chart
        chart.border_title, chart.border_subtitle = chart_titles(
            self.metric, self.comparison, self.metric_keys, self.x_kind, self.smoothing
        )

    # -- table events ----------------------------------------------------------------------------

    @on(CompareTable.CellHighlighted)
    def _cell_highlighted(self) -> None:
        self._draw_cell()
        line = self.table.current_line()
        if line is None or line.kind != "metric" or line.key == self.metric:
            return
        if self._follow_timer is not None:
            self._follow_timer.stop()
        self._follow_timer = self.set_timer(FOLLOW_DELAY, self._follow_cursor)

    def _follow_cursor(self) -> None:
        self._follow_timer = None
        line = self.table.current_line()
        if line is not None and line.kind == "metric" and line.key is not None:
            self.set_metric(line.key, move_cursor=False)

    # -- actions ---------------------------------------------------------------------------------

    def set_metric(self, key: str, *, move_cursor: bool = True) -> None:
        """Chart ``key`` (and put the table's cursor on its row when the row is shown)."""
        if key == self.metric:
            return
        self.metric = key
        if move_cursor:
            self.table.move_to("metric", key)
        self._draw_chart_title()
        self._request_overlay()

    def action_baseline(self) -> None:
        comparison = self.comparison
        if comparison is None:
            return
        run = self.table.current_run()
        if run is None:
            self.notify("move to a run's column (→ or l), then b makes it the baseline", timeout=3)
            return
        if run == comparison.baseline:
            label = inert(comparison.runs[run].label)
            self.notify(f"{label} is the baseline already", timeout=3, markup=False)
            return
        self.rebuild(baseline=run)

    def action_only_differences(self) -> None:
        if self.comparison is not None:
            self.rebuild(only_changed=not self.comparison.only_changed)

    def action_metric(self, delta: int) -> None:
        keys = self.metric_keys
        if not keys:
            return
        index = keys.index(self.metric) if self.metric in keys else -1
        self.set_metric(keys[(index + delta) % len(keys)])

    def action_chart_row(self) -> None:
        line = self.table.current_line()
        if line is not None and line.kind == "metric" and line.key is not None:
            self.set_metric(line.key, move_cursor=False)

    def action_x_axis(self) -> None:
        self.set_x_axis(X_AXES[(X_AXES.index(cast(XAxis, self.x_kind)) + 1) % len(X_AXES)])

    def set_x_axis(self, kind: str) -> None:
        self.x_kind = kind
        self._draw_header()
        self._draw_chart_title()
        self._request_overlay()

    def action_smooth(self, delta: int) -> None:
        self.set_smoothing(self.smoothing_index + delta)

    def set_smoothing(self, index: int) -> None:
        self.smoothing_index = max(0, min(len(SMOOTHING_STEPS) - 1, index))
        self._draw_header()
        self._draw_chart_title()
        self._request_overlay()

    def action_best(self) -> None:
        self.show_best = not self.show_best
        self.table.set_show_best(self.show_best)
        if self.table.compact:
            self.notify(
                "the runs do not all fit at full width: the line under the table shows the "
                "cursor's best of history",
                timeout=4,
            )

    def on_screen_resume(self) -> None:
        self.query_one(KeyBar).update_keys()

    # -- help and palette ------------------------------------------------------------------------

    def help_extra(self) -> RenderableType:
        return Text(
            "\nEach metric cell shows the run's last value, its change against the baseline"
            " (difference and percent) and its best of history (↓ the minimum for a"
            " lower-is-better metric, ↑ the maximum for a higher-is-better one, with the step)."
            " Green is better, red is worse; dim means the same, or no known direction (set"
            " one in .mltop/directions.yaml). — is a missing value.\n"
            "The chart draws the highlighted metric of every run; the colours match the"
            " column headers, and the baseline is drawn on top.",
            style="",
        )

    def commands(self) -> list[ScreenCommand]:
        out = [
            ScreenCommand(
                "Only differences on/off", "hide rows where every run agrees",
                self.action_only_differences,
            ),
            ScreenCommand(
                "Best-of-history on/off", "show or hide each run's best value",
                self.action_best,
            ),
            ScreenCommand("Smoothing off", "draw the raw values", lambda: self.set_smoothing(0)),
        ]  # fmt: skip
        for kind in X_AXES:
            out.append(
                ScreenCommand(
                    f"X axis: {AXIS_NAMES[kind]}", "align the histories", self._axis_setter(kind)
                )
            )
        comparison = self.comparison
        if comparison is not None:
            for i, column in enumerate(comparison.runs):
                if i != comparison.baseline:
                    out.append(
                        ScreenCommand(
                            f"Baseline: {inert(column.label)}",
                            "compare the others with this run",
                            self._baseline_setter(i),
                        )
                    )
        for key in self.metric_keys:
            out.append(
                ScreenCommand(
                    f"Chart {inert(key)}", "overlay this metric", self._metric_setter(key)
                )
            )
        return out

    def _axis_setter(self, kind: str) -> Callable[[], None]:
        return lambda: self.set_x_axis(kind)

    def _baseline_setter(self, index: int) -> Callable[[], None]:
        return lambda: self.rebuild(baseline=index)

    def _metric_setter(self, key: str) -> Callable[[], None]:
        return lambda: self.set_metric(key)
