"""Following one file by inode: new bytes by position, truncation, rotation and deletion.

Both ways of reading a log, the indexed :class:`~mltop.core.logs.logfile.LogFile` a viewer
keeps and the streaming :class:`~mltop.core.logs.tailer.Tailer` ``mltop tail`` runs, follow a
file through the same :class:`FileCursor`; it lives apart so that what a rotation or a
``copytruncate`` looks like is decided in one place, with the limits both readers share.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from enum import Enum

from mltop.core.common.regular_files import NotRegularFile, open_fd

__all__ = [
    "CHUNK",
    "MAX_LINE_READ",
    "MAX_SEGMENTS",
    "ROTATED_SEPARATORS",
    "FileCursor",
    "FileEvent",
    "Step",
    "close_fd",
    "last_lines_offset",
]

#: Bytes read per step while indexing: large enough for numpy to run at memory speed.
CHUNK = 4 * 1024 * 1024
#: Bytes at the start and just before the read position, compared to notice in-place rewrites.
HEAD_BYTES = 64
GUARD_BYTES = 16
#: A line longer than this is shown by its first and last parts (a tqdm line can grow for hours).
MAX_LINE_READ = 256 * 1024
#: Old files of a rotated log kept open for reading; older ones read as empty lines.
MAX_SEGMENTS = 8
#: Names a rotated copy of ``train.log`` takes: ``train.log.1``, ``train.log-20240501``, ...
ROTATED_SEPARATORS = (".", "-", "_")


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


def close_fd(fd: int | None) -> None:
    """Close a descriptor that may be None or already gone."""
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
