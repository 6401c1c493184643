"""Log files as a viewer and a tailer need them: line offsets, lazy reads, rotation and truncation.

A training log can be gigabytes and keep growing while it is shown, so nothing here holds lines.
:class:`LogFile` records where each line ends (4 bytes a line, in blocks of ``array('I')``), finds
newlines a chunk at a time with numpy, and reads a line only when a view asks for it, through a
small LRU cache. :class:`Tailer` is the streaming twin (``tail -F``) that keeps no index at all.

Both follow a file the way log rotation needs, through :class:`FileCursor`:

* a line still being written (no newline yet) is held back until it is complete;
* a file truncated in place (``copytruncate``) is read again from its start (a :class:`Tailer`
  first reads what it had not read yet from logrotate's copy, when there is one);
* a file renamed away and recreated is followed to the new file once the old one's remaining
  bytes have been read through the still-open descriptor, so no line is lost or repeated;
* a deleted file is reported, and its descriptor is still read (a writer may keep writing).

What cannot be recovered is said plainly: in a :class:`LogFile`, bytes a writer puts in the old
file after the switch to the new one are gone (a :class:`Tailer` reads on in the old file while it
grows), and bytes truncated away before they were read are gone from both.

:class:`FileWatch` wakes a follower when its files change (inotify through watchfiles, on the
files' folders so a recreated file is noticed) with a slow poll behind it as a safety net.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import os
import stat
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from mltop.core.common.regular_files import NotRegularFile, open_fd

__all__ = [
    "FileCursor",
    "FileEvent",
    "FileWatch",
    "LineIndex",
    "LogFile",
    "Refresh",
    "Tailer",
    "last_lines_offset",
]

#: Bytes read per step while indexing: large enough for numpy to run at memory speed.
CHUNK = 4 * 1024 * 1024
#: About one index checkpoint per this many bytes of log (a page read for one visible line).
PAGE = 64 * 1024
#: A line longer than this gets a page of its own, read by its ends (see MAX_LINE_READ).
LONG_LINE = 64 * 1024
#: Bytes at the start and just before the read position, compared to notice in-place rewrites.
HEAD_BYTES = 64
GUARD_BYTES = 16
#: A line longer than this is shown by its first and last parts (a tqdm line can grow for hours).
MAX_LINE_READ = 256 * 1024
#: Old files of a rotated log kept open for reading; older ones read as empty lines.
MAX_SEGMENTS = 8
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


# -- following one file by inode ------------------------------------------------------------------


class FileEvent(Enum):
    """Something that happened to a followed file besides new bytes."""

    TRUNCATED = "truncated"  # rewritten in place: reading again from the start
    ROTATED = "rotated"  # renamed away and recreated: now reading the new file
    DELETED = "deleted"  # the path is gone (the open descriptor is still read)
    APPEARED = "appeared"  # the path exists again, or for the first time


@dataclass
class Step:
    """One step of a :class:`FileCursor`: new bytes at ``offset``, or an event, or nothing.

    With a caller's buffer, the bytes are ``buffer[:length]`` and ``data`` stays empty.
    """

    data: bytes = b""
    offset: int = 0
    length: int = 0
    event: FileEvent | None = None
    retired_fd: int | None = None  # ROTATED: the old file, still open, now the caller's
    retired_size: int = 0  # ROTATED: how far the old file was read (its whole length)
    confirmed_at: float = 0.0  # ROTATED: wall time the path was last seen naming the old file
    read_to: int = 0  # TRUNCATED: how far the file had been read
    head: bytes = b""  # TRUNCATED: its first bytes and the bytes just before ``read_to``, to
    guard: bytes = b""  # recognise a copy of it (logrotate's copytruncate) that holds the rest


def _open_regular(path: str) -> tuple[int, os.stat_result] | None:
    """The file's descriptor and stat; None while it is missing, NotRegularFile for a FIFO..."""
    try:
        fd = open_fd(path)
    except NotRegularFile:
        raise
    except OSError:
        return None
    return fd, os.fstat(fd)


