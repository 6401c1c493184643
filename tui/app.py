"""The mltop app: opens the store and keeps it in step with the folder, in worker threads.

``mltop [PATH]`` draws the runs screen at once. A worker opens the store (a private copy when
another mltop holds the file: the footer says so), the runs screen shows what the store already
knows, and then a second worker re-scans the folder (:func:`mltop.core.discovery.ingest`),
reporting progress and each committed batch so the table fills as runs arrive.

The UI thread only draws. Store calls happen in workers; the store serialises them with its own
lock, and :meth:`MltopApp.store_in_use` counts them so quitting can wait for the last one before
closing the file. Quitting mid-import stops the import at its next transaction boundary (each
unit of import is one transaction, so nothing half-written is left behind).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.worker import Worker, WorkerState

from mltop.core.common.no_pandas import answer_without_pandas
from mltop.core.entities import ImportReport
from mltop.core.store import Store, StoreError, open_store
from mltop.tui.commands import ScreenCommands
from mltop.tui.keymap import load_keymap
from mltop.tui.messages import (
    IngestFinished,
    IngestProgress,
    LiveUpdate,
    StoreChanged,
    StoreFailed,
    StoreOpened,
)
from mltop.tui.screens.base import APP_KEYS
from mltop.tui.screens.help import HelpScreen, binding_rows
from mltop.tui.screens.runs.screen import RunsScreen

if TYPE_CHECKING:
    from mltop.core.live.watch import WatchUpdate

# A reload per committed batch would redraw (and re-query) constantly during a big first import.
CHANGE_INTERVAL = 1.0
# How often an MLflow server given with --mlflow is asked for new and changed runs.
REMOTE_RESYNC_SECONDS = 15.0


class IngestCancelled(BaseException):
    """Raised inside the import thread to stop it (a BaseException, so no importer keeps going)."""


class _WatchedStore:
    """The store as the importers see it during an ingest from the UI.

    Every unit of import runs in ``transaction()``; here each one first checks whether the user
    has quit (and stops the import cleanly if so) and afterwards tells the UI that new rows are
    committed, at most every :data:`CHANGE_INTERVAL` seconds.
    """

    def __init__(self, store: Store, cancel: threading.Event, changed: Any) -> None:
        self._store = store
        self._cancel = cancel
        self._changed = changed
        self._last = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @contextlib.contextmanager
    def transaction(self, *, large: bool = False) -> Iterator[None]:
        if self._cancel.is_set():
            raise IngestCancelled()
        with self._store.transaction(large=large):
            yield
        now = time.monotonic()
        if now - self._last >= CHANGE_INTERVAL:
            self._last = now
            self._changed()


class MltopApp(App[int]):
    """mltop over one folder (or file) and its store."""

    CSS_PATH = "app.tcss"
    TITLE = "mltop"
    ENABLE_COMMAND_PALETTE = True
    # Textual's system commands are listed by ScreenCommands, after mltop's (see its module).
    COMMANDS: ClassVar = {ScreenCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        *APP_KEYS,
        # Hidden from the key lines (they are full at 80 columns); `?` and the palette list it.
        Binding("m", "monitor", "monitor", show=False, id="app.monitor"),
        Binding("h", "host", "host", show=False, id="app.host"),
        Binding("M", "models", "models", show=False, id="app.models"),
        Binding(
            "ctrl+p", "command_palette", "commands", show=False, priority=True, id="app.commands"
        ),
    ]

    def __init__(
        self,
        root: Path,
        store_path: Path | None = None,
        *,
        scan: bool = True,
        keymap: dict[str, str] | None = None,
        keymap_problem: str | None = None,
        store: Store | None = None,
        mlflow_url: str | tuple[str, ...] | None = None,
        github: str | None = None,
        github_api: str | None = None,
        live: bool = True,
    ) -> None:
        super().__init__()
        answer_without_pandas()  # 36 MB the app never uses (see the module)
        self.root = root
        # GitHub Actions run status on the pipelines screen: OWNER/REPO (token: $GITHUB_TOKEN);
        # the API address is only changed for GitHub Enterprise and tests.
        self.github_repo = github
        self.github_api = github_api
        self.store_path = store_path
        # MLflow tracking servers to read besides the folder (see mltop.core.importers.mlflow_rest)
        self.mlflow_urls: tuple[str, ...] = (
            (mlflow_url,) if isinstance(mlflow_url, str) else tuple(mlflow_url or ())
        )
        self.scan = scan
        # Follow the folder after the first scan (watchfiles); tests turn it off for determinism.
        self.live = scan and live
        self._watching = False
        self._mlflow_clients: dict[str, Any] = {}
        self.store: Store | None = store
        self._owns_store = store is None
        self._keymap_problem = keymap_problem
        self._cancel = threading.Event()
        self._users = 0
        self._users_lock = threading.Condition()
        self.ingesting = False
        # How many scans of the folder have ended: a screen that waits for "the next scan's end"
        # compares counts, since a short scan can begin and end between two of its checks.
        self.scans_done = 0
        self._rescan = False
        self.last_report: ImportReport | None = None
        self.runs_screen = RunsScreen(root)
        if keymap:
            self.set_keymap(keymap)

    # -- lifecycle -------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.push_screen(self.runs_screen)
        if self._keymap_problem:
            # File names and keys are shown as written: markup off.
            self.notify(self._keymap_problem, severity="warning", timeout=15, markup=False)
        if self.store is not None:
            self.post_message(StoreOpened(self.store))
        else:
            self._open_store()

    def on_unmount(self) -> None:
        # However the app ends, thread workers (the live watcher, an import) must stop too.
        self._cancel.set()

    @contextlib.contextmanager
    def store_in_use(self) -> Iterator[Store]:
        """Hold the store for one piece of worker work (quitting waits for it to end)."""
        with self._users_lock:
            self._users += 1
        try:
            if self.store is None:
                raise StoreError("the store is not open")
            yield self.store
        finally:
            with self._users_lock:
                self._users -= 1
                self._users_lock.notify_all()

    def wait_for_store_users(self, timeout: float) -> bool:
        """Wait until no worker uses the store; False if one still does after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._users_lock:
            while self._users:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._users_lock.wait(left)
        return True

    def close_store(self) -> None:
        """Stop any import and close the store once no worker is using it."""
        self._cancel.set()
        if self.store is not None and self._owns_store and self.wait_for_store_users(10.0):
            self.store.close()

    @work(thread=True, exclusive=True, group="store")
    def _open_store(self) -> None:
        store_root = self.root if self.root.is_dir() else self.root.parent
        try:
            store = open_store(store_root, self.store_path)
        except (StoreError, OSError) as exc:
            self.post_message(StoreFailed(str(exc)))
            return
        self.post_message(StoreOpened(store))

    def on_store_opened(self, message: StoreOpened) -> None:
        self.store = message.store
        if message.store.note:
            self.notify(message.store.note, severity="warning", timeout=10)
        self.runs_screen.store_ready(message.store.note)
        if self.mlflow_urls and self.scan:
            # A server has no file events to wait for: poll it, as MLflow's own UI does.
            self.set_interval(REMOTE_RESYNC_SECONDS, self.start_ingest)

    def on_store_failed(self, message: StoreFailed) -> None:
        self.runs_screen.store_failed(message.error)
        self.notify(message.error, severity="error", timeout=20)

    # -- ingest ----------------------------------------------------------------------------------

    def start_ingest(self) -> None:
        """Re-scan the folder (unchanged files cost one stat each).

        One scan at a time: two interleaved scans of the same files could both append the same
        new lines. A request during a scan runs once that scan is over.
        """
        if self.store is None or not self.scan or self._cancel.is_set():
            return
        if self.ingesting:
            self._rescan = True
            return
        self.ingesting = True
        self._rescan = False
        self._ingest()

    @work(thread=True, group="ingest")
    def _ingest(self) -> None:
        # Imported here: the importers are not needed for the first frame.
        from mltop.core.discovery import ingest

        screen = self.runs_screen

        def progress(what: str, done: int, total: int) -> None:
            if self._cancel.is_set():
                raise IngestCancelled()
            screen.post_message(IngestProgress(what, done, total))

        report = None
        error = None
        try:
            # The live watcher imports into the same store: never both at once.
            from mltop.core.live.watch import INGEST_LOCK

            with INGEST_LOCK, self.store_in_use() as store:
                watched = _WatchedStore(
                    store, self._cancel, lambda: screen.post_message(StoreChanged())
                )
                began = time.time()
                report = ingest(self.root, watched, progress=progress)  # type: ignore[arg-type]
                store.record_scan(str(self.root), began)  # `mltop runs` right after trusts it
                for url in self.mlflow_urls:
                    self._sync_server(url, watched, report, progress)
                # What the scan read (every file's record: 20 MB of blocks at 100,000 runs) is
                # not read again before the next one; the runs screen reads its own back.
                store.release_buffers()
        except IngestCancelled:
            error = "cancelled"
        except Exception as exc:  # the UI must survive any import failure and say what it was
            error = f"{type(exc).__name__}: {exc}"
        screen.post_message(IngestFinished(report, error))

    def _sync_server(
        self, url: str, store: Store, report: ImportReport, progress: Callable[..., None]
    ) -> None:
        """Runs of an MLflow server: latest values first (the table shows them), histories next.

        The client is kept between scans, so a re-scan only fetches what changed and the charts
        of a remote run that is still training keep growing.
        """
        from mltop.core.importers import mlflow_rest
        from mltop.core.registry import sync as registry_sync

        try:
            client = self._mlflow_clients.get(url)
            if client is None:
                client = self._mlflow_clients[url] = mlflow_rest.connect(url)
            plan = mlflow_rest.sync_runs(store, client, report, progress=progress)
            registry_sync.sync_server(store, url, report, client=client)
            self.runs_screen.post_message(StoreChanged())
            mlflow_rest.import_histories(
                store, client, plan, report, progress=progress, should_stop=self._cancel.is_set
            )
        except mlflow_rest.RemoteError as exc:
            report.problem(mlflow_rest.scrub(url), str(exc))

    # -- live ------------------------------------------------------------------------------------

    @work(thread=True, group="watch", exit_on_error=False)
    def _watch(self) -> None:
        """Follow the folder while mltop is open: changed files go through the importers'
        incremental path, new runs appear and charts grow. Started after the first scan."""
        from mltop.core.live.watch import Watcher

        if not self.root.exists():
            return
        with self.store_in_use() as store:
            watcher = Watcher([self.root], store, self._live_update, self._cancel)
            watcher.run()
        if watcher.error and not self._cancel.is_set():
            self.call_from_thread(
                self.notify,
                f"live updates fell back to polling: {watcher.error}",
                severity="warning",
                markup=False,
            )

    def _live_update(self, update: WatchUpdate) -> None:
        if update.store_changed or update.stale_runs:
            self.post_message(LiveUpdate(update.changed_runs, update.new_runs))

    def on_live_update(self, message: LiveUpdate) -> None:
        self.runs_screen.post_message(StoreChanged())
        for screen in self.screen_stack:
            live = getattr(screen, "live_changed", None)
            if callable(live) and screen is not self.runs_screen:
                live(message.changed_runs)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "ingest" and event.state in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            self.ingesting = False
            self.scans_done += 1
            if self._rescan:
                self.start_ingest()
            elif self.live and not self._watching and not self._cancel.is_set():
                self._watching = True
                self._watch()
        if event.state == WorkerState.ERROR and worker.error is not None:
            error = worker.error
            self.notify(f"{type(error).__name__}: {error}", severity="error", timeout=10)

    # -- actions ---------------------------------------------------------------------------------

    def action_help(self) -> None:
        screen = self.screen
        if isinstance(screen, HelpScreen):
            return
        extra = getattr(screen, "help_extra", None)
        title = getattr(screen, "HELP_TITLE", type(screen).__name__)
        self.push_screen(
            HelpScreen(title, binding_rows(screen), extra() if callable(extra) else None)
        )

    def action_monitor(self) -> None:
        """The Monitor screen over the folder (its monitors are found when it opens)."""
        from mltop.tui.screens.monitor.screen import MonitorScreen

        if not isinstance(self.screen, MonitorScreen):
            self.push_screen(MonitorScreen(self.root))

    def action_host(self) -> None:
        """The Host screen: the machine now, its GPUs, and the runs its processes belong to."""
        from mltop.tui.screens.system.host import HostScreen

        if not isinstance(self.screen, HostScreen):
            self.push_screen(HostScreen(self.root))

    def action_models(self) -> None:
        """The Models screen (the registry), from any screen; once on the stack at a time."""
        from mltop.tui.screens.registry.screen import ModelsScreen

        if isinstance(self.screen, ModelsScreen):
            return
        self.push_screen(ModelsScreen(self.root))

    async def action_quit(self) -> None:
        self._cancel.set()
        self.exit(0)


