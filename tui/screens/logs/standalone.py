"""The Logs screen on its own: ``mltop FILE.log``, or ``python -m`` this module with files.

A small app that pushes just :class:`~mltop.tui.screens.logs.screen.LogsScreen` over files (or a
run's logs given a store), with quit and help; apart from the screen, which also runs inside
the full app.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from textual.app import App
from textual.binding import BindingType

from mltop.core.store import Store
from mltop.tui.screens.base import APP_KEYS
from mltop.tui.screens.help import HelpScreen, binding_rows
from mltop.tui.screens.logs.screen import LogsScreen

__all__ = ["LogsApp", "run_logs_app"]


class LogsApp(App[int]):
    """Just the Logs screen: over files, or over a run's logs given a store."""

    TITLE = "mltop logs"
    BINDINGS: ClassVar[list[BindingType]] = [
        *APP_KEYS,
    ]

    def __init__(
        self,
        paths: Sequence[str | Path] = (),
        *,
        run_id: str | None = None,
        store: Store | None = None,
        follow: bool = True,
    ) -> None:
        super().__init__()
        self.paths = [Path(p) for p in paths]
        self.run_id = run_id
        self.store = store
        self.follow = follow

    def on_mount(self) -> None:
        self.push_screen(
            LogsScreen(run_id=self.run_id, paths=self.paths, store=self.store, follow=self.follow)
        )

    def action_help(self) -> None:
        screen = self.screen
        if isinstance(screen, HelpScreen):
            return
        extra = getattr(screen, "help_extra", None)
        self.push_screen(
            HelpScreen(
                getattr(screen, "HELP_TITLE", "keys"),
                binding_rows(screen),
                extra() if callable(extra) else None,
            )
        )


def run_logs_app(paths: Sequence[str | Path], *, follow: bool = True) -> int:
    """Open the Logs screen on ``paths`` in a terminal; returns the exit code."""
    return int(LogsApp(paths, follow=follow).run() or 0)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.stderr.write("usage: python -m mltop.tui.screens.logs.standalone FILE [FILE ...]\n")
        raise SystemExit(2)
    raise SystemExit(run_logs_app(sys.argv[1:]))
