"""``mltop tail``: print log files for shells and pipes, and follow them like ``tail -F``.

Lines look as they do in the Logs screen (same cleaning, same highlighting) when the output is a
terminal; otherwise they are plain text. Plain or not, what reaches the output is inert: escape
sequences from the log are dropped or spelled out, never passed through (a log must not be able
to retitle a terminal or write its clipboard, even through ``mltop tail | less -R``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rich.console import Console

from mltop.core.common.sanitize import inert, inert_plain
from mltop.core.logs.cursor import FileEvent
from mltop.core.logs.filewatch import FileWatch
from mltop.core.logs.loghighlight import clean_line, render, timestamp_length
from mltop.core.logs.logmodel import LineMatcher
from mltop.core.logs.tailer import Tailer

__all__ = ["TailOptions", "tail_files", "use_colour"]

_NOTICES = {
    FileEvent.TRUNCATED: "truncated; reading it again from the start",
    FileEvent.ROTATED: "replaced (rotated); following the new file, and the old one while it grows",
    FileEvent.DELETED: "deleted",
    FileEvent.APPEARED: "appeared; following it",
}


def use_colour(out: TextIO) -> bool:
    """Colours only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


@dataclass
class TailOptions:
    follow: bool = False
    last: int | None = None  # start with the last N lines (None: the whole file)
    matcher: LineMatcher | None = None
    hide_timestamps: bool = False
    colour: bool = False
    poll: float = 1.0  # seconds between checks when no file event arrives


class _Printer:
    def __init__(self, out: TextIO, err: TextIO, options: TailOptions, many: bool):
        self.out = out
        self.err = err
        self.options = options
        self.many = many
        self.current: Path | None = None
        self.previous: dict[Path, str | None] = {}
        self.console = (
            Console(
                file=out,
                color_system="auto",
                force_terminal=True,
                highlight=False,
                markup=False,
                emoji=False,
                soft_wrap=True,
            )
            if options.colour
            else None
        )

    def header(self, path: Path) -> None:
        if self.many and self.current != path:
            if self.current is not None:
                self.out.write("\n")
            self.out.write(f"==> {inert(str(path))} <==\n")
        self.current = path

    def line(self, path: Path, raw: bytes) -> None:
        text = clean_line(raw)
        matcher = self.options.matcher
        previous = self.previous.get(path)
        self.previous[path] = text
        if matcher is not None and not matcher.matches(inert_plain(text)):
            return
        self.header(path)
        if self.console is not None:
            self.console.print(
                render(
                    text,
                    previous=previous,
                    hide_timestamp=self.options.hide_timestamps,
                    search=matcher.regex if matcher and not matcher.invert else None,
                )
            )
            return
        plain = inert_plain(text)
        if self.options.hide_timestamps:
            plain = plain[timestamp_length(plain) :]
        self.out.write(plain + "\n")

    def notice(self, path: Path, event: FileEvent, note: str | None = None) -> None:
        self.out.flush()
        detail = f" ({inert(note)})" if note else ""
        self.err.write(f"mltop tail: {inert(str(path))}: {_NOTICES[event]}{detail}\n")
        self.err.flush()


def tail_files(
    paths: Sequence[Path],
    out: TextIO,
    err: TextIO,
    options: TailOptions,
    stop: threading.Event | None = None,
) -> int:
    """Print ``paths`` (and with ``follow``, what they gain until ``stop`` or Ctrl-C).

    Returns how many files could not be read (missing at the start, or not regular files).
    """
    printer = _Printer(out, err, options, many=len(paths) > 1)
    tailers: list[Tailer] = []
    problems = 0
    for path in paths:
        try:
            tailer = Tailer(path, last=options.last)
        except OSError as exc:
            err.write(f"mltop tail: {inert(str(path))}: {exc.strerror or exc}\n")
            problems += 1
            continue
        if tailer.missing:
            err.write(f"mltop tail: {inert(str(path))}: no such file\n")
            problems += 1
            if not options.follow:
                continue
        tailers.append(tailer)
    try:
        for tailer in tailers:
            _drain(tailer, printer)
            if not options.follow:
                pending = tailer.flush()
                if pending:
                    printer.line(tailer.path, pending)
        out.flush()
        if options.follow and tailers:
            _follow(tailers, printer, options, stop or threading.Event())
    finally:
        for tailer in tailers:
            tailer.close()
    return problems


def _drain(tailer: Tailer, printer: _Printer) -> bool:
    printed = False
    while True:
        batch = tailer.poll()
        if not batch.items:
            return printed
        for i, item in enumerate(batch.items):
            if isinstance(item, FileEvent):
                printer.notice(tailer.path, item, batch.notes.get(i))
            else:
                printer.line(tailer.path, item)
                printed = True


def _follow(
    tailers: list[Tailer], printer: _Printer, options: TailOptions, stop: threading.Event
) -> None:
    with FileWatch([t.path for t in tailers]) as watch:
        while True:
            for tailer in tailers:
                _drain(tailer, printer)
            printer.out.flush()
            if stop.is_set():  # after one last read: what was written before the stop shows
                return
            watch.wait(options.poll if watch.working else min(options.poll, 0.25))