def run_app(
    root: Path,
    store_path: Path | None = None,
    *,
    mlflow_url: str | tuple[str, ...] | None = None,
    github: str | None = None,
) -> int:
    """Open the TUI on ``root`` (what ``mltop [PATH]`` calls). Returns the exit code.

    ``mlflow_url`` names the MLflow tracking server(s) to read too (``--mlflow``); ``github``
    the repository whose Actions runs the pipelines screen shows (``--github OWNER/REPO``).
    """
    keymap, problem = load_keymap()
    app = MltopApp(
        root,
        store_path,
        keymap=keymap,
        keymap_problem=problem,
        mlflow_url=mlflow_url,
        github=github,
    )
    try:
        result = app.run()
    finally:
        app.close_store()
    return int(result or 0)


def run_app_following(root: Path, log: Path, *, title: str | None = None) -> int:
    """The full app over ``root``, opened on the Logs screen following ``log`` (``esc``: runs).

    ``mltop demo --live`` uses this to show a run while it trains.
    """
    # Imported here, as the runs screen does: the Logs screen is not needed for the first frame.
    from mltop.tui.screens.logs.screen import LogsScreen

    class FollowingApp(MltopApp):
        def on_ready(self) -> None:
            self.push_screen(LogsScreen(paths=[log], title=title))

    keymap, problem = load_keymap()
    app = FollowingApp(root, keymap=keymap, keymap_problem=problem)
    try:
        result = app.run()
    finally:
        app.close_store()
    return int(result or 0)
