"""One run: overview, params, tags, metric summaries, and a grid of charts (``enter`` on a run).

Charts ask for data when they know their width (``LineChart.Resized``); the screen gathers
those requests for a moment and one worker answers them all from the store, each history cut to
the chart's dot columns in SQL. Smoothing, log scale and the metric filter only redraw what is
already loaded; switching the x axis between step and time loads again.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from rich.console import RenderableType
from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from mltop.core.common.formatting import fmt_duration
from mltop.core.common.sanitize import inert
from mltop.core.runs.runs_view import STATUS_SYMBOLS
from mltop.core.runs.system_keys import is_system_key, short_name
from mltop.tui.commands import ScreenCommand
from mltop.tui.messages import ChartDataLoaded, DetailsLoaded, RunDetails
from mltop.tui.screens.base import MltopScreen, back_binding
from mltop.tui.screens.runs.chart_groups import ChartGroup, chart_sections, neighbour
from mltop.tui.screens.runs.run_info import (
    metrics_table,
    overview,
    pairs,
    relative_location,
    run_fields,
    run_state,
)
from mltop.tui.screens.runs.values import RunValuesScreen
from mltop.tui.widgets.chart import SMOOTHING_STEPS, LineChart
from mltop.tui.widgets.filter_bar import FilterBar
from mltop.tui.widgets.keybar import KeyBar
from mltop.tui.widgets.run_table import status_styles

CHART_MIN_WIDTH = 34
NARROW = 100
REQUEST_DELAY = 0.03


def name_matcher(text: str) -> re.Pattern[str] | None:
    """A case-insensitive regex from the filter text (taken literally if it is not one)."""
    text = text.strip()
    if not text:
        return None
    try:
        return re.compile(text, re.IGNORECASE)
    except re.error:
        return re.compile(re.escape(text), re.IGNORECASE)


class ChartGrid(VerticalScroll, inherit_bindings=False):
    """The scrolling groups of charts (:mod:`.chart_groups`), without a scroll panel's arrow keys.

    Those would sit between the focused chart and the screen: once the grid is taller than the
    terminal (any run with more than four metrics at 80x24) ``down`` scrolled the grid instead
    of moving to the chart below. Moving the focus scrolls the focused chart into view anyway.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("pagedown", "page_down", "page down", show=False, id="detail.page_down"),
        Binding("pageup", "page_up", "page up", show=False, id="detail.page_up"),
    ]


