"""The Models screen: the model registry, and the runs behind each version.

Top: one row per registered model (versions, alias badges ``@champion v5``, latest version, last
update, the registry it was read from). Below: the versions of the model under the cursor, with
their aliases, stage (when set), status, creation time, the run that made each (name and
experiment) and that run's primary metrics, each with its change against the ``@champion``
version coloured by the metric's direction as in Compare (a version without a run shows the
metrics of the MLflow 3 logged model it was registered from, and ``enter`` its params).
``enter`` opens a version's run, ``space`` marks versions, ``c`` compares the marked versions'
runs (or the version under the cursor with @champion) and ``d`` diffs the version with
@champion.

Both lists are read in workers (:func:`mltop.core.registry.resolve.listings`,
:func:`mltop.core.registry.board.model_board`); each answer carries the request it answers and
only the latest is drawn.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from mltop.core.common.formatting import fmt_time, fmt_value
from mltop.core.common.sanitize import inert
from mltop.core.compare.diff import Verdict
from mltop.core.compare.diff_format import fmt_delta
from mltop.core.compare.directions import load_directions
from mltop.core.registry.board import ModelBoard, VersionRow, model_board
from mltop.core.registry.resolve import ModelListing, badges, listings
from mltop.core.store import StoreError
from mltop.tui.screens.base import MltopScreen, back_binding
from mltop.tui.screens.compare.screen import CompareScreen
from mltop.tui.screens.runs.detail import RunDetailScreen
from mltop.tui.widgets.compare_table import verdict_styles
from mltop.tui.widgets.keybar import KeyBar

ARROWS = {Verdict.BETTER: " ▲", Verdict.WORSE: " ▼"}
# Metric columns read per model; as many as fit the width are shown (never a cut number).
MAX_METRICS = 6
# A DataTable cell's padding, left and right, and the room kept for the vertical scroll bar.
CELL_PAD = 2
SCROLLBAR = 2
RUN_COLUMN = "run (experiment)"
VERSION_COLUMNS = ("", "ver", "aliases", "stage", "status", "created", RUN_COLUMN)
VERSION_DROPS = (
    frozenset(),
    frozenset({"created"}),
    frozenset({"created", "status"}),
    frozenset({"created", "status", "experiment"}),
)
MIN_METRICS = 2
LIVE_INTERVAL = 2.0
# How long a load waits for the store to open, and how often the screen checks for a scan's end.
STORE_WAIT = 30.0
SCAN_CHECK = 0.5
MODEL_COLUMNS = ("name", "versions", "aliases", "latest", "updated", "registry")


def _widths(headers: list[str], rows: list[list[Text]]) -> list[int]:
    return [max([len(h)] + [r[i].cell_len for r in rows]) + CELL_PAD for i, h in enumerate(headers)]


def _fitting(widths: list[int], fixed: int, width: int) -> int:
    """How many columns are shown: the first ``fixed`` always, then each next one that fits."""
    room = width - SCROLLBAR - sum(widths[:fixed])
    shown = fixed
    for column in widths[fixed:]:
        if column > room:
            break
        room -= column
        shown += 1
    return shown


class ModelsLoaded(Message):
    def __init__(
        self,
        found: list[ModelListing] | None,
        generation: int,
        error: str | None,
        board: ModelBoard | None = None,
    ) -> None:
        super().__init__()
        self.found = found
        self.generation = generation
        self.error = error
        # The first model's versions, read in the same worker: one round trip, not two.
        self.board = board


class BoardLoaded(Message):
    def __init__(self, board: ModelBoard | None, generation: int, error: str | None) -> None:
        super().__init__()
        self.board = board
        self.generation = generation
        self.error = error


def registry_label(source: str) -> str:
    """The registry a model came from, short: a file's name, a server's URL."""
    return source if "://" in source else Path(source).name


class ModelsScreen(MltopScreen[None]):
    CSS_PATH = "registry.tcss"
    HELP_TITLE = "models"
    AUTO_FOCUS = "#models-table"

    BINDINGS: ClassVar[list[BindingType]] = [
        back_binding("models"),
        Binding("enter", "open_run", "open run", priority=True, id="models.open_run"),
        Binding("space", "mark", "mark", id="models.mark"),
        Binding("c", "compare", "compare", id="models.compare"),
        Binding("d", "diff_champion", "diff vs @champion", id="models.diff_champion"),
        Binding("tab", "switch", "models/versions", show=False, id="models.switch"),
        Binding("R", "reload", "reload", id="models.reload"),
    ]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = Path(root)
        self.found: list[ModelListing] | None = None
        self.board: ModelBoard | None = None
        self.error: str | None = None
        self.marked: set[str] = set()
        self._generation = 0
        self._board_generation = 0
        self._answered = 0
        self._board_answered = 0
        self._last_live = 0.0
        self._scans_seen = 0

    @property
    def models_table(self) -> DataTable:
        return self.query_one("#models-table", DataTable)

    @property
    def versions_table(self) -> DataTable:
        return self.query_one("#versions-table", DataTable)

    @property
    def settled(self) -> bool:
        """The latest requests are answered (tests and screenshots wait for this)."""
        if self._answered != self._generation:
            return False
        if self.error or not self.found:
            return True
        return self._board_answered == self._board_generation and self.board is not None

    # -- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="models-header")
        yield DataTable(id="models-table", cursor_type="row", zebra_stripes=False)
        yield Static(id="models-section")
        yield DataTable(id="versions-table", cursor_type="row", zebra_stripes=False)
        yield Static(id="models-empty")
        yield KeyBar(id="models-keys")

    def on_mount(self) -> None:
        self._draw_header()
        self.reload()
        self._scans_seen = self.mltop.scans_done
        self.set_interval(SCAN_CHECK, self._after_scan)

    def _after_scan(self) -> None:
        """Read the registry again when a scan of the folder ends (it may have brought one).

        A scan's end is told by the app's count of ended scans, not by seeing ``ingesting`` go
        from true to false: a short scan can begin and end between two checks."""
        done = self.mltop.scans_done
        if done != self._scans_seen:
            self._scans_seen = done
            self.reload()

    def on_resize(self) -> None:
        self._update_keys()
        if self.found:
            self._draw_models()
        self._draw_board()

    def _draw_header(self) -> None:
        text = Text(" models", style="bold")
        text.append(f"  {inert(str(self.root))}", style="dim")
        found = self.found
        if found is not None:
            kinds = sorted({f.model.source_kind for f in found})
            live = sum(f.count for f in found)
            if kinds:
                text.append(f"  ·  {', '.join(kinds)}")
            text.append(f"  ·  {len(found)} registered models  ·  {live} versions")
        self.query_one("#models-header", Static).update(text)

    def _show_empty(self, message: Text | None) -> None:
        self.set_class(message is not None, "-empty")
        self.query_one("#models-empty", Static).update(message or "")

    # -- loading (workers) -----------------------------------------------------------------------

    def live_changed(self, changed_runs: object) -> None:
        """The folder changed while the screen is open: read the registry again, at most every
        :data:`LIVE_INTERVAL` seconds (a training run writes several times a second)."""
        now = time.monotonic()
        if now - self._last_live >= LIVE_INTERVAL:
            self._last_live = now
            self.reload()

    def reload(self) -> None:
        self._generation += 1
        self._load(self._generation, self.models_table.cursor_row)

    @work(thread=True, exclusive=True, group="models")
    def _load(self, generation: int, row: int) -> None:
        directions = load_directions(self.root if self.root.is_dir() else self.root.parent)
        worker = get_current_worker()
        deadline = time.monotonic() + STORE_WAIT
        # Opened at once (M on the first frame): the store is being opened in another worker.
        while self.mltop.store is None and time.monotonic() < deadline:
            if worker.is_cancelled:
                return
            time.sleep(0.05)
        try:
            with self.mltop.store_in_use() as store:
                found = listings(store, versions=False)
                first = found[min(max(row, 0), len(found) - 1)] if found else None
                board = model_board(store, first, directions, MAX_METRICS) if first else None
        except StoreError as exc:
            self.post_message(ModelsLoaded(None, generation, str(exc)))
            return
        self.post_message(ModelsLoaded(found, generation, None, board))

    def on_models_loaded(self, message: ModelsLoaded) -> None:
        if message.generation != self._generation:
            return
        self._answered = message.generation
        self.error = message.error
        self.found = message.found
        self._draw_header()
        if message.found is None:
            self._show_empty(Text(f" cannot read the registry: {inert(message.error)}", "red"))
            return
        if not message.found:
            first_scan = self.mltop.scan and self.mltop.last_report is None
            busy = self.mltop.ingesting or first_scan
            scanning = " (the folder is still being scanned)" if busy else ""
            self._show_empty(
                Text(
                    " no registered models under this folder" + scanning + ": mltop reads "
                    "MLflow's registry from mlflow.db, mlruns/models/ and --mlflow servers, "
                    "and GTO's git tags in a git repository that declares artifacts",
                    style="dim",
                )
            )
            return
        self._show_empty(None)
        self._draw_models()
        board = message.board
        listing = self.listing
        if board is not None and listing is not None and board.listing.model == listing.model:
            self._board_generation += 1
            self._board_answered = self._board_generation
            self.board = board
            self._draw_board()
        else:
            self._request_board()

    def _draw_models(self) -> None:
        """The models, with the columns that fit whole (name, versions and aliases always)."""
        found = self.found or []
        rows = []
        for listing in found:
            m = listing.model
            rows.append(
                [
                    Text(inert(m.name), style="bold"),
                    Text(str(listing.count), justify="right"),
                    Text(inert(badges(m.aliases)) or "—"),
                    Text(f"v{inert(listing.latest)}" if listing.latest else "—"),
                    Text(fmt_time(m.updated)),
                    Text(inert(registry_label(m.source)), style="dim"),
                ]
            )
        widths = _widths(list(MODEL_COLUMNS), rows)
        shown = _fitting(widths, 3, self.size.width or 80)
        table = self.models_table
        keep = table.cursor_row
        table.clear(columns=True)
        # Widths given, not measured by the table: a table cleared and refilled in one go
        # could draw with the widths of its headers alone.
        for header, width in zip(MODEL_COLUMNS[:shown], widths, strict=False):
            table.add_column(header, width=width - CELL_PAD)
        for i, cells in enumerate(rows):
            table.add_row(*cells[:shown], key=str(i))
        if rows:
            table.move_cursor(row=min(keep, len(rows) - 1))

    @property
    def listing(self) -> ModelListing | None:
        found = self.found
        if not found:
            return None
        row = self.models_table.cursor_row
        return found[row] if 0 <= row < len(found) else None

    def _request_board(self) -> None:
        listing = self.listing
        if listing is None:
            return
        self._board_generation += 1
        self._load_board(self._board_generation, listing, MAX_METRICS)

    @work(thread=True, exclusive=True, group="models-board")
    def _load_board(self, generation: int, listing: ModelListing, metrics: int) -> None:
        directions = load_directions(self.root if self.root.is_dir() else self.root.parent)
        try:
            with self.mltop.store_in_use() as store:
                board = model_board(store, listing, directions, metrics)
        except StoreError as exc:
            self.post_message(BoardLoaded(None, generation, str(exc)))
            return
        self.post_message(BoardLoaded(board, generation, None))

    @on(DataTable.RowHighlighted, "#models-table")
    def _model_moved(self) -> None:
        listing = self.listing
        if self.board is None or listing is None or self.board.listing.model != listing.model:
            self.marked.clear()
            self._request_board()

    def on_board_loaded(self, message: BoardLoaded) -> None:
        if message.generation != self._board_generation:
            return
        self._board_answered = message.generation
        if message.board is None:
            self.notify(inert(message.error or "cannot read versions"), severity="error")
            return
        self.board = message.board
        self._draw_board()

    # -- the versions ----------------------------------------------------------------------------

    def _draw_board(self) -> None:
        board = self.board
        if board is None:
            return
        styles = verdict_styles(self.app)
        metric_headers = [f"{inert(k)} {d.arrow}".rstrip() for k, d in board.metrics]
        want = min(MIN_METRICS, len(metric_headers))
        # Narrow terminals give up created, then status, then the run's experiment, before the
        # metrics; a metric column that does not fit whole is left out and counted, never cut.
        for drop in VERSION_DROPS:
            headers = [h for h in VERSION_COLUMNS if h not in drop]
            rows = [self._version_cells(row, styles, drop) for row in board.rows]
            widths = _widths(headers + metric_headers, rows)
            shown = _fitting(widths, len(headers), self.size.width or 80)
            if shown - len(headers) >= want:
                break
        headers += metric_headers
        left_out = len(headers) - shown
        section = Text(f" ── {inert(board.listing.model.name)} ", style="bold")
        if left_out:
            section.append(f"(+{left_out} metrics in a wider terminal) ", style="dim")
        description = board.listing.model.description
        if description:
            section.append(inert(" ".join(description.split())), style="dim")
        section.truncate(max(1, self.size.width or 80), overflow="ellipsis")
        self.query_one("#models-section", Static).update(section)
        table = self.versions_table
        keep = table.cursor_row
        table.clear(columns=True)
        for header, width in zip(headers[:shown], widths, strict=False):
            table.add_column(header, width=width - CELL_PAD)
        for row, cells in zip(board.rows, rows, strict=True):
            table.add_row(*cells[:shown], key=row.version.version)
        if board.rows:
            table.move_cursor(row=min(keep, len(board.rows) - 1))
        self._update_keys()

    def _version_cells(self, row: VersionRow, styles: dict, drop: frozenset[str]) -> list[Text]:
        v = row.version
        dim = "dim" if v.deleted or row.run is None else ""
        run_text = row.run_text
        if "experiment" in drop and row.run is not None:
            run_text = row.run.name
        cells = {
            "": Text("●" if v.version in self.marked else " ", style="bold"),
            "ver": Text(f"v{inert(v.version)}", style="bold " + dim),
            "aliases": Text(" ".join(f"@{inert(a)}" for a in v.aliases) or "—"),
            "stage": Text("deleted" if v.deleted else inert(v.stage or "—"), style=dim),
            "status": Text(inert(v.status or "—"), style=dim),
            "created": Text(fmt_time(v.created), style=dim),
            RUN_COLUMN: Text(inert(run_text), style=dim),
        }
        shown = [cells[h] for h in VERSION_COLUMNS if h not in drop]
        for cell in row.cells:
            if cell.value is None:
                shown.append(Text("—", style="dim"))
                continue
            text = Text(fmt_value(cell.value))
            if cell.verdict not in (None, Verdict.SAME) and cell.delta is not None:
                style = styles.get(cell.verdict, "")
                text.append(" " + fmt_delta(cell.delta) + ARROWS.get(cell.verdict, ""), style)
            shown.append(text)
        return shown

    def _selected_row(self) -> VersionRow | None:
        board = self.board
        if board is None or not board.rows:
            return None
        row = self.versions_table.cursor_row
        return board.rows[row] if 0 <= row < len(board.rows) else None

    def _update_keys(self) -> None:
        extra = {"mark": f" ({len(self.marked)})"} if self.marked else {}
        self.query_one(KeyBar).update_keys(extra)

    # -- actions ---------------------------------------------------------------------------------

    def action_reload(self) -> None:
        self.reload()

    def action_switch(self) -> None:
        if self.focused is self.models_table:
            self.versions_table.focus()
        else:
            self.models_table.focus()

    def action_open_run(self) -> None:
        if self.focused is self.models_table:
            self.versions_table.focus()
            return
        row = self._selected_row()
        if row is None:
            return
        if row.run is None:
            text = f"v{inert(row.version.version)}: {row.no_run}"
            if row.logged is not None:
                # What the logged model was trained with is all there is to show of it.
                text += f"; metrics from logged model {inert(row.logged.model_id)}"
                params = ", ".join(f"{inert(k)}={inert(v)}" for k, v in row.logged.params)
                text += f"\nparams: {params or 'none'}"
            self.notify(text, timeout=8, markup=False)
            return
        self.app.push_screen(RunDetailScreen(row.run.id, self.root))

    def action_mark(self) -> None:
        row = self._selected_row()
        if row is None:
            return
        version = row.version.version
        self.marked.symmetric_difference_update({version})
        table = self.versions_table
        cursor = table.cursor_coordinate
        table.update_cell_at(cursor._replace(column=0), "●" if version in self.marked else " ")
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)
        self._update_keys()

    def _champion_row(self) -> VersionRow | None:
        board = self.board
        if board is None or board.champion is None:
            return None
        return next((r for r in board.rows if r.version.version == board.champion), None)

    def action_compare(self) -> None:
        board = self.board
        if board is None:
            return
        rows = [r for r in board.rows if r.version.version in self.marked]
        # The baseline is @champion when it is marked, else the oldest marked version.
        rows.sort(key=lambda r: (r.version.version != board.champion, r.version.created or 0))
        if len(rows) < 2:
            self.action_diff_champion()
            return
        self._open_compare(rows, "compare versions")

    def action_diff_champion(self) -> None:
        row = self._selected_row()
        champion = self._champion_row()
        if row is None:
            return
        if champion is None:
            self.notify("this model has no @champion alias to compare with", timeout=4)
            return
        if row is champion:
            self.notify("this version is @champion: move to another one", timeout=4)
            return
        self._open_compare([champion, row], "diff vs @champion")

    def _open_compare(self, rows: list[VersionRow], title: str) -> None:
        missing = [r for r in rows if r.run is None]
        if missing:
            r = missing[0]
            self.notify(f"v{inert(r.version.version)}: {r.no_run}", timeout=4, markup=False)
            return
        ids = [r.run.id for r in rows if r.run is not None]
        self.app.push_screen(CompareScreen(ids, self.root, title=title))
