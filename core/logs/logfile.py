"""Log files as a viewer and a tailer need them: line offsets, lazy reads, rotation and truncation.

A training log can be gigabytes and keep growing while it is shown, so nothing here holds lines.
:class:`LogFile` records where each line ends (4 bytes a line, in blocks of ``array('I')``), finds
newlines a chunk at a time with numpy, and reads a line only when a view asks for it, through a
small LRU cache. :class:`Tailer` is the streaming twin (``tail -F``) that keeps no index at all.

Both follow a file the way log rotation needs, through
:class:`~mltop.core.logs.cursor.FileCursor`:

* a line still being written (no newline yet) is held back until it is complete;
* a file truncated in place (``copytruncate``) is read again from its start (a :class:`Tailer`
  first reads what it had not read yet from logrotate's copy, when there is one);
* a file renamed away and recreated is followed to the new file once the old one's remaining
  bytes have been read through the still-open descriptor, so no line is lost or repeated;
* a deleted file is reported, and its descriptor is still read (a writer may keep writing).

What cannot be recovered is said plainly: in a :class:`LogFile`, bytes a writer puts in the old
file after the switch to the new one are gone (a :class:`Tailer` reads on in the old file while it
grows), and bytes truncated away before they were read are gone from both.

The streaming :class:`~mltop.core.logs.tailer.Tailer` and the
:class:`~mltop.core.logs.filewatch.FileWatch` that wakes followers live beside this module.
"""

from __future__ import annotations

import bisect
import os
import threading
from array import array
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mltop.core.logs.cursor import (
    CHUNK,
    MAX_LINE_READ,
    MAX_SEGMENTS,
    FileCursor,
    FileEvent,
    Step,
    close_fd,
)

__all__ = ["LineIndex", "LogFile", "Refresh"]

#: About one index checkpoint per this many bytes of log (a page read for one visible line).
PAGE = 64 * 1024
#: A line longer than this gets a page of its own, read by its ends (see MAX_LINE_READ).
LONG_LINE = 64 * 1024
#: Pages (about PAGE bytes each, split into lines) kept by a LogFile's LRU cache. A screen shows
#: one or two pages; a miss costs one 64 KB read (~0.1 ms). Held as Python bytes, a page of short
#: lines takes ~100 KB, and a followed log fills the cache within seconds.
CACHE_PAGES = 8


