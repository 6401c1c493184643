"""Messages the Logs screen's workers post to it (Textual's "messages up").

The follow worker, the run loader and the search worker run in threads and never touch the
screen: each hands what it found over in one of these, and the screen applies it on the UI
thread. Apart from the screen so its module holds what the screen shows and does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.message import Message

from mltop.core.entities import Run
from mltop.core.logs.logmodel import LogModel, ModelChange

__all__ = ["LogsChanged", "RunLogsLoaded", "RunRefreshed", "SearchDone"]


@dataclass
class LogsChanged(Message):
    """The follow worker refreshed some files (frequent: a newer one replaces an unhandled one)."""

    changes: list[tuple[LogModel, ModelChange]]

    def can_replace(self, message: Message) -> bool:
        if isinstance(message, LogsChanged):
            # Keep the events (truncation, rotation) of the message being replaced.
            self.changes = message.changes + self.changes
            return True
        return False


@dataclass
class RunLogsLoaded(Message):
    run: Run | None
    paths: list[Path]
    error: str | None = None


@dataclass
class RunRefreshed(Message):
    """The run's record as the store has it now (status, duration for the header)."""

    run: Run


@dataclass
class SearchDone(Message):
    model: LogModel
    row: int | None
    wrapped: bool
    pattern: str
    forward: bool
