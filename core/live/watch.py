"""Keep the store current while mltop is open: a watchfiles loop feeding the incremental import.

:class:`Watcher` runs in a worker thread. inotify (through watchfiles) reports changed paths;
they are gathered for at least ``min_interval`` seconds, then brought into the store:

* a path inside a source the store already knows (a run folder, an ``mlruns/`` tree, a metrics
  file) re-imports just that source, through its importer's incremental path: only new bytes
  are read, an unchanged file costs one stat;
* a path outside every known source (a new run folder, say) or a source that vanished makes a
  full :func:`~mltop.core.discovery.ingest` of the root, which discovers and forgets sources;
  full scans are spaced at least ``full_interval`` apart, because on a big tree they cost
  hundreds of milliseconds.

Each batch ends in one :class:`WatchUpdate` handed to ``on_update`` (which runs run ids changed,
which are new, which log files grew), so a writer producing thousands of lines a second costs the
UI at most ``1 / min_interval`` updates a second. Every ``stale_check`` seconds the watcher also
reports RUNNING runs that went quiet (see :func:`is_stale`).

Imports hold :data:`INGEST_LOCK`; any other code that ingests into the same store while a
watcher runs must hold it too, or both could append the same new lines.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mltop.core.common.regular_files import confined_to
from mltop.core.discovery import SKIP_DIRS, ingest, report_refused, sync_registries
from mltop.core.entities import ImportReport, Run, SourceRef, Status
from mltop.core.importers.base import Importer
from mltop.core.importers.registry import importers as default_importers
from mltop.core.runs.query import compile_query
from mltop.core.runs.runs_view import stale_after
from mltop.core.store import UPDATED_RESOLUTION, Store

__all__ = ["INGEST_LOCK", "LOG_SUFFIXES", "WatchUpdate", "Watcher", "is_stale"]

#: Held by every import into a watched store (the watcher's and anyone else's).
INGEST_LOCK = threading.RLock()
#: Files whose growth a log view cares about.
LOG_SUFFIXES = (".log", ".out", ".err", ".txt")
#: A growing log marks its run alive (``updated``) at most this often: staleness is judged in
#: minutes, and a write per batch would cost more than the rest of following a chatty log.
TOUCH_INTERVAL = UPDATED_RESOLUTION


def is_stale(run: Run, now: float | None = None, after: float | None = None) -> bool:
    """Whether a RUNNING run has been silent for longer than ``after`` seconds.

    Its job most likely died without writing a final status (SIGKILL, a lost node). The last
    sign of life is ``updated`` (newest file change seen), else the start time; a run with
    neither is not called stale. ``after`` defaults to ``$MLTOP_STALE_AFTER`` or 5 minutes.
    """
    if str(run.status).upper() != Status.RUNNING:
        return False
    seen = run.updated if run.updated is not None else run.start_time
    if seen is None:
        return False
    now = time.time() if now is None else now
    return now - seen > (stale_after() if after is None else after)


@dataclass(frozen=True)
class WatchUpdate:
    """What one batch of file changes did to the store."""

    changed_runs: frozenset[str] = frozenset()  # runs whose rows changed (new runs included)
    new_runs: frozenset[str] = frozenset()
    removed_runs: int = 0
    grown_logs: frozenset[str] = frozenset()  # log files that changed on disk
    stale_runs: frozenset[str] = frozenset()  # every RUNNING run now silent (see is_stale)
    paths: frozenset[str] = frozenset()  # every changed path in the batch
    report: ImportReport | None = None
    full_scan: bool = False
    seconds: float = 0.0  # time spent importing

    @property
    def store_changed(self) -> bool:
        return bool(self.changed_runs or self.removed_runs or self.new_runs)


def _skipped(path: str) -> bool:
    return any(part in SKIP_DIRS for part in Path(path).parts)


class Watcher:
    """Watch ``roots`` and import what changes into ``store`` until stopped.

    Run :meth:`run` in a thread (it blocks); :meth:`stop` or setting ``stop_event`` ends it
    within a fraction of a second. :meth:`apply` processes one batch of paths and is what the
    loop calls; tests and benchmarks can call it directly.
    """

    def __init__(
        self,
        roots: Sequence[str | os.PathLike[str]],
        store: Store,
        on_update: Callable[[WatchUpdate], None],
        stop_event: threading.Event | None = None,
        *,
        min_interval: float = 0.5,
        full_interval: float = 2.0,
        stale_check: float = 30.0,
        checkpoint_interval: float = 60.0,
        stale_seconds: float | None = None,
        debounce_ms: int = 50,
        step_ms: int = 10,
        importers: Iterable[Importer] | None = None,
    ):
        self.roots = [Path(r).resolve() for r in roots]
        self.store = store
        self.on_update = on_update
        self.stop_event = stop_event or threading.Event()
        self.min_interval = min_interval
        self.full_interval = full_interval
        self.stale_check = stale_check
        self.checkpoint_interval = checkpoint_interval
        self._last_checkpoint = time.monotonic()
        self._written = False  # imports since the last checkpoint
        self.stale_seconds = stale_seconds
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self._importers = list(importers) if importers is not None else default_importers()
        self._by_kind = {imp.kind: imp for imp in self._importers}
        self._stale: frozenset[str] = frozenset()
        self._last_full = 0.0
        self._known: set[str] | None = None  # run ids seen, to tell new runs from changed ones
        self._touched: dict[str, float] = {}
        self.error: str | None = None

    # -- the loop ---------------------------------------------------------------------------------

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        """Watch until stopped. Never raises: a failure of the watch itself ends in ``error``
        and a slow poll (a full ingest every few seconds) takes over."""
        import watchfiles

        folders = [str(r if r.is_dir() else r.parent) for r in self.roots if r.exists()]
        files = {str(r) for r in self.roots if r.is_file()}
        recursive = any(r.is_dir() for r in self.roots)

        def accept(_change: object, path: str) -> bool:
            if files and not recursive:
                return path in files
            return not _skipped(path)

        pending: set[str] = set()
        last_stale = time.monotonic()
        try:
            for changes in watchfiles.watch(
                *folders,
                watch_filter=accept,
                debounce=self.debounce_ms,
                step=self.step_ms,
                stop_event=self.stop_event,
                rust_timeout=max(10, int(self.min_interval * 1000)),
                yield_on_timeout=True,
                recursive=recursive,
                raise_interrupt=False,
            ):
                pending.update(path for _change, path in changes)
                if pending:
                    self._flush(pending)
                if time.monotonic() - last_stale >= self.stale_check:
                    last_stale = time.monotonic()
                    self._report(self.check_stale())
                self._maybe_checkpoint()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self._poll()

    def _flush(self, pending: set[str]) -> None:
        """Import a batch at once, then hold the next one back for ``min_interval``.

        The first change after a quiet spell is imported without delay; changes that arrive
        meanwhile gather in watchfiles' queue and come as the next batch.
        """
        _refs, full = self._locate(pending)
        if full:
            wait = self.full_interval - (time.monotonic() - self._last_full)
            if wait > 0 and self.stop_event.wait(wait):
                return
        paths = set(pending)
        pending.clear()
        self._report(self.apply(paths))
        self.stop_event.wait(self.min_interval)

    def _report(self, update: WatchUpdate | None) -> None:
        if update is None:
            return
        if update.store_changed or update.grown_logs or update.paths or update.stale_runs:
            with contextlib.suppress(Exception):  # a UI callback must not end the watch
                self.on_update(update)

    def _maybe_checkpoint(self) -> None:
        """Checkpoint the store every ``checkpoint_interval`` seconds while imports happen."""
        if not self._written or time.monotonic() - self._last_checkpoint < self.checkpoint_interval:
            return
        with INGEST_LOCK:
            self.store.checkpoint()
        self._written = False
        self._last_checkpoint = time.monotonic()

    def _poll(self) -> None:
        """The fallback without inotify: rescan every few seconds."""
        while not self.stop_event.wait(max(5.0, self.full_interval)):
            self._report(self.apply(set(), force_full=True))
            self._maybe_checkpoint()

    # -- one batch --------------------------------------------------------------------------------

    def _locate(self, paths: Iterable[str]) -> tuple[dict[str, SourceRef], bool]:
        """The known sources holding ``paths``, and whether any path needs a full scan."""
        known = {location: kind for kind, location in self.store.sources()}
        refs: dict[str, SourceRef] = {}
        full = False
        for path in paths:
            found = None
            current = Path(path)
            for candidate in (current, *current.parents):
                kind = known.get(str(candidate))
                if kind is not None:
                    found = (kind, candidate)
                    break
                if candidate in self.roots:
                    break
            if found is None or found[0] not in self._by_kind or not found[1].exists():
                full = True
                continue
            root = next((r for r in self.roots if found[1].is_relative_to(r)), None)
            refs[str(found[1])] = SourceRef(found[0], found[1], root)
        return refs, full

    def apply(self, paths: Iterable[str], *, force_full: bool = False) -> WatchUpdate:
        """Import the sources holding ``paths`` (or everything) and say what changed."""
        paths = {str(p) for p in paths if not _skipped(str(p))}
        started = time.perf_counter()
        began = time.time()
        report = ImportReport()
        with INGEST_LOCK:
            refs, full = self._locate(paths)
            full = full or force_full
            known = self._known_runs()
            if full:
                before = self._run_ids_by_path()
                for root in self.roots:
                    part = ingest(root, self.store, importers=self._importers)
                    _merge(report, part)
                self._last_full = time.monotonic()
                after = self._run_ids_by_path()
                new = frozenset(set(after.values()) - known)
                changed = {after[p] for p in paths if p in after} | new
                changed |= {before[p] for p in paths if p in before and p not in after}
                self._known = set(after.values())
            else:
                by_kind: dict[str, list[SourceRef]] = {}
                for ref in refs.values():
                    by_kind.setdefault(ref.kind, []).append(ref)
                inside = (r if r.is_dir() else r.parent for r in self.roots)
                with confined_to(*inside) as confinement:
                    for kind, group in by_kind.items():
                        try:
                            self._by_kind[kind].import_sources(self.store, group, report)
                        except Exception as exc:  # an importer bug must not stop the watch
                            report.problem(
                                group[0].location,
                                f"{kind} import failed: {type(exc).__name__}: {exc}",
                            )
                    sync_registries(self.store, refs.values(), report)
                report_refused(report, confinement)
                changed = set()
                after_ids: set[str] = set()
                for location in refs:
                    states = self.store.file_states(location)
                    ids = {s.run_id for s in states.values() if s.run_id}
                    after_ids |= ids
                    if report.runs_added or report.points_added:
                        changed |= ids
                    changed |= {states[p].run_id or "" for p in paths if p in states} - {""}
                new = frozenset(after_ids - known)
                known |= after_ids
            grown = self._grown_logs(paths)
            due = {p: m for p, m in grown.items() if m - self._touched.get(p, 0) >= TOUCH_INTERVAL}
            if due:
                self._touched.update(due)
                changed |= set(self.store.touch_log_runs(due))
            # Every change notified so far is in the store: `mltop runs` may trust it.
            for root in self.roots:
                self.store.record_scan(str(root), began)
        self._written = self._written or bool(changed or report.removed_runs or refs or full)
        return WatchUpdate(
            changed_runs=frozenset(changed),
            new_runs=new,
            removed_runs=report.removed_runs,
            grown_logs=frozenset(grown),
            stale_runs=self._stale,
            paths=frozenset(paths),
            report=report,
            full_scan=full,
            seconds=time.perf_counter() - started,
        )

    def _known_runs(self) -> set[str]:
        if self._known is None:
            self._known = set(self._run_ids_by_path().values())
        return self._known

    def _run_ids_by_path(self) -> dict[str, str]:
        return {p: s.run_id for p, s in self.store.file_states().items() if s.run_id}

    @staticmethod
    def _grown_logs(paths: Iterable[str]) -> dict[str, float]:
        grown: dict[str, float] = {}
        for path in paths:
            if not path.endswith(LOG_SUFFIXES):
                continue
            try:
                grown[path] = os.stat(path).st_mtime
            except OSError:
                continue
        return grown

    def check_stale(self, now: float | None = None) -> WatchUpdate | None:
        """An update when the set of stale RUNNING runs changed since the last check."""
        running = self.store.runs(compile_query("status = RUNNING"))
        now = time.time() if now is None else now
        stale = frozenset(r.id for r in running if is_stale(r, now, self.stale_seconds))
        if stale == self._stale:
            return None
        flipped = stale ^ self._stale
        self._stale = stale
        return WatchUpdate(changed_runs=flipped, stale_runs=stale)


def _merge(report: ImportReport, part: ImportReport) -> None:
    for kind, count in part.counts.items():
        report.add(kind, count.runs, count.points)
    report.problems.extend(part.problems)
    report.sources_seen += part.sources_seen
    report.removed_runs += part.removed_runs
