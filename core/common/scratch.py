"""Where temporary files go: a folder of this process's own, beside the store, swept at start.

Importers pass new bytes to DuckDB through temporary files (it cannot read from an offset) and
copy SQLite databases whose WAL they must not touch. A process killed with SIGKILL never
removes them: sixty kills of an import left 840 files (~400 MB) in the system's temporary
folder. So each process keeps its temporary files in one folder of its own, under the store's
``.mltop/tmp/`` (or, with no store file, in a ``mltop-scratch-<uid>`` folder of the system's
temporary folder that only its user can enter), and holds an exclusive ``flock`` on a file
inside it while it lives. The kernel drops that lock when the process dies however it dies, so
whenever a process places its folder it removes every sibling folder whose lock it can take:
the leftovers of dead processes, never the folder of a live one.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path

LOCK_FILE = "owner.lock"
SYSTEM_FOLDER = "mltop-scratch"

_lock = threading.Lock()
_base: Path | None = None
_folder: Path | None = None
_lock_fd: int | None = None
_kept: list[tuple[Path, int]] = []  # earlier folders still in use, released at exit


def system_base() -> Path:
    """The folder for this user's processes without a store file (in-memory stores, tests)."""
    return Path(tempfile.gettempdir()) / f"{SYSTEM_FOLDER}-{os.getuid()}"


def _private(base: Path) -> None:
    """Make ``base`` (in a shared temporary folder): a real folder, ours, closed to others."""
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(base)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise PermissionError(f"{base} is not a private folder of this user")


def sweep(base: Path) -> int:
    """Remove the folders under ``base`` whose owner died; return how many were removed."""
    removed = 0
    try:
        entries = list(os.scandir(base))
    except OSError:
        return 0
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False) or Path(entry.path) == _folder:
            continue
        try:
            fd = os.open(os.path.join(entry.path, LOCK_FILE), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # no lock file yet: a process is creating it this moment
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # its owner is alive
        finally:
            os.close(fd)
        shutil.rmtree(entry.path, ignore_errors=True)
        removed += 1
    return removed


def _claim(base: Path) -> tuple[Path, int]:
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=base))
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder, fd


def _claim_somewhere(base: Path | None) -> tuple[Path, tuple[Path, int]]:
    """Claim a folder under ``base``, else under this user's system base, else a fresh one."""
    if base is not None:
        with contextlib.suppress(OSError):
            return base, _claim(base)
    with contextlib.suppress(OSError):
        shared = system_base()
        _private(shared)
        return shared, _claim(shared)
    fresh = Path(tempfile.mkdtemp(prefix=f"{SYSTEM_FOLDER}-"))  # private by construction
    return fresh, _claim(fresh)


def _release() -> None:
    """Leave this process's folder (when a store moves it elsewhere): removed if it is empty.

    A folder still holding something (a private store a caller has open) stays locked, so no
    sweep removes it from under its user, until the process exits.
    """
    global _folder, _lock_fd
    if _folder is not None and _lock_fd is not None:
        try:
            busy = any(entry.name != LOCK_FILE for entry in os.scandir(_folder))
        except OSError:
            busy = False
        if busy:
            _kept.append((_folder, _lock_fd))
        else:
            shutil.rmtree(_folder, ignore_errors=True)
            os.close(_lock_fd)
    _folder = _lock_fd = None


@atexit.register
def _release_all() -> None:
    """At exit: remove every folder this process made."""
    global _folder, _lock_fd
    if _folder is not None and _lock_fd is not None:
        _kept.append((_folder, _lock_fd))
    _folder = _lock_fd = None
    for folder, fd in _kept:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)
    _kept.clear()


def place_in(base: Path) -> None:
    """Keep this process's temporary files under ``base`` from now on, sweeping dead owners'.

    Called when a store is opened (``base`` is then beside the store file). Files made before
    stay where they are until removed by their users; a base that cannot be written leaves
    the current place unchanged.
    """
    global _base, _folder, _lock_fd
    with _lock:
        if _base != base or _folder is None or not _folder.is_dir():
            try:
                folder, fd = _claim(base)
            except OSError:
                return
            _release()
            _base, _folder, _lock_fd = base, folder, fd
    sweep(base)


def folder() -> Path:
    """This process's temporary folder (created, and dead owners' swept, on first use)."""
    global _base, _folder, _lock_fd
    with _lock:
        if _folder is not None and _folder.is_dir():
            return _folder
        base, (new, fd) = _claim_somewhere(_base)
        _release()
        _base, _folder, _lock_fd = base, new, fd
    sweep(base)
    return new


def mkstemp(suffix: str) -> tuple[int, str]:
    """``tempfile.mkstemp`` in this process's folder."""
    return tempfile.mkstemp(prefix="slice-", suffix=suffix, dir=folder())


def mkdtemp(prefix: str) -> str:
    """``tempfile.mkdtemp`` in this process's folder."""
    return tempfile.mkdtemp(prefix=prefix, dir=folder())