class LineIndex:
    """Line numbers to byte offsets, through one checkpoint about every :data:`PAGE` bytes.

    A checkpoint is ``(line number, offset of that line's start)``. Finding line *n* means
    reading the page between two checkpoints (64 KiB) and splitting it, which a view does for
    the few pages on screen; in exchange the index of a 1 GB log is 16,000 checkpoints (256 KB)
    instead of one offset per line, and following a log for hours adds 32 bytes per 64 KiB.
    Building it needs only newline counts per page, which numpy takes at memory speed.

    A line longer than :data:`LONG_LINE` sits alone in its page, so reading a short line never
    reads a long one, and a view can read a long line by its ends.
    """

    __slots__ = ("_lines", "_offsets", "count", "last_end")

    def __init__(self) -> None:
        self._lines = array("Q", [0])
        self._offsets = array("Q", [0])
        self.count = 0  # complete lines
        self.last_end = 0  # offset just after the last complete line's newline

    def _checkpoint(self, line: int, offset: int) -> None:
        if offset != self._offsets[-1]:
            self._lines.append(line)
            self._offsets.append(offset)

    def feed(self, data: bytes | bytearray, offset: int, length: int | None = None) -> int:
        """Index ``data[:length]``, the bytes at ``offset`` just past those fed before.

        Returns the number of lines completed.
        """
        size = len(data) if length is None else length
        counts = np.frombuffer(data, np.uint8, size) if size else None
        before = self.count
        start = 0
        while start < size:
            stop = min(start + PAGE, size)
            first = data.find(b"\n", start, stop)
            if first < 0:  # no line ends here: the current line only grows
                if offset + stop - self.last_end > LONG_LINE:
                    self._checkpoint(self.count, self.last_end)
                start = stop
                continue
            line_end = offset + first + 1
            if line_end - self.last_end > LONG_LINE:  # a long line ended: a page of its own
                self._checkpoint(self.count, self.last_end)
                self._checkpoint(self.count + 1, line_end)
            elif line_end - self._offsets[-1] >= PAGE:
                self._checkpoint(self.count + 1, line_end)
            assert counts is not None
            self.count += int(np.count_nonzero(counts[first:stop] == 10))
            self.last_end = offset + data.rfind(b"\n", first, stop) + 1
            start = stop
        return self.count - before

    def close_line(self, end: int) -> None:
        """Count the unfinished last line as complete, ending at ``end`` (its file was rotated)."""
        if end <= self.last_end:
            return
        if end - self.last_end > LONG_LINE:
            self._checkpoint(self.count, self.last_end)
        self.count += 1
        self.last_end = end
        self._checkpoint(self.count, end)

    def mark(self) -> None:
        """A checkpoint at the current end: pages never cross it (a rotated file's boundary)."""
        self._checkpoint(self.count, self.last_end)

    def page(self, line: int) -> tuple[int, int, int, int]:
        """The page holding ``line``: (page number, its first line, start offset, end offset)."""
        if not 0 <= line < self.count:
            raise IndexError(line)
        k = bisect.bisect_right(self._lines, line) - 1
        end = self._offsets[k + 1] if k + 1 < len(self._offsets) else self.last_end
        return k, self._lines[k], self._offsets[k], end

    def pages(self, start: int, stop: int) -> Iterator[tuple[int, int, int]]:
        """(first line, start offset, end offset) of the pages holding lines start..stop-1."""
        if start >= min(stop, self.count):
            return
        k = bisect.bisect_right(self._lines, start) - 1
        while k < len(self._offsets) and self._lines[k] < min(stop, self.count):
            end = self._offsets[k + 1] if k + 1 < len(self._offsets) else self.last_end
            if end > self._offsets[k]:
                yield self._lines[k], self._offsets[k], end
            k += 1

    @property
    def nbytes(self) -> int:
        return len(self._lines) * 16


@dataclass
class _Segment:
    """One physical file of a rotated log: lines at virtual offsets from ``base`` live in ``fd``."""

    fd: int | None
    base: int


@dataclass
class Refresh:
    """What one :meth:`LogFile.refresh` found."""

    lines: int = 0  # complete lines added
    truncated: bool = False  # the index restarted (line numbers begin again at 0)
    rotated: bool = False
    deleted: bool = False
    appeared: bool = False
    partial: bool = False  # the unfinished last line changed
    more: bool = False  # stopped at the byte budget: call again

    @property
    def changed(self) -> bool:
        return bool(
            self.lines or self.truncated or self.rotated or self.deleted or self.appeared
        ) or (self.partial)