class FileCursor:
    """Reads a file's new bytes by position and notices truncation, rotation and deletion.

    Reads use ``pread`` on a descriptor held open, so the file followed is the inode, not the
    name: after a rename the remaining bytes of the old file are still read, and only at its end
    does the cursor switch to whatever file the path now names.
    """

    #: Seconds the path must stay missing before it counts as deleted: a rotation renames the
    #: file and creates the next one a moment later, which is not a deletion.
    DELETE_GRACE = 0.5

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        self.fd: int | None = None
        self.pos = 0
        self.size = 0
        self.deleted = False
        self._missing_since: float | None = None
        self._key: tuple[int, int] = (0, 0)
        self._confirmed_at = 0.0
        self._mtime_ns = 0
        self._head = b""
        self._guard = b""
        self._open()

    def _open(self) -> bool:
        opened = _open_regular(self.path)
        if opened is None:
            return False
        self.fd, st = opened
        self._key = (st.st_dev, st.st_ino)
        self._confirmed_at = time.time()
        self.size, self._mtime_ns = st.st_size, st.st_mtime_ns
        self.pos = 0
        self._head = self._guard = b""
        self.deleted = False
        return True

    @property
    def key(self) -> tuple[int, int]:
        """(device, inode) of the file being read."""
        return self._key

    def seek(self, pos: int) -> None:
        """Continue reading at ``pos`` (a line start), e.g. to print only the last lines."""
        if self.fd is None:
            return
        self.pos = max(0, pos)
        self._head = os.pread(self.fd, min(HEAD_BYTES, self.pos), 0)
        start = max(0, self.pos - GUARD_BYTES)
        self._guard = os.pread(self.fd, self.pos - start, start)

    def _rewritten(self) -> bool:
        """Whether bytes already read changed: the file was truncated and written again."""
        assert self.fd is not None
        if self._head and os.pread(self.fd, len(self._head), 0) != self._head:
            return True
        start = self.pos - len(self._guard)
        return bool(self._guard) and os.pread(self.fd, len(self._guard), start) != self._guard

    def poll(self, limit: int = CHUNK, buffer: bytearray | None = None) -> Step:
        """New bytes (at most ``limit``), else the next event, else an empty step.

        Reading into a reused ``buffer`` spares a fresh allocation (and its page faults) per
        chunk, which is most of the cost of indexing a large file.
        """
        if self.fd is None:
            return Step(event=FileEvent.APPEARED) if self._open() else Step()
        st = os.fstat(self.fd)
        if st.st_size != self.size or st.st_mtime_ns != self._mtime_ns:
            self.size, self._mtime_ns = st.st_size, st.st_mtime_ns
            if st.st_size < self.pos or self._rewritten():
                step = Step(
                    event=FileEvent.TRUNCATED, read_to=self.pos, head=self._head, guard=self._guard
                )
                self.pos = 0
                self._head = self._guard = b""
                return step
        if st.st_size > self.pos:
            want = min(limit, st.st_size - self.pos)
            if buffer is not None:
                view = memoryview(buffer)[: min(want, len(buffer))]
                length = os.preadv(self.fd, [view], self.pos)
                data = b""
                head = bytes(buffer[: min(length, HEAD_BYTES)])
                tail = bytes(buffer[max(0, length - GUARD_BYTES) : length])
            else:
                data = os.pread(self.fd, want, self.pos)
                length = len(data)
                head, tail = data[:HEAD_BYTES], data[-GUARD_BYTES:]
            if not length:
                return Step()
            offset = self.pos
            self.pos += length
            if len(self._head) < HEAD_BYTES and offset == len(self._head):
                self._head = (self._head + head)[:HEAD_BYTES]
            self._guard = (self._guard + tail)[-GUARD_BYTES:]
            return Step(data=data, offset=offset, length=length)
        # At the end of the open file: has the path moved on to another file?
        try:
            path_st = os.stat(self.path)
        except OSError:
            now = time.monotonic()
            if self._missing_since is None:
                self._missing_since = now
            if not self.deleted and now - self._missing_since >= self.DELETE_GRACE:
                self.deleted = True
                return Step(event=FileEvent.DELETED)
            return Step()
        self._missing_since = None
        if (path_st.st_dev, path_st.st_ino) != self._key:
            old_fd, old_size, confirmed = self.fd, self.pos, self._confirmed_at
            if not self._open():
                return Step()
            return Step(
                event=FileEvent.ROTATED,
                retired_fd=old_fd,
                retired_size=old_size,
                confirmed_at=confirmed,
            )
        self._confirmed_at = time.time()
        if self.deleted:
            self.deleted = False
            return Step(event=FileEvent.APPEARED)
        return Step()

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def last_lines_offset(fd: int, size: int, lines: int) -> int:
    """Offset where the last ``lines`` complete lines of a file start (0 if it has fewer).

    With ``lines=0`` it is the end of the last complete line, so an unfinished line still gets
    read once it is finished.
    """
    complete_end = 0
    end = size
    while end > 0:
        start = max(0, end - 65536)
        cut = os.pread(fd, end - start, start).rfind(b"\n")
        if cut >= 0:
            complete_end = start + cut + 1
            break
        end = start
    if lines <= 0:
        return complete_end
    # The start of the last N lines follows the (N+1)th newline from the end, counting the one
    # that ends the last line.
    need = lines + 1
    end = complete_end
    while end > 0:
        start = max(0, end - 65536)
        data = os.pread(fd, end - start, start)
        pos = len(data)
        while (pos := data.rfind(b"\n", 0, pos)) >= 0:
            need -= 1
            if need == 0:
                return start + pos + 1
        end = start
    return 0


