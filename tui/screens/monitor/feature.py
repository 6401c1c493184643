"""One feature of a monitor (``enter`` on the Monitor screen): reference against current.

The distributions are drawn as bars in the terminal: category shares side by side for a
categorical feature, bin shares for a numerical one (the monitor's bins are shared by the
reference and every window; an Evidently snapshot draws each side on its own bins, so those
are shown one above the other). Below, the feature's values window by window (or snapshot by
snapshot). ``←``/``→`` step through the windows as on the Monitor screen.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from mltop.core.common.formatting import fit_text, fit_value
from mltop.core.common.sanitize import inert
from mltop.core.monitor import MonitorReport
from mltop.core.monitor.evidently_workspace import Distribution, EvidentlyProject
from mltop.tui.screens.base import MltopScreen, back_binding
from mltop.tui.screens.monitor.view import share_text, verdict
from mltop.tui.widgets.keybar import KeyBar

Bars = list[tuple[str, float]]


def bar(share: float, width: int) -> str:
    """A share of ``width`` cells in eighths, so small shares still show."""
    eighths = round(max(0.0, min(1.0, share)) * width * 8)
    full, rest = divmod(eighths, 8)
    return "█" * full + ("▏▎▍▌▋▊▉"[rest - 1] if rest else "")


def shares(counts: list[float]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def evidently_bars(dist: Distribution) -> Bars:
    """Evidently's drawn distribution as shares: counts per category, or density × bin width."""
    if len(dist.x) == len(dist.y) + 1 and all(not isinstance(x, str) for x in dist.x):
        edges = [float(x) for x in dist.x]  # type: ignore[arg-type]
        mass = [y * (edges[i + 1] - edges[i]) for i, y in enumerate(dist.y)]
        labels = [f"{edges[i]:.4g}..{edges[i + 1]:.4g}" for i in range(len(dist.y))]
        return list(zip(labels, shares(mass), strict=True))
    return list(zip((inert(x) for x in dist.x), shares(list(dist.y)), strict=False))


