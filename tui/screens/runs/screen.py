"""The runs screen (home): every run under the folder, filtered, sorted, nested, marked.

View state lives here (columns, sort, filter text, experiment, folded parents); the table only
draws what it is given. Every change of state asks a worker for a new
:class:`~mltop.core.runs.runs_view.RunsView` (filter and sort run in SQL), and only the answer
to the latest request is shown, so typing fast never shows an older result over a newer one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa
from rich.console import RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.timer import Timer
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from mltop.core.common.sanitize import inert
from mltop.core.entities import Experiment
from mltop.core.runs.query import QueryError, compile_query, unknown_metric_warnings
from mltop.core.runs.runs_view import (
    Column,
    RunsView,
    ValuesCache,
    default_columns,
    load_runs,
)
from mltop.core.store import RunQuery, Store
from mltop.tui.commands import ScreenCommand, ScreenCommands
from mltop.tui.messages import (
    FilterRejected,
    IngestFinished,
    IngestProgress,
    RunsLoaded,
    StoreChanged,
)
from mltop.tui.screens.runs.columns import RunsColumnsScreen
from mltop.tui.screens.runs.experiment_picker import ALL, ExperimentPicker
from mltop.tui.screens.runs.header import empty_text, runs_header, short_path
from mltop.tui.screens.runs.palette import runs_commands, runs_help
from mltop.tui.widgets.filter_bar import FilterBar
from mltop.tui.widgets.keybar import KeyBar
from mltop.tui.widgets.run_table import RunTable

if TYPE_CHECKING:
    from mltop.tui.context import AppContext

FILTER_DELAY = 0.15
FILTER_HINT = 'filter: metrics.acc > 0.9 and (params.model = "sgd" or name ~ "rf-.*")'


class RunsScreen(RunsColumnsScreen):
    CSS_PATH = "runs.tcss"
    COMMANDS: ClassVar = {ScreenCommands}
    HELP_TITLE = "runs"
    AUTO_FOCUS = "RunTable"

    BINDINGS: ClassVar[list[BindingType]] = [
        # A priority binding acts before the key reaches the table, so what is typed right after
        # "/" already goes to the filter (a plain binding would lose those keys to the table).
        Binding("slash", "filter", "filter", priority=True, id="runs.filter"),
        Binding("s", "sort_next", "sort", id="runs.sort"),
        Binding("S", "sort_reverse", "reverse sort", show=False, id="runs.sort_reverse"),
        Binding("plus", "columns", "columns", id="runs.columns"),
        Binding("minus", "hide_column", "hide sorted column", show=False, id="runs.hide_column"),
        Binding("less_than_sign", "move_column(-1)", "move sorted column left", show=False,
                id="runs.column_left"),
        Binding("greater_than_sign", "move_column(1)", "move sorted column right", show=False,
                id="runs.column_right"),
        Binding("c", "compare", "compare", id="runs.compare"),
        Binding("d", "diff_previous", "diff prev", id="runs.diff_previous"),
        Binding("e", "experiment", "experiment", id="runs.experiment"),
        Binding("o", "fold", "fold/unfold children", show=False, id="runs.fold"),
        Binding("O", "fold_all", "fold/unfold all", show=False, id="runs.fold_all"),
        Binding("r", "refresh", "refresh", id="runs.refresh"),
        Binding("l", "logs", "logs", id="runs.logs"),
        Binding("p", "pipelines", "pipelines", id="runs.pipelines"),
        Binding("escape", "escape", "clear filter/marks", show=False, id="runs.escape"),
    ]  # fmt: skip

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.store: Store | None = None
        self.view: RunsView | None = None
        self.columns: list[Column] | None = None
        self.sort: Column = Column.attr("start")
        self.descending = True
        self.filter_text = ""
        self.experiment: tuple[str, str] | None = None
        self.collapsed: set[str] = set()
        self.param_keys: list[str] = []
        self.metric_keys: list[str] = []
        self.varying_params: list[str] = []
        # Columns the last change of columns added: kept on screen even when space is short.
        self.added: tuple[Column, ...] = ()
        self._generation = 0
        self._answered = 0
        # Param/metric values of every run, kept between reloads until the store changes.
        self.values_cache = ValuesCache()
        self.store_version = 0
        self._reload_on_resume = False
        # Marked run ids in the order they were marked: compare takes the first as its baseline.
        self.mark_order: list[str] = []
        self._filter_timer: Timer | None = None
        self._progress: tuple[str, int, int] | None = None
        self._ingest_started = False
        self._ingest_done = False
        self._status = "opening store…"

    @property
    def mltop(self) -> AppContext:
        return self.app  # type: ignore[return-value]

    # -- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="runs-header")
        yield FilterBar(FILTER_HINT, id="runs-filter")
        yield RunTable(id="runs-table")
        yield Static(id="runs-empty")
        yield Static(id="runs-note")
        yield KeyBar(id="runs-keys")

    @property
    def table(self) -> RunTable:
        return self.query_one(RunTable)

    @property
    def filter_bar(self) -> FilterBar:
        return self.query_one(FilterBar)

    def on_mount(self) -> None:
        self._draw_header()
        self.filter_bar.return_to = lambda: self.table
        self.set_focus(self.table)
        self._gpu_timer = self.set_interval(self.live_gpu_seconds, self._sample_gpus)

    def on_resize(self) -> None:
        self._draw_header()
        self.query_one(KeyBar).update_keys()

    # -- store and ingest (called by the app) ----------------------------------------------------

    def store_ready(self, note: str | None) -> None:
        self.store = self.mltop.store
        self._status = "reading store…"
        if note:
            note_widget = self.query_one("#runs-note", Static)
            note_widget.update(Text(f"⚠ {inert(note)}", no_wrap=True, overflow="ellipsis"))
            note_widget.display = True
        self._draw_header()
        self.reload()

    def store_failed(self, error: str) -> None:
        self._status = "no store"
        self._show_empty(Text(f"cannot open the store: {inert(error)}", style="bold red"))
        self._draw_header()

    def on_ingest_progress(self, message: IngestProgress) -> None:
        self._progress = (message.what, message.done, message.total)
        self._draw_header()

    def on_store_changed(self, message: StoreChanged) -> None:
        self.store_version += 1
        if self.is_attached and self.app.screen is not self:
            # Under run detail or logs while a job writes: the table is reloaded once on the way
            # back instead of twice a second for nobody (each reload is a query over all runs).
            self._reload_on_resume = True
            return
        self.reload(keys=True)

    def on_ingest_finished(self, message: IngestFinished) -> None:
        self._ingest_done = True
        report = message.report
        self.mltop.last_report = report
        if report is None or report.runs_added or report.points_added or report.removed_runs:
            self.store_version += 1
        self._progress = None
        if message.error and message.error != "cancelled":
            self.notify(f"import failed: {inert(message.error)}", severity="error", timeout=10)
        if report is not None and report.problems:
            first = inert(str(report.problems[0]))
            more = len(report.problems) - 1
            self.notify(
                first + (f" (and {more} more)" if more else ""),
                title=f"{len(report.problems)} files could not be read",
                severity="warning",
                timeout=8,
            )
        self.reload(keys=True)

    # -- loading ---------------------------------------------------------------------------------

    def reload(self, *, keys: bool = False) -> None:
        """Ask a worker for the table the current state describes."""
        if self.store is None:
            return
        self._generation += 1
        self._load(
            self._generation,
            self.filter_text,
            self.experiment[0] if self.experiment else None,
            list(self.columns) if self.columns is not None else None,
            self.sort,
            self.descending,
            frozenset(self.collapsed),
            keys or (not self.metric_keys and not self.param_keys),
            self.store_version,
        )

    @work(thread=True, exclusive=True, group="runs-load")
    def _load(
        self,
        generation: int,
        text: str,
        experiment_id: str | None,
        columns: list[Column] | None,
        sort: Column,
        descending: bool,
        collapsed: frozenset[str],
        keys: bool,
        version: int,
    ) -> None:
        worker = get_current_worker()
        try:
            query = compile_query(text)
        except QueryError as err:
            self.post_message(FilterRejected(text, err.message, err.position, generation))
            return
        if experiment_id:
            query = query.and_(RunQuery.experiment(experiment_id))
        known = None
        with self.mltop.store_in_use() as store:
            if keys or columns is None:
                stats = store.param_key_stats()
                varying = [key for key, _, distinct in stats if distinct > 1]
                known = ([key for key, _, _ in stats], store.metric_keys(), varying)
            if columns is None:
                params, metrics, varying = known or (
                    self.param_keys,
                    self.metric_keys,
                    self.varying_params,
                )
                columns = default_columns(params, metrics, varying=varying)
            if sort not in columns and sort.kind != "live" and sort != Column.attr("start"):
                sort = Column.attr("start")
                descending = True
            view = load_runs(
                store,
                query,
                columns,
                sort,
                descending,
                collapsed=collapsed,
                cache=self.values_cache,
                version=version,
                live=self.live_utilization,
            )
            # Only a filter that names a metric can name one no run has.
            mentions = "metric" in text.lower()
            metric_keys = known[1] if known else (store.metric_keys() if mentions else [])
            # The query's working memory (joins, sorts) goes back now, not a second later, and
            # so does what Arrow's allocator kept of the answers this one replaced (25 MB).
            store.return_freed_memory()
            pa.default_memory_pool().release_unused()
        warnings = tuple(unknown_metric_warnings(text, None, metric_keys))
        if not worker.is_cancelled:
            self.post_message(RunsLoaded(view, generation, known, warnings))

    @property
    def settled(self) -> bool:
        """Nothing left to do: the folder is read and the latest request is answered."""
        return (
            self.view is not None
            and self._ingest_done
            and self._answered == self._generation
            and self._filter_timer is None
        )

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        if message.generation != self._generation:
            return
        self._answered = message.generation
        if message.keys is not None:
            self.param_keys, self.metric_keys, self.varying_params = message.keys
        view = message.view
        first = self.view is None
        self.view = view
        if self.columns is None and self._ingest_done:
            self.columns = list(view.columns)  # freeze the defaults once the folder is read
        self.filter_bar.clear_error()
        self.filter_bar.show_warnings(message.warnings)
        self.table.collapsed = self.collapsed
        sort = self.sort if self.sort in self.table.with_live(view.columns) else None
        # The default sort (newest first) needs no room on screen; a chosen one does.
        chosen = () if sort is None or sort == Column.attr("start") else (sort,)
        wanted = tuple(c for c in self.added if c in view.columns) + chosen
        self.table.show(view, sort, self.descending, wanted)
        self._status = ""
        self._show_counts()
        self._draw_header()
        if view.total == 0:
            if self._ingest_done:
                self._show_empty(self._empty_text())
            else:
                self._show_empty(Text("looking for runs…", style="dim"))
        elif view.rows == 0:
            self._show_empty(Text("no runs match the filter (esc clears it)", style="dim"))
        else:
            self._show_empty(None)
        if first and not self._ingest_started:
            self._ingest_started = True
            self.mltop.start_ingest()
            if not self.mltop.scan:
                self._ingest_done = True

    def on_filter_rejected(self, message: FilterRejected) -> None:
        if message.generation != self._generation:
            return
        self._answered = message.generation
        self.filter_bar.show_error(message.text, message.message, message.position)
        self.filter_bar.show_warnings(())
        self._show_counts()

    def _empty_text(self) -> Text:
        return empty_text(self.root)

    def _show_empty(self, text: RenderableType | None) -> None:
        """A message under the (header-only) table when there is nothing to list.

        The table stays displayed so it keeps the focus and its keys keep working.
        """
        empty = self.query_one("#runs-empty", Static)
        self.set_class(text is not None, "-empty")
        if text is not None:
            empty.update(text)
        if self.focused is None:
            self.set_focus(self.table)

    # -- header, counts, keys --------------------------------------------------------------------

    def _show_counts(self) -> None:
        view = self.view
        if view is None:
            self.filter_bar.show_count("")
            return
        narrowed = bool(self.filter_text.strip()) or self.experiment is not None
        text = Text(no_wrap=True)
        if self.experiment is not None:
            text.append(f"experiment {inert(self.experiment[1])}  ", style="bold")
        if narrowed:
            text.append(f"{view.matched:,} of {view.total:,} match")
        else:
            text.append(f"{view.total:,} runs")
        self.filter_bar.show_count(text)

    def _draw_header(self) -> None:
        header = runs_header(
            self.root,
            self.view,
            progress=self._progress,
            status=self._status,
            ingesting=self.mltop.ingesting,
            width=self.size.width or 120,
        )
        self.query_one("#runs-header", Static).update(header)

    def _update_keys(self) -> None:
        marks = len(self.table.marked)
        self.query_one(KeyBar).update_keys({"toggle_mark": f" ({marks})" if marks else ""})

    # -- filter ----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # "/" typed inside an input is text (a regex, a metric called val/loss), not a command.
        return not (action == "filter" and isinstance(self.focused, Input))

    def action_filter(self) -> None:
        self.filter_bar.focus_input()

    @on(FilterBar.Changed)
    def _filter_changed(self, event: FilterBar.Changed) -> None:
        self.filter_text = event.text
        self._stop_filter_timer()
        self._filter_timer = self.set_timer(FILTER_DELAY, self._filter_due)

    def _filter_due(self) -> None:
        self._filter_timer = None
        self.reload()

    def _stop_filter_timer(self) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
            self._filter_timer = None

    @on(FilterBar.Submitted)
    def _filter_submitted(self, event: FilterBar.Submitted) -> None:
        self.filter_text = event.text
        self._stop_filter_timer()
        self.reload()

    @on(FilterBar.Cleared)
    def _filter_cleared(self) -> None:
        self.filter_text = ""
        self._stop_filter_timer()
        self.reload()

    def set_filter(self, text: str) -> None:
        """Replace the filter text (palette commands, tests) and reload."""
        self.filter_bar.set_text(text)
        self.filter_text = text
        self.reload()

    def action_escape(self) -> None:
        if self.filter_text:
            self.filter_bar.clear()
        elif self.experiment is not None:
            self.experiment = None
            self.reload()
        elif self.table.marked:
            self.table.clear_marks()

    # -- experiments, folding, refresh, open -----------------------------------------------------

    def action_experiment(self) -> None:
        self._load_experiments()

    @work(thread=True, exclusive=True, group="experiments")
    def _load_experiments(self) -> None:
        with self.mltop.store_in_use() as store:
            experiments = store.experiments()
        self.app.call_from_thread(self._pick_experiment, experiments)

    def _pick_experiment(self, experiments: list[Experiment]) -> None:
        def chosen(result: tuple[str, str] | None) -> None:
            if result is None:
                return
            self.experiment = None if result[0] == ALL else result
            self.reload()

        current = self.experiment[0] if self.experiment else None
        self.app.push_screen(ExperimentPicker(experiments, current), chosen)

    def action_fold(self) -> None:
        view = self.view
        if view is None or view.rows == 0:
            return
        row = self.table.cursor_row
        table = view.table
        run_id = view.run_id(row)
        if table.column("children")[row].as_py() == 0:
            parent = table.column("parent_id")[row].as_py()
            if table.column("depth")[row].as_py() == 0 or parent is None:
                return
            run_id = parent
        if run_id is None:
            return
        if run_id in self.collapsed:
            self.collapsed.discard(run_id)
        else:
            self.collapsed.add(run_id)
        self.reload()

    def action_fold_all(self) -> None:
        view = self.view
        if view is None:
            return
        if self.collapsed:
            self.collapsed.clear()
        else:
            import pyarrow.compute as pc

            # A cast, not a comparison with 0: Python scalars in Arrow calls import pandas.
            has_children = pc.cast(view.table.column("children"), pa.bool_())
            self.collapsed.update(pc.filter(view.table.column("id"), has_children).to_pylist())
        self.reload()

    def action_refresh(self) -> None:
        if self.store is None:
            return
        self._ingest_done = False
        self.mltop.start_ingest()
        self.reload(keys=True)
        self.notify("re-scanning " + inert(short_path(self.root)), timeout=2)

    @on(RunTable.Opened)
    def _open(self, event: RunTable.Opened) -> None:
        from mltop.tui.screens.runs.detail import RunDetailScreen

        self.app.push_screen(RunDetailScreen(event.run_id, self.root))

    @on(RunTable.MarksChanged)
    def _marks_changed(self, event: RunTable.MarksChanged) -> None:
        self.mark_order = [i for i in self.mark_order if i in event.marked]
        self.mark_order += [i for i in event.marked if i not in self.mark_order]
        self._update_keys()

    def action_compare(self) -> None:
        from mltop.tui.screens.compare.screen import open_compare

        marked = self.table.marked
        ordered = [i for i in self.mark_order if i in marked]
        open_compare(self, ordered + sorted(marked.difference(ordered)), self.root)

    def action_diff_previous(self) -> None:
        from mltop.tui.screens.compare.screen import open_diff_with_previous

        open_diff_with_previous(self, self.table.current_run_id(), self.root)

    def action_logs(self) -> None:
        from mltop.tui.screens.logs.screen import LogsScreen

        run_id = self.table.current_run_id()
        if run_id is None:
            self.notify("no run selected", timeout=3)
            return
        self.app.push_screen(LogsScreen(run_id=run_id))

    def action_pipelines(self) -> None:
        from mltop.tui.screens.pipelines.screen import PipelinesScreen

        self.app.push_screen(PipelinesScreen(self.root))

    def on_screen_resume(self) -> None:
        self._update_keys()
        if self._reload_on_resume:
            self._reload_on_resume = False
            self.reload(keys=True)

    # -- help and palette ------------------------------------------------------------------------

    def help_extra(self) -> RenderableType:
        return runs_help()

    def commands(self) -> list[ScreenCommand]:
        return runs_commands(self)
