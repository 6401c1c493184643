"""Waking a follower when its files change, with a slow poll behind it as a safety net.

Shared by the Logs screen, ``mltop tail`` and the log model: inotify through watchfiles, on the
files' folders so a recreated file is noticed. Apart from the readers because it is about time
and threads, not bytes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

from mltop.core.logs.cursor import ROTATED_SEPARATORS

__all__ = ["FileWatch"]


class FileWatch:
    """Wakes a follower when one of ``paths`` changes.

    inotify (through watchfiles, with the short debounce that measured 17 ms write-to-event on
    this machine) watches each file's folder, so a file recreated by rotation still wakes it.
    :meth:`wait` also returns after ``timeout`` without an event, and callers re-check the files
    then, so a lost event or an unwatchable folder (network file systems) only costs latency.
    """

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        debounce_ms: int = 50,
        step_ms: int = 10,
    ):
        self._paths = [Path(p).absolute() for p in paths]
        self._names = {p.name for p in self._paths}
        self._folders = sorted({str(p.parent) for p in self._paths if p.parent.is_dir()})
        self._debounce = debounce_ms
        self._step = step_ms
        self._event = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.working = False

    def start(self) -> FileWatch:
        if self._folders and self._thread is None:
            self.working = True
            self._thread = threading.Thread(target=self._run, name="mltop-filewatch", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        import watchfiles

        names = self._names
        # Rotated copies too: a writer that kept its descriptor appends to ``train.log.1``.
        rotated = tuple(n + sep for n in names for sep in ROTATED_SEPARATORS)

        def wanted(_change: object, path: str) -> bool:
            base = os.path.basename(path)
            return base in names or base.startswith(rotated)

        try:
            for _ in watchfiles.watch(
                *self._folders,
                watch_filter=wanted,
                debounce=self._debounce,
                step=self._step,
                stop_event=self._stop,
                recursive=False,
                raise_interrupt=False,
            ):
                self._event.set()
        except Exception:  # no inotify here: the caller's timeout polling still follows
            self.working = False
            self._event.set()

    def wait(self, timeout: float) -> bool:
        """Block until a change (True) or ``timeout`` seconds (False)."""
        woke = self._event.wait(timeout)
        self._event.clear()
        return woke

    def wake(self) -> None:
        """Make the current or next :meth:`wait` return at once (new work for the follower)."""
        self._event.set()

    def stop(self) -> None:
        self._stop.set()
        self._event.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def __enter__(self) -> FileWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
