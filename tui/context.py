"""What a screen may ask of the mltop app, declared without importing the app.

The app imports its screens to push them; if the screens imported the app back (even only for
type checking), ``tui/`` would be one import cycle and no screen could be read, tested or moved
on its own. So screens see the app through :class:`AppContext`: the few attributes and methods
they use, checked by the type checker against :class:`~mltop.tui.app.MltopApp` structurally.
Anything else goes up as a message (``tui/messages.py``): attributes down, messages up.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mltop.core.entities import ImportReport
    from mltop.core.store import Store


class AppContext(Protocol):
    """The part of the mltop app that screens read and call (see the module docstring)."""

    root: Path
    # The store once a worker has opened it (None until then, or when it failed to open).
    store: Store | None
    # The last finished import, kept on the app so the runs screen shows it again after a pop.
    last_report: ImportReport | None
    # How many scans have ended (a screen waiting for the next scan compares counts).
    scans_done: int
    # Whether the app scans the folder at all, and whether a scan is running now.
    scan: bool
    ingesting: bool
    # ``mltop --github OWNER/REPO``, and the API address for GitHub Enterprise and tests.
    github_repo: str | None
    github_api: str | None

    def store_in_use(self) -> AbstractContextManager[Store]:
        """Hold the store for one piece of worker work (quitting waits for it to end)."""
        ...

    def start_ingest(self) -> None:
        """Re-scan the folder (one scan at a time; a request during a scan runs after it)."""
        ...