# -- an indexed log file -------------------------------------------------------------------------


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
                    _close(segment.fd)
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
                    _close(segment.fd)
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
                _close(segment.fd)
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


def _close(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


# -- streaming ------------------------------------------------------------------------------------


@dataclass
class TailBatch:
    """Lines (raw bytes, newline removed) and events, in the order they happened."""

    items: list[bytes | FileEvent] = field(default_factory=list)
    # item index -> what an event's notice should add (where lost bytes were found, or not)
    notes: dict[int, str] = field(default_factory=dict)

    @property
    def lines(self) -> list[bytes]:
        return [item for item in self.items if isinstance(item, bytes)]


class _Lines:
    """Splits a stream of bytes into complete lines, holding back the unfinished one.

    An unfinished line longer than ``limit`` keeps only its last carriage-return state or its
    head; the bytes cut after the head are counted, and the line ends with `` … [N more bytes]``
    (as the Logs screen shows long lines), so nothing disappears without a sign.
    """

    __slots__ = ("dropped", "limit", "pending")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pending = b""
        self.dropped = 0

    def take(self, data: bytes, items: list[bytes | FileEvent]) -> int:
        """Append the lines ``data`` completes to ``items``; returns how many."""
        added = 0
        if self.dropped:  # the rest of an over-long line, counted until its newline
            end = data.find(b"\n")
            segment = data if end < 0 else data[:end]
            restart = segment.rfind(b"\r")
            if restart >= 0:  # a new progress state: what it overwrites need not be kept
                self.pending, self.dropped = b"", 0
                data = data[restart:]
            elif end < 0:
                self.dropped += len(data)
                return 0
            else:
                self.dropped += end
                items.append(self.flush())
                added = 1
                data = data[end + 1 :]
        data = self.pending + data
        cut = data.rfind(b"\n")
        if cut >= 0:
            lines = data[:cut].split(b"\n")
            items.extend(lines)
            added += len(lines)
            self.pending = data[cut + 1 :]
        else:
            self.pending = data
        self._bound()
        return added

    def flush(self) -> bytes:
        """The unfinished line, taken (with the marker when it was cut)."""
        pending, self.pending = self.pending, b""
        if self.dropped:
            pending += f" … [{self.dropped:,} more bytes]".encode()
            self.dropped = 0
        return pending

    def reset(self) -> None:
        self.pending, self.dropped = b"", 0

    def _bound(self) -> None:
        if len(self.pending) <= self.limit:
            return
        cut = self.pending.rfind(b"\r")
        if cut > 0:
            self.pending = self.pending[cut:]
        if len(self.pending) > self.limit:
            self.dropped += len(self.pending) - self.limit
            self.pending = self.pending[: self.limit]


@dataclass
class _Retired:
    """A file the followed path named before a rotation, still read while a writer appends."""

    fd: int
    pos: int
    lines: _Lines
    quiet_since: float


#: Seconds a rotated-away file is still read after its last growth: a writer that has not
#: reopened the path (no WatchedFileHandler, no copytruncate) keeps appending to it.
RETIRED_QUIET = 60.0
#: Names a rotated copy of ``train.log`` takes: ``train.log.1``, ``train.log-20240501``, ...
_ROTATED_SEPARATORS = (".", "-", "_")
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip")
#: Folder entries looked at when searching for a rotated file (a log folder can be huge).
MAX_SIBLINGS = 10_000
#: File times come from the kernel's coarse clock, a few milliseconds behind ``time.time()``.
MTIME_SLACK = 1.0


class Tailer:
    """The complete lines appended to a file, as ``tail -F`` prints them, without an index.

    ``last=None`` starts at the beginning of the file, ``last=N`` with its last N complete lines.
    Memory stays bounded: an unfinished line longer than ``max_pending`` keeps only its last
    carriage-return state or its head, and is shown with `` … [N more bytes]`` for what was cut.

    Rotation loses nothing a reader can still find: the renamed file is read to its end before
    the new one, and read on after the switch while a writer still appends to it (see
    :data:`RETIRED_QUIET`); a file that came and went between two looks (rotated twice quickly)
    is found among the rotated copies beside the log and read in between.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        last: int | None = None,
        max_pending: int = MAX_LINE_READ,
    ):
        self.path = Path(path)
        self._cursor = FileCursor(path)
        self._lines = _Lines(max_pending)
        self._retired: list[_Retired] = []
        self._known: set[tuple[int, int]] = set()
        if self._cursor.fd is not None:
            self._known.add(self._cursor.key)
        if last is not None and self._cursor.fd is not None:
            self._cursor.seek(last_lines_offset(self._cursor.fd, self._cursor.size, last))

    @property
    def missing(self) -> bool:
        return self._cursor.fd is None

    @property
    def deleted(self) -> bool:
        return self._cursor.deleted

    def poll(self, max_lines: int = 100_000) -> TailBatch:
        batch = TailBatch()
        count = self._drain_retired(batch.items)
        while count < max_lines:
            step = self._cursor.poll()
            if step.data:
                count += self._lines.take(step.data, batch.items)
                continue
            event = step.event
            if event is None:
                break
            if event is FileEvent.ROTATED:
                assert step.retired_fd is not None
                self._retire(step.retired_fd, step.retired_size, self._lines)
                self._lines = _Lines(self._lines.limit)
                self._known.add(self._cursor.key)
                for fd in self._middle_files(step.confirmed_at - MTIME_SLACK):
                    self._retire(fd, 0, _Lines(self._lines.limit))
                count += self._drain_retired(batch.items)
            elif event is FileEvent.TRUNCATED:
                count += self._read_copy(step, batch)
                self._lines.reset()
            elif event is FileEvent.APPEARED and self._cursor.fd is not None:
                self._known.add(self._cursor.key)
            batch.items.append(event)
        return batch

    def flush(self) -> bytes:
        """The unfinished last line, taken (when a non-following reader reaches the end)."""
        return self._lines.flush()

    def _read_copy(self, step: Step, batch: TailBatch) -> int:
        """Lines written before a truncation and not read yet, from a copy if one was made.

        logrotate's copytruncate copies the log (``train.log.1``) and then cuts it to zero: the
        lines written since the last read are gone from the log but are in the copy, recognised
        by the same first bytes and the same bytes just before where reading stopped. Without
        such a copy the notice says that what was not read yet is lost.
        """
        index = len(batch.items)  # where the TRUNCATED event goes
        best: tuple[int, int, str] | None = None
        siblings = self._rotated_siblings() if step.head else iter(())
        for entry_path, name, seen in siblings:
            if seen.st_size < step.read_to:
                continue
            opened = _open_file(entry_path, seen)
            if opened is None:
                continue
            fd, st = opened
            matches = (
                st.st_size >= step.read_to
                and os.pread(fd, len(step.head), 0) == step.head
                and os.pread(fd, len(step.guard), step.read_to - len(step.guard)) == step.guard
            )
            if matches and (best is None or st.st_size > best[1]):
                if best is not None:
                    os.close(best[0])
                best = (fd, st.st_size, name)
            else:
                os.close(fd)
        if best is None:
            batch.notes[index] = "what was written since the last line shown, if anything, is lost"
            return 0
        fd, size, name = best
        added = 0
        pos = step.read_to
        items: list[bytes | FileEvent] = []
        try:
            while pos < size:
                data = os.pread(fd, min(CHUNK, size - pos), pos)
                if not data:
                    break
                pos += len(data)
                added += self._lines.take(data, items)
        finally:
            os.close(fd)
        unread = len(items)
        pending = self._lines.flush()  # the copy ends the old file: the line is complete
        if pending:
            items.append(pending)
            added += 1
        batch.items.extend(items)
        if unread:
            batch.notes[index + len(items)] = (
                f"the {unread:,} lines written before it were read from its copy {name}"
            )
        return added

    def _rotated_siblings(self) -> Iterator[tuple[str, str, os.stat_result]]:
        """(path, name, stat) of regular files beside the log named like its rotated copies.

        Only stat is read here: a caller opens just the few that fit, and never a FIFO or a
        device someone named ``train.log.1`` (opening a FIFO would block the follower).
        """
        name = self.path.name
        try:
            with os.scandir(self.path.parent) as entries:
                for i, entry in enumerate(entries):
                    if i >= MAX_SIBLINGS:
                        return
                    other = entry.name
                    if (
                        len(other) <= len(name)
                        or not other.startswith(name)
                        or other[len(name)] not in _ROTATED_SEPARATORS
                        or other.endswith(_COMPRESSED)
                    ):
                        continue
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    if stat.S_ISREG(st.st_mode):
                        yield entry.path, other, st
        except OSError:
            return

    def _retire(self, fd: int, pos: int, lines: _Lines) -> None:
        self._retired.append(_Retired(fd, pos, lines, time.monotonic()))
        while len(self._retired) > MAX_SEGMENTS:
            _close(self._retired.pop(0).fd)

    def _drain_retired(self, items: list[bytes | FileEvent]) -> int:
        """Read what was appended to rotated-away files; let go of those quiet long enough."""
        added = 0
        now = time.monotonic()
        keep: list[_Retired] = []
        for old in self._retired:
            try:
                size = os.fstat(old.fd).st_size
                while old.pos < size:
                    data = os.pread(old.fd, min(CHUNK, size - old.pos), old.pos)
                    if not data:
                        break
                    old.pos += len(data)
                    old.quiet_since = now
                    added += old.lines.take(data, items)
            except OSError:
                old.quiet_since = -math.inf
            if now - old.quiet_since < RETIRED_QUIET:
                keep.append(old)
                continue
            pending = old.lines.flush()  # as complete as it will ever get
            if pending:
                items.append(pending)
                added += 1
            _close(old.fd)
        self._retired = keep
        return added

    def _middle_files(self, since: float) -> list[int]:
        """Open rotated copies of the log written since ``since`` that were never followed.

        When the path was renamed away twice between two looks, the file in the middle now has
        a rotated name (``train.log.1``). It is a regular file named like a rotated copy, not
        compressed, not one followed before, and written after the path was last seen naming
        the old file; older rotated copies, shifted along by the same rotation, were written
        before that and are left alone.
        """
        found: list[tuple[float, int]] = []
        for entry_path, _name, seen in self._rotated_siblings():
            if (seen.st_dev, seen.st_ino) in self._known or seen.st_mtime < since:
                continue
            opened = _open_file(entry_path, seen)
            if opened is None:
                continue
            fd, st = opened
            self._known.add((st.st_dev, st.st_ino))
            found.append((st.st_mtime, fd))
        return [fd for _, fd in sorted(found)]

    def close(self) -> None:
        for old in self._retired:
            _close(old.fd)
        self._retired = []
        self._cursor.close()

    def __enter__(self) -> Tailer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_file(path: str, seen: os.stat_result) -> tuple[int, os.stat_result] | None:
    """The regular file ``seen`` at ``path``, opened for reading; None if it is not that any more.

    O_NONBLOCK: should a FIFO have taken the name since ``seen``, opening it must not wait for a
    writer (it is then refused as not the file seen).
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino):
        os.close(fd)
        return None
    return fd, st


# -- waking up when files change ------------------------------------------------------------------


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
        rotated = tuple(n + sep for n in names for sep in _ROTATED_SEPARATORS)

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
