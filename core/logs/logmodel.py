"""What a log view shows of one file: rows (every line, or those a filter keeps), search, follow.

:class:`LogModel` sits between a :class:`~mltop.core.logs.logfile.LogFile` and a widget: the widget
asks for the rows on screen and gets highlighted, inert ``rich.text.Text``; the model decides
which line each row is. A filter is built in the background, a chunk at a time, into an
``array('Q')`` of line numbers, and kept up to date as the file grows. :func:`follow_logs` is the
loop a worker thread runs to keep models current: the TUI and ``bench/follow.py`` run the same
code.

Matching uses the text a reader sees (after progress-bar redraws and colour codes are removed).
Where a chunk of the file is plain printable ASCII, which is most training logs, the regular
expression first runs over the whole chunk at C speed and only the candidate lines are checked
one by one, so filtering a gigabyte for a rare word takes about a second.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text

from mltop.core.common.sanitize import inert_plain
from mltop.core.logs.filewatch import FileWatch
from mltop.core.logs.logfile import LogFile, Refresh
from mltop.core.logs.loghighlight import clean_line, render

__all__ = ["LineMatcher", "LogModel", "ModelChange", "follow_logs"]

_UNSEARCHABLE = (b"\x1b", b"\r", b"\0", b"\x0b", b"\x0c")


def _searchable_as_bytes(data: bytes) -> bool:
    """Whether a chunk reads the same as bytes and as shown text, position for position.

    ASCII without escape sequences, carriage returns, NULs, or the vertical tab and form feed
    (whitespace to a bytes pattern, symbols once shown) qualifies: other control bytes are shown
    as one stand-in character each, which a pattern made of ASCII can only match where it also
    matches the raw byte (``.``, negated classes), so no match is missed.
    """
    return data.isascii() and not any(c in data for c in _UNSEARCHABLE)


class PatternError(ValueError):
    """A search or filter pattern that is not a valid regular expression."""


class LineMatcher:
    """A regular expression over displayed line text; ``invert`` keeps the lines it misses.

    Case is ignored unless the pattern has an upper-case letter (as in less and vim's
    smartcase).
    """

    def __init__(self, pattern: str, *, invert: bool = False, ignore_case: bool | None = None):
        if ignore_case is None:
            ignore_case = pattern == pattern.lower()
        flags = re.IGNORECASE if ignore_case else 0
        try:
            self.regex = re.compile(pattern, flags)
        except (re.error, OverflowError, RecursionError) as exc:
            raise PatternError(f"bad regular expression: {exc}") from exc
        self.pattern = pattern
        self.invert = invert
        self._bytes: re.Pattern[bytes] | None = None
        # Python's regex engine is slow at ignoring case, but fast at finding a literal: a
        # pattern without capitals searches lower-cased chunks instead (for ASCII text the same
        # lines match; every candidate is checked with the real expression anyway).
        self._lower = ignore_case and pattern == pattern.lower()
        bytes_flags = re.MULTILINE | (flags if not self._lower else 0)
        # Anchors and lookbehinds see the neighbouring lines in a chunk: check line by line.
        if pattern.isascii() and not any(t in pattern for t in ("\\A", "\\Z", "\\z", "(?<")):
            try:
                self._bytes = re.compile(pattern.encode("ascii"), bytes_flags)
            except (re.error, OverflowError, RecursionError):
                self._bytes = None

    def inverted(self) -> LineMatcher:
        return LineMatcher(
            self.pattern,
            invert=not self.invert,
            ignore_case=bool(self.regex.flags & re.IGNORECASE),
        )

    def matches(self, plain: str) -> bool:
        """Whether a line's displayed text is kept."""
        return (self.regex.search(plain) is not None) != self.invert

    def matches_raw(self, raw: bytes) -> bool:
        return self.matches(inert_plain(clean_line(raw)))

    def scan(self, first: int, data: bytes) -> Iterator[int]:
        """Numbers of the kept lines in ``data``, whole lines numbered from ``first``."""
        if self._bytes is not None and _searchable_as_bytes(data):
            yield from self._scan_plain(first, data)
            return
        for i, raw in enumerate(data.split(b"\n")[:-1]):
            if self.matches(inert_plain(clean_line(raw))):
                yield first + i

    def _scan_plain(self, first: int, data: bytes) -> Iterator[int]:
        """The fast path: candidates from one bytes search over the chunk, each then checked."""
        assert self._bytes is not None
        search = self._bytes.search
        haystack = data.lower() if self._lower else data
        hits: list[int] = []
        pos = 0
        line = first
        while True:
            match = search(haystack, pos)
            if match is None:
                break
            start = data.rfind(b"\n", 0, match.start()) + 1
            end = data.find(b"\n", match.start())
            if end < 0:
                break
            line += data.count(b"\n", pos, start)
            if self.regex.search(inert_plain(data[start:end].decode("ascii"))) is not None:
                hits.append(line)
            # A match may have run across newlines: look again from the next line.
            pos = end + 1
            line += 1
        if not self.invert:
            yield from hits
            return
        total = data.count(b"\n")
        keep = set(hits)
        yield from (first + i for i in range(total) if first + i not in keep)