class RunDetailScreen(MltopScreen[None]):
    CSS_PATH = "run_detail.tcss"
    HELP_TITLE = "run detail"

    BINDINGS: ClassVar[list[BindingType]] = [
        back_binding("detail"),
        Binding("slash", "filter", "filter", priority=True, id="detail.filter"),
        Binding("x", "x_axis", "step/time", id="detail.x_axis"),
        Binding("plus,equals_sign", "smooth(1)", "smoothing", key_display="+/-",
                id="detail.smooth_more"),
        Binding("minus", "smooth(-1)", "less smoothing", show=False, id="detail.smooth_less"),
        Binding("y", "log_y", "log scale", id="detail.log_y"),
        Binding("enter,z", "focus_chart", "focus chart", id="detail.focus_chart"),
        Binding("i", "toggle_info", "info", id="detail.info"),
        Binding("l", "logs", "logs", id="detail.logs"),
        Binding("v", "values", "full values", id="detail.values"),
        Binding("down,j", "move_focus(0, 1)", "chart below", show=False, id="detail.chart_down"),
        Binding("up,k", "move_focus(0, -1)", "chart above", show=False, id="detail.chart_up"),
        Binding("right", "move_focus(1, 0)", "next chart", show=False, id="detail.chart_right"),
        Binding("left", "move_focus(-1, 0)", "previous chart", show=False,
                id="detail.chart_left"),
    ]  # fmt: skip

    smoothing_index: reactive[int] = reactive(0)
    log_y: reactive[bool] = reactive(False)
    x_kind: reactive[str] = reactive("step")

    def __init__(self, run_id: str, root: Path) -> None:
        super().__init__()
        self.run_id = run_id
        self.root = root
        self.details: RunDetails | None = None
        self.charts: dict[str, LineChart] = {}
        self.groups: list[ChartGroup] = []
        self.columns = 2
        self.model_keys: list[str] = []
        self.filter_text = ""
        self._pending: dict[str, int] = {}
        self._flush_scheduled = False
        self._info_forced: bool | None = None

    # -- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(Text(" loading…", style="dim"), id="detail-header")
        with Horizontal(id="detail-body"):
            with VerticalScroll(id="detail-info"):
                yield Static(id="detail-overview")
                yield Static(id="detail-params")
                yield Static(id="detail-tags")
                yield Static(id="detail-metrics")
            with Vertical(id="detail-charts-pane"):
                yield Static(id="detail-charts-title")
                yield FilterBar("filter metrics and params (text or regex)", id="detail-filter")
                yield ChartGrid(id="detail-charts")
        yield KeyBar(id="detail-keys")

    def on_mount(self) -> None:
        self.query_one("#detail-info").border_title = "overview"
        self.query_one(FilterBar).return_to = self._first_chart
        self._apply_width()
        self._draw_charts_title()
        self._load_details()

    def on_resize(self) -> None:
        self._apply_width()
        self.call_after_refresh(self._draw_info)

    def _apply_width(self) -> None:
        width = self.size.width or 120
        info = self.query_one("#detail-info")
        show_info = self._info_forced if self._info_forced is not None else width >= NARROW
        info.display = show_info
        if show_info:
            info.styles.width = max(34, min(56, int(width * 0.36))) if width >= NARROW else "1fr"
        pane = self.query_one("#detail-charts-pane")
        pane.display = width >= NARROW or not show_info
        pane_width = width - (info.styles.width.value if show_info and width >= NARROW else 0)
        self.columns = max(1, int(pane_width) // CHART_MIN_WIDTH)
        for group in self.groups:
            group.styles.grid_size_columns = self.columns

    # -- details ---------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="detail")
    def _load_details(self) -> None:
        with self.mltop.store_in_use() as store:
            run = store.run(self.run_id)
            if run is None:
                self.post_message(DetailsLoaded(None, self.run_id))
                return
            details = RunDetails(
                run=run,
                params=store.params(self.run_id),
                tags=store.tags(self.run_id),
                metrics=store.summaries([self.run_id])[self.run_id],
                parent=store.run(run.parent_id) if run.parent_id else None,
                children=store.children(self.run_id),
                logs=store.logs(self.run_id),
                points=store.point_count(self.run_id),
            )
        self.post_message(DetailsLoaded(details, self.run_id))

    def on_details_loaded(self, message: DetailsLoaded) -> None:
        details = message.details
        if details is None:
            self.query_one("#detail-header", Static).update(
                Text(" this run is no longer in the store", style="bold red")
            )
            return
        reloaded = self.details is not None
        self.details = details
        self._draw_header()
        self._draw_info()
        grid = self.query_one("#detail-charts", VerticalScroll)
        self.model_keys = sorted(k for k in details.metrics if not is_system_key(k))
        focused = self.focused.key if isinstance(self.focused, LineChart) else None
        if reloaded:
            # A live update: existing charts fetch their longer history...
            for chart in self.charts.values():
                self._request(chart.key, chart.wanted_buckets())
            if all(k in self.charts for k in details.metrics):
                self._draw_charts_title()
                return
            # ... and a new metric lays the groups out again, so it lands in its own group.
            grid.remove_children()
            self.charts, self.groups = {}, []
        sections = chart_sections(list(details.metrics))
        widgets: list[Static] = []
        for label, keys in sections:
            group = ChartGroup(label, len(keys))
            group.styles.grid_size_columns = self.columns
            widgets += [group.title, group] if group.title is not None else [group]
            self.groups.append(group)
        if widgets:
            grid.mount_all(widgets)
        else:
            grid.mount(Static(Text("this run logged no metrics", style="dim")))
        for group, (_, keys) in zip(self.groups, sections, strict=True):
            charts = [LineChart(key, title=short_name(key)) for key in keys]
            for chart in charts:
                chart.smoothing = SMOOTHING_STEPS[self.smoothing_index]
                chart.log_y = self.log_y
                self.charts[chart.key] = chart
            group.mount_all(charts)
        self._apply_filter()
        self._draw_charts_title()
        if focused in self.charts:
            self.charts[focused].focus()
        elif self.charts and (self.focused is None or self.focused.id == "detail-info"):
            next(iter(self.charts.values())).focus()

    def _draw_header(self) -> None:
        assert self.details is not None
        run = self.details.run
        state = run_state(run)
        header = Text(no_wrap=True, overflow="ellipsis")
        header.append(f" {inert(run.name)} ", style="bold reverse")
        header.append("  ")
        header.append(f"{STATUS_SYMBOLS.get(state, '?')} {state}", style=self._state_style(state))
        header.append(f" {fmt_duration(run.duration)}")
        if run.experiment:
            header.append(f"  ·  {inert(run.experiment)}")
        where = relative_location(run.location, self.root)
        header.append(f"  ·  {inert(run.source_kind)} {inert(where)}")
        if run.git_commit:
            header.append(f"  ·  git {inert(run.git_commit)[:7]}")
        if run.host:
            header.append(f"  ·  host {inert(run.host)}")
        self.query_one("#detail-header", Static).update(header)

    def _draw_info(self) -> None:
        details = self.details
        if details is None:
            return
        matcher = name_matcher(self.filter_text)
        self.query_one("#detail-overview", Static).update(self._overview(details))
        width = self._panel_width()
        params = pairs("params", details.params, matcher, width)
        self.query_one("#detail-params", Static).update(params)
        self.query_one("#detail-tags", Static).update(pairs("tags", details.tags, matcher, width))
        self.query_one("#detail-metrics", Static).update(self._metrics_table(details, matcher))

    def _panel_width(self) -> int:
        """The info panel's width less one column for its scrollbar."""
        return max(24, (self.query_one("#detail-metrics").content_size.width or 41) - 1)

    def _state_style(self, state: str) -> Style:
        return status_styles(self.app).get(state, Style())

    def _overview(self, details: RunDetails) -> RenderableType:
        return overview(details, self.root, self._state_style)

    def _metrics_table(self, details: RunDetails, matcher: re.Pattern[str] | None) -> Text:
        return metrics_table(details, matcher, self._panel_width())

    # -- charts ----------------------------------------------------------------------------------

    @on(LineChart.Resized)
    def _chart_resized(self, event: LineChart.Resized) -> None:
        self._request(event.chart.key, event.buckets)

    def _request(self, key: str, buckets: int) -> None:
        self._pending[key] = buckets
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.set_timer(REQUEST_DELAY, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._pending:
            return
        requests = dict(self._pending)
        self._pending.clear()
        self._load_charts(requests, self.x_kind)

    @work(thread=True, group="charts")
    def _load_charts(self, requests: dict[str, int], x_kind: str) -> None:
        worker = get_current_worker()
        with self.mltop.store_in_use() as store:
            for key, buckets in requests.items():
                if worker.is_cancelled:
                    return
                # System metrics chart against the model's steps, through time.
                timeline = self.model_keys if is_system_key(key) else ()
                table = store.history_buckets(self.run_id, key, buckets, x_kind, timeline)
                self.post_message(ChartDataLoaded(key, table, x_kind, buckets))

    def on_chart_data_loaded(self, message: ChartDataLoaded) -> None:
        chart = self.charts.get(message.key)
        if chart is None or message.x != self.x_kind:
            return
        chart.set_buckets(message.buckets, message.width, message.x)

    def _reload_charts(self) -> None:
        for key, chart in self.charts.items():
            chart.show_message("loading…")
            self._request(key, chart.wanted_buckets())

    def _visible_charts(self) -> list[LineChart]:
        return [c for c in self.charts.values() if c.display]

    def _apply_filter(self) -> None:
        matcher = name_matcher(self.filter_text)
        shown = 0
        for key, chart in self.charts.items():
            visible = matcher is None or bool(matcher.search(key))
            chart.display = visible
            shown += visible
        for group in self.groups:
            group.display = any(c.display for c in group.query(LineChart))
            if group.title is not None:
                group.title.display = group.display
        bar = self.query_one(FilterBar)
        total = len(self.charts)
        bar.show_count(f"{shown} of {total} metrics" if matcher is not None else f"{total} metrics")
        self._draw_info()
        self._draw_charts_title()

    def _draw_charts_title(self) -> None:
        smoothing = SMOOTHING_STEPS[self.smoothing_index]
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(f" charts ({len(self._visible_charts())})", style="bold")
        title.append("   x: ", style="dim")
        title.append(self.x_kind)
        title.append("   smoothing ", style="dim")
        title.append(f"{smoothing:g}" if smoothing else "off")
        title.append("   log-y ", style="dim")
        title.append("on" if self.log_y else "off")
        self.query_one("#detail-charts-title", Static).update(title)
        self.query_one(KeyBar).update_keys()

    def watch_smoothing_index(self, index: int) -> None:
        for chart in self.charts.values():
            chart.smoothing = SMOOTHING_STEPS[index]
        if self.is_mounted:
            self._draw_charts_title()

    def watch_log_y(self, value: bool) -> None:
        for chart in self.charts.values():
            chart.log_y = value
        if self.is_mounted:
            self._draw_charts_title()

    def watch_x_kind(self) -> None:
        if self.is_mounted:
            self._reload_charts()
            self._draw_charts_title()

    # -- actions ---------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # "/" typed inside an input is text (a regex, a metric called val/loss), not a command.
        return not (action == "filter" and isinstance(self.focused, Input))

    def action_filter(self) -> None:
        self.query_one(FilterBar).focus_input()

    @on(FilterBar.Changed)
    def _filter_changed(self, event: FilterBar.Changed) -> None:
        self.filter_text = event.text
        self._apply_filter()

    def _first_chart(self) -> LineChart | None:
        matcher = name_matcher(self.filter_text)
        for key, chart in self.charts.items():
            if matcher is None or matcher.search(key):
                return chart
        return None

    @on(FilterBar.Submitted)
    def _filter_submitted(self, event: FilterBar.Submitted) -> None:
        self.filter_text = event.text
        self._apply_filter()

    @on(FilterBar.Cleared)
    def _filter_cleared(self) -> None:
        self.filter_text = ""
        self._apply_filter()

    def action_x_axis(self) -> None:
        self.x_kind = "time" if self.x_kind == "step" else "step"

    def action_smooth(self, delta: int) -> None:
        self.smoothing_index = max(0, min(len(SMOOTHING_STEPS) - 1, self.smoothing_index + delta))

    def action_log_y(self) -> None:
        self.log_y = not self.log_y

    def action_logs(self) -> None:
        from mltop.tui.screens.logs.screen import LogsScreen

        self.app.push_screen(LogsScreen(run_id=self.run_id))

    def live_changed(self, run_ids: frozenset[str]) -> None:
        """The live watcher imported new rows of this run: redraw the overview, grow charts."""
        if self.run_id in run_ids and self.details is not None:
            self._load_details()

    def action_values(self) -> None:
        """Params and tags whole, on a screen of their own."""
        if self.details is not None:
            details = self.details
            self.app.push_screen(
                RunValuesScreen(details.run.name, run_fields(details), details.params, details.tags)
            )

    def action_toggle_info(self) -> None:
        info = self.query_one("#detail-info")
        self._info_forced = not info.display
        self._apply_width()

    def action_move_focus(self, dx: int, dy: int) -> None:
        charts = self._visible_charts()
        if not charts:
            return
        groups = [[c for c in g.query(LineChart) if c.display] for g in self.groups]
        target = neighbour(groups, self.focused, dx, dy, self.columns)
        if target is None:
            return
        target.focus()
        group, shown = next((g, c) for g, c in zip(self.groups, groups, strict=True) if target in c)
        if group.title is not None and shown.index(target) < self.columns:
            # Into a group's first row: its title comes into view with it.
            group.title.scroll_visible(animate=False)
            target.scroll_visible(animate=False)
        else:
            target.scroll_visible()

    def action_focus_chart(self) -> None:
        from mltop.tui.screens.runs.chart_focus import ChartFocusScreen

        focused = self.focused
        chart = focused if isinstance(focused, LineChart) else None
        if chart is None:
            visible = self._visible_charts()
            if not visible:
                return
            chart = visible[0]
        name = self.details.run.name if self.details else self.run_id

        def closed(settings: tuple[str, int, bool] | None) -> None:
            if settings is None:
                return
            x_kind, smoothing_index, log_y = settings
            self.smoothing_index = smoothing_index
            self.log_y = log_y
            self.x_kind = x_kind

        self.app.push_screen(
            ChartFocusScreen(
                self.run_id, chart.key, name, self.x_kind, self.smoothing_index, self.log_y
            ),
            closed,
        )

    def on_screen_resume(self) -> None:
        self.query_one(KeyBar).update_keys()

    # -- help and palette ------------------------------------------------------------------------

    def help_extra(self) -> RenderableType:
        return Text(
            "\nCharts draw each metric's full history cut to the chart's width: every dot column"
            " spans the min..max of its slice, so spikes stay visible. With smoothing on, the"
            " raw values are dimmed under an exponential moving average.\n"
            "The filter (/) takes text or a regular expression and narrows charts, params,"
            " tags and the metrics table together.",
            style="",
        )

    def commands(self) -> list[ScreenCommand]:
        out = [
            ScreenCommand("X axis: step", "plot against the step", lambda: self._set_x("step")),
            ScreenCommand("X axis: time", "plot against wall time", lambda: self._set_x("time")),
            ScreenCommand("Smoothing off", "raw values", lambda: self._set_smoothing(0)),
            ScreenCommand("Log scale on/off", "toggle log-y", self.action_log_y),
        ]
        for key in self.charts:
            out.append(
                ScreenCommand(f"Chart {inert(key)}", "open this chart large", self._focuser(key))
            )
        return out

    def _set_x(self, kind: str) -> None:
        self.x_kind = kind

    def _set_smoothing(self, index: int) -> None:
        self.smoothing_index = index

    def _focuser(self, key: str):  # type: ignore[no-untyped-def]
        def run() -> None:
            chart = self.charts.get(key)
            if chart is not None:
                chart.focus()
                self.action_focus_chart()

        return run
