"""Streaming a log as ``tail -F`` prints it: complete lines in order, no index kept.

Apart from :mod:`~mltop.core.logs.logfile` because it owns a different promise: a viewer keeps
line numbers and reads lazily, while a tailer reads every byte once and must lose nothing a
rotation left behind, so it also reads on in rotated-away files and finds logrotate's copies.
"""

from __future__ import annotations

import math
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mltop.core.logs.cursor import (
    CHUNK,
    MAX_LINE_READ,
    MAX_SEGMENTS,
    ROTATED_SEPARATORS,
    FileCursor,
    FileEvent,
    Step,
    close_fd,
    last_lines_offset,
)

__all__ = ["TailBatch", "Tailer"]


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
                        or other[len(name)] not in ROTATED_SEPARATORS
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
            close_fd(self._retired.pop(0).fd)

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
            close_fd(old.fd)
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
            close_fd(old.fd)
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
