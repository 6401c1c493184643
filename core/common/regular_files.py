"""Opening source files: regular files only, and small files read whole within a size limit.

Sources are found by name, and a name says nothing about what is behind it. A FIFO named
``metrics.jsonl`` blocks ``open()`` until a writer comes (forever, in practice), and a symlink
to ``/dev/zero`` or ``/dev/urandom`` never ends, so reading it whole grows until memory runs
out. Every importer and the watcher open sources through :func:`open_regular`, which opens
without blocking and refuses anything that is not a regular file, and read small whole files
(metadata, params, hyperparameters) through :func:`read_limited`, which stops at a limit chosen
per kind of file. Within :func:`confined_to` (every import runs in it) a symlink whose target
lies outside the imported folder is refused as well. All raise :class:`OSError` subclasses, so
the readers' existing ``except OSError`` paths turn them into one-line problems naming the file.

Folders are walked with :func:`walk_tree`, which lists regular files apart from FIFOs, devices
and sockets and does not recurse in Python, so a tree deeper than the recursion limit is walked
too. Discovery of runs and of pipeline files both use it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class SourceFileError(OSError):
    """Why a source file was not read; ``str()`` is the reason alone (problems name the file)."""

    def __str__(self) -> str:
        return str(self.strerror)


class NotRegularFile(SourceFileError):
    """A source path that is a FIFO, a device, a socket or a folder: never read."""


class FileTooLarge(SourceFileError):
    """A file read whole that is larger than the limit for its kind."""


class OutsideTree(SourceFileError):
    """A symlink whose target lies outside the folder being imported: not followed."""


@dataclass
class Confinement:
    """The folders an import may read (real paths), and the symlinks it refused to follow."""

    roots: tuple[str, ...]
    refused: dict[str, str] = field(default_factory=dict)  # path -> one-line reason

    def holds(self, real: str) -> bool:
        return any(real == root or real.startswith(root.rstrip("/") + "/") for root in self.roots)


_confinement: ContextVar[Confinement | None] = ContextVar("mltop_confinement", default=None)


@contextlib.contextmanager
def confined_to(*roots: Path | str) -> Iterator[Confinement]:
    """Within this block (in this thread), refuse symlinked files that point outside ``roots``.

    mltop reads what lies inside the folder it was pointed at: a symlink is followed when its
    target is inside, and refused when it points elsewhere, for files as for folders (the
    discovery walk never descends a folder symlink; a target inside is walked in its own
    place). The refusals are collected so the import can report each once.
    """
    confinement = Confinement(tuple(os.path.realpath(root) for root in roots))
    token = _confinement.set(confinement)
    try:
        yield confinement
    finally:
        _confinement.reset(token)


def _check_inside(path: Path | str) -> None:
    confinement = _confinement.get()
    if confinement is None:
        return
    try:
        if not stat.S_ISLNK(os.lstat(path).st_mode):
            return
    except OSError:
        return  # opening it says what is wrong
    real = os.path.realpath(path)
    if confinement.holds(real):
        return
    reason = f"a symlink to {real}, outside {confinement.roots[0]}: not followed"
    confinement.refused.setdefault(str(path), reason)
    raise OutsideTree(errno.EXDEV, reason, str(path))


def file_type(mode: int) -> str:
    """What a non-regular file is, in words for a problem line."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def is_regular(path: Path | str) -> bool:
    """Whether ``path`` (symlinks followed) is a regular file; False when it cannot be stat'ed."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


# Where O_NOFOLLOW refuses a symlink: Linux and macOS say ELOOP, FreeBSD EMLINK.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_SYMLINK_REFUSED = frozenset({errno.ELOOP, errno.EMLINK})


def _open_nonblocking(path: Path | str) -> int:
    """A descriptor opened with ``O_NONBLOCK``, a symlink out of the imported folder refused.

    Within :func:`confined_to` the file is first opened with ``O_NOFOLLOW``: a file that is not
    a symlink (nearly every one) is then opened without an ``lstat`` before it (a tenth of the
    cost of reading a run's three small files); a symlink fails with ELOOP and is checked, then
    followed if its target is inside.
    """
    if _NOFOLLOW and _confinement.get() is not None:
        try:
            return os.open(path, _OPEN_FLAGS | _NOFOLLOW)
        except OSError as exc:
            if exc.errno not in _SYMLINK_REFUSED:
                raise
    _check_inside(path)
    return os.open(path, _OPEN_FLAGS)


def _regular_fd(path: Path | str) -> tuple[int, os.stat_result]:
    """A non-blocking descriptor on a regular file and its stat; NotRegularFile (closed) for
    anything else."""
    fd = _open_nonblocking(path)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(
                errno.EINVAL, f"{file_type(st.st_mode)}, not a regular file", str(path)
            )
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def open_fd(path: Path | str) -> int:
    """A blocking read-only descriptor on a regular file, or NotRegularFile without waiting
    (OutsideTree for a symlink out of the folder being imported, see :func:`confined_to`).

    ``O_NONBLOCK`` makes opening a FIFO return at once instead of waiting for a writer; the
    flag is cleared again once the descriptor is known to be a regular file.
    """
    fd, _ = _regular_fd(path)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(path: Path | str) -> BinaryIO:
    """``open(path, "rb")`` for a regular file; NotRegularFile for anything else."""
    return os.fdopen(open_fd(path), "rb")


#: The most bytes one read asks for (each read allocates what it asks for).
_READ_CHUNK = 1024 * 1024


def _read_up_to(fd: int, count: int) -> bytes:
    """Up to ``count`` bytes from ``fd``, fewer only at the end of the file."""
    chunks = []
    while count > 0:
        chunk = os.read(fd, min(count, _READ_CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        count -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_whole(path: Path | str) -> bytes:
    """The whole of a regular file, however long it is now; NotRegularFile for anything else."""
    return read_from(path, 0)


def read_from(path: Path | str, offset: int, limit: int | None = None) -> bytes:
    """A regular file's bytes from ``offset`` to its end as it is now (at most ``limit``);
    NotRegularFile for anything else.

    Read straight from the descriptor (``O_NONBLOCK`` changes nothing for a regular file), with
    no file object: a run folder's small files are read by the hundred thousand, and a file
    object costs two ``fcntl`` calls and a buffer (a third of reading a small metric file).
    """
    fd, st = _regular_fd(path)
    try:
        if offset:
            os.lseek(fd, offset, os.SEEK_SET)
        if limit is not None:
            return _read_up_to(fd, limit)
        expected = max(st.st_size - offset, 0)
        data = _read_up_to(fd, expected + 1)
        if len(data) > expected:  # it grew since the stat: the rest too
            data += _read_up_to(fd, sys.maxsize)
    finally:
        os.close(fd)
    return data


def read_limited(path: Path | str, limit: int, what: str = "this kind of file") -> bytes:
    """The whole of a regular file of at most ``limit`` bytes; FileTooLarge beyond it.

    The size is checked before reading and again by reading one byte past the limit, so a file
    that grows while being read cannot take more memory than the limit either.
    """
    fd, st = _regular_fd(path)
    try:
        size = st.st_size
        data = b""
        if size <= limit:
            # As many bytes as the file has, and one more to see it grew: a read of limit + 1
            # bytes allocates them up front (4 MB for each metadata file of a run folder, 40 us
            # of a 10 us read).
            data = _read_up_to(fd, size + 1)
            if len(data) > size:
                data += _read_up_to(fd, limit + 1 - len(data))
    finally:
        os.close(fd)
    if size > limit or len(data) > limit:
        raise FileTooLarge(
            errno.EFBIG,
            f"too large: {max(size, len(data)):,} bytes, over the {limit:,}-byte limit for {what}",
            str(path),
        )
    return data


Walk = Iterable[tuple[str, list[str], list[str], list[tuple[str, str]]]]


def walk_tree(root: Path, onerror: Callable[[OSError], None] | None = None) -> Walk:
    """``os.walk(root)`` top-down without following symlinks, as a loop over an explicit stack.

    Python 3.11's ``os.walk`` recurses once per level and raises RecursionError on a tree about
    1,000 folders deep; this walk's depth costs only stack entries. As with ``os.walk`` the
    caller may prune or reorder ``dirnames`` in place, and a folder that cannot be listed is
    handed to ``onerror`` (when given) and passed over.
    Unlike ``os.walk``, ``filenames`` holds regular files only (symlinks followed); FIFOs,
    devices and sockets come apart as ``(name, what it is)``, because opening one as a source
    would block or never end. Dangling symlinks name nothing to read and are left out.
    """
    stack = [str(root)]
    pop, push, scandir = stack.pop, stack.append, os.scandir
    # Per folder as little Python as the walk allows: a re-scan of a hundred thousand run
    # folders is mostly this loop (no set or join made for a folder with no subfolder).
    while stack:
        top = pop()
        dirnames: list[str] = []
        filenames: list[str] = []
        others: list[tuple[str, str]] = []
        linked: set[str] | None = None  # folder symlinks: listed, never descended
        try:
            with scandir(top) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir():
                            dirnames.append(entry.name)
                            if entry.is_symlink():  # from the directory entry: no system call
                                if linked is None:
                                    linked = set()
                                linked.add(entry.name)
                        elif entry.is_file():
                            filenames.append(entry.name)
                        else:
                            others.append((entry.name, file_type(entry.stat().st_mode)))
                    except OSError:
                        continue  # vanished, or a symlink to nothing
        except OSError as exc:
            if onerror is not None:
                onerror(exc)
            continue
        yield top, dirnames, filenames, others
        if dirnames:
            base = top if top.endswith(os.sep) else top + os.sep
            for name in reversed(dirnames):
                if linked is None or name not in linked:
                    push(base + name)