def paired(labels: list[str], ref: list[float], cur: list[float], width: int) -> Table:
    label_w = min(20, max([6, *(len(label) for label in labels)]))
    bar_w = max(4, (width - label_w - 22) // 2)
    table = Table.grid(padding=(0, 1))
    table.add_column(width=label_w, no_wrap=True)
    for _ in range(2):
        table.add_column(width=bar_w, no_wrap=True)
        table.add_column(width=6, justify="right", no_wrap=True)
    table.add_row(
        Text("", style="dim"), Text("reference", style="dim"), "", Text("current", style="dim"), ""
    )
    for label, r, c in zip(labels, ref, cur, strict=True):
        table.add_row(
            fit_text(inert(label), label_w),
            Text(bar(r, bar_w), style="cyan"),
            fit_value(r * 100, 5) + "%",
            Text(bar(c, bar_w), style="magenta"),
            fit_value(c * 100, 5) + "%",
        )
    return table


def single(title: str, bars: Bars, width: int, style: str) -> Group:
    label_w = min(20, max([6, *(len(label) for label, _ in bars)]))
    bar_w = max(4, width - label_w - 10)
    table = Table.grid(padding=(0, 1))
    table.add_column(width=label_w, no_wrap=True)
    table.add_column(width=bar_w, no_wrap=True)
    table.add_column(width=6, justify="right", no_wrap=True)
    for label, share in bars:
        table.add_row(
            fit_text(label, label_w),
            Text(bar(share, bar_w), style=style),
            fit_value(share * 100, 5) + "%",
        )
    return Group(Text(title, style="dim"), table)


class FeatureScreen(MltopScreen[None]):
    CSS_PATH = "monitor.tcss"
    HELP_TITLE = "monitor: one feature"

    BINDINGS: ClassVar[list[BindingType]] = [
        back_binding("monitor_feature"),
        Binding("left", "step(-1)", "earlier window", priority=True, id="monitor_feature.earlier"),
        Binding("right", "step(1)", "later window", priority=True, id="monitor_feature.later"),
    ]

    def __init__(
        self, result: MonitorReport | EvidentlyProject, feature: str, section: int = -1
    ) -> None:
        super().__init__()
        self.result = result
        self.feature = feature
        self.section = section

    def compose(self) -> ComposeResult:
        yield Static(id="feat-header")
        with VerticalScroll(id="feat-body"):
            yield Static(id="feat-content")
        yield KeyBar(id="feat-keys")

    def on_mount(self) -> None:
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    @property
    def count(self) -> int:
        if isinstance(self.result, EvidentlyProject):
            return len(self.result.snapshots)
        assert isinstance(self.result, MonitorReport)
        return len(self.result.windows)

    def action_step(self, delta: int) -> None:
        if self.count:
            self.section = (self.section + 1 + delta) % (self.count + 1) - 1
            self._draw()

    def _draw(self) -> None:
        width = max(40, self.size.width - 4)
        if isinstance(self.result, EvidentlyProject):
            header, body = self._evidently(self.result, width)
        else:
            assert isinstance(self.result, MonitorReport)
            header, body = self._report(self.result, width)
        header.truncate(max(20, self.size.width - 2), overflow="ellipsis")
        self.query_one("#feat-header", Static).update(header)
        self.query_one("#feat-content", Static).update(body)

    def _report(self, report: MonitorReport, width: int) -> tuple[Text, RenderableType]:
        shown = report.overall if self.section < 0 else report.windows[self.section]
        name = self.feature
        drift = shown.drift.get(name)
        header = Text(no_wrap=True)
        header.append(f"{inert(name)}", style="bold")
        header.append(f"  ·  {report.roles.kind(name)}")
        if drift is not None:
            header.append(f"  ·  {drift.test_name} {fit_value(drift.statistic, 7)}")
            header.append(f" (threshold {fit_value(drift.threshold, 5)}) ")
            header.append_text(verdict(drift.drifted))
        where = "whole log" if self.section < 0 else shown.start[:10]
        header.append(f"  ·  {where}", style="bold")
        parts: list[RenderableType] = [Text(f"reference against {where}", style="bold")]
        dist = shown.distributions.get(name)
        if dist is None:
            parts.append(Text("no values to draw in this window", style="dim"))
        else:
            parts.append(
                paired(
                    list(dist.labels),
                    shares(list(dist.reference)),
                    shares(list(dist.current)),
                    width,
                )
            )
        parts.append(Text(""))
        parts.append(Text(f"{inert(name)} by {report.window}", style="bold"))
        table = Table(box=None, padding=(0, 1), header_style="dim")
        for column, justify in (
            ("window", "left"),
            ("rows", "right"),
            ("statistic", "right"),
            ("verdict", "left"),
            ("missing", "left"),
            ("unseen", "left"),
        ):
            table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        for i, w in enumerate(report.windows):
            d = w.drift.get(name)
            q = w.quality.get(name)
            unseen = None
            if q is not None:
                unseen = (
                    q.new_category_share
                    if q.new_category_share is not None
                    else q.out_of_range_share
                )
            label = Text(w.start[:10] if report.window != "hour" else w.start[:16])
            if i == self.section:
                label.stylize("reverse")
            table.add_row(
                label,
                f"{w.n_rows:,}",
                fit_value(d.statistic if d else None, 9),
                verdict(d.drifted if d else None),
                share_text(q.missing_share if q else None, 8),
                share_text(unseen, 8),
            )
        parts.append(table)
        return header, Group(*parts)

    def _evidently(self, project: EvidentlyProject, width: int) -> tuple[Text, RenderableType]:
        snapshots = project.snapshots
        shown = snapshots[self.section] if snapshots else None
        column = shown.columns.get(self.feature) if shown else None
        header = Text(no_wrap=True)
        header.append(inert(self.feature), style="bold")
        if column is not None:
            header.append(f"  ·  {column.column_type or 'column'}  ·  {inert(column.stattest)} ")
            header.append(
                f"{fit_value(column.score, 7)} (threshold {fit_value(column.threshold, 5)}) "
            )
            header.append_text(verdict(column.drift_detected))
        if shown is not None:
            header.append(f"  ·  {inert(shown.name)}", style="bold")
        parts: list[RenderableType] = []
        if column is None or column.reference is None or column.current is None:
            parts.append(Text("this snapshot holds no distribution for the column", style="dim"))
        else:
            ref, cur = evidently_bars(column.reference), evidently_bars(column.current)
            if [label for label, _ in ref] == [label for label, _ in cur]:
                parts.append(
                    paired([lbl for lbl, _ in ref], [s for _, s in ref], [s for _, s in cur], width)
                )
            else:
                parts.append(single("reference (Evidently's bins)", ref, width, "cyan"))
                parts.append(single("current (Evidently's bins)", cur, width, "magenta"))
        parts.append(Text(""))
        parts.append(Text(f"{inert(self.feature)} by snapshot", style="bold"))
        table = Table(box=None, padding=(0, 1), header_style="dim")
        for title in ("snapshot", "test", "score", "threshold", "verdict"):
            table.add_column(title, no_wrap=True)
        for i, snapshot in enumerate(snapshots):
            c = snapshot.columns.get(self.feature)
            label = Text(snapshot.timestamp.date().isoformat())
            if i == self.section or (self.section < 0 and i == len(snapshots) - 1):
                label.stylize("reverse")
            table.add_row(
                label,
                inert(c.stattest) if c else "—",
                fit_value(c.score if c else None, 9),
                fit_value(c.threshold if c else None, 5),
                verdict(c.drift_detected if c else None),
            )
        parts.append(table)
        return header, Group(*parts)
