"""Monitor (``m``): a model in production against its reference, one row per feature.

The monitors are found under the folder mltop was opened on, with no set-up: every folder
holding ``.mltop/monitor.yaml`` (a prediction log and its reference, computed with
:func:`mltop.core.monitor.build_report` when shown) and every Evidently workspace (each
project's snapshots as they are). Finding, computing and reading all run in worker threads;
the screen draws the answer. ``n`` goes to the next monitor, ``←``/``→`` through the windows
(the table shows one window, or the whole log), ``v`` through the model versions (the quality
band and summary follow), ``w`` through week, day and hour windows, ``enter`` opens a feature's
distributions and its window-by-window values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Static

from mltop.core.common.formatting import fit_text, fit_value
from mltop.core.common.sanitize import inert
from mltop.core.monitor import MonitorError, MonitorReport, build_report, load_config
from mltop.core.monitor.evidently_workspace import (
    EvidentlyProject,
    EvidentlyWorkspace,
    read_workspace,
)
from mltop.core.monitor.sources import MonitorSource, find_monitor_sources
from mltop.tui.screens.base import MltopScreen, back_binding
from mltop.tui.screens.monitor.view import (
    MonitorView,
    from_evidently,
    from_report,
    share_text,
    sparkline,
    test_name,
    verdict,
)
from mltop.tui.widgets.keybar import KeyBar

# None: monitor.yaml's window, else the span's choice. Hours come last: a month of them is 720
# windows, the slowest to compute.
WINDOW_UNITS = (None, "week", "day", "hour")
Result = MonitorReport | EvidentlyProject
NARROW = 100
"""Below this many columns the table drops the unseen-values column and shortens test names."""


@dataclass(frozen=True)
class Entry:
    """One thing ``n`` steps through: a configured monitor, or one project of a workspace."""

    source: MonitorSource
    project: int = 0


class SourcesFound(Message):
    def __init__(self, entries: list[Entry], workspaces: dict[Path, EvidentlyWorkspace]) -> None:
        super().__init__()
        self.entries = entries
        self.workspaces = workspaces


class MonitorLoaded(Message):
    def __init__(
        self, key: tuple[Entry, str | None], result: Result | None, error: str | None
    ) -> None:
        super().__init__()
        self.key = key
        self.result = result
        self.error = error


class MonitorScreen(MltopScreen[None]):
    CSS_PATH = "monitor.tcss"
    HELP_TITLE = "monitor"
    AUTO_FOCUS = "#mon-table"

    BINDINGS: ClassVar[list[BindingType]] = [
        back_binding("monitor"),
        Binding("enter", "open_feature", "distributions", id="monitor.open"),
        Binding("left", "step(-1)", "earlier window", priority=True, id="monitor.earlier"),
        Binding("right", "step(1)", "later window", priority=True, id="monitor.later"),
        Binding("v", "version", "version", id="monitor.version"),
        Binding("w", "window", "window", id="monitor.window"),
        Binding("n", "next_source", "next monitor", id="monitor.next"),
        Binding("r", "recompute", "recompute", show=False, id="monitor.recompute"),
    ]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = Path(root)
        self.entries: list[Entry] | None = None
        self.workspaces: dict[Path, EvidentlyWorkspace] = {}
        self.current = 0
        self.section = -1
        self.version: str | None = None
        self.unit: str | None = None
        self.results: dict[tuple[Entry, str | None], Result] = {}
        self.errors: dict[tuple[Entry, str | None], str] = {}
        self.view: MonitorView | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="mon-header")
        yield Static(id="mon-summary")
        table: DataTable[object] = DataTable(id="mon-table", cursor_type="row", zebra_stripes=False)
        yield table
        yield Static(id="mon-band")
        yield Static(id="mon-notes")
        yield KeyBar(id="mon-keys")

    def on_mount(self) -> None:
        self._message(Text("looking for monitors…", style="dim"))
        self._find()

    def on_resize(self) -> None:
        self._draw()

    # -- loading ------------------------------------------------------------------------------

    @property
    def key(self) -> tuple[Entry, str | None] | None:
        if not self.entries:
            return None
        return (self.entries[self.current], self.unit)

    @property
    def settled(self) -> bool:
        """Sources found and the current one computed or failed (tests wait for this)."""
        key = self.key
        if self.entries is None:
            return False
        return key is None or key in self.results or key in self.errors

    @work(thread=True, exclusive=True, group="monitor-find")
    def _find(self) -> None:
        entries: list[Entry] = []
        workspaces: dict[Path, EvidentlyWorkspace] = {}
        for source in find_monitor_sources(self.root):
            if source.kind == "evidently":
                workspace = read_workspace(source.path)
                workspaces[source.path] = workspace
                count = max(1, len(workspace.projects))
                entries.extend(Entry(source, i) for i in range(count))
            else:
                entries.append(Entry(source))
        self.post_message(SourcesFound(entries, workspaces))

    def on_sources_found(self, message: SourcesFound) -> None:
        self.entries = message.entries
        self.workspaces = message.workspaces
        if not self.entries:
            self._message(
                Text(
                    "no monitor here: a folder with .mltop/monitor.yaml (a prediction log and its "
                    "reference) or an Evidently workspace shows up on this screen",
                    style="dim",
                )
            )
            return
        self._show()

    def _show(self) -> None:
        key = self.key
        if key is None:
            return
        if key in self.results or key in self.errors:
            self._draw()
            return
        self._message(Text(f"computing {inert(key[0].source.name)}…", style="dim"))
        self._compute(key)

    @work(thread=True, exclusive=True, group="monitor")
    def _compute(self, key: tuple[Entry, str | None]) -> None:
        entry, unit = key
        source = entry.source
        try:
            if source.kind == "evidently":
                workspace = self.workspaces.get(source.path) or read_workspace(source.path)
                projects = workspace.projects
                if not projects:
                    problems = workspace.problems
                    why = problems[0][1] if problems else "no projects"
                    raise MonitorError(f"{source.path}: {why}")
                result: Result = projects[entry.project]
            else:
                assert source.config is not None
                config = load_config(source.config)
                if unit is not None:
                    config = config.merged(window=unit)
                result = build_report(config)
        except MonitorError as exc:
            self.post_message(MonitorLoaded(key, None, str(exc)))
            return
        except Exception as exc:  # the screen must say what failed, never go blank
            self.post_message(MonitorLoaded(key, None, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(MonitorLoaded(key, result, None))

    def on_monitor_loaded(self, message: MonitorLoaded) -> None:
        if message.result is not None:
            self.results[message.key] = message.result
        else:
            self.errors[message.key] = message.error or "not computed"
        if message.key == self.key:
            self._draw()

    # -- drawing ------------------------------------------------------------------------------

    def _message(self, text: Text) -> None:
        self.query_one("#mon-header", Static).update(Text("monitor", style="bold"))
        self.query_one("#mon-summary", Static).update(text)
        self.query_one("#mon-table", DataTable).display = False
        self.query_one("#mon-band", Static).update("")
        self.query_one("#mon-notes", Static).update("")

    def _make_view(self) -> MonitorView | None:
        key = self.key
        result = self.results.get(key) if key else None
        if key is None or result is None:
            return None
        entry = key[0]
        if isinstance(result, EvidentlyProject):
            if self.section >= len(result.snapshots):
                self.section = -1
            return from_evidently(result, entry.source.name, self.section)
        assert isinstance(result, MonitorReport)
        if self.section >= len(result.windows):
            self.section = -1
        if self.version is not None and self.version not in result.overall.performance_by_version:
            self.version = None
        return from_report(result, entry.source.name, self.section, self.version)

    def _draw(self) -> None:
        if not self.is_mounted or not self.entries:
            return
        key = self.key
        if key in self.errors:
            assert key is not None
            self._message(Text("✗ " + inert(self.errors[key]), style="bold red"))
            self._header(key[0].source.name)
            return
        view = self._make_view()
        if view is None:
            return
        self.view = view
        self._header(view.title, view)
        self.query_one("#mon-summary", Static).update(view.summary)
        self._fill_table(view)
        self._draw_band(view)
        notes = Text(no_wrap=True, overflow="ellipsis", style="dim")
        if view.notes:
            more = f" (+{len(view.notes) - 1} more)" if len(view.notes) > 1 else ""
            notes.append("⚠ " + inert(view.notes[0]) + more)
        self.query_one("#mon-notes", Static).update(notes)
        self.query_one(KeyBar).update_keys()

    def _header(self, title: str, view: MonitorView | None = None) -> None:
        width = max(20, self.size.width - 2)
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append("monitor ", style="bold")
        head.append(inert(title), style="bold")
        if self.entries and len(self.entries) > 1:
            head.append(f" ({self.current + 1}/{len(self.entries)})", style="dim")
        if view is not None:
            head.append(f"  ·  {view.section_label}", style="bold")
            if view.version:
                head.append(f"  ·  version {inert(view.version)}")
            head.append("  ·  " + view.facts, style="dim")
        head.truncate(width, overflow="ellipsis")
        self.query_one("#mon-header", Static).update(head)

    def _fill_table(self, view: MonitorView) -> None:
        table: DataTable[object] = self.query_one("#mon-table", DataTable)
        table.display = True
        narrow = self.size.width < NARROW
        name_w = min(22 if not narrow else 14, max([7, *(len(r.name) for r in view.rows)]))
        test_w = 11 if narrow else 16
        unseen_w = 0 if narrow else (22 if self.size.width >= 120 else 16)
        fixed = name_w + test_w + 7 + 5 + 7 + 7 + unseen_w
        columns = 7 if narrow else 8
        spark_w = max(6, min(len(view.labels), self.size.width - fixed - 2 * columns - 3))
        unit = "snapshots" if view.kind == "evidently" else "windows"
        row_key = table.cursor_row if table.row_count else 0
        table.clear(columns=True)
        table.add_column("feature", width=name_w, key="feature")
        table.add_column("test", width=test_w)
        table.add_column("value", width=7)
        table.add_column("thr", width=5)
        table.add_column("verdict", width=7)
        table.add_column(
            fit_text(f"last {min(spark_w, len(view.labels))} {unit}", spark_w), width=spark_w
        )
        table.add_column("missing", width=7)
        if not narrow:
            table.add_column("unseen", width=unseen_w)
        mark = None if view.section < 0 else view.section
        for row in view.rows:
            cells: list[object] = [
                Text(fit_text(inert(row.name), name_w)),
                test_name(row.test, row.test_display, test_w),
                Text(fit_value(row.value, 7), justify="right"),
                Text(fit_value(row.threshold, 5), justify="right"),
                verdict(row.drifted),
                sparkline(row.history, spark_w, mark),
                share_text(row.missing, 7) if view.kind == "monitor" else Text("—", style="dim"),
            ]
            if not narrow:
                unseen = share_text(row.unseen, 7) if view.kind == "monitor" else Text("—")
                if row.unseen and row.unseen_what:
                    unseen.append(" " + row.unseen_what)
                unseen.truncate(unseen_w, overflow="ellipsis")
                cells.append(unseen)
            table.add_row(*cells, key=row.name)
        if table.row_count:
            table.move_cursor(row=min(row_key, table.row_count - 1))

    def _draw_band(self, view: MonitorView) -> None:
        width = max(30, self.size.width - 2)
        label_w = 22 if width >= NARROW else 16
        spark_w = max(6, min(len(view.labels), width - label_w - 12))
        out = Text(no_wrap=True)
        by = "snapshot" if view.kind == "evidently" else "window"
        out.append(f"── by {by} ", style="dim")
        if view.labels:
            out.append(f"({view.labels[0]} → {view.labels[-1]})", style="dim")
        mark = None if view.section < 0 else view.section
        for line in view.band:
            out.append("\n")
            out.append(fit_text(line.label, label_w).ljust(label_w) + " ")
            out.append_text(sparkline(line.values, spark_w, mark))
            out.append(" " + fit_value(line.last, 6))
            if line.mark:
                out.append(" " + line.mark, style="bold red")
        self.query_one("#mon-band", Static).update(out)

    # -- actions ------------------------------------------------------------------------------

    def action_step(self, delta: int) -> None:
        view = self.view
        if view is None or not view.labels:
            return
        count = len(view.labels)
        # -1 (whole log / latest) sits before the first window: the order is -1, 0, 1, ... n-1.
        self.section = (self.section + 1 + delta) % (count + 1) - 1
        self._draw()

    def action_version(self) -> None:
        view = self.view
        if view is None or not view.versions:
            self.notify("this monitor has no model versions", timeout=3)
            return
        order: list[str | None] = [None, *view.versions]
        self.version = order[(order.index(self.version) + 1) % len(order)]
        self._draw()

    def action_window(self) -> None:
        entry = self.key[0] if self.key else None
        if entry is None or entry.source.kind != "monitor":
            self.notify("an Evidently workspace has the windows its snapshots have", timeout=3)
            return
        self.unit = WINDOW_UNITS[(WINDOW_UNITS.index(self.unit) + 1) % len(WINDOW_UNITS)]
        self.section = -1
        self._show()

    def action_next_source(self) -> None:
        if not self.entries or len(self.entries) < 2:
            self.notify("this is the only monitor under the folder", timeout=3)
            return
        self.current = (self.current + 1) % len(self.entries)
        self.section, self.version, self.unit = -1, None, None
        self._show()

    def action_recompute(self) -> None:
        key = self.key
        if key is None:
            return
        self.results.pop(key, None)
        self.errors.pop(key, None)
        if key[0].source.kind == "evidently":
            self.workspaces.pop(key[0].source.path, None)
        self._show()

    @on(DataTable.RowSelected, "#mon-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_feature()

    def action_open_feature(self) -> None:
        from mltop.tui.screens.monitor.feature import FeatureScreen

        key = self.key
        result = self.results.get(key) if key else None
        table: DataTable[object] = self.query_one("#mon-table", DataTable)
        if result is None or self.view is None or not table.row_count:
            return
        feature = self.view.rows[table.cursor_row].name
        self.app.push_screen(FeatureScreen(result, feature, self.section))