@dataclass
class ModelChange:
    """What one :meth:`LogModel.refresh` changed."""

    refresh: Refresh
    filter_grew: bool = False
    more: bool = False  # indexing or filtering is not finished

    @property
    def changed(self) -> bool:
        return self.refresh.changed or self.filter_grew


class LogModel:
    """One log file as a view shows it.

    Rows are the file's lines (plus the unfinished last line, shown as its current state) or,
    with a filter, only the lines it keeps. Every method is safe to call from the UI thread while
    a worker thread runs :meth:`refresh`.
    """

    #: Lines a filter examines per refresh step, so following stays responsive meanwhile.
    FILTER_STEP_BYTES = 8 * 1024 * 1024

    def __init__(self, path: str | Path, *, title: str | None = None):
        self.path = Path(path)
        self.title = title or self.path.name
        self.file = LogFile(path)
        self.hide_timestamps = False
        self.search: LineMatcher | None = None
        self._filter: LineMatcher | None = None
        self._kept: array[int] = array("Q")
        self._filter_next = 0  # first line the filter has not examined
        self._lock = threading.RLock()
        self.version = 0  # bumps whenever rows change, for views' caches

    # -- state ------------------------------------------------------------------------------------

    @property
    def filter(self) -> LineMatcher | None:
        return self._filter

    @property
    def filtering(self) -> bool:
        """A filter is set and has not yet examined every line."""
        return self._filter is not None and self._filter_next < self.file.count

    @property
    def indexing(self) -> bool:
        return self.file.indexed < self.file.size

    @property
    def progress(self) -> float:
        """How much of the file is indexed (and filtered), 0..1."""
        size = self.file.size
        done = self.file.indexed / size if size else 1.0
        if self._filter is not None and self.file.count:
            done = min(done, self._filter_next / self.file.count)
        return done

    @property
    def rows(self) -> int:
        if self._filter is not None:
            return len(self._kept)
        return self.file.count + (1 if self.file.has_partial else 0)

    @property
    def matched(self) -> int:
        return len(self._kept)

    def line_number(self, row: int) -> int:
        """The file line shown at ``row`` (``file.count`` for the unfinished last line)."""
        if self._filter is not None:
            kept = self._kept
            return kept[row] if 0 <= row < len(kept) else -1
        return row

    def raw(self, row: int) -> bytes:
        line = self.line_number(row)
        if line < 0:
            return b""
        if line >= self.file.count:
            return self.file.partial()
        return self.file.line(line)

    def text(self, row: int) -> str:
        """The cleaned text of a row (colour codes still in: see :func:`render`)."""
        return clean_line(self.raw(row))

    def plain(self, row: int) -> str:
        return inert_plain(self.text(row))

    def render(self, row: int) -> Text:
        line = self.line_number(row)
        previous = None
        if 0 < line <= self.file.count:
            previous = clean_line(self.file.line(line - 1))
        return render(
            self.text(row),
            previous=previous,
            hide_timestamp=self.hide_timestamps,
            search=self.search.regex if self.search is not None else None,
        )

    # -- changes ----------------------------------------------------------------------------------

    def set_filter(self, matcher: LineMatcher | None) -> None:
        """Show only the lines ``matcher`` keeps (None: every line); built by :meth:`refresh`."""
        with self._lock:
            self._filter = matcher
            self._kept = array("Q")
            self._filter_next = 0
            self.version += 1

    def refresh(self, budget: int | None = 16 * 1024 * 1024) -> ModelChange:
        """Read new bytes of the file and extend the filter; call again while ``more``."""
        result = self.file.refresh(budget)
        change = ModelChange(result, more=result.more)
        with self._lock:
            if result.truncated and self._filter is not None:
                self._kept = array("Q")
                self._filter_next = 0
            if self._filter is not None:
                change.filter_grew = self._advance_filter()
                change.more = change.more or self.filtering
            if change.changed:
                self.version += 1
        return change

    def _advance_filter(self) -> bool:
        matcher = self._filter
        assert matcher is not None
        start, stop = self._filter_next, self.file.count
        if start >= stop:
            return False
        before = len(self._kept)
        read = 0
        for first, data in self.file.span(start, stop):
            lines = data.count(b"\n")
            last = first + lines
            kept = [n for n in matcher.scan(first, data) if start <= n < stop]
            if self._filter is not matcher:
                return False  # replaced meanwhile
            self._kept.extend(kept)
            self._filter_next = min(last, stop)
            read += len(data)
            if read >= self.FILTER_STEP_BYTES:
                break
        return len(self._kept) != before

    def find(
        self,
        matcher: LineMatcher,
        after_row: int,
        *,
        forward: bool = True,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> tuple[int, bool] | None:
        """The next row (or previous, with ``forward=False``) that ``matcher`` keeps.

        Searching wraps around the ends once, like vim; returns ``(row, wrapped)`` or None.
        """
        rows = self.rows
        if rows == 0:
            return None
        if self._filter is not None:
            return self._find_rows(matcher, after_row, forward, cancelled)
        count = self.file.count
        order = (
            [(after_row + 1, count), (0, min(after_row + 1, count))]
            if forward
            else [(0, max(0, after_row)), (max(0, after_row), count)]
        )
        for attempt, (start, stop) in enumerate(order):
            found = self._find_lines(matcher, start, stop, forward, cancelled)
            if found is not None:
                return found, attempt == 1
            if cancelled():
                return None
        if self.file.has_partial and matcher.matches_raw(self.file.partial()):
            return count, False
        return None

    def _find_lines(
        self,
        matcher: LineMatcher,
        start: int,
        stop: int,
        forward: bool,
        cancelled: Callable[[], bool],
    ) -> int | None:
        if start >= stop:
            return None
        if forward:
            for first, data in self.file.span(start, stop):
                for line in matcher.scan(first, data):
                    if line >= stop:
                        return None
                    if line >= start:
                        return line
                if cancelled():
                    return None
            return None
        # Backwards: scan windows from the end, keep the last hit in the first window that has one.
        window = 65536
        end = stop
        while end > start:
            begin = max(start, end - window)
            best = None
            for first, data in self.file.span(begin, end):
                for line in matcher.scan(first, data):
                    if begin <= line < end:
                        best = line
            if best is not None:
                return best
            if cancelled():
                return None
            end = begin
            window *= 2
        return None

    def _find_rows(
        self,
        matcher: LineMatcher,
        after_row: int,
        forward: bool,
        cancelled: Callable[[], bool],
    ) -> tuple[int, bool] | None:
        rows = self.rows
        order = (
            itertools.chain(range(after_row + 1, rows), range(0, min(after_row + 1, rows)))
            if forward
            else itertools.chain(range(after_row - 1, -1, -1), range(rows - 1, after_row - 1, -1))
        )
        for i, row in enumerate(order):
            if i % 4096 == 0 and cancelled():
                return None
            if matcher.matches(self.plain(row)):
                wrapped = row <= after_row if forward else row >= after_row
                return row, wrapped
        return None

    def close(self) -> None:
        self.file.close()


def follow_logs(
    models: Sequence[LogModel],
    on_change: Callable[[list[tuple[LogModel, ModelChange]]], None],
    stop: threading.Event,
    *,
    min_interval: float = 0.05,
    idle_poll: float = 1.0,
    watch: FileWatch | None = None,
) -> None:
    """Keep ``models`` current until ``stop`` is set: the loop a worker thread runs.

    It wakes on file events (or every ``idle_poll`` seconds), refreshes every model, and calls
    ``on_change`` with what changed at most once per ``min_interval``, so a writer producing
    thousands of lines a second costs the UI at most 1/min_interval redraws. A large backlog
    (opening a big file, building a filter) is worked through in steps with a report after each.
    Pass ``watch`` to wake the loop early from outside (``watch.wake()`` after changing a filter).
    """
    own_watch = watch is None
    watch = watch or FileWatch([m.path for m in models])
    watch.start()
    last_report = 0.0
    pending: list[tuple[LogModel, ModelChange]] = []
    try:
        while not stop.is_set():
            busy = False
            for model in models:
                change = model.refresh()
                busy = busy or change.more
                if change.changed:
                    pending.append((model, change))
            # Coalesce: at most one report per min_interval, however fast lines arrive (or a
            # backlog is indexed); what comes meanwhile goes into the next report.
            wait = min_interval - (time.monotonic() - last_report)
            if pending and wait <= 0:
                on_change(pending)
                pending = []
                last_report = time.monotonic()
            if busy:
                continue
            if pending:
                stop.wait(wait)
            else:
                watch.wait(idle_poll)
    finally:
        if own_watch:
            watch.stop()