class LogFile:
    """A log file indexed by line, read lazily; :meth:`refresh` follows it as it grows.

    Line numbers are stable while the file grows and across rotation (the old file's lines stay
    readable through its open descriptor, up to :data:`MAX_SEGMENTS` files); they start again at
    0 after a truncation (``generation`` counts those). Safe to read from one thread while
    another refreshes.
    """

    def __init__(self, path: str | os.PathLike[str], *, cache_pages: int = CACHE_PAGES):
        self.path = Path(path)
        self._cursor = FileCursor(path)
        self._index = LineIndex()
        self._segments = [_Segment(self._cursor.fd, 0)]
        self._base = 0  # virtual offset of the current file's first byte
        self._lock = threading.RLock()
        self._refreshing = threading.Lock()
        self._buffer: bytearray | None = None
        # page number -> (page end offset, its lines); an entry is stale once its end moved.
        self._pages: OrderedDict[int, tuple[int, list[bytes]]] = OrderedDict()
        self._cache_pages = cache_pages
        self.generation = 0
        self.rotations = 0
        self.truncations = 0

    # -- state ------------------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Complete lines indexed so far."""
        return self._index.count

    @property
    def deleted(self) -> bool:
        """The path is gone (what was read stays readable)."""
        return self._cursor.deleted

    @property
    def missing(self) -> bool:
        """The file has not existed since this object was made."""
        return self._cursor.fd is None

    @property
    def size(self) -> int:
        """Size of the current file at the last refresh."""
        return self._cursor.size

    @property
    def indexed(self) -> int:
        """Bytes of the current file read so far."""
        return self._cursor.pos

    @property
    def index_bytes(self) -> int:
        return self._index.nbytes

    @property
    def has_partial(self) -> bool:
        """Whether bytes follow the last newline (a line still being written)."""
        return self._base + self._cursor.pos > self._index.last_end

    # -- following --------------------------------------------------------------------------------

    def refresh(self, budget: int | None = None) -> Refresh:
        """Read what the file gained since the last call and index its complete lines.

        ``budget`` caps the bytes read in this call (indexing a large file in steps lets a UI
        show progress); ``Refresh.more`` says there is more to read.
        """
        result = Refresh()
        read = 0
        with self._refreshing:
            partial_before = self._base + self._cursor.pos - self._index.last_end
            while True:
                limit = CHUNK if budget is None else max(1, min(CHUNK, budget - read))
                backlog = self._cursor.size - self._cursor.pos
                buffer = None
                if backlog >= PAGE or self._cursor.size == 0:
                    # A big backlog (opening a large file): reuse one buffer for every chunk.
                    if self._buffer is None:
                        self._buffer = bytearray(CHUNK)
                    buffer = self._buffer
                step = self._cursor.poll(limit, buffer)
                if step.length:
                    data = step.data if buffer is None else buffer
                    with self._lock:
                        result.lines += self._index.feed(
                            data, self._base + step.offset, step.length
                        )
                    read += step.length
                    if budget is not None and read >= budget:
                        result.more = self._cursor.pos < self._cursor.size
                        break
                    continue
                if step.event is None:
                    break
                self._on_event(step, result)
            if not result.more and self._cursor.pos >= self._cursor.size:
                self._buffer = None  # caught up: do not hold 4 MiB while following
            partial_after = self._base + self._cursor.pos - self._index.last_end
            if partial_after and (partial_after != partial_before or result.lines):
                result.partial = True
        return result

    def _on_event(self, step: Step, result: Refresh) -> None:
        with self._lock:
            if step.event is FileEvent.TRUNCATED:
                for segment in self._segments[:-1]:
                    close_fd(segment.fd)
                self._segments = [_Segment(self._cursor.fd, 0)]
                self._index = LineIndex()
                self._base = 0
                self._pages.clear()
                self.generation += 1
                self.truncations += 1
                result.truncated = True
            elif step.event is FileEvent.ROTATED:
                old_end = self._base + step.retired_size
                before = self._index.count
                # The old file's unfinished last line is as complete as it will ever get.
                self._index.close_line(old_end)
                self._index.mark()
                result.lines += self._index.count - before
                self._segments[-1].fd = step.retired_fd
                self._segments.append(_Segment(self._cursor.fd, old_end))
                self._base = old_end
                for segment in self._segments[:-MAX_SEGMENTS]:
                    close_fd(segment.fd)
                    segment.fd = None
                self.rotations += 1
                result.rotated = True
            elif step.event is FileEvent.DELETED:
                result.deleted = True
            elif step.event is FileEvent.APPEARED:
                self._segments[-1].fd = self._cursor.fd
                result.appeared = True

    def close(self) -> None:
        with self._lock:
            for segment in self._segments[:-1]:
                close_fd(segment.fd)
                segment.fd = None
            self._cursor.close()
            self._segments[-1].fd = None

    def __enter__(self) -> LogFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------------

    def _read(self, start: int, end: int) -> bytes:
        """Bytes at virtual offsets [start, end), which lie in one segment."""
        bases = [s.base for s in self._segments]
        segment = self._segments[max(0, bisect.bisect_right(bases, start) - 1)]
        if segment.fd is None:
            return b""
        return os.pread(segment.fd, end - start, start - segment.base)

    def _read_line(self, start: int, end: int) -> bytes:
        """One line's bytes; a very long one by its ends (the last ``\r`` state when it has one)."""
        length = end - start
        if length <= MAX_LINE_READ:
            return self._read(start, end)
        half = MAX_LINE_READ // 2
        tail = self._read(end - half, end)
        if b"\r" in tail.rstrip(b"\r\n"):
            return tail  # a progress line: its last state is all that shows
        return self._read(start, start + half) + f" … [{length - half:,} more bytes]\n".encode()

    def _page_lines(self, k: int, first: int, start: int, end: int) -> list[bytes]:
        cached = self._pages.get(k)
        if cached is not None and cached[0] == end:
            self._pages.move_to_end(k)
            return cached[1]
        if end - start > MAX_LINE_READ and self._index.page(first)[0] == k:
            # A long line alone in its page (see LineIndex); read by its ends.
            lines = [self._read_line(start, end).rstrip(b"\n")]
        else:
            data = self._read(start, end)
            lines = data.split(b"\n")
            lines.pop()  # after the last newline
        self._pages[k] = (end, lines)
        if len(self._pages) > self._cache_pages:
            self._pages.popitem(last=False)
        return lines

    def line(self, number: int) -> bytes:
        """Raw bytes of line ``number`` without its newline (a ``\r`` before it stays)."""
        with self._lock:
            k, first, start, end = self._index.page(number)
            lines = self._page_lines(k, first, start, end)
            i = number - first
            return lines[i] if i < len(lines) else b""

    def lines(self, start: int, stop: int) -> list[bytes]:
        return [self.line(i) for i in range(max(0, start), min(stop, self.count))]

    def span(self, start: int, stop: int) -> Iterator[tuple[int, bytes]]:
        """Lines ``start``..``stop-1`` as raw chunks of whole lines: ``(first line, bytes)``.

        Filters and searches read about a megabyte at a time this way instead of a line at a
        time. Every chunk ends with a newline; the first may begin before ``start`` and the last
        may run past ``stop`` (whole pages), so callers number lines from the chunk's first line.
        A long line comes alone, shortened as :meth:`line` shortens it.
        """
        with self._lock:
            pages = list(self._index.pages(start, stop))
            bases = {s.base for s in self._segments}
        batch: list[tuple[int, int, int]] = []
        for page in pages:
            first, page_start, page_end = page
            long = page_end - page_start > MAX_LINE_READ
            if batch and (long or page_start in bases or page_end - batch[0][1] > CHUNK // 4):
                yield from self._read_batch(batch)
                batch = []
            if long:
                yield first, self.line(first) + b"\n"
            else:
                batch.append(page)
        yield from self._read_batch(batch)

    def _read_batch(self, batch: list[tuple[int, int, int]]) -> Iterator[tuple[int, bytes]]:
        if not batch:
            return
        start, end = batch[0][1], batch[-1][2]
        with self._lock:
            data = self._read(start, end)
        if len(data) == end - start:  # else the file shrank under us; a refresh will notice
            yield batch[0][0], data

    def partial(self) -> bytes:
        """The unfinished last line (the tail of it when long), or ``b""``."""
        with self._lock:
            start = max(self._index.last_end, self._base)
            end = self._base + self._cursor.pos
            if end <= start:
                return b""
            return self._read_line(start, end)

    def tail_preview(self, lines: int, max_bytes: int = 1 << 20) -> list[bytes]:
        """The last complete lines of the current file, read from its end without the index.

        A view shows these while a large file is still being indexed. Reads grow from 16 KiB
        until they hold ``lines`` lines (or ``max_bytes``).
        """
        fd = self._cursor.fd
        if fd is None:
            return []
        size = os.fstat(fd).st_size
        want = 16 * 1024
        while True:
            start = max(0, size - want)
            data = os.pread(fd, size - start, start)
            end = data.rfind(b"\n")
            parts = data[:end].split(b"\n") if end >= 0 else []
            if start > 0:
                parts = parts[1:]  # the first piece may be the middle of a line
            if len(parts) >= lines or start == 0 or want >= max_bytes:
                return parts[-lines:] if lines > 0 else []
            want *= 4
