"""One chart filling the screen (``enter`` or ``z`` on a chart of the run detail screen)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from mltop.core.common.sanitize import inert
from mltop.tui.messages import ChartDataLoaded
from mltop.tui.screens.base import MltopScreen, back_binding
from mltop.tui.widgets.chart import SMOOTHING_STEPS, LineChart
from mltop.tui.widgets.keybar import KeyBar


class ChartFocusScreen(MltopScreen[tuple[str, int, bool] | None]):
    """Dismisses with the (x axis, smoothing step, log-y) the user left it with."""

    HELP_TITLE = "chart"
    BINDINGS: ClassVar[list[BindingType]] = [
        back_binding("chart", "escape,enter,z"),
        Binding("x", "x_axis", "step/time", id="chart.x_axis"),
        Binding("plus,equals_sign", "smooth(1)", "smoothing", key_display="+/-",
                id="chart.smooth_more"),
        Binding("minus", "smooth(-1)", "less smoothing", show=False, id="chart.smooth_less"),
        Binding("y", "log_y", "log scale", id="chart.log_y"),
    ]  # fmt: skip

    DEFAULT_CSS = """
    ChartFocusScreen #chart-title {
        height: 1;
        background: $panel;
    }
    ChartFocusScreen LineChart {
        height: 1fr;
        padding: 1 2;
    }
    """

    def __init__(
        self, run_id: str, key: str, run_name: str, x_kind: str, smoothing: int, log_y: bool
    ) -> None:
        super().__init__()
        self.run_id = run_id
        self.key = key
        self.run_name = run_name
        self.x_kind = x_kind
        self.smoothing_index = smoothing
        self.log_y = log_y

    def compose(self) -> ComposeResult:
        yield Static(id="chart-title")
        yield LineChart(self.key)
        yield KeyBar()

    @property
    def chart(self) -> LineChart:
        return self.query_one(LineChart)

    def on_mount(self) -> None:
        self.chart.smoothing = SMOOTHING_STEPS[self.smoothing_index]
        self.chart.log_y = self.log_y
        self.chart.focus()
        self._title()

    def _title(self) -> None:
        smoothing = SMOOTHING_STEPS[self.smoothing_index]
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f" {inert(self.run_name)} ", style="bold reverse")
        text.append(f"  {inert(self.key)}", style="bold")
        text.append(f"   x: {self.x_kind}   smoothing {smoothing:g}" if smoothing else
                    f"   x: {self.x_kind}   smoothing off")  # fmt: skip
        text.append(f"   log-y {'on' if self.log_y else 'off'}")
        self.query_one("#chart-title", Static).update(text)

    def on_line_chart_resized(self, event: LineChart.Resized) -> None:
        self._load(event.buckets, self.x_kind)

    @work(thread=True, exclusive=True, group="focus-chart")
    def _load(self, buckets: int, x_kind: str) -> None:
        with self.mltop.store_in_use() as store:
            table = store.history_buckets(self.run_id, self.key, buckets, x=x_kind)
        self.post_message(ChartDataLoaded(self.key, table, x_kind, buckets))

    def on_chart_data_loaded(self, message: ChartDataLoaded) -> None:
        if message.x == self.x_kind:
            self.chart.set_buckets(message.buckets, message.width, message.x)

    def action_back(self) -> None:
        self.dismiss((self.x_kind, self.smoothing_index, self.log_y))

    def action_x_axis(self) -> None:
        self.x_kind = "time" if self.x_kind == "step" else "step"
        self.chart.show_message("loading…")
        self._load(self.chart.wanted_buckets(), self.x_kind)
        self._title()

    def action_smooth(self, delta: int) -> None:
        self.smoothing_index = max(0, min(len(SMOOTHING_STEPS) - 1, self.smoothing_index + delta))
        self.chart.smoothing = SMOOTHING_STEPS[self.smoothing_index]
        self._title()

    def action_log_y(self) -> None:
        self.log_y = not self.log_y
        self.chart.log_y = self.log_y
        self._title()
